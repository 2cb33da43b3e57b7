"""`cdp serve` under schemathesis, driven by Customer.io's OpenAPI document.

Schemathesis generates requests for every path from the document: valid ones (serve must accept
them: no false rejects), invalid ones (serve must refuse them: no false accepts), and requests
with bad or missing credentials; no answer may be a 5xx. Serve validates with cdp's own models,
so this holds the models against the document too.

The document is read with the few changes listed in `as_cdp_reads_it`: each is either a way the
document is loose for documentation's sake, or a rule SPEC.md sets deliberately stricter. A
change here is a decision, so each one says why.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from schemathesis import GenerationMode

from cdpcli.server import Receiver
from tests.conftest import API_KEY
from tests.openapi import _one_of_as_any_of, document

# ids, and the ids semantic events require (properties.objectId, context.device.token)
IDS = ("userId", "anonymousId", "previousId", "groupId", "objectId", "token")
NON_EMPTY_ID = {"type": "string", "minLength": 1}
SEMANTIC_EVENT_SCHEMAS = ("create_update_device", "delete_device", "delete_person", "group_deleted", "relationship_deleted",
                          "report_content_event", "report_delivery_event", "suppress_person", "unsuppress_person")


def as_cdp_reads_it(original: dict[str, Any]) -> dict[str, Any]:
    doc = _one_of_as_any_of(copy.deepcopy(original))  # overlapping oneOfs (reference/README.md)
    schemas = doc["components"]["schemas"]
    for path in doc["paths"].values():
        operation = path["post"]
        # strict mode on every request: without it the API answers 200 to anything by design
        operation["parameters"] = [p for p in operation.get("parameters", []) if p["name"] != "X-Strict-Mode"]
        operation["requestBody"]["required"] = True  # a call without a body is no call
        # the document defines these answers in #/components/responses but no operation uses them
        for status in ("400", "401", "429"):
            operation["responses"].setdefault(status, {"$ref": f"#/components/responses/{status}"})
    # SPEC: group needs userId or anonymousId, and groupId (the single-call schema requires
    # nothing; its batch item requires both, as here)
    for branch, who in zip(schemas["group"]["anyOf"], ("userId", "anonymousId")):
        branch["allOf"][0]["required"] = [who, "groupId"]
    # identify's "Anonymous User" branch types only email and createdAt in traits; the known-user
    # branch also types cio_subscription_preferences and unsubscribed: cdp types all four always
    known, anonymous = (branch["allOf"][0]["properties"]["traits"]["properties"] for branch in schemas["identify"]["anyOf"])
    anonymous.update({k: v for k, v in known.items() if k not in anonymous})
    # a single /track call must carry "type" by the document, though /identify, /page, /screen
    # and /group need not: the path says the type, and serve takes it from there
    track = schemas["track"]["anyOf"][0]["anyOf"]
    for branch in track:
        branch["allOf"][0]["required"].remove("type")
    # SPEC: track needs userId or anonymousId; the document also takes a groupId alone
    track[:] = [branch for branch in track if "groupId" not in branch["allOf"][0]["required"]]
    # the batch item "Track / Anonymous User" requires no anonymousId (its single-call twin does)
    _walk(schemas["batch"], _anonymous_needs_its_id)
    # the Python SDK sends null for the ids, name and category it leaves unset (`"anonymousId":
    # null` beside a userId): the API takes its traffic, so null there is read as absent
    for name in ("userId", "anonymousId"):
        schemas[name] = {"anyOf": [schemas[name], {"type": "null"}]}
    for kind in ("page", "screen", "batch"):
        _walk(schemas[kind], _name_and_category_nullable)
    # SPEC: the id a call is required to carry must not be empty (the document has no minLength)
    _walk(schemas, _required_ids_not_empty)
    # SPEC: messageId is non-empty (it is what the API de-duplicates on) and, as Segment
    # documents, under 100 characters
    schemas["common_fields"]["properties"]["messageId"].update(minLength=1, maxLength=100)
    schemas["batch"]["required"] = ["batch"]
    # a batch item must say its type (the Identify item reuses the single call's schema,
    # where the path says it)
    items = schemas["batch"]["properties"]["batch"]
    items["items"] = {"allOf": [items["items"], {"required": ["type"]}]}
    # the document requires properties.activityType but describes (and types) actionType:
    # cdp requires neither
    schemas["report_content_event"]["properties"]["properties"].pop("required")
    # the semantic events are track calls: cdp reads timestamp, messageId, context and
    # integrations on them as on every call, where the document's event schemas leave them
    # untyped (a "timestamp": [] would pass)
    for name in SEMANTIC_EVENT_SCHEMAS:
        schemas[name] = {"allOf": [schemas[name], {"$ref": "#/components/schemas/all_common_fields"}]}
    return doc


def _required_ids_not_empty(node: dict[str, Any]) -> None:
    for name in set(node.get("required", ())).intersection(IDS):
        node.setdefault("properties", {})[name] = NON_EMPTY_ID
    event = node.get("properties", {}).get("event")
    if isinstance(event, dict) and event.get("type") == "string":
        event["minLength"] = 1  # SPEC: track needs an event; an empty name is none


def _name_and_category_nullable(node: dict[str, Any]) -> None:
    fields = node.get("properties", {})
    kind = fields.get("type")
    if isinstance(kind, dict) and kind.get("enum") in (["page"], ["screen"]):  # a page or screen call's own level
        for name in ("name", "category"):
            fields[name] = {"anyOf": [fields.get(name, {"type": "string"}), {"type": "null"}]}


def _anonymous_needs_its_id(node: dict[str, Any]) -> None:
    fields = node.get("properties", {})
    if "anonymousId" in fields and "userId" not in fields and "anonymousId" not in node.get("required", []):
        node["required"] = [*node.get("required", []), "anonymousId"]


def _walk(node: Any, visit) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for item in node:
            _walk(item, visit)


schema = schemathesis.openapi.from_dict(as_cdp_reads_it(document()))
schema.config.update(headers={"X-Strict-Mode": "1"}, basic_auth=(API_KEY, ""))
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=25)


@pytest.fixture(scope="module")
def serve():
    with Receiver(api_key=API_KEY, keep=False) as server:
        yield server


@schema.parametrize()
def test_serve_under_schemathesis(case, serve):
    case.call_and_validate(base_url=serve.url)

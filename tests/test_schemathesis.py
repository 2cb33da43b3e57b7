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
import os
import random
from typing import Any

import pytest
import schemathesis
from hypothesis import settings
from schemathesis import GenerationMode

from cdpcli.serve import Receiver
from tests.conftest import API_KEY, EXPLORE
from tests.openapi import _one_of_as_any_of, document

pytestmark = pytest.mark.slow  # schemathesis generates hundreds of requests

# ids, and the ids semantic events require (properties.objectId, context.device.token)
IDS = ("userId", "anonymousId", "previousId", "groupId", "objectId", "token")
NON_EMPTY_ID = {"type": "string", "minLength": 1}
SEMANTIC_EVENT_SCHEMAS = (
    "create_update_device",
    "delete_device",
    "delete_person",
    "group_deleted",
    "relationship_deleted",
    "report_content_event",
    "report_delivery_event",
    "suppress_person",
    "unsuppress_person",
)


def as_cdp_reads_it(original: dict[str, Any]) -> dict[str, Any]:
    doc = _one_of_as_any_of(copy.deepcopy(original))  # overlapping oneOfs (reference/README.md)
    schemas = doc["components"]["schemas"]
    for path in doc["paths"].values():
        operation = path["post"]
        # strict mode on every request: without it the API answers 200 to anything by design,
        # a wrong key included (the call is dropped; serve does the same and keeps it as a
        # dropped reject), which schemathesis's checks for bad credentials would read as a
        # wrong key accepted; with it a wrong key is the document's 401
        operation["parameters"] = [p for p in operation.get("parameters", []) if p["name"] != "X-Strict-Mode"]
        operation["requestBody"]["required"] = True  # a call without a body is no call
        # the document defines these answers in #/components/responses but no operation uses them
        for status in ("400", "401", "429"):
            operation["responses"].setdefault(status, {"$ref": f"#/components/responses/{status}"})
    # SPEC: group needs userId or anonymousId, and groupId (the single-call schema requires
    # nothing; its batch item requires both, as here)
    for branch, who in zip(schemas["group"]["anyOf"], ("userId", "anonymousId"), strict=True):
        branch["allOf"][0]["required"] = [who, "groupId"]
    # identify's "Anonymous User" branch types only email and createdAt in traits; the known-user
    # branch also types cio_subscription_preferences and unsubscribed: cdp types all four always
    known, anonymous = (
        branch["allOf"][0]["properties"]["traits"]["properties"] for branch in schemas["identify"]["anyOf"]
    )
    anonymous.update({k: v for k, v in known.items() if k not in anonymous})
    # identify by email (issue 17): the document's identify description says that "when you use
    # Customer.io as a destination, you can pass an empty userId or anonymousId, and identify
    # people by their email trait" (and the email trait: "you can pass an empty userId"). Its
    # schema lets an empty userId through but never requires the email; cdp (SPEC) takes an
    # identify with its ids empty or absent when traits.email is a non-empty string
    by_email = copy.deepcopy(schemas["identify"]["anyOf"][0])
    by_email["title"] = "By Email"
    fields = by_email["allOf"][0]
    fields["required"] = ["traits"]
    fields["properties"]["traits"]["required"] = ["email"]
    # non-empty once stripped, as cdp reads it ("   " names nobody; Python's whitespace, which
    # the pattern's \\S follows too: schemathesis found "\\u001c")
    fields["properties"]["traits"]["properties"]["email"] = {"type": "string", "pattern": "\\S"}
    schemas["identify"]["anyOf"].append(by_email)
    # a single /track call must carry "type" by the document, though /identify, /page, /screen
    # and /group need not: the path says the type, and serve takes it from there
    track = schemas["track"]["anyOf"][0]["anyOf"]
    for branch in track:
        branch["allOf"][0]["required"].remove("type")
    # SPEC: track needs userId or anonymousId; the document also takes a groupId alone
    track[:] = [branch for branch in track if "groupId" not in branch["allOf"][0]["required"]]
    # a track named like a semantic event is that event, held to what its schema requires (a
    # "User Deleted" needs a userId): the plain track branches take every other name
    semantic_names = [schemas[name]["properties"]["event"]["enum"][0] for name in SEMANTIC_EVENT_SCHEMAS]
    for branch in track:
        branch["allOf"][0]["properties"]["event"]["not"] = {"enum": semantic_names}
    # the Python SDK sends null for the ids, name and category it leaves unset (`"anonymousId":
    # null` beside a userId): the API takes its traffic, so null there is read as absent
    for name in ("userId", "anonymousId"):
        schemas[name] = {"anyOf": [schemas[name], {"type": "null"}]}
    for kind in ("page", "screen"):
        _walk(schemas[kind], _name_and_category_nullable)
    # issue 12: rules only the document states, which no official SDK confirms, are warnings in
    # cdp (models.semantic_warnings), so serve accepts these (and logs them):
    # - Object Deleted needs a userId or an anonymousId, not necessarily the anonymousId
    deleted = schemas["group_deleted"]
    deleted["required"] = ["event", "properties"]
    deleted["anyOf"] = [{"required": ["userId"]}, {"required": ["anonymousId"]}]
    # (null ids are read as absent, as on every call: see below)
    for name in ("userId", "anonymousId"):
        deleted["properties"][name] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    # - objectTypeId in Object/Relationship Deleted: the document's integer, or the numeric
    #   string that group (and Segment's Customer.io action) send
    for name in ("group_deleted", "relationship_deleted"):
        fields = schemas[name]["properties"]["properties"]["properties"]
        fields["objectTypeId"] = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]}
    # - a delivery metric outside the document's four (Segment's action lists more)
    schemas["report_delivery_event"]["properties"]["properties"]["properties"]["metric"].pop("enum")
    # the device events' context.device.type: also "web", which Customer.io's browser SDK sends
    # for web push (a false reject the document would make: tests/data/golden/web-push-*.json)
    for name in ("create_update_device", "delete_device"):
        device = schemas[name]["properties"]["context"]["properties"]["device"]["properties"]
        device["type"]["enum"] = ["ios", "android", "web"]
    # SPEC: the id a call is required to carry must not be empty (the document has no minLength)
    _walk(schemas, _required_ids_not_empty)
    # SPEC: messageId is non-empty (it is what the API de-duplicates on) and, as Segment
    # documents, under 100 characters
    schemas["common_fields"]["properties"]["messageId"].update(minLength=1, maxLength=100)
    schemas["batch"]["required"] = ["batch"]
    # a batch item is a call like the single call of its type, and serve judges it as one. The
    # document's Identify item is the single call's schema, but its Track, Page, Screen and
    # Group items restate only the ids and a few fields: they leave out the common fields
    # (timestamp, messageId, context, integrations: a screen item's "timestamp": {} passed them,
    # failing this test about one run in ten) and the typed ones (a page's properties.url, a
    # group's traits.object_type_id, the semantic events). So each item is read as its single
    # call, alias included (every official SDK batches alias calls: reference/api-wire-facts.md
    # §3.8), and must say its type (the path says it for a single call)
    singles = ("identify", "track", "page", "screen", "group", "alias_all")
    schemas["batch"]["properties"]["batch"]["items"] = {
        "allOf": [{"anyOf": [{"$ref": f"#/components/schemas/{kind}"} for kind in singles]}, {"required": ["type"]}],
    }
    # likewise /alias: the path's schema leaves out the common fields its alias_all adds
    alias_body = doc["paths"]["/alias"]["post"]["requestBody"]["content"]["application/json"]
    alias_body["schema"] = {"$ref": "#/components/schemas/alias_all"}
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
# deterministic like every property test (tests/conftest.py): schemathesis hands hypothesis its
# own `derandomize`, so it is told the loaded profile's here. With CDP_TEST_EXPLORE=1 each run
# draws a random seed, named in any failure (CDP_TEST_SEED=N replays that run).
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=25,
    deterministic=settings.default.derandomize,
)
SEED = int(os.environ.get("CDP_TEST_SEED") or random.SystemRandom().getrandbits(64)) if EXPLORE else None
if SEED is not None:
    schema.config.seed = SEED


@pytest.fixture(scope="module")
def serve():
    with Receiver(api_key=API_KEY, keep=False) as server:
        yield server


@schema.parametrize()
def test_serve_under_schemathesis(case, serve):
    try:
        case.call_and_validate(base_url=serve.url)
    except Exception as exc:
        if SEED is not None and hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(f"schemathesis seed {SEED}: CDP_TEST_EXPLORE=1 CDP_TEST_SEED={SEED} replays this run")
        raise


def test_generation_is_deterministic_by_default():
    """A flaky test fails CI at random, whatever the change (issue 10): the default run draws the
    same requests every time; CDP_TEST_EXPLORE=1 opts into random seeds."""
    if EXPLORE:
        pytest.skip("CDP_TEST_EXPLORE=1: random seeds by request")
    assert schema.config.generation.deterministic
    for result in schema.get_all_operations():
        operation = result.ok()
        for phase in ("examples", "coverage", "fuzzing"):
            assert schema.config.get_hypothesis_settings(operation=operation, phase=phase).derandomize, (
                operation.label,
                phase,
            )


# What the overlay accepts, serve must accept, and what it refuses, serve must refuse. Each
# case below once passed the overlay but not serve (or the other way round); schemathesis found
# the first only now and then.
AGREEMENT_CASES = [
    ("batch", {"batch": [{"type": "screen", "userId": "1", "timestamp": {}}]}, False),  # issue 10's flaky run
    ("batch", {"batch": [{"type": "track", "userId": "1", "event": "E", "messageId": ""}]}, False),
    ("batch", {"batch": [{"type": "track", "userId": "1", "event": "E", "context": {"active": "yes"}}]}, False),
    ("batch", {"batch": [{"type": "page", "userId": "1", "properties": {"url": 5}}]}, False),
    ("batch", {"batch": [{"type": "group", "userId": "1", "groupId": "g", "traits": {"object_type_id": 5}}]}, False),
    ("batch", {"batch": [{"type": "track", "anonymousId": "a", "event": "User Deleted"}]}, False),
    ("batch", {"batch": [{"type": "alias", "userId": "1", "previousId": "a", "integrations": {"All": "no"}}]}, False),
    ("batch", {"batch": [{"type": "alias", "userId": "1", "previousId": "a"}]}, True),
    ("batch", {"batch": [{"type": "screen", "userId": "1", "timestamp": "2026-01-02T03:04:05Z", "name": None}]}, True),
    ("alias", {"userId": "1", "previousId": "a", "timestamp": {}}, False),
    # identify by email (issue 17)
    ("identify", {"traits": {"email": "a@example.com"}}, True),
    ("identify", {"userId": "", "traits": {"email": "a@example.com"}}, True),
    ("identify", {"userId": None, "anonymousId": "", "traits": {"email": "a@example.com"}}, True),
    ("batch", {"batch": [{"type": "identify", "userId": "", "traits": {"email": "a@example.com"}}]}, True),
    ("identify", {"userId": "", "traits": {"email": ""}}, False),
    ("identify", {"traits": {"plan": "pro"}}, False),
    ("batch", {"batch": [{"type": "track", "userId": "", "event": "E", "traits": {"email": "a@example.com"}}]}, False),
    ("identify", {"traits": {"email": "\u001c"}}, False),  # whitespace only: names nobody
    # issue 12: document-only rules are warnings; the browser SDK's web push device is accepted
    ("track", {"userId": "1", "event": "Object Deleted", "properties": {"objectId": "a"}}, True),
    ("track", {"userId": "1", "anonymousId": None, "event": "Object Deleted", "properties": {}}, True),
    ("track", {"event": "Object Deleted", "properties": {"objectId": "a"}}, False),
    (
        "track",
        {"userId": "1", "event": "Relationship Deleted", "properties": {"objectId": "a", "objectTypeId": "2"}},
        True,
    ),
    (
        "track",
        {"userId": "1", "event": "Relationship Deleted", "properties": {"objectId": "a", "objectTypeId": "x"}},
        False,
    ),
    ("track", {"event": "Report Delivery Event", "properties": {"deliveryId": "d", "metric": "bounced"}}, True),
    ("track", {"event": "Report Delivery Event", "properties": {"deliveryId": "d", "metric": 5}}, False),
    (
        "batch",
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "1",
                    "event": "Device Deleted",
                    "context": {"device": {"token": "t", "type": "web"}},
                }
            ]
        },
        True,
    ),
    ("track", {"userId": "1", "event": "Device Deleted", "context": {"device": {"token": "t", "type": "tv"}}}, False),
]


@pytest.mark.parametrize(("path", "body", "valid"), AGREEMENT_CASES)
def test_the_overlay_and_serve_agree(serve, path, body, valid):
    from jsonschema import Draft202012Validator, FormatChecker

    from tests.conftest import post

    read = as_cdp_reads_it(document())
    content = read["paths"][f"/{path}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**content, "components": read["components"]}, format_checker=FormatChecker())
    assert validator.is_valid(body) == valid
    status, _ = post(serve, f"/v1/{path}", body)
    assert status == (200 if valid else 400)

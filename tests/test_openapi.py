"""What cdp sends and what `cdp serve` accepts, held against Customer.io's OpenAPI document."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpcli import models
from cdpcli.models import SEMANTIC_EVENTS, validate_call
from tests.conftest import BASIC, post
from tests.openapi import problems, request_schema

EVERY_OPTION = [
    "--timestamp",
    "2026-01-02T03:04:05",
    "--message-id",
    "m-1",
    "--context",
    '{"ip":"1.2.3.4","locale":"en-US"}',
    "-c",
    "page.url=https://e.com/p",
    "-c",
    "active:=true",
    "--integrations",
    '{"All":false,"Salesforce":true}',
]
COMMANDS = {
    "identify": ["--user", "42", "--anonymous-id", "a-1", "--traits", '{"email":"ada@example.com"}', "-t", "logins:=7"],
    "track": ["--user", "42", "--event", "Item Purchased", "--properties", '{"sku":"A-1"}', "-p", "price:=9.5"],
    "page": ["--anonymous-id", "a-1", "--name", "Pricing", "--category", "Docs", "-p", "url=https://e.com/p"],
    "screen": ["--user", "42", "--name", "Checkout", "--category", "Shop", "-p", "step:=2"],
    "group": [
        "--user",
        "42",
        "--group",
        "acme",
        "--object-type-id",
        "3",
        "--traits",
        '{"name":"Acme"}',
        "-t",
        "seats:=50",
    ],
    "alias": ["--user", "42", "--previous-id", "a-1"],
}


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_dry_run_bodies_match_the_document(cli, kind):
    run = cli(kind, *COMMANDS[kind], *EVERY_OPTION, "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    request = json.loads(run.stdout)
    assert problems(request_schema(kind), request["body"]) == []


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_bodies_received_by_serve_match_the_document(send, receiver, kind):
    run = send(kind, *COMMANDS[kind], *EVERY_OPTION)
    assert run.exit_code == 0, run.stderr
    [request] = receiver.requests
    assert problems(request_schema(kind), request.body) == []


def test_identify_by_email_matches_the_document(send, receiver, tmp_path):
    """Issue 17: the document's identify takes an empty userId ("when you use Customer.io as a
    destination, you can pass an empty userId or anonymousId, and identify people by their email
    trait"): what cdp sends for an identify by email, it accepts."""
    run = send("identify", "--email", "ada@example.com", "-t", "plan=pro", *EVERY_OPTION, "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    body = json.loads(run.stdout)["body"]
    assert body["userId"] == "" and body["traits"]["email"] == "ada@example.com"
    assert problems(request_schema("identify"), body) == []
    run = send("identify", "-t", "email=ada@example.com")
    assert run.exit_code == 0, run.stderr
    assert problems(request_schema("identify"), receiver.requests[0].body) == []
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps({"type": "identify", "traits": {"email": "b@example.com"}}) + "\n")
    run = send("import", str(source))
    assert run.exit_code == 0, run.stderr
    batch = receiver.requests[1].body
    assert batch["batch"][0]["userId"] == ""
    assert problems("batch", batch) == []


def test_property_tests_are_deterministic_by_default():
    """Issue 10: in the default run every hypothesis test in tests/ draws the same examples every
    time (tests/conftest.py; schemathesis: tests/test_schemathesis.py); CDP_TEST_EXPLORE=1 opts
    into random ones."""
    import importlib
    from pathlib import Path

    from tests.conftest import EXPLORE

    if EXPLORE:
        pytest.skip("CDP_TEST_EXPLORE=1: random seeds by request")
    found = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for name, test in vars(module).items():
            if name.startswith("test_") and getattr(test, "is_hypothesis_test", False):
                found.append(name)
                assert test._hypothesis_internal_use_settings.derandomize, f"{path.name}::{name}"
    assert {"test_models_agree_with_the_document", "test_serve_never_fails_on_generated_requests"} <= set(found)


def test_import_batches_match_the_document_including_slow_path_lines(send, receiver, tmp_path):
    lines = [
        {"type": "identify", "userId": 42, "traits": {"email": "a@example.com"}},  # numeric id
        {"type": "identify", "userId": "", "traits": {"email": "a@example.com"}},  # identified by email
        {"type": "track", "userId": "1", "event": "E", "timestamp": "2026-01-02T03:04:05Z"},  # no milliseconds
        {"type": "track", "anonymousId": "a", "event": "E", "timestamp": 1767323045},  # Unix seconds
        {"type": "page", "userId": "1", "name": "Home", "context": {"library": {"name": "mine"}, "ip": "1.2.3.4"}},
        {"type": "screen", "userId": "1", "name": "S", "context": None, "messageId": None},
        {"type": "group", "userId": "1", "groupId": 7, "traits": {"name": "Acme"}},
        {"type": "alias", "userId": "1", "previousId": "a"},
        {"type": "track", "userId": "1", "event": "E", "properties": {"x": 1}, "integrations": {"All": True}},
    ]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = send("import", str(source))
    assert run.exit_code == 0, run.stderr
    assert len(receiver.calls) == len(lines)
    for request in receiver.requests:
        # The document's batch items list no alias, though every official SDK batches alias calls
        # (reference/api-wire-facts.md §3.8): alias items are held against the alias schema.
        body = {**request.body, "batch": [c for c in request.body["batch"] if c["type"] != "alias"]}
        assert problems("batch", body) == []
        for call in request.body["batch"]:
            assert problems(call["type"], call) == [], call


# -- semantic events ------------------------------------------------------------------------

SEMANTIC_SCHEMAS = {
    "Device Created or Updated": "create_update_device",
    "Device Deleted": "delete_device",
    "User Deleted": "delete_person",
    "User Suppressed": "suppress_person",
    "User Unsuppressed": "unsuppress_person",
    "Relationship Deleted": "relationship_deleted",
    "Object Deleted": "group_deleted",
    "Report Delivery Event": "report_delivery_event",
    "Report Content Event": "report_content_event",
}
COMPLETE = {
    "Device Created or Updated": ["--user", "42", "-c", "device.token=tok-1", "-c", "device.type=ios"],
    "Device Deleted": ["--user", "42", "-c", "device.token=tok-1"],
    "User Deleted": ["--user", "42"],
    "User Suppressed": ["--user", "42"],
    "User Unsuppressed": ["--user", "42"],
    "Relationship Deleted": ["--user", "42", "-p", "objectId=acme", "-p", "objectTypeId:=1"],
    "Object Deleted": ["--anonymous-id", "a-1", "-p", "objectId=acme", "-p", "objectTypeId:=1"],
    "Report Delivery Event": ["-p", "deliveryId=d-1", "-p", "metric=opened"],
    # the document requires properties.activityType but describes actionType (see the closing
    # note); cdp requires neither, so a call with both satisfies the document either way
    "Report Content Event": [
        "-p",
        "activityType=viewed_content",
        "-p",
        "actionType=viewed_content",
        "-p",
        "contentId:=7",
    ],
}


def test_every_semantic_event_in_the_document_is_known():
    assert set(SEMANTIC_SCHEMAS) == set(SEMANTIC_EVENTS)
    from tests.openapi import document

    schemas = document()["components"]["schemas"]
    for event, schema in SEMANTIC_SCHEMAS.items():
        assert schemas[schema]["properties"]["event"]["enum"] == [event]


@pytest.mark.parametrize("event", list(COMPLETE))
def test_semantic_events_validate_through_cdp_track(cli, event):
    run = cli("track", "--event", event, *COMPLETE[event], "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    body = json.loads(run.stdout)["body"]
    assert problems(SEMANTIC_SCHEMAS[event], body) == []


@pytest.mark.parametrize(
    ("event", "args", "error"),
    [
        ("Device Created or Updated", ["--user", "42"], "needs context.device.token"),
        (
            "Device Created or Updated",
            ["--user", "42", "-c", "device.token=t", "-c", "device.type=watch"],
            "context.device.type must be ios, android or web",
        ),
        ("Device Deleted", ["--anonymous-id", "a", "-c", "device.token=t"], "needs userId"),
        ("User Deleted", ["--anonymous-id", "a"], "needs userId"),
        ("Relationship Deleted", ["--user", "42"], "needs properties.objectId"),
        ("Object Deleted", ["--anonymous-id", "a"], "needs properties"),
        ("Report Delivery Event", [], "needs properties"),
    ],
)
def test_cdp_says_what_a_semantic_event_lacks_before_sending(send, receiver, event, args, error):
    run = send("track", "--event", event, *args)
    assert run.exit_code == 2
    assert error in run.stderr
    assert receiver.requests == []


def test_semantic_events_through_import(send, receiver, tmp_path):
    lines = [
        {"type": "track", "event": "Device Created or Updated", "userId": "1", "context": {"device": {"token": "t"}}},
        {"type": "track", "event": "Device Created or Updated", "userId": "1"},
        {"type": "track", "event": "Report Delivery Event", "properties": {"deliveryId": "d", "metric": "clicked"}},
    ]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = send("import", str(source))
    assert run.exit_code == 1
    assert f"{source}:2: Device Created or Updated needs context.device.token" in run.stderr
    assert len(receiver.calls) == 2
    for call in receiver.calls:
        assert problems(SEMANTIC_SCHEMAS[call["event"]], call) == []


# -- no false rejects, no false accepts -----------------------------------------------------

ids = st.one_of(st.text(min_size=1, max_size=12), st.integers(min_value=0, max_value=10**12))
objects = st.dictionaries(
    st.text(max_size=8), st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)), max_size=3
)
# traits with an email (an identify with no id is identified by it when it is a non-empty string)
with_email = st.builds(
    lambda traits, email: {**traits, "email": email},
    objects,
    st.one_of(st.text(max_size=8), st.just(""), st.integers(), st.none()),
)
maybe = lambda strategy: st.one_of(st.just(None), strategy)  # noqa: E731 - None: leave the field out


@st.composite
def calls(draw):
    kind = draw(st.sampled_from(["identify", "track", "page", "screen", "group", "alias"]))
    call = {
        "type": kind,
        "userId": draw(maybe(ids)),
        "anonymousId": draw(maybe(ids)),
        "event": draw(maybe(st.text(max_size=10))),
        "groupId": draw(maybe(ids)),
        "previousId": draw(maybe(ids)),
        "name": draw(maybe(st.text(max_size=8))),
        "traits": draw(maybe(st.one_of(objects, with_email, st.integers()))),
        "properties": draw(maybe(st.one_of(objects, st.text(max_size=3)))),
        "integrations": draw(maybe(st.dictionaries(st.sampled_from(["All", "X"]), st.booleans(), max_size=2))),
        "timestamp": draw(
            maybe(st.sampled_from(["2026-01-02T03:04:05.123Z", "2026-01-02T03:04:05+02:00", "yesterday"]))
        ),
    }
    return {key: value for key, value in call.items() if value is not None}


def document_accepts(call: dict) -> bool:
    """The document's verdict, numeric ids read as the strings the SDKs make of them."""
    as_strings = {
        k: (str(v) if k in ("userId", "anonymousId", "groupId", "previousId") else v) for k, v in call.items()
    }
    if as_strings.get("event") in SEMANTIC_EVENTS or as_strings.get("event") == "":
        return False  # empty names and semantic events: covered by their own tests
    return problems(call["type"], as_strings) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_models_agree_with_the_document(call):
    from pydantic import ValidationError

    try:
        wire = validate_call(dict(call))
    except ValidationError:
        wire = None
    if wire is not None:
        # no false accepts: what cdp would send, the document accepts
        assert problems(call["type"], wire) == [], (call, wire)
    elif document_accepts(call) and not stricter_by_spec(call):
        raise AssertionError(f"cdp rejects a call the document accepts: {call}")


def stricter_by_spec(call: dict) -> bool:
    """Where SPEC.md's required-field rules are deliberately stricter than the document."""
    if call["type"] == "group" and call.get("groupId") in (None, ""):
        return True  # the single-call group schema requires nothing; its batch item requires groupId
    if call["type"] == "alias" and call.get("timestamp") == "yesterday":
        return True  # the alias schema leaves out the common fields, so any timestamp passes it
    if models.identified_by_email(call):
        return False  # identified by email (issue 17): the document's empty userId, taken as it says
    # ids: the document has no minLength, so "" passes; an empty id identifies nobody
    return call["type"] != "alias" and not any(call.get(k) not in (None, "") for k in ("userId", "anonymousId"))


def test_serve_agrees_with_the_models(receiver):
    """Hand-picked edges: the receiver judges bodies as the document does (ids are strings on
    the wire: cdp sends a numeric id as a string, but the API is not asked to take a number)."""
    cases = [
        ({"type": "track", "userId": "1", "event": "E", "integrations": {"All": "no"}}, 400),
        ({"type": "track", "userId": "1", "event": "E", "integrations": {"All": False}}, 200),
        ({"type": "track", "event": "Report Delivery Event", "properties": {"metric": "opened"}}, 200),
        ({"type": "track", "userId": "1", "event": "User Deleted"}, 200),
        ({"type": "track", "anonymousId": "1", "event": "User Deleted"}, 400),
        ({"type": "identify", "userId": 42}, 400),
        ({"type": "identify", "userId": "42", "traits": None}, 400),
        ({"type": "identify", "userId": "42", "timestamp": "2026-01-02T03:04:05+02:00"}, 200),
        ({"type": "identify", "userId": "42", "timestamp": "2026-01-02 03:04:05"}, 400),
        ({"type": "page", "userId": "1", "context": {"page": {"url": 5}}}, 400),
        ({"type": "track", "userId": "1", "event": "E", "context": {"page": {"url": 5}}}, 200),  # a mobile context
        ({"type": "track", "userId": "1", "event": "E", "context": {"page": {"url": 5}, "os": {"name": 1}}}, 400),
        ({"type": "track", "event": "Report Content Event", "properties": {"contentId": "7"}}, 400),
        # identify by email (issue 17): ids empty or absent, traits.email a non-empty string
        ({"type": "identify", "userId": "", "traits": {"email": "a@example.com"}}, 200),
        ({"type": "identify", "traits": {"email": "a@example.com"}}, 200),
        ({"type": "identify", "userId": None, "anonymousId": "", "traits": {"email": "a@example.com"}}, 200),
        ({"type": "identify", "userId": "", "traits": {"email": ""}}, 400),
        ({"type": "identify", "userId": "", "traits": {"email": 7}}, 400),
        ({"type": "identify", "userId": ""}, 400),
        ({"type": "track", "userId": "", "event": "E", "traits": {"email": "a@example.com"}}, 400),
        ({"type": "group", "groupId": "g", "traits": {"email": "a@example.com"}}, 400),
    ]
    for call, expected in cases:
        status, _ = post(receiver, "/v1/batch", {"batch": [call]})
        assert status == expected, call


# -- cdp serve under generated and malformed requests ---------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "type",
        "userId",
        "anonymousId",
        "event",
        "groupId",
        "previousId",
        "traits",
        "properties",
        "context",
        "integrations",
        "timestamp",
        "messageId",
        "batch",
        "sentAt",
    ]
)
call_like = st.dictionaries(field_names, json_values, max_size=6)
bodies = st.one_of(
    call_like.map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.just("batch"), st.lists(call_like, max_size=4)).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),  # not JSON at all
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "batch", "nope"]),
    body=bodies,
    auth=st.sampled_from(["good", "none", "wrong", "garbage"]),
    strict=st.booleans(),
    gzip_header=st.booleans(),
)
def test_serve_never_fails_on_generated_requests(receiver, path, body, auth, strict, gzip_header):
    credentials = {
        "good": BASIC,
        "none": None,
        "wrong": "Basic " + base64.b64encode(b"nope:").decode(),
        "garbage": "Basic %%%",
    }[auth]
    headers = {"Content-Encoding": "gzip"} if gzip_header else {}  # and a body that is not gzip
    status, answer, sent_back = post(
        receiver, f"/v1/{path}", None, raw=body, auth=credentials, strict=strict, headers=headers, response_headers=True
    )
    assert status in (200, 400, 401, 404), status
    assert {name.lower(): value for name, value in sent_back.items()}["content-type"] == "application/json"  # any case
    if status != 200:
        assert isinstance(answer["meta"]["errors"], list) and answer["meta"]["errors"]
    if auth == "wrong" and not strict and path != "nope":
        # the API's permissive mode (X-Strict-Mode's description): a wrong key is answered 200
        # and the call dropped; serve keeps it as a dropped reject
        assert (status, answer) == (200, {})
    elif auth != "good" and path != "nope":
        assert status == 401
    if status == 200:
        assert answer == {}


def test_serve_refuses_huge_bodies_with_413(receiver):
    for size in (600_000, 12_000_000):  # over the limit, and far over it (drained, not kept)
        status, answer = post(receiver, "/v1/batch", None, raw=b'{"batch":["' + b"x" * size + b'"]}')
        assert status == 413 and "limit is 500,000" in answer["meta"]["errors"][0]


# -- fields the document types inside context, traits and properties ------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["track", "-u", "1", "-e", "E", "-c", "active=yes"], "--context.active: Input should be a valid boolean"),
        (
            ["track", "-u", "1", "-e", "E", "-c", "channel=tv"],
            "--context.channel: Input should be 'browser', 'server' or 'mobile'",
        ),
        (["screen", "-u", "1", "-c", "device.type=web"], "--context.device.type: Input should be 'android' or 'ios'"),
        (["page", "-u", "1", "-p", "url:=5"], "--properties.url: Input should be a valid string"),
        (["identify", "-u", "1", "-t", "unsubscribed=yes"], "--traits.unsubscribed: Input should be a valid boolean"),
        (["identify", "-u", "1", "-t", "createdAt=2026-01-02"], "--traits.createdAt: expected an RFC 3339 date-time"),
        (
            ["group", "-u", "1", "--group", "g", "-t", "relationshipAttributes:=[1]"],
            "--traits.relationshipAttributes: Input should be a valid dictionary",
        ),
        # a metric outside the document's four is a warning (issue 12: tests/test_golden.py)
        (["track", "-e", "Report Delivery Event", "-p", "metric:=5"], "--properties.metric: Input should be"),
    ],
)
def test_typed_fields_are_checked_before_sending(send, receiver, args, error):
    run = send(*args)
    assert run.exit_code == 2 and run.stdout == ""
    assert error in run.stderr
    assert receiver.requests == []


def test_typed_fields_pass_through_exactly_as_given(send, receiver):
    context = {"active": True, "page": {"url": "https://e.com", "extra": None}, "os": {"name": "iOS"}}
    run = send("track", "-u", "1", "-e", "E", "--context", json.dumps(context))
    assert run.exit_code == 0, run.stderr
    sent = receiver.calls[0]["context"]
    assert {k: v for k, v in sent.items() if k != "library"} == context


def test_import_rejects_typed_field_violations_by_line(send, receiver, tmp_path):
    lines = [
        {"type": "track", "userId": "1", "event": "E", "context": {"ip": "1.2.3.4"}},
        {"type": "track", "userId": "1", "event": "E", "context": {"active": "yes"}},
        {"type": "page", "userId": "1", "properties": {"url": 5}},
        {"type": "identify", "userId": "1", "traits": {"email": "a@example.com", "createdAt": "2026-01-02T03:04:05Z"}},
        {"type": "identify", "userId": "1", "traits": {"email": ["a@example.com"]}},
        {"type": "group", "userId": "1", "groupId": "g", "traits": {"object_type_id": 2}},
    ]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = send("import", str(source))
    assert run.exit_code == 1
    for line_no, error in [
        (2, "context.active: Input should be a valid boolean"),
        (3, "properties.url: Input should be a valid string"),
        (5, "traits.email: Input should be a valid string"),
        (6, "traits.object_type_id: Input should be a valid string"),
    ]:
        assert f"{source}:{line_no}: {error}" in run.stderr
    assert [call["type"] for call in receiver.calls] == ["track", "identify"]

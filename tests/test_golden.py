"""Issue 12: what Customer.io's own SDKs send for their semantic events (tests/data/golden/, each
file naming the repository, path and commit it was read from) passes every path unchanged:
`cdp track --dry-run`, `cdp import` (through a receiver) and `cdp serve` (strict mode). Rules
that only the API document states are warnings, never rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpcli.calls import call_warnings, prepare_call
from cdpcli.serve import Receiver
from tests.conftest import API_KEY, post

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
GOLDEN = {path.stem: json.loads(path.read_text()) for path in sorted(GOLDEN_DIR.glob("*.json"))}


def but_library(call: dict) -> dict:
    """A call without context.library: a single call sent by cdp names cdp as its library (import
    keeps a replayed call's own); everything else must be as the SDK sent it."""
    return {**call, "context": {k: v for k, v in call["context"].items() if k != "library"}}


def test_the_golden_set_covers_the_issue_and_names_its_sources():
    assert len(GOLDEN) >= 10
    for name, golden in GOLDEN.items():
        source = golden["source"]
        assert source["repository"].startswith("customerio/"), name
        assert source["path"] and len(source["commit"]) == 40, name
        assert golden["call"]["type"] == "track"
    calls = [golden["call"] for golden in GOLDEN.values()]
    events = {call["event"] for call in calls}
    assert {"Device Created or Updated", "Device Deleted", "Report Delivery Event", "Report Content Event"} <= events
    devices = [call["context"]["device"] for call in calls if call["event"].startswith("Device")]
    assert {device["type"] for device in devices} == {"web", "android", "ios"}
    assert any(call["properties"].get("_cio_token_type") == "fid" for call in calls)
    content = [call["properties"] for call in calls if call["event"] == "Report Content Event"]
    assert all(isinstance(p["contentId"], int) and isinstance(p["templateId"], int) for p in content)
    assert {p["actionType"] for p in content} == {"viewed_content", "clicked_content"}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_payload_passes_the_core_unchanged_and_without_warnings(name):
    call = GOLDEN[name]["call"]
    prepared = prepare_call("track", {k: v for k, v in call.items() if k != "type"})
    assert but_library(prepared) == but_library(call)
    assert prepared["context"]["library"]["name"] == "cdpcli"
    assert call_warnings(prepared) == []


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_payload_through_cdp_track_dry_run(cli, name):
    call = GOLDEN[name]["call"]
    args = ["track", "--event", call["event"], "--message-id", call["messageId"], "--timestamp", call["timestamp"]]
    if "userId" in call:
        args += ["--user", call["userId"]]
    if "anonymousId" in call:
        args += ["--anonymous-id", call["anonymousId"]]
    args += ["--properties", json.dumps(call["properties"]), "--context", json.dumps(call["context"])]
    run = cli(*args, "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    body = json.loads(run.stdout)["body"]
    assert body.pop("sentAt")  # a single request says when it was sent
    assert but_library(body) == but_library(call)


def test_golden_payloads_through_cdp_import_arrive_as_sent(send, receiver, tmp_path):
    source = tmp_path / "golden.ndjson"
    source.write_text("".join(json.dumps(golden["call"]) + "\n" for golden in GOLDEN.values()))
    run = send("import", str(source), "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["sent"] == len(GOLDEN)
    received = [{k: v for k, v in call.items() if k != "receivedAt"} for call in receiver.calls]
    assert sorted(received, key=lambda c: c["messageId"]) == sorted(
        (golden["call"] for golden in GOLDEN.values()), key=lambda c: c["messageId"]
    )


@pytest.fixture(scope="module")
def serve():
    logged: list[str] = []
    with Receiver(api_key=API_KEY, log=logged.append) as server:
        server.logged = logged
        yield server


@pytest.mark.parametrize("name", list(GOLDEN))
def test_cdp_serve_accepts_each_golden_payload_in_strict_mode(serve, name):
    call = GOLDEN[name]["call"]
    status, answer = post(serve, "/v1/track", {k: v for k, v in call.items() if k != "type"})
    assert (status, answer) == (200, {})
    status, answer = post(serve, "/v1/batch", {"batch": [call]})
    assert (status, answer) == (200, {})
    assert {k: v for k, v in serve.calls[-1].items() if k != "receivedAt"} == call


# -- document-only rules: warnings, not rejects ---------------------------------------------

DOUBTFUL = [
    (
        {"event": "Report Delivery Event", "properties": {"deliveryId": "d-1", "metric": "bounced"}},
        "Report Delivery Event: metric 'bounced' is not one of delivered, opened, clicked, converted",
    ),
    (
        {"event": "Relationship Deleted", "userId": "42", "properties": {"objectId": "acme", "objectTypeId": "1"}},
        "Relationship Deleted: objectTypeId '1' is a string",
    ),
    (
        {"event": "Object Deleted", "anonymousId": "a-1", "properties": {"objectId": "acme", "objectTypeId": "2"}},
        "Object Deleted: objectTypeId '2' is a string",
    ),
    (
        {"event": "Object Deleted", "userId": "42", "properties": {"objectId": "acme", "objectTypeId": 1}},
        "Object Deleted without anonymousId",
    ),
]


@pytest.mark.parametrize(("fields", "warning"), DOUBTFUL)
def test_document_only_rules_are_warnings_in_the_core(fields, warning):
    call = prepare_call("track", fields)
    warnings = call_warnings(call)
    assert len(warnings) == 1 and warning in warnings[0]


@pytest.mark.parametrize(("fields", "warning"), DOUBTFUL)
def test_document_only_rules_are_warnings_on_stderr(send, receiver, fields, warning):
    args = ["track", "--event", fields["event"], "--properties", json.dumps(fields["properties"])]
    if "userId" in fields:
        args += ["--user", fields["userId"]]
    if "anonymousId" in fields:
        args += ["--anonymous-id", fields["anonymousId"]]
    run = send(*args)
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("track accepted: HTTP 200")
    assert f"Warning: {warning}" in run.stderr
    assert len(receiver.calls) == 1
    quiet = send(*args, "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


@pytest.mark.parametrize(("fields", "warning"), DOUBTFUL)
def test_cdp_serve_accepts_and_logs_document_only_rules(serve, fields, warning):
    status, _ = post(serve, "/v1/batch", {"batch": [{"type": "track", **fields}]})
    assert status == 200
    assert any("batch[0]: warning: " in line and warning in line for line in serve.logged)


def test_document_only_rules_through_import(send, receiver, tmp_path):
    source = tmp_path / "doubtful.ndjson"
    source.write_text("".join(json.dumps({"type": "track", **fields}) + "\n" for fields, _ in DOUBTFUL))
    run = send("import", str(source))
    assert run.exit_code == 0, run.stderr
    assert len(receiver.calls) == len(DOUBTFUL)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"event": "Device Created or Updated", "userId": "1", "context": {"device": {"token": "t", "type": "tv"}}},
            "context.device.type must be ios, android or web, not 'tv'",
        ),
        ({"event": "Object Deleted", "properties": {"objectId": "acme"}}, "needs userId or anonymousId"),
        (
            {"event": "Relationship Deleted", "userId": "1", "properties": {"objectId": "a", "objectTypeId": "x"}},
            "properties.objectTypeId",
        ),
        (
            {"event": "Report Content Event", "userId": "1", "properties": {"contentId": "7", "templateId": 1}},
            "properties.contentId",
        ),
    ],
)
def test_what_stays_a_reject(serve, fields, error):
    from cdpcli.calls import InvalidCall

    with pytest.raises(InvalidCall) as raised:
        prepare_call("track", fields)
    assert error in str(raised.value)
    status, answer = post(serve, "/v1/track", fields)
    assert status == 400 and error in json.dumps(answer)

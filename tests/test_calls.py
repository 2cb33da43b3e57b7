"""The six call commands end to end: flags -> real HTTP on loopback -> what the receiver got."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from cdpcli import __version__
from cdpcli.server import Scripted
from tests.conftest import API_KEY

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


CASES = [
    (
        ["identify", "--user", "42", "--traits", '{"email":"ada@example.com"}', "-t", "plan=pro", "-t", "logins:=7"],
        {"type": "identify", "userId": "42", "traits": {"email": "ada@example.com", "plan": "pro", "logins": 7}},
    ),
    (
        ["track", "-u", "42", "--event", "Item Purchased", "--properties", '{"sku":"A-1"}', "-p", "price:=9.5"],
        {"type": "track", "userId": "42", "event": "Item Purchased", "properties": {"sku": "A-1", "price": 9.5}},
    ),
    (
        ["page", "--anonymous-id", "anon-1", "--name", "Pricing", "--category", "Docs", "-p", "url=https://e.com/p"],
        {"type": "page", "anonymousId": "anon-1", "name": "Pricing", "category": "Docs",
         "properties": {"category": "Docs", "url": "https://e.com/p"}},
    ),
    (
        ["screen", "--user-id", "7", "--name", "Checkout", "-p", "step:=2"],
        {"type": "screen", "userId": "7", "name": "Checkout", "properties": {"step": 2}},
    ),
    (
        ["group", "-u", "42", "--group", "acme", "--object-type-id", "3", "-t", "name=Acme", "-t", "seats:=50"],
        {"type": "group", "userId": "42", "groupId": "acme", "objectTypeId": "3", "traits": {"name": "Acme", "seats": 50}},
    ),
    (
        ["group", "-u", "42", "--group-id", "acme"],
        {"type": "group", "userId": "42", "groupId": "acme"},
    ),
    (
        ["alias", "--user", "42", "--previous-id", "anon-1"],
        {"type": "alias", "userId": "42", "previousId": "anon-1"},
    ),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_each_call_type_arrives_as_documented(send, receiver, args, expected):
    run = send(*args)
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    [request] = receiver.requests
    assert request.path == f"/v1/{expected['type']}"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"cdpcli/{__version__}"
    assert request.headers["x-strict-mode"] == "1"
    assert "x-retry-count" not in request.headers
    body = request.body
    for key, value in expected.items():
        assert body[key] == value, key
    assert UUID.match(body["messageId"])
    assert TIMESTAMP.match(body["timestamp"]) and TIMESTAMP.match(body["sentAt"])
    assert body["context"] == {"library": {"name": "cdpcli", "version": __version__}}
    [call] = receiver.calls
    assert call["messageId"] == body["messageId"]
    assert run.stdout == f"{expected['type']} accepted: HTTP 200, messageId {body['messageId']}\n"


def test_json_result_line(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "--json")
    assert run.exit_code == 0
    result = json.loads(run.stdout)
    assert result == {
        "ok": True,
        "status": 200,
        "type": "track",
        "messageId": receiver.calls[0]["messageId"],
        "url": f"{receiver.url}/track",
        "attempts": 1,
    }


def test_context_timestamp_message_id_and_integrations(send, receiver, tmp_path):
    (tmp_path / "ctx.json").write_text('{"ip":"1.2.3.4","library":{"name":"mine"}}')
    run = send(
        "track", "-u", "1", "-e", "E",
        "--context", "@ctx.json", "-c", "page.url=https://e.com", "-c", "active:=true",
        "--integrations", '{"All":false}',
        "--timestamp", "2026-01-02T03:04:05+01:00",
        "--message-id", "my-id-1",
    )
    assert run.exit_code == 0, run.stderr
    body = receiver.requests[0].body
    assert body["context"] == {
        "ip": "1.2.3.4",
        "page": {"url": "https://e.com"},
        "active": True,
        "library": {"name": "cdpcli", "version": __version__},
    }
    assert body["integrations"] == {"All": False}
    assert body["timestamp"] == "2026-01-02T02:04:05.000Z"
    assert body["messageId"] == "my-id-1"


def test_properties_from_stdin(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "--properties", "@-", input='{"from":"stdin"}')
    assert run.exit_code == 0, run.stderr
    assert receiver.calls[0]["properties"] == {"from": "stdin"}


def test_unicode_is_kept(send, receiver):
    run = send("identify", "-u", "1", "-t", "name=Zoë 🚀")
    assert run.exit_code == 0
    assert receiver.calls[0]["traits"]["name"] == "Zoë 🚀"


def test_no_strict_drops_the_header_and_says_so(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "--no-strict")
    assert run.exit_code == 0
    assert "x-strict-mode" not in receiver.requests[0].headers
    assert "strict mode is off" in run.stderr


def test_gzip_body(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "--gzip")
    assert run.exit_code == 0, run.stderr
    request = receiver.requests[0]
    assert request.headers["content-encoding"] == "gzip"
    assert request.body["event"] == "E"


def test_region_key_goes_as_bearer(cli, monkeypatch):
    key = "pk_eu_0123456789abcdef"
    with __import__("cdpcli.server", fromlist=["Receiver"]).Receiver(api_key=key) as server:
        run = cli("track", "-u", "1", "-e", "E", "--api-key", key, "--endpoint", server.url, secret=key)
        assert run.exit_code == 0, run.stderr
        assert server.requests[0].headers["authorization"] == f"Bearer {key}"


# -- dry-run --------------------------------------------------------------------------------


def test_dry_run_prints_the_request_and_sends_nothing(send, receiver):
    run = send("track", "-u", "42", "-e", "E", "-p", "a=1", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert receiver.requests == []
    lines = run.stdout.splitlines()
    assert lines[0] == f"POST {receiver.url}/track"
    assert "Authorization: Basic ****" in lines
    assert "X-Strict-Mode: 1" in lines
    assert lines[-2] == ""
    body = json.loads(lines[-1])
    assert body["properties"] == {"a": "1"} and body["userId"] == "42"


def test_dry_run_needs_no_key_and_opens_no_connection(cli):
    # Port 9 (discard) on loopback: a connection attempt would fail; dry-run must not try.
    run = cli("identify", "-u", "1", "--dry-run", "--json", "--endpoint", "http://127.0.0.1:9")
    assert run.exit_code == 0, run.stderr
    request = json.loads(run.stdout)
    assert request["method"] == "POST"
    assert request["url"] == "http://127.0.0.1:9/v1/identify"
    assert request["headers"]["Authorization"] == "Basic ****"
    assert request["body"]["type"] == "identify"


def test_dry_run_json_redacts_bearer_and_picks_region_from_key(cli):
    key = "sk_eu_abcdef0123456789"
    run = cli("page", "-u", "1", "--dry-run", "--json", "--api-key", key, secret=key)
    assert run.exit_code == 0
    request = json.loads(run.stdout)
    assert request["url"] == "https://cdp-eu.customer.io/v1/page"
    assert request["headers"]["Authorization"] == "Bearer ****"


def test_region_disagreeing_with_key_warns(cli):
    key = "pk_eu_abcdef0123456789"
    run = cli("page", "-u", "1", "--dry-run", "--api-key", key, "--region", "us", secret=key)
    assert run.exit_code == 0
    assert "Warning: region us (from --region) disagrees with the API key" in run.stderr
    assert run.stdout.startswith("POST https://cdp.customer.io/v1/page")


# -- errors ---------------------------------------------------------------------------------


def test_missing_key_says_where_it_looked(cli, receiver):
    run = cli("track", "-u", "1", "-e", "E", "--endpoint", receiver.url)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.startswith("Error: no API key found (looked at --api-key, $CDP_API_KEY and profile 'default'")
    assert "Hint: " in run.stderr
    assert receiver.requests == []


def test_invalid_traits_json_names_flag_and_quotes_input(send, receiver):
    run = send("identify", "-u", "1", "--traits", "{plan: pro}")
    assert run.exit_code == 2
    assert run.stdout == ""
    assert "Error: --traits: invalid JSON: Expecting property name enclosed in double quotes (line 1 column 2)" in run.stderr
    assert "'{plan: pro}'" in run.stderr
    assert receiver.requests == []


def test_traits_must_be_an_object(send):
    run = send("identify", "-u", "1", "--traits", "[1,2]")
    assert run.exit_code == 2
    assert "Error: --traits: expected a JSON object, got list" in run.stderr


def test_traits_file_missing(send):
    run = send("identify", "-u", "1", "--traits", "@nope.json")
    assert run.exit_code == 2
    assert "Error: --traits @nope.json: cannot read file" in run.stderr


def test_item_without_separator(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "-p", "oops")
    assert run.exit_code == 2
    assert "Error: -p 'oops': expected KEY=VALUE or KEY:=JSON" in run.stderr
    assert receiver.requests == []


def test_missing_event_is_a_usage_error(send, receiver):
    run = send("track", "-u", "1")
    assert run.exit_code == 2
    assert "Missing option '--event'" in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("command", [["identify"], ["track", "-e", "E"], ["page"], ["screen"], ["group", "--group", "g"]])
def test_identity_required(send, receiver, command):
    run = send(*command)
    assert run.exit_code == 2
    assert f"Error: invalid {command[0]} call: {command[0]} needs --user or --anonymous-id" in run.stderr
    assert receiver.requests == []


def test_bad_timestamp(send):
    run = send("track", "-u", "1", "-e", "E", "--timestamp", "last tuesday")
    assert run.exit_code == 2
    assert "--timestamp: 'last tuesday' is not an ISO-8601 date-time" in run.stderr


def test_empty_event_name(send):
    run = send("track", "-u", "1", "-e", "")
    assert run.exit_code == 2
    assert "--event: String should have at least 1 character" in run.stderr


def test_call_over_32000_bytes(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "-p", "blob=" + "x" * 32_000)
    assert run.exit_code == 2
    assert re.search(r"Error: the track call is 32,\d{3} bytes; the API accepts at most 32,000 per call", run.stderr)
    assert receiver.requests == []


def test_wrong_key_exits_3(cli, receiver):
    run = cli("track", "-u", "1", "-e", "E", "--endpoint", receiver.url, "--api-key", "wrong-key-000000", secret="wrong-key-000000")
    assert run.exit_code == 3
    assert "Error: the API rejected the key (HTTP 401)" in run.stderr
    assert "the key came from --api-key" in run.stderr
    assert len(receiver.requests) == 1  # 401 is not retried


def test_server_400_shows_meta_errors_and_exits_4(send, receiver):
    receiver.reject_when = lambda call: "event name is reserved"
    run = send("track", "-u", "1", "-e", "E", "--json")
    assert run.exit_code == 4
    assert "Error: the API answered HTTP 400: event name is reserved" in run.stderr
    result = json.loads(run.stdout)
    assert result["ok"] is False and result["status"] == 400 and result["error"] == "event name is reserved"
    assert len(receiver.requests) == 1  # 400 is not retried


def test_5xx_after_retries_exits_5(send, receiver):
    receiver.script.extend([Scripted(503), Scripted(500)])
    run = send("track", "-u", "1", "-e", "E", "--retries", "1")
    assert run.exit_code == 5
    assert "Error: the API answered HTTP 500 after 2 attempts" in run.stderr
    assert "HTTP 503; retrying" in run.stderr
    assert [r.status for r in receiver.requests] == [503, 500]


def test_retry_keeps_message_id_and_counts_retries(send, receiver):
    receiver.script.extend([Scripted(500), Scripted(502)])
    run = send("track", "-u", "1", "-e", "E", "--retries", "3", "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["attempts"] == 3
    ids = {r.body["messageId"] for r in receiver.requests}
    assert len(ids) == 1
    assert [r.headers.get("x-retry-count") for r in receiver.requests] == [None, "1", "2"]
    assert len(receiver.calls) == 1


def test_retry_after_is_honoured(send, receiver):
    receiver.script.append(Scripted(429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    run = send("track", "-u", "1", "-e", "E", "--retries", "0", "--json")
    elapsed = time.monotonic() - started
    # --retries 0 means no retry at all, even when the server asks for one
    assert run.exit_code == 5 and elapsed < 1
    receiver.requests.clear()
    receiver.script.append(Scripted(429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    run = send("track", "-u", "1", "-e", "E", "--retries", "1", "--json")
    elapsed = time.monotonic() - started
    assert run.exit_code == 0, run.stderr
    assert elapsed >= 1.0
    first, second = receiver.requests
    assert first.status == 429 and second.status == 200
    assert first.body["messageId"] == second.body["messageId"]
    assert "retrying" in run.stderr and "in 1.0s" in run.stderr


def test_connection_refused_exits_6(cli):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = cli("track", "-u", "1", "-e", "E", "--endpoint", f"http://127.0.0.1:{port}", "--api-key", API_KEY, "--retries", "0")
    assert run.exit_code == 6
    assert f"Error: could not reach http://127.0.0.1:{port}/v1/track: connection refused" in run.stderr


def test_timeout_exits_6(send, receiver):
    receiver.latency = 1.0
    run = send("track", "-u", "1", "-e", "E", "--timeout", "0.2", "--retries", "0")
    assert run.exit_code == 6
    assert "timed out after 0.2s" in run.stderr

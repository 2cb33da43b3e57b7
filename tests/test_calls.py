"""The six call commands end to end: flags -> real HTTP on loopback -> what the receiver got."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from cdpcli import __version__
from tests.conftest import API_KEY
from tests.fakes import Scripted

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
        {
            "type": "page",
            "anonymousId": "anon-1",
            "name": "Pricing",
            "category": "Docs",
            "properties": {"category": "Docs", "url": "https://e.com/p"},
        },
    ),
    (
        ["screen", "--user-id", "7", "--name", "Checkout", "-p", "step:=2"],
        {"type": "screen", "userId": "7", "name": "Checkout", "properties": {"step": 2}},
    ),
    (
        ["group", "-u", "42", "--group", "acme", "--object-type-id", "3", "-t", "name=Acme", "-t", "seats:=50"],
        {
            "type": "group",
            "userId": "42",
            "groupId": "acme",
            "objectTypeId": "3",
            "traits": {"name": "Acme", "seats": 50},
        },
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
    from cdpcli.cli.calls import ALIAS_WARNING

    run = send(*args)
    assert run.exit_code == 0, run.stderr
    # alias says that a merge cannot be undone (issue 12); every other call is silent
    assert run.stderr == (f"Warning: {ALIAS_WARNING}\n" if expected["type"] == "alias" else "")
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
        "track",
        "-u",
        "1",
        "-e",
        "E",
        "--context",
        "@ctx.json",
        "-c",
        "page.url=https://e.com",
        "-c",
        "active:=true",
        "--integrations",
        '{"All":false}',
        "--timestamp",
        "2026-01-02T03:04:05+01:00",
        "--message-id",
        "my-id-1",
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
    with __import__("cdpcli.serve", fromlist=["Receiver"]).Receiver(api_key=key) as server:
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
    assert (
        "Error: --traits: invalid JSON: Expecting property name enclosed in double quotes (line 1 column 2)"
        in run.stderr
    )
    assert "'{plan: pro}'" in run.stderr
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("item", "hint"),
    [
        (
            "unsubscribed=true",
            "-t unsubscribed=true sends the text 'true'; to send a boolean, write -t unsubscribed:=true",
        ),
        (
            "unsubscribed=TRUE",
            "-t unsubscribed=TRUE sends the text 'TRUE'; to send a boolean, write -t unsubscribed:=true",
        ),
        ("unsubscribed=0", "-t unsubscribed=0 sends the text '0'; to send a boolean, write -t unsubscribed:=false"),
        (
            "unsubscribed=yes",
            "-t unsubscribed=yes sends the text 'yes'; a boolean is written -t unsubscribed:=true or -t unsubscribed:=false",
        ),
    ],
)
def test_a_boolean_trait_given_as_text_hints_the_json_form(send, receiver, item, hint):
    # traits.unsubscribed is a boolean in Customer.io's OpenAPI document (identify's traits)
    run = send("identify", "-u", "1", "-t", "plan=pro", "-t", item)
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.splitlines() == [
        "Error: invalid identify call: --traits.unsubscribed: Input should be a valid boolean",
        f"Hint: {hint}",
    ]
    assert receiver.requests == []
    suggested = hint.split("written -t " if "written" in hint else "write -t ")[1].split(" ")[0]
    assert send("identify", "-u", "1", "-t", suggested).exit_code == 0  # the hint's form is taken
    assert receiver.requests[-1].body["traits"]["unsubscribed"] in (True, False)


def test_object_delete_without_a_person_names_the_flags(send, receiver):
    run = send("object", "delete", "--object", "acme", "--yes")
    assert run.exit_code == 2 and receiver.requests == []
    assert run.stderr.splitlines() == [
        "Error: deleting an object needs a user id or an anonymous id",
        "Hint: give --user or --anonymous-id",
    ]


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


@pytest.mark.parametrize(
    "command", [["identify"], ["track", "-e", "E"], ["page"], ["screen"], ["group", "--group", "g"]]
)
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
    run = cli(
        "track",
        "-u",
        "1",
        "-e",
        "E",
        "--endpoint",
        receiver.url,
        "--api-key",
        "wrong-key-000000",
        secret="wrong-key-000000",
    )
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
    run = cli(
        "track", "-u", "1", "-e", "E", "--endpoint", f"http://127.0.0.1:{port}", "--api-key", API_KEY, "--retries", "0"
    )
    assert run.exit_code == 6
    assert f"Error: could not reach http://127.0.0.1:{port}/v1/track: connection refused" in run.stderr


def test_timeout_exits_6(send, receiver):
    receiver.latency = 1.0
    run = send("track", "-u", "1", "-e", "E", "--timeout", "0.2", "--retries", "0")
    assert run.exit_code == 6
    assert "timed out after 0.2s" in run.stderr


# -- input cdp refuses before sending (issue 10 items 1, 2, 10; issue 16 item 9) ------------


def deep_json(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


REFUSED = [
    (["-p", 's:="\\ud800"'], "Error: -p 's:=\"\\\\ud800\"': the JSON after ':=' is refused: lone surrogate \\ud800"),
    (["-p", "n:=NaN"], "Error: -p 'n:=NaN': the JSON after ':=' is refused: NaN is not valid JSON"),
    (["-p", "n:=Infinity"], "Error: -p 'n:=Infinity': the JSON after ':=' is refused: Infinity is not valid JSON"),
    (["-p", "n:=-Infinity"], "Error: -p 'n:=-Infinity': the JSON after ':=' is refused: -Infinity is not valid JSON"),
    (["-p", "x:=1e400"], "Error: -p 'x:=1e400': the JSON after ':=' is refused: number 1e400 is too large"),
    (["-p", "x:=" + "[" * 100_000 + "]" * 100_000], "the JSON after ':=' is refused: nesting deeper than 200 levels"),
    (["--properties", '{"n":NaN}'], "Error: --properties: NaN is not valid JSON"),
    (["--properties", '{"s":"\\udfff"}'], "Error: --properties: lone surrogate \\udfff in a string"),
    (["--context", '{"n":1e999}'], "Error: --context: number 1e999 is too large for a JSON number"),
    # text that is not Unicode: bytes that are not UTF-8 reach Python as lone surrogates
    (["--user", "ab\udcff"], "Error: --user 'ab\\udcff': not valid text (bytes that are not UTF-8 in the argument)"),
    (["--message-id", "\udcff"], "Error: --message-id '\\udcff': not valid text"),
    (["-p", "k=v\udcfe"], "Error: -p 'k=v\\udcfe': not valid text"),
    (["-p", "k\udcfe:=1"], "Error: -p 'k\\udcfe:=1': not valid text"),
    (["--properties", '{"k":"\udcfe"}'], "Error: --properties: lone surrogate \\udcfe in a string"),
    (
        ["--timestamp", "1732714302123"],
        "Error: --timestamp: '1732714302123' looks like Unix time in milliseconds; cdp reads Unix time in seconds "
        "(1732714302.123) or an ISO-8601 date-time\nHint: give seconds: --timestamp 1732714302.123\n",
    ),
    (
        ["--timestamp", "99999999999999999999"],
        "Error: --timestamp: '99999999999999999999' is not an ISO-8601 date-time",
    ),
]


@pytest.mark.parametrize(("args", "expected"), REFUSED, ids=[repr(a)[:40] for a, _ in REFUSED])
def test_input_cdp_cannot_send_is_a_usage_error_naming_the_flag(send, receiver, args, expected):
    run = send("track", "-u", "1", "-e", "E", *args)
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith("Error: ") and expected in run.stderr, run.stderr
    assert "unexpected" not in run.stderr and "Hint: " in run.stderr
    assert receiver.requests == []


def test_traits_file_nested_100000_levels(send, receiver, tmp_path):
    (tmp_path / "deep.json").write_text(deep_json(100_000))
    run = send("identify", "-u", "1", "--traits", "@deep.json")
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith("Error: --traits @deep.json: nesting deeper than 200 levels\nHint: ")
    (tmp_path / "ok.json").write_text(deep_json(199))  # the call object + traits + 199 levels = 201
    run = send("identify", "-u", "1", "--traits", "@ok.json")
    assert run.exit_code == 0, run.stderr
    assert receiver.requests[0].body["traits"]["a"]["a"]["a"] is not None


def test_non_utf8_file_names_the_file_and_the_byte(send, receiver, tmp_path):
    (tmp_path / "latin1.json").write_bytes('{"name":"Zoë"}'.encode("latin-1"))
    run = send("identify", "-u", "1", "--traits", "@latin1.json")
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr == (
        "Error: --traits @latin1.json: not valid UTF-8 (byte 0xeb at offset 11)\n"
        "Hint: save latin1.json as UTF-8, e.g. with iconv -f latin1 -t utf-8\n"
    )
    assert receiver.requests == []


def test_non_utf8_stdin_is_a_usage_error(send, receiver):
    from typer.testing import CliRunner

    from cdpcli.cli.app import app

    result = CliRunner().invoke(app, ["track", "-u", "1", "-e", "E", "--properties", "@-"], input=b'{"a":"\xff"}')
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --properties @-: not valid UTF-8 (byte 0xff at offset 6)")
    assert receiver.requests == []


def test_two_options_reading_stdin(send, receiver):
    run = send("identify", "-u", "1", "--traits", "@-", "--context", "@-", input='{"a":1}')
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith(
        "Error: --traits and --context both read @- (stdin), which can be read only once\nHint: "
    )
    assert receiver.requests == []


def test_undecodable_argv_bytes_in_a_real_process(tmp_path):
    """Bytes that are not UTF-8 in argv (surrogateescape) are a usage error, not a UnicodeEncodeError."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CDP_CONFIG_DIR": str(tmp_path / "config")}
    for args in (
        [b"--user", b"\xff\xfe"],
        [b"--user", b"1", b"-p", b"k=\xe9t\xe9"],
        [b"--user", b"1", b"--properties", b'{"a":"\xff"}'],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "cdpcli", "track", "-e", "E", "--dry-run", *args],
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == b""
        assert done.stderr.startswith(b"Error: ") and b"Hint: " in done.stderr
        assert b"unexpected" not in done.stderr and b"Traceback" not in done.stderr


def test_object_type_id_must_be_a_stringified_integer(send, receiver):
    run = send("group", "-u", "1", "--group", "acme", "--object-type-id", "abc")
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith("Error: --object-type-id 'abc': expected a whole number")
    assert "Hint: e.g. --object-type-id 2" in run.stderr
    assert receiver.requests == []


def test_numeric_timestamp_out_of_range_in_an_import_line_is_a_reject_not_a_crash(send, receiver, tmp_path):
    source = tmp_path / "in.ndjson"
    source.write_text(
        '{"type":"track","userId":"1","event":"E","timestamp":1e20}\n'
        '{"type":"track","userId":"1","event":"E","timestamp":1732714302123}\n'
        '{"type":"track","userId":"1","event":"E"}\n'
    )
    run = send("import", str(source), "--rejects", str(tmp_path / "rejects.ndjson"))
    assert run.exit_code == 1, run.stderr
    assert "unexpected" not in run.stderr
    assert f"{source}:1: " in run.stderr and "out of range for a Unix time in seconds" in run.stderr
    assert f"{source}:2: " in run.stderr and "looks like Unix time in milliseconds" in run.stderr
    assert len(receiver.calls) == 1


# -- endpoints: http(s) only, never a user:password@ (issue 10 item 10, issue 16 item 2) ----


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("ftp://127.0.0.1/v1", "'ftp://127.0.0.1/v1': cdp sends over http:// or https:// only, not ftp://"),
        ("file:///etc/passwd", "cdp sends over http:// or https:// only, not file://"),
        ("127.0.0.1:8787", "'127.0.0.1:8787' is not a URL"),
        ("http://127.0.0.1:99999/v1", "has an invalid port"),
        ("http://127.0.0.1:8787/v1?x=1", "a base URL takes no ?query or #fragment"),
        ("http:///v1", "has no host"),
        # hosts the HTTP stack would fail on with an encoding error (was: unexpected UnicodeError)
        ("http://ex..ample/v1", "'ex..ample' is not a valid host name"),
        ("http://" + "a" * 64 + ".com/v1", "is not a valid host name"),
        ("http://xn--zz/v1", "'xn--zz' is not a valid host name"),
        ("http://\u2603.com/v1", "is not a valid international host name"),
        ("http://999.1.1.1/v1", "'999.1.1.1' is not an IPv4 address"),
        ("http://[::1/v1", "is not a valid URL (Invalid IPv6 URL)"),
    ],
)
def test_endpoint_that_is_not_an_http_base_url(cli, endpoint, problem):
    run = cli("track", "-u", "1", "-e", "E", "--api-key", API_KEY, "--endpoint", endpoint)
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith("Error: --endpoint") and problem in run.stderr
    assert "Hint: " in run.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["track", "-u", "1", "-e", "E"],
        ["track", "-u", "1", "-e", "E", "--dry-run"],
        ["track", "-u", "1", "-e", "E", "--json"],
        ["connect", "test"],
        ["connect", "test", "--json"],
        ["config", "list", "--resolved"],
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("by", ["flag", "env"])
def test_endpoint_with_user_and_password_is_refused_and_never_shown_or_sent(cli, receiver, monkeypatch, command, by):
    endpoint = receiver.url.replace("http://", "http://someone:hunter2pw@")
    args = ["--endpoint", endpoint] if by == "flag" else []
    if by == "env":
        monkeypatch.setenv("CDP_ENDPOINT", endpoint)
    run = cli(*command, *args, "--api-key", API_KEY)
    assert run.exit_code == 2
    assert "user name or password" in run.stderr
    assert "hunter2pw" not in run.stdout + run.stderr and "someone" not in run.stdout + run.stderr
    assert "****@127.0.0.1" in run.stderr
    assert receiver.requests == []


# -- API keys that cannot go in a header (issue 16 item 1) ----------------------------------


BAD_KEYS = [
    "sk_us_SECRETab\ncd1234",
    "sk_us_SECRETab\rcd1234",
    "sk_us_SECRETab\x1bcd1234",
    "sk_us_SECRETab\tcd1234",
    "sk_us_SECRETabécd1234",
    "plainSECRETkey\x7f1234",
    "plainSECRETkey\udcff1234",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
@pytest.mark.parametrize("where", ["flag", "env", "config"])
def test_api_key_with_control_or_non_ascii_characters(cli, receiver, monkeypatch, tmp_path, key, where):
    args: list[str] = []
    if where == "flag":
        args = ["--api-key", key]
    elif where == "env":
        monkeypatch.setenv("CDP_API_KEY", key)
    else:
        import json as json_module

        config = tmp_path / "config"
        config.mkdir(mode=0o700, exist_ok=True)
        # written by hand (or another tool): cdp must still refuse it, not send it
        (config / "config.toml").write_text(
            f"[default]\napi-key = {json_module.dumps(key)}\n", encoding="utf-8", errors="surrogateescape"
        )
        (config / "config.toml").chmod(0o600)
    for extra in ([], ["--json"], ["-vv", "--retries", "2"]):
        run = cli("track", "-u", "1", "-e", "E", "--endpoint", receiver.url, *args, *extra, secret=key)
        assert run.exit_code == 2, run.stderr
        if where == "config" and "\udcff" in key:  # TOML cannot even hold it: the file is refused
            assert "is not valid TOML" in run.stderr
        else:
            assert "the API key has" in run.stderr or "the API key holds" in run.stderr
            assert "(the key is not shown)" in run.stderr
        for part in ("SECRET", "Illegal header", "unexpected"):
            assert part not in run.stdout + run.stderr
        if extra == ["--json"]:
            result = json.loads(run.stdout)
            assert result["ok"] is False and result["exit_code"] == 2
        else:
            assert run.stdout == ""
    run = cli("connect", "test", "--endpoint", receiver.url, "--json", *args, secret=key)
    assert run.exit_code == 2 and "SECRET" not in run.stdout + run.stderr
    assert json.loads(run.stdout)["exit_code"] == 2
    assert receiver.requests == []


def test_redaction_removes_the_key_and_its_basic_forms():
    from cdpcli.redaction import add_secret, redact

    key = "redact-me-0123456789"
    add_secret(key)
    basic = base64.b64encode(f"{key}:".encode()).decode()
    text = f"Illegal header value b'Bearer {key}' / Basic {basic} / {basic.rstrip('=')} / {base64.b64encode(key.encode()).decode()}"
    cleaned = redact(text)
    assert key not in cleaned and basic.rstrip("=") not in cleaned
    assert cleaned == "Illegal header value b'Bearer ****' / Basic **** / **** / ****"


@pytest.mark.parametrize("flags", [[], ["-v"], ["-vv"], ["--json"], ["-vv", "--json"]], ids=" ".join)
def test_a_server_echoing_the_key_never_gets_it_printed(send, receiver, flags):
    """Text from the HTTP stack goes through one redaction step: here a proxy or server that
    echoes the Authorization header in its error answers."""
    from tests.conftest import BASIC

    echo = {"meta": {"errors": [f"bad request from {BASIC} (key {API_KEY})"]}}
    receiver.script.extend([Scripted(503, body=echo), Scripted(400, body=echo)])
    run = send("track", "-u", "1", "-e", "E", "--retries", "1", *flags)
    assert run.exit_code == 4
    encoded = BASIC.split()[1]
    for text in (run.stdout, run.stderr):
        assert API_KEY not in text and encoded not in text and encoded.rstrip("=") not in text
    assert "the API answered HTTP 400 after 2 attempts: bad request from Basic **** (key ****)" in run.stderr


@pytest.mark.parametrize(
    "flags", [["-v"], ["-vv"], ["--json"], ["--dry-run"], ["--dry-run", "--json"], ["-vv", "--json"]], ids=" ".join
)
@pytest.mark.parametrize("key", [API_KEY, "sk_us_0123456789abcdefSECRET"], ids=["basic", "bearer"])
def test_the_key_never_appears_in_any_output_mode(cli, key, flags):
    from tests.fakes import ScriptedReceiver

    with ScriptedReceiver(api_key=key) as server:
        server.script.append(Scripted(503))
        run = cli(
            "track",
            "-u",
            "1",
            "-e",
            "E",
            "--endpoint",
            server.url,
            "--api-key",
            key,
            "--retries",
            "2",
            *flags,
            secret=key,
        )
        assert run.exit_code == 0, run.stderr
        encoded = base64.b64encode(f"{key}:".encode()).decode()
        assert encoded not in run.stdout + run.stderr and encoded.rstrip("=") not in run.stdout + run.stderr
        if "--dry-run" not in flags:
            assert len(server.calls) == 1


# -- --json: exactly one object per outcome, errors included (issue 10 item 12) --------------


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["track", "-u", "1", "-e", "E"], 2, "no API key found"),
        (
            ["track", "-u", "1", "-e", "E", "--api-key", API_KEY, "-p", "n:=NaN"],
            2,
            "-p 'n:=NaN': the JSON after ':=' is refused",
        ),
        (["track", "-e", "E", "--api-key", API_KEY], 2, "invalid track call"),
        (["track", "-u", "1", "-e", "E", "--dry-run", "-p", "oops"], 2, "-p 'oops': expected KEY=VALUE or KEY:=JSON"),
        (["connect", "test"], 2, "no API key found"),
        (["import", "nope.ndjson", "--api-key", API_KEY], 2, "nope.ndjson"),
        (["import", "--type", "bogus", "--api-key", API_KEY], 2, "--type 'bogus'"),
        (["config", "list", "--resolved", "--region", "mars"], 2, "region must be us or eu"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_json_errors_before_sending_are_one_object_on_stdout(cli, receiver, args, code, error):
    run = cli(*args, "--endpoint", receiver.url, "--json")
    assert run.exit_code == code
    [line] = run.stdout.splitlines()
    result = json.loads(line)
    assert set(result) == {"ok", "error", "hint", "exit_code"}
    assert result["ok"] is False and result["exit_code"] == code and error in result["error"]
    assert run.stderr.startswith(f"Error: {result['error']}")  # the human lines stay on stderr
    assert receiver.requests == []


def test_json_failed_send_is_one_object_with_status_hint_and_exit_code(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "--json", "--api-key", "wrong-key-000000", secret="wrong-key-000000")
    assert run.exit_code == 3
    [line] = run.stdout.splitlines()
    result = json.loads(line)
    assert result["ok"] is False and result["status"] == 401 and result["exit_code"] == 3
    assert result["messageId"] == receiver.requests[0].body["messageId"] and result["attempts"] == 1
    assert result["hint"].startswith("the key came from --api-key")


# -- retries (issue 10 item 13) and statuses that are final (issue 16 "what held") ----------


def test_retries_counts_every_retry_including_retry_after_waits(send, receiver):
    receiver.script.extend(Scripted(429, headers={"Retry-After": "0"}) for _ in range(10))
    run = send("track", "-u", "1", "-e", "E", "--retries", "3", "--json")
    assert run.exit_code == 5
    assert len(receiver.requests) == 4  # --retries 3: at most 4 attempts
    assert json.loads(run.stdout)["attempts"] == 4
    assert [r.headers.get("x-retry-count") for r in receiver.requests] == [None, "1", "2", "3"]
    assert "Error: the API answered HTTP 429 after 4 attempts" in run.stderr


@pytest.mark.parametrize(("status", "code"), [(400, 4), (401, 3), (403, 3), (404, 4), (413, 4), (422, 4)])
def test_final_statuses_are_not_retried(send, receiver, status, code):
    receiver.script.extend([Scripted(status, body={"meta": {"errors": ["no"]}}), Scripted(200)])
    run = send("track", "-u", "1", "-e", "E", "--retries", "3")
    assert run.exit_code == code
    assert len(receiver.requests) == 1
    assert "retrying" not in run.stderr


def test_ctrl_c_during_a_retry_after_wait_exits_at_once(receiver, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    receiver.script.append(Scripted(429, headers={"Retry-After": "300"}))
    env = {
        **os.environ,
        "CDP_CONFIG_DIR": str(tmp_path / "config"),
        "CDP_API_KEY": API_KEY,
        "CDP_ENDPOINT": receiver.url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "track", "-u", "1", "-e", "E", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()  # blocks until the retry line: cdp is now waiting 300 s
        assert "HTTP 429; retrying" in line and "in 300.0s" in line
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        assert time.monotonic() - started < 10
        assert "Interrupted." in proc.stderr.read()
        assert json.loads(proc.stdout.read())["exit_code"] == 130
    finally:
        proc.kill()
        proc.wait()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "args, flag",
    [
        (("-p", "k:=" + "[" * 201 + "]" * 201), "--properties"),  # 200 levels alone, 201 inside properties
        (("-c", ".".join(["a"] * 300) + "=x"), "--context"),
    ],
)
def test_nesting_is_checked_on_the_assembled_call(cli, args, flag):
    run = cli("track", "--user", "1", "--event", "E", "--dry-run", *args)
    assert run.exit_code == 2 and run.stdout == ""
    assert f"Error: {flag}: nesting deeper than 200 levels" in run.stderr


def test_408_after_retries_exits_5_like_other_retried_statuses(send, receiver):
    receiver.script.extend([Scripted(408), Scripted(408)])
    run = send("track", "-u", "1", "-e", "E", "--retries", "1")
    assert run.exit_code == 5
    assert "HTTP 408 after 2 attempts" in run.stderr

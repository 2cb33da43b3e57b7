"""`cdp serve` as an oracle: it fails what production fails (wrong paths, wrong JSON), takes what
Customer.io's SDKs send (32 KB calls, a wrong key without strict mode), never answers anything but
strict JSON, and keeps web pages in the developer's browser out. Real HTTP over loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from cdpcli.serve import Receiver
from cdpcli.serve.hosts import host_name
from tests.conftest import API_KEY, BASIC, post


def request(receiver, method, path, body=b"", headers=None):
    """One raw request: (status, parsed JSON answer, response headers)."""
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, strict_json(data), {name.lower(): value for name, value in response.getheaders()}


def strict_json(data: bytes):
    """JSON as a browser's JSON.parse reads it: NaN, Infinity and -Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(data or b"null", parse_constant=refuse)


def sized_call(size: int, event: str = "Big") -> dict:
    """A track call whose compact JSON is exactly `size` bytes."""
    call = {"type": "track", "userId": "1", "event": event, "properties": {"pad": ""}}
    call["properties"]["pad"] = "x" * (size - len(json.dumps(call, separators=(",", ":"))))
    assert len(json.dumps(call, separators=(",", ":"))) == size
    return call


# -- exact routes --


@pytest.mark.parametrize("path", ["/v1/v1/batch", "/v1/x/y/track", "/v1/identify/track", "/v1/track/", "/v1/b"])
def test_only_the_apis_paths_are_calls(receiver, path):
    status, answer = post(receiver, path, {"batch": [{"type": "track", "userId": "1", "event": "E"}]})
    assert status == 404 and answer["meta"]["errors"][0].startswith(f"no such path {path}")
    assert receiver.calls == []


def test_a_doubled_v1_names_the_base_url_to_give_the_sdk(receiver):
    status, answer = post(receiver, "/v1/v1/batch", {"batch": []})
    base = receiver.url.rsplit("/v1", 1)[0]
    assert status == 404 and f"Give {base} (no /v1)" in answer["meta"]["errors"][0]


def test_a_query_string_is_no_other_path_and_other_methods_get_405_or_404(receiver):
    assert post(receiver, "/v1/track?source=app", {"userId": "1", "event": "E"})[0] == 200
    assert request(receiver, "GET", "/v1/track")[0] == 405
    status, answer, _ = request(receiver, "GET", "/v1/v1/track")
    assert status == 404 and "holds /v1 twice" in answer["meta"]["errors"][0]


# -- sizes as the SDKs count them --


def test_calls_up_to_32768_bytes_are_kept_those_over_32000_with_a_warning():
    log: list[str] = []
    with Receiver(log=log.append) as receiver:
        batch = [sized_call(32_000, "At"), sized_call(32_500, "Over"), sized_call(32_768, "Edge")]
        assert post(receiver, "/v1/batch", {"batch": batch}, auth="Bearer k")[0] == 200
        status, answer = post(receiver, "/v1/batch", {"batch": [sized_call(32_769)]}, auth="Bearer k")
        assert status == 400 and answer["meta"]["errors"] == ["batch[0]: call is 32,769 bytes; the limit is 32,768"]
        status, answer, _ = request(receiver, "GET", "/_cdp/calls", headers={"Authorization": "Bearer k"})
    at, over, edge = answer["calls"]
    assert "_warnings" not in at
    assert over["_warnings"] == [
        "call is 32,500 bytes: accepted (the API's 32 KB, as the Python and Node SDKs count it, is 32,768), "
        "but over 32,000, where cdp's own sender and the Go SDK stop"
    ]
    assert "32,768 bytes" in edge["_warnings"][0]
    assert any("batch[1]: warning: call is 32,500 bytes" in line for line in log)


def test_warnings_never_reach_the_ndjson_output(tmp_path):
    out = (tmp_path / "calls.ndjson").open("w")
    with Receiver(out=out) as receiver:
        assert post(receiver, "/v1/track", sized_call(32_100), auth="Bearer k")[0] == 200
    out.close()
    [line] = (tmp_path / "calls.ndjson").read_text().splitlines()
    assert "_warnings" not in json.loads(line) and "_warnings" in receiver.calls[0]


# -- strict JSON out --


NAN_BODY = b'{"batch": [{"type": "track", "userId": "1", "event": "E", "properties": {"x": NaN, "y": -Infinity}}]}'


def test_a_nan_body_is_kept_as_text_and_every_answer_stays_json(receiver):
    assert post(receiver, "/v1/batch", None, raw=NAN_BODY)[0] == 400
    assert post(receiver, "/v1/track", None, raw=b"\xff\xfe not json")[0] == 400
    status, answer, _ = request(receiver, "GET", "/_cdp/rejects", headers={"Authorization": BASIC})
    assert status == 200
    nan, garbage = answer["rejects"]
    assert nan["body"] == NAN_BODY.decode() and garbage["body"].endswith(" not json")


def test_a_cut_body_says_so():
    with Receiver() as receiver:
        text = b'{"userId": "1", "pad": "' + b"x" * 100_000 + b'"'  # unterminated: invalid JSON
        assert post(receiver, "/v1/track", None, raw=text, auth="Bearer k")[0] == 400
        [reject] = receiver.rejects()
    assert reject["truncated"] is True and reject["bytes"] == len(text)
    assert reject["body"].endswith(f"… [cut: the first 65,536 of {len(text):,} bytes kept]")


def test_duplicate_keys_make_a_call_invalid(receiver):
    body = b'{"batch": [{"type": "track", "userId": "1", "event": "a", "event": "b"}]}'
    status, answer = post(receiver, "/v1/batch", None, raw=body)
    assert (status, answer["meta"]["errors"]) == (400, ['invalid JSON: duplicate key "event"'])
    spaced = b'{"userId" : "1", "event" : "a", "properties": {"k": 1, "k" : 2}}'
    status, answer = post(receiver, "/v1/track", None, raw=spaced)
    assert (status, answer["meta"]["errors"]) == (400, ['invalid JSON: duplicate key "k"'])
    # one key spaced before its colon and one repeated: a count of `":` alone comes out even
    hidden = b'{"userId":"1","event" :"a","event":"b"}'
    status, answer = post(receiver, "/v1/track", None, raw=hidden)
    assert (status, answer["meta"]["errors"]) == (400, ['invalid JSON: duplicate key "event"'])
    # the same text inside strings is no key
    fine = b'{"userId": "1", "event": "a", "properties": {"note": "\\"event\\": 1, \\"event\\": 2"}}'
    assert post(receiver, "/v1/track", None, raw=fine)[0] == 200


# -- browser safety --


@pytest.mark.parametrize(
    "host", ["rebound.example.com", "rebound.example.com:8787", "localhost.example.com", "10.0.0.7", "[fe80::1]:80"]
)
def test_a_foreign_host_gets_421(receiver, host):
    status, answer, _ = request(receiver, "GET", "/_cdp/calls", headers={"Host": host, "Authorization": BASIC})
    assert status == 421 and "--allow-host" in answer["meta"]["errors"][0]
    status, _, _ = request(receiver, "POST", "/v1/track", b"{}", headers={"Host": host, "Authorization": BASIC})
    assert status == 421


@pytest.mark.parametrize("host", ["localhost", "localhost:1234", "app.localhost", "127.0.0.1", "[::1]:80", "127.0.0.2"])
def test_addresses_and_loopback_names_are_answered(receiver, host):
    assert request(receiver, "GET", "/_cdp/summary", headers={"Host": host, "Authorization": BASIC})[0] == 200


def test_bound_to_every_address_any_address_is_answered_but_no_foreign_name():
    with Receiver("0.0.0.0") as receiver:
        assert request(receiver, "GET", "/_cdp/summary", headers={"Host": "10.0.0.7:8787"})[0] == 200
        assert request(receiver, "GET", "/_cdp/summary", headers={"Host": "rebound.example.com"})[0] == 421


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("fd00::2", "fd00::2"),
        ("[fd00::2]:80", "fd00::2"),
        ("::1", "::1"),
        ("localhost.:80", "localhost"),
        ("a.b.", "a.b"),
    ],
)
def test_host_names_of_bare_ipv6_addresses_and_trailing_dots(value, name):
    """A bare IPv6 address (`--host fd00::2`, `--allow-host fd00::2`) has no port to cut."""
    assert host_name(value) == name


def test_allow_host_adds_a_name():
    with Receiver(allow_hosts=["cdp"]) as receiver:
        assert request(receiver, "GET", "/_cdp/summary", headers={"Host": "cdp:8787"})[0] == 200
        assert request(receiver, "GET", "/_cdp/summary", headers={"Host": "other:8787"})[0] == 421
    with Receiver(allow_hosts=["*"]) as receiver:
        assert request(receiver, "GET", "/_cdp/summary", headers={"Host": "other:8787"})[0] == 200


def test_reset_refuses_what_another_sites_page_could_send(receiver):
    post(receiver, "/v1/track", {"userId": "1", "event": "E"})
    here = urlsplit(receiver.url).netloc
    auth = {"Authorization": BASIC}
    for headers in (
        {"Content-Type": "text/plain"},  # a form or no-cors fetch
        {},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
        {"Content-Type": "application/json", "Origin": "null"},
    ):
        status, answer, _ = request(receiver, "POST", "/_cdp/reset", b"{}", {**auth, **headers})
        assert status == 403 and answer["meta"]["errors"], headers
    assert len(receiver.calls) == 1
    ok = (
        {"Content-Type": "application/json"},
        {"X-Cdp-Control": "1"},
        {"X-Cdp-Control": "1", "Origin": f"http://{here}"},
    )
    for headers in ok:
        assert request(receiver, "POST", "/_cdp/reset", b"{}", {**auth, **headers})[0] == 200
    assert receiver.calls == []


# -- permissive mode like the API --


def test_a_wrong_key_without_strict_mode_is_200_and_a_dropped_reject(receiver):
    wrong = "Bearer not-the-key"
    status, answer = post(receiver, "/v1/track", {"userId": "1", "event": "E"}, auth=wrong, strict=False)
    assert (status, answer) == (200, {})
    [reject] = receiver.rejects()
    assert reject["status"] == 200 and reject["errors"] == [
        "wrong key; answered 200 as the API does without strict mode"
    ]
    assert receiver.calls == []
    assert post(receiver, "/v1/track", {"userId": "1", "event": "E"}, auth=wrong, strict=True)[0] == 401
    assert post(receiver, "/v1/track", {"userId": "1", "event": "E"}, auth=None, strict=False)[0] == 401


# -- small things --


@pytest.mark.parametrize(
    ("route", "named"),
    [
        ("/_cdp/wait?type=bogus&timeout=30", "type"),
        ("/_cdp/wait?count=x", "count"),
        ("/_cdp/wait?timeout=-1", "timeout"),
        ("/_cdp/wait?colour=red", "colour"),
        ("/_cdp/calls?type=Track", "type"),
        ("/_cdp/calls?limit=0", "limit"),
        ("/_cdp/calls?since=yesterday", "since"),
        ("/_cdp/calls?before=3", "before"),
        ("/_cdp/rejects?tail=-2", "tail"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(receiver, route, named):
    status, answer, _ = request(receiver, "GET", route, headers={"Authorization": BASIC})
    assert status == 400 and named in answer["meta"]["errors"][0]


def test_a_wait_for_a_type_that_does_not_exist_is_refused_at_once(cdp_receiver):
    with pytest.raises(ValueError, match="type must be one of identify"):
        cdp_receiver.receiver.wait(type="Track", timeout=30)


def test_ctrl_c_stops_cdp_serve_with_130(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--out", str(tmp_path / "calls.ndjson")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CDP_CONFIG_DIR": str(tmp_path)},
    )
    try:
        assert proc.stderr.readline().startswith("cdp serve: listening on")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert "Interrupted." in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_api_key_is_never_in_an_answer(receiver):
    post(receiver, "/v1/track", {"userId": "1"})
    for route in ("/_cdp/calls", "/_cdp/rejects", "/_cdp/summary"):
        _, answer, _ = request(receiver, "GET", route, headers={"Authorization": BASIC})
        assert API_KEY not in json.dumps(answer)


# -- cdp expect over what serve kept --


def test_expects_closest_call_is_the_one_a_letter_away():
    from cdpcli import expect as core

    spec = core.parse('[[expect]]\nname = "signed up"\nmatch = {type = "track", event = "Signed Up"}\n', "t.toml")
    calls = [
        {"_seq": 1, "type": "track", "userId": "1", "event": "Signd Up"},
        {"_seq": 2, "type": "track", "userId": "1", "event": "Page Viewed"},
        {"_seq": 3, "type": "identify", "userId": "1"},
    ]
    [result] = core.check(spec, calls, [])
    assert not result.ok and result.closest["_seq"] == 1


def test_expect_reports_calls_kept_with_a_size_warning():
    from cdpcli import expect as core

    with Receiver() as receiver:
        assert post(receiver, "/v1/track", sized_call(32_500, "Big"), auth="Bearer k")[0] == 200
        spec = core.parse('[[expect]]\nname = "big"\nmatch = {event = "Big"}\n', "t.toml")
        results = core.check_against(spec, receiver.url, api_key="k", timeout=1)
    text = core.report(results)
    assert "PASS big" in text and "WARN call #1: call is 32,500 bytes: accepted" in text
    assert text.endswith("1 of 1 check held.")

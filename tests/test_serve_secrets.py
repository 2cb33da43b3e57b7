"""The key a request's body carries (`writeKey`, as Customer.io's browser and mobile SDKs and
Segment's send it: api-wire-facts §2.2) never shows in what `cdp serve` keeps or shows: the
rejects, the calls, --out, the live view's HTML, its event stream, or serve's log."""

from __future__ import annotations

import http.client
import json
import queue
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from cdpcli.serve import Receiver
from tests.conftest import API_KEY, BASIC, post

OTHER_KEY = "wk-other-0123456789abcdef"  # a key the receiver does not take, as long as a real one


class _At:
    def __init__(self, url: str) -> None:
        self.url = url


def _get(url: str, path: str, accept: str = "application/json") -> str:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", path, headers={"Authorization": BASIC, "Accept": accept})
    response = conn.getresponse()
    assert response.status == 200, response.status
    text = response.read().decode()
    conn.close()
    return text


def _open_events(url: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """An /_cdp/events stream, subscribed: serve joins the client before its first chunk."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", "/_cdp/events", headers={"Authorization": BASIC})
    response = conn.getresponse()
    assert response.status == 200
    assert response.readline() == b"retry: 1000\n"
    return conn, response


def _events(response: http.client.HTTPResponse, wanted: int) -> str:
    """The stream's text until `wanted` events have come."""
    lines: list[str] = []
    while sum(line.startswith("event: ") for line in lines) < wanted or lines[-1] != "":
        lines.append(response.readline().decode().rstrip("\n"))
    return "\n".join(lines)


# what browser and mobile SDKs send (api-wire-facts §2.2: the key in the body, no Authorization),
# and the same key in each place a body may carry it: a call, a batch body, each batch item
SENT = [
    # (path, body, Authorization, strict, status)
    ("/v1/track", {"writeKey": API_KEY, "type": "track", "userId": "1", "event": "E"}, None, True, 401),
    ("/v1/track", {"writeKey": API_KEY, "userId": "2", "event": "Kept"}, BASIC, True, 200),
    (
        "/v1/batch",
        {"writeKey": OTHER_KEY, "batch": [{"type": "track", "userId": "3", "event": "B", "writeKey": API_KEY}]},
        BASIC,
        True,
        200,
    ),
    ("/v1/batch", {"batch": [{"type": "track", "userId": "4", "writeKey": OTHER_KEY}]}, BASIC, True, 400),
    ("/v1/batch", {"batch": [{"type": "track", "userId": "5", "writeKey": API_KEY}]}, BASIC, False, 200),
    ("/v1/track", {"writeKey": OTHER_KEY, "userId": "6", "event": "Wrong"}, "Bearer " + OTHER_KEY, False, 200),
]
RAW = [  # not JSON: kept as text, the key masked all the same
    b'{"writeKey": "' + API_KEY.encode() + b'", "userId": "7", "event": NaN}',
    b'{"writeKey":"' + OTHER_KEY.encode() + b'","userId":"8","event":"E"',  # cut short
]


@pytest.mark.slow  # a cdp serve process
def test_a_body_write_key_shows_nowhere_cdp_serve_keeps_or_shows_it(tmp_path):
    out = tmp_path / "calls.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--api-key", API_KEY, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stderr.readline()
        assert banner.startswith("cdp serve: listening on http://127.0.0.1:"), banner
        url = banner.split()[4].removesuffix("/v1")
        conn, stream = _open_events(url)
        for path, body, auth, strict, status in SENT:
            assert post(_At(url + "/v1"), path, body, auth=auth, strict=strict)[0] == status, (path, body)
        for raw in RAW:
            assert post(_At(url + "/v1"), "/v1/track", None, raw=raw)[0] == 400
        events = _events(stream, 8)  # 2 accepted requests' calls, 6 rejects
        conn.close()
        shown = {
            "rejects": _get(url, "/_cdp/rejects"),
            "calls": _get(url, "/_cdp/calls"),
            "live view": _get(url, "/_cdp/ui", accept="text/html"),
            "events": events,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    shown["log"] = proc.stderr.read()
    shown["--out"] = out.read_text()
    for where, text in shown.items():
        assert API_KEY not in text and OTHER_KEY not in text, (where, text)
    rejects = json.loads(shown["rejects"])["rejects"]
    assert [reject["status"] for reject in rejects] == [401, 400, 200, 200, 400, 400]
    assert rejects[0]["body"]["writeKey"] == "****"  # the body still shows it was sent
    assert '"writeKey":"****"' in rejects[5]["body"]  # cut short: kept as text
    kept = [json.loads(line) for line in shown["--out"].splitlines()]
    assert [(call["userId"], call["writeKey"]) for call in kept] == [("2", "****"), ("3", "****")]
    assert [call["writeKey"] for call in json.loads(shown["calls"])["calls"]] == ["****", "****"]


def test_the_requests_kept_for_tests_hold_the_write_key_masked():
    with Receiver(api_key=API_KEY) as receiver:
        post(receiver, "/v1/track", {"writeKey": API_KEY, "userId": "1", "event": "E"})
        [request] = receiver.requests
        [call] = receiver.calls
    assert request.body["writeKey"] == "****" and call["writeKey"] == "****"
    assert request.key == API_KEY  # the header's key, for tests to compare (the plugin prints it masked)


@pytest.mark.parametrize(
    "text",
    [
        b'{"writeKey":"k\\"ey","a":1}',
        b'{"writeKey" :  "key"}',
        b'{"batch":[{"writeKey":"key"}],"writeKey":"key"}',
        b'{"writeKey":12345}',
        b'{"writeKey":"key',
    ],
)
def test_every_write_key_value_in_a_body_is_masked(text):
    from cdpcli.redaction import mask_write_keys

    masked = mask_write_keys(text)
    assert b"key" not in masked.replace(b"writeKey", b"") and b"12345" not in masked
    assert masked.count(b'"****"') == text.count(b'"writeKey"')


class _Lines:
    """A process's stderr read on a thread of its own: `until(text)` waits for a line holding it."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def until(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            self.seen.append(line)
            if text in line:
                return line


@pytest.mark.slow  # a cdp serve process
def test_serves_log_says_why_each_request_was_refused():
    """An SDK that crashes on the error body (the official Python SDK reads {code, message}) never
    shows serve's explanation: the log line of each refused request carries its first error."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--api-key", API_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        log = _Lines(proc.stderr)
        banner = log.until("listening on")
        url = banner.split()[4]
        base = url.removesuffix("/v1")
        assert post(_At(url), "/v1/v1/batch", {"batch": []})[0] == 404
        line = log.until('"POST /v1/v1/batch HTTP/1.1" 404')
        assert "404 - no such path /v1/v1/batch: the base URL holds /v1 twice. Give " + base in line
        assert post(_At(url), "/v1/track", {"writeKey": API_KEY, "userId": "1", "event": "E"}, auth=None)[0] == 401
        assert (
            log.until('"POST /v1/track HTTP/1.1" 401')
            .rstrip("\n")
            .endswith(
                "401 - unauthorized: send Authorization: Basic base64(<api key>:) (the browser and mobile SDKs' "
                "own paths and body writeKey are not served: cdp serve takes the HTTP API's paths with Authorization: "
                "Basic, as the server-side SDKs (Python, Node, Go) and cdp send them)"
            )
        )
        assert post(_At(url), "/v1/track", {"userId": "1"})[0] == 400
        assert log.until('"POST /v1/track HTTP/1.1" 400').rstrip("\n").endswith("400 - event: Field required")
        long_path = "/v1/" + "x" * 1000
        assert post(_At(url), long_path, {})[0] == 404
        line = log.until(long_path[:40]).rstrip("\n")
        assert line.endswith("…") and len(line.split(" 404 - ", 1)[1]) == 300
        assert post(_At(url), "/v1/track", {"userId": "1", "event": "E"})[0] == 200
        assert log.until('"POST /v1/track HTTP/1.1" 200').rstrip("\n").endswith("200 -")  # accepted: no text
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/_cdp/calls?bogus=1", headers={"Authorization": BASIC})
        assert conn.getresponse().status == 400
        conn.close()
        assert (
            log.until('"GET /_cdp/calls?bogus=1 HTTP/1.1" 400')
            .rstrip("\n")
            .endswith(
                "400 - unknown parameter 'bogus'; this route takes type, event, userId, anonymousId, messageId, user, "
                "since, limit, cursor, tail, before"
            )
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not any(API_KEY in line for line in log.seen)


def test_a_logged_error_is_one_line_redacted_and_bounded():
    from cdpcli.redaction import add_secret
    from cdpcli.serve.asgi import LOG_ERROR_CHARS, log_text

    secret = "sk_us_LOGGED0123456789abcdef"
    add_secret(secret)
    assert log_text(f"type 'a\nb\x1b[31m' {secret}") == "type 'a\\nb\\x1b[31m' ****"
    assert len(log_text("é" * 5000)) == LOG_ERROR_CHARS and log_text("é" * 5000).endswith("…")


def test_the_browser_and_mobile_sdks_traffic_is_told_what_cdp_serve_takes():
    """Customer.io's browser SDK posts to /v1/t (…/v1/b batched) as text/plain with the key as a
    body writeKey and no Authorization (api-wire-facts 1.3, 2.2): the answers say that is not served."""
    call = {"type": "track", "userId": "1", "event": "E", "writeKey": API_KEY}
    with Receiver(api_key=API_KEY) as receiver:
        headers = {"Content-Type": "text/plain"}
        status, answer = post(receiver, "/v1/t", call, auth=None, strict=False, headers=headers)
        assert status == 404 and "browser and mobile SDKs' own paths and body writeKey" in answer["meta"]["errors"][0]
        status, answer = post(receiver, "/v1/b", {"batch": [call], "writeKey": API_KEY}, auth=None, strict=False)
        assert status == 404 and "browser and mobile SDKs' own paths" in answer["meta"]["errors"][0]
        status, answer = post(receiver, "/v1/track", call, auth=None, strict=False)
        assert status == 401 and "body writeKey are not served" in answer["meta"]["errors"][0]
        status, answer = post(receiver, "/v1/track", {k: v for k, v in call.items() if k != "writeKey"}, auth=None)
        assert (status, answer) == (
            401,
            {"meta": {"errors": ["unauthorized: send Authorization: Basic base64(<api key>:)"]}},
        )

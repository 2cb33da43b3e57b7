"""`cdp serve`: the receiver's paths, auth, strict-mode validation and limits, over raw HTTP."""

from __future__ import annotations

import base64
import gc
import gzip
import http.client
import json
import subprocess
import sys
import threading
import time
import weakref
from urllib.parse import urlsplit

import pytest

from cdpcli.server import Receiver
from tests.conftest import API_KEY, BASIC, post



def test_valid_call_is_accepted_and_recorded(receiver):
    status, body = post(receiver, "/v1/track", {"userId": "1", "event": "E", "sentAt": "2026-01-01T00:00:00.000Z"})
    assert (status, body) == (200, {})
    [call] = receiver.calls
    assert call["type"] == "track" and "sentAt" not in call and call["receivedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/v1/track", {"userId": "1"}, "event: Field required"),
        ("/v1/identify", {"traits": {}}, "identify needs userId or anonymousId"),
        ("/v1/alias", {"userId": "1"}, "previousId: Field required"),
        ("/v1/group", {"userId": "1"}, "groupId: Field required"),
        ("/v1/track", {"type": "identify", "userId": "1"}, "does not match the path"),
        ("/v1/track", ["not", "an", "object"], "body must be a JSON object"),
        ("/v1/batch", {"batch": [{"type": "track", "userId": "1"}]}, "batch[0]: event: Field required"),
        ("/v1/batch", {"batch": [{"userId": "1"}]}, "batch[0]: type: Field required"),
        ("/v1/batch", {"batch": {}}, "batch must be an array"),
        ("/v1/identify", {"userId": "1", "traits": "no"}, "traits: Input should be a valid dictionary"),
    ],
)
def test_strict_mode_rejects_invalid_calls_with_meta_errors(receiver, path, body, error):
    status, answer = post(receiver, path, body)
    assert status == 400
    assert any(error in e for e in answer["meta"]["errors"]), answer
    assert receiver.calls == []


def test_permissive_mode_answers_200_and_drops(receiver):
    status, _ = post(receiver, "/v1/track", {"userId": "1"}, strict=False)
    assert status == 200
    assert receiver.calls == []


@pytest.mark.parametrize(
    ("auth", "error"),
    [
        (None, "send Authorization"),
        ("Basic " + base64.b64encode(b"other:").decode(), "wrong API key"),
        ("Basic " + base64.b64encode(b":").decode(), "empty API key"),
        ("Basic !!!", "malformed"),
        (f"Bearer {API_KEY}x", "wrong API key"),
    ],
)
def test_auth_is_checked(receiver, auth, error):
    status, answer = post(receiver, "/v1/track", {"userId": "1", "event": "E"}, auth=auth)
    assert status == 401
    assert error in answer["meta"]["errors"][0]


def test_bearer_accepted():
    with Receiver(api_key="pk_us_abc") as receiver:
        status, _ = post(receiver, "/v1/track", {"userId": "1", "event": "E"}, auth="Bearer pk_us_abc")
        assert status == 200


def test_size_limits(receiver):
    big_call = {"userId": "1", "event": "E", "properties": {"x": "é" * 6_000}}  # 12 kB UTF-8, 36 kB escaped
    status, answer = post(receiver, "/v1/track", big_call)
    assert status == 400 and "limit is 32,000" in answer["meta"]["errors"][0]
    calls = [{"type": "track", "userId": "1", "event": "E", "properties": {"x": "y" * 25_000}}] * 21
    status, answer = post(receiver, "/v1/batch", {"batch": calls})
    assert status == 413 and "limit is 500,000" in answer["meta"]["errors"][0]
    status, answer = post(receiver, "/v1/batch", {"batch": [{"type": "track", "userId": "1", "event": "E"}] * 2501})
    assert status == 400 and "the limit is 2500" in answer["meta"]["errors"][0]


def test_gzip_and_bad_gzip(receiver):
    data = gzip.compress(json.dumps({"batch": [{"type": "identify", "userId": "1"}]}).encode())
    status, _ = post(receiver, "/v1/batch", None, raw=data, headers={"Content-Encoding": "gzip"})
    assert status == 200 and receiver.calls[0]["userId"] == "1"
    status, answer = post(receiver, "/v1/batch", None, raw=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert status == 400 and "gzip" in answer["meta"]["errors"][0]


def test_bad_json_and_unknown_path(receiver):
    status, answer = post(receiver, "/v1/track", None, raw=b"{nope")
    assert status == 400 and answer["meta"]["errors"][0].startswith("invalid JSON")
    status, _ = post(receiver, "/v1/nothing", {})
    assert status == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "TRACE", "BREW", "HEAD"])
def test_every_other_method_gets_a_json_405(receiver, method):
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, "/v1/track", body=b"{}", headers={"Authorization": BASIC})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    assert response.getheader("Content-Type") == "application/json"
    if method != "HEAD":
        assert "POST only" in json.loads(body)["meta"]["errors"][0]


def test_the_python_sdks_null_ids_are_read_as_absent(receiver):
    # customerio-cdp-analytics sends "anonymousId": null beside a userId (api-wire-facts.md §5)
    call = {"type": "track", "userId": "42", "anonymousId": None, "event": "Signed Up",
            "timestamp": "2026-11-27T13:36:48.608+00:00", "integrations": {}}
    status, _ = post(receiver, "/v1/batch", {"batch": [call], "sentAt": "2026-11-27T13:36:48.700+00:00"})
    assert status == 200 and len(receiver.calls) == 1
    status, answer = post(receiver, "/v1/batch", {"batch": [{**call, "userId": None}]})
    assert status == 400 and "needs userId or anonymousId" in answer["meta"]["errors"][0]


def test_batch_level_context_and_integrations_are_checked(receiver):
    call = {"type": "track", "userId": "1", "event": "E"}
    status, answer = post(receiver, "/v1/batch", {"batch": [call], "integrations": {"All": "yes"}})
    assert status == 400 and answer["meta"]["errors"] == ["integrations.All: Input should be a valid boolean"]
    status, answer = post(receiver, "/v1/batch", {"batch": [call], "context": {"active": 1}})
    assert status == 400 and answer["meta"]["errors"] == ["context.active: Input should be a valid boolean"]
    assert receiver.calls == []


def test_empty_batch_is_accepted_and_creates_nothing(receiver):
    status, _ = post(receiver, "/v1/batch", {"batch": []})
    assert status == 200 and receiver.calls == []


def test_fail_rate_injects_retryable_failures():
    with Receiver(api_key=API_KEY, fail_rate=1.0) as receiver:
        statuses = {post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] for _ in range(30)}
        assert statuses <= {500, 503, 429} and len(statuses) >= 2
        assert receiver.calls == []


def test_collection_on_a_schedule_while_serving():
    """`cdp serve`'s set-up: automatic GC off while it serves, cycles still collected on a
    schedule, and the collector given back when it stops."""
    assert gc.isenabled()

    class Node:
        pass

    with Receiver(api_key=API_KEY, collect_every=0.05) as receiver:
        assert not gc.isenabled()
        assert post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] == 200
        cycle = Node()
        cycle.self = cycle
        collected = threading.Event()
        weakref.finalize(cycle, collected.set)
        del cycle  # unreachable now, and only a collection can free it
        assert collected.wait(5)
    assert gc.isenabled()


def test_cdp_serve_command_writes_ndjson(tmp_path):
    """The real `cdp serve` process: banner on stderr, accepted calls appended to --out."""
    out = tmp_path / "calls.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--api-key", API_KEY, "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stderr.readline()
        assert banner.startswith("cdp serve: listening on http://127.0.0.1:")
        url = banner.split()[4]
        run = subprocess.run(
            [sys.executable, "-m", "cdpcli", "identify", "-u", "9", "-t", "a=b", "--endpoint", url],
            env={"CDP_API_KEY": API_KEY, "PATH": "/usr/bin:/bin", "CDP_CONFIG_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0, run.stderr
        deadline = time.monotonic() + 5
        while not out.exists() or not out.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        [line] = out.read_text().splitlines()
        call = json.loads(line)
        assert call["userId"] == "9" and call["traits"] == {"a": "b"} and "receivedAt" in call
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert API_KEY not in proc.stderr.read()


def test_the_official_python_sdks_traffic_is_accepted_in_strict_mode(receiver):
    # what customerio-cdp-analytics 1.0 puts on the wire for a page call (api-wire-facts.md §5)
    call = {"integrations": {}, "anonymousId": None, "properties": {"path": "/pricing"}, "category": None,
            "timestamp": "2026-11-27T13:36:48.608412+00:00", "context": {"library": {"name": "analytics-python", "version": "1.0.2"}},
            "userId": "42", "type": "page", "name": None, "messageId": "2acb472a-6bcd-4d76-b3d8-9c62a65215d7"}
    status, answer = post(receiver, "/v1/batch", {"batch": [call], "sentAt": "2026-11-27T13:36:48.700+00:00"})
    assert (status, answer) == (200, {})
    assert receiver.calls[0]["messageId"] == call["messageId"]

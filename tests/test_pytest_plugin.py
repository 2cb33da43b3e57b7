"""The pytest plugin (entry point pytest11): the fixture `cdp_receiver`, used the way a user
would, by pointing a client at `.url` and asserting on what arrived."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import cdpcli

ROOT = Path(__file__).resolve().parent.parent


def sdk_like_flush(endpoint: str, calls: list[dict], key: str = "any-write-key", background: bool = True) -> None:
    """What an analytics SDK does on flush, from a background thread: one /batch POST."""

    def flush():
        request = urllib.request.Request(
            endpoint.rstrip("/") + "/batch",
            data=json.dumps({"batch": calls}).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
            },
        )
        urllib.request.urlopen(request, timeout=10).read()

    if background:
        threading.Thread(target=flush, daemon=True).start()
    else:
        flush()


def test_an_app_sending_in_the_background_is_awaited_not_polled(cdp_receiver):
    sdk_like_flush(
        cdp_receiver.url, [{"type": "track", "userId": "42", "event": "Signed Up", "properties": {"plan": "pro"}}]
    )
    [call] = cdp_receiver.wait(event="Signed Up")
    assert call["properties"] == {"plan": "pro"} and call["userId"] == "42"
    assert cdp_receiver.calls(userId="42") == [{k: v for k, v in call.items() if k != "_seq"}]


def test_cdpcli_send_at_the_url(cdp_receiver):
    target = cdpcli.Target(api_key="any-write-key", endpoint=cdp_receiver.url)
    cdpcli.send("identify", {"userId": "7", "traits": {"email": "a@example.com"}}, target=target)
    [call] = cdp_receiver.calls(type="identify")
    assert call["traits"]["email"] == "a@example.com"
    assert cdp_receiver.summary()["by_type"] == {"identify": 1}


def test_rejects_reset_and_expect(cdp_receiver, tmp_path):
    # no event: dropped and answered 200, as the API does without strict mode; kept as a reject
    sdk_like_flush(cdp_receiver.url, [{"type": "track", "userId": "1"}], background=False)
    expectations = tmp_path / "tracking.toml"
    expectations.write_text('timeout = 5\n[[expect]]\nmatch = { event = "Paid" }\n')
    sdk_like_flush(cdp_receiver.url, [{"type": "track", "userId": "1", "event": "Paid"}])
    [result] = cdp_receiver.expect(expectations)  # waits for the call
    assert result.ok
    assert [r["status"] for r in cdp_receiver.rejects()] == [200]
    cdp_receiver.reset()
    assert cdp_receiver.calls() == [] and cdp_receiver.rejects() == []
    with pytest.raises(AssertionError, match=r"(?s)FAIL .*expected: at least 1 call matching"):
        cdp_receiver.expect(expectations, timeout=0)


def test_a_timed_out_wait_fails_the_test_with_what_arrived(cdp_receiver):
    cdpcli.send(
        "track", {"userId": "1", "event": "Other"}, target=cdpcli.Target(api_key="k", endpoint=cdp_receiver.url)
    )
    with pytest.raises(AssertionError, match=r"0 of 1 calls \(event='Paid'\) arrived within 0.05 s; the last calls"):
        cdp_receiver.wait(event="Paid", timeout=0.05)


@pytest.mark.slow
def test_the_installed_plugin_serves_a_users_test_file(tmp_path):
    """A user's test file, in a directory of its own: the fixture comes from the entry point."""
    (tmp_path / "test_tracking.py").write_text(
        "import cdpcli\n\n"
        "def test_signup(cdp_receiver):\n"
        "    target = cdpcli.Target(api_key='k', endpoint=cdp_receiver.url)\n"
        "    cdpcli.send('track', {'userId': '42', 'event': 'Signed Up'}, target=target)\n"
        "    assert cdp_receiver.wait(event='Signed Up')[0]['userId'] == '42'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tracking.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_loading_the_plugin_imports_nothing_heavy():
    code = "import sys, cdpcli.pytest_plugin; print(sorted(m for m in ('uvicorn', 'httpx', 'cdpcli.serve', 'pydantic') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


def raw_post(url: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    """One POST as an SDK makes it; the status (an HTTP error's too)."""
    request = urllib.request.Request(url.rstrip("/") + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def sdk_headers(key: str = "my-write-key", **extra: str) -> dict[str, str]:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return {"Content-Type": "application/json", "Authorization": auth, **extra}


def batch_of(*calls: dict) -> bytes:
    return json.dumps({"batch": list(calls)}).encode()


@pytest.mark.cdp_receiver(status_for={"Order Completed": 400}, fail_first=1)
def test_the_marker_scripts_faults(cdp_receiver):
    paid = batch_of({"type": "track", "userId": "1", "event": "Order Completed"})
    assert raw_post(cdp_receiver.base_url, "/v1/batch", paid, sdk_headers()) == 503  # fail_first
    assert raw_post(cdp_receiver.base_url, "/v1/batch", paid, sdk_headers()) == 400  # status_for
    other = batch_of({"type": "track", "userId": "1", "event": "Viewed"})
    assert raw_post(cdp_receiver.base_url, "/v1/batch", other, sdk_headers()) == 200
    assert [request["status"] for request in cdp_receiver.requests()] == [503, 400, 200]


@pytest.mark.cdp_receiver(rate_limit=1, latency_ms=30)
def test_the_marker_sets_a_rate_limit_and_latency(cdp_receiver):
    call = batch_of({"type": "track", "userId": "1", "event": "E"})
    started = time.monotonic()
    assert raw_post(cdp_receiver.base_url, "/v1/batch", call, sdk_headers()) == 200
    assert time.monotonic() - started >= 0.03
    assert raw_post(cdp_receiver.base_url, "/v1/batch", call, sdk_headers()) == 429


@pytest.mark.cdp_receiver(api_key="my-write-key", strict=True)
def test_the_marker_sets_the_key_and_strict_mode(cdp_receiver):
    invalid = batch_of({"type": "track", "userId": "1"})  # no event; the SDK sends no X-Strict-Mode
    assert raw_post(cdp_receiver.base_url, "/v1/batch", invalid, sdk_headers()) == 400
    valid = batch_of({"type": "track", "userId": "1", "event": "E"})
    assert raw_post(cdp_receiver.base_url, "/v1/batch", valid, sdk_headers("another-key")) == 401


def test_requests_are_raw_with_the_key_redacted_in_headers(cdp_receiver):
    body = gzip.compress(batch_of({"type": "track", "userId": "1", "event": "E"}))
    headers = sdk_headers("write-key-123456789", **{"Content-Encoding": "gzip"})
    assert raw_post(cdp_receiver.base_url, "/v1/batch?x=1", body, headers) == 200
    [request] = cdp_receiver.requests()
    assert (request["method"], request["path"], request["gzip"], request["bytes"]) == (
        "POST",
        "/v1/batch?x=1",
        True,
        len(body),
    )
    assert request["headers"]["authorization"] == "Basic ****"
    assert request["key"] == "write-key-123456789" and "write-key-123456789" not in repr(request)
    assert request["body"]["batch"][0]["event"] == "E" and request["status"] == 200


def test_the_factory_makes_several_receivers(cdp_receiver_factory):
    first, second = cdp_receiver_factory(), cdp_receiver_factory(api_key="k2", strict=True)
    assert first.url != second.url
    call = batch_of({"type": "track", "userId": "1", "event": "E"})
    assert raw_post(second.base_url, "/v1/batch", call, sdk_headers("other")) == 401
    assert raw_post(first.base_url, "/v1/batch", call, sdk_headers("other")) == 200
    with pytest.raises(TypeError, match="no option 'colour'"):
        cdp_receiver_factory(colour="red")


@pytest.mark.slow
def test_the_marker_is_registered_by_the_plugin(tmp_path):
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.cdp_receiver(fail_first=1)\n"
        "def test_marked(cdp_receiver):\n"
        "    assert cdp_receiver.receiver.fail_first == 1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--strict-markers", "-p", "no:cacheprovider", "test_marked.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr


@pytest.mark.slow
def test_a_failing_assertion_on_the_key_never_prints_it(tmp_path):
    """pytest's diff of two strings prints them whole: the key a request carried must not be a
    string to it, in a comparison, an f-string or a message."""
    secret = "sk_us_SECRETSECRET1234"
    (tmp_path / "test_key.py").write_text(
        "import base64, http.client, json, os\n"
        "import pytest\n\n"
        "SECRET = os.environ['THE_SECRET']  # not in the source pytest shows\n\n"
        "@pytest.mark.cdp_receiver(api_key=SECRET)\n"
        "def test_key(cdp_receiver):\n"
        "    host, port = cdp_receiver.base_url.split('//')[1].split(':')\n"
        "    conn = http.client.HTTPConnection(host, int(port))\n"
        "    auth = 'Basic ' + base64.b64encode(SECRET.encode() + b':').decode()\n"
        "    body = json.dumps({'type': 'track', 'userId': '1', 'event': 'E'})\n"
        "    conn.request('POST', '/v1/track', body, {'Authorization': auth, 'Content-Type': 'application/json'})\n"
        "    conn.getresponse().read()\n"
        "    [request] = cdp_receiver.requests()\n"
        "    assert request['key'] == SECRET and request['key'].startswith('sk_us_')\n"
        "    assert request['key'] == 'sk_us_OTHERKEY5678', f\"got {request['key']}\"\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {"THE_SECRET": secret}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n0", "test_key.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "1 failed" in run.stdout, run.stdout + run.stderr
    assert "****1234" in run.stdout and secret not in run.stdout + run.stderr

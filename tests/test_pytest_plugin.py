"""The pytest plugin (entry point pytest11): the fixture `cdp_receiver`, used the way a user
would, by pointing a client at `.url` and asserting on what arrived."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
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

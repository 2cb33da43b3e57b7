"""Shared fixtures: a real receiver on loopback and a runner that checks every output for the key."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

# Property tests (hypothesis, and schemathesis on top of it) are deterministic by default: each
# test draws the same inputs on every run (derandomize, no example database), so a test fails
# because of a change, never at random. CDP_TEST_EXPLORE=1 selects the exploratory profile: fresh
# random inputs each run, failures kept in .hypothesis/ at the repository root (the tests run in
# temporary directories) and replayed first (see README).
from hypothesis import settings as _hypothesis_settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402
from typer.testing import CliRunner

from cdpcli.cli.app import app
from tests.fakes import ScriptedReceiver


def _signals_reach_children() -> None:
    """A test run started in the background (`pytest &`, nohup, some CI runners) inherits SIGINT
    or SIGHUP ignored, and so would every cdp the tests start: an exec'd child keeps an ignored
    signal ignored, and the Ctrl-C and hang-up tests saw the signal do nothing. A handler here
    is reset to the default in each child; this process still does nothing on a hang-up."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


_signals_reach_children()

EXPLORE = os.environ.get("CDP_TEST_EXPLORE", "").strip() not in ("", "0")
_hypothesis_settings.register_profile("cdp-deterministic", derandomize=True, print_blob=False)
_hypothesis_settings.register_profile(
    "cdp-explore",
    derandomize=False,
    print_blob=True,
    database=DirectoryBasedExampleDatabase(
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".hypothesis", "examples")
    ),
)
_hypothesis_settings.load_profile("cdp-explore" if EXPLORE else "cdp-deterministic")

API_KEY = "test-key-9f8e7d6c5b4a"  # long enough that a leak would be unmistakable
BASIC = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()


def post(receiver, path, body, *, auth=BASIC, strict=True, raw=None, headers=None, response_headers=False):
    """One raw POST to the receiver: (status, parsed JSON answer[, response headers])."""
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if auth:
        sent["Authorization"] = auth
    if strict:
        sent["X-Strict-Mode"] = "1"
    conn.request("POST", path, body=data, headers=sent)
    response = conn.getresponse()
    payload = json.loads(response.read() or b"null")
    conn.close()
    if response_headers:
        return response.status, payload, dict(response.getheaders())
    return response.status, payload


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the developer's config or CDP_* variables."""
    for name in list(os.environ):
        if name.startswith("CDP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CDP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def receiver():
    with ScriptedReceiver(api_key=API_KEY) as server:
        yield server


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch):
    """Invoke cdp in-process; stdout and stderr are kept apart, and neither may hold the key."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None, secret: str = API_KEY) -> Run:
        runner = CliRunner()
        result = runner.invoke(app, list(args), input=input, env=env, prog_name="cdp", catch_exceptions=False)
        run = Run(result.exit_code, result.stdout, result.stderr)
        assert secret not in run.stdout and secret not in run.stderr, "the API key leaked into output"
        assert "Traceback" not in run.stderr
        return run

    return invoke


@pytest.fixture
def send(cli, receiver, monkeypatch):
    """cdp pointed at the loopback receiver with a valid key."""
    monkeypatch.setenv("CDP_ENDPOINT", receiver.url)
    monkeypatch.setenv("CDP_API_KEY", API_KEY)
    return cli

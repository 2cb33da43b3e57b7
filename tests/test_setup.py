"""Day-one commands: connect test, completions, help (config and profiles: test_config.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdpcli.cli.app import app
from cdpcli.cli.completions import COMPLETION_SHELLS, completion_script
from cdpcli.serve import Receiver
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[1]


# -- connect test ---------------------------------------------------------------------------


def test_connect_test_ok_sends_an_empty_strict_batch(send, receiver):
    run = send("connect", "test")
    assert run.exit_code == 0, run.stderr
    [request] = receiver.requests
    assert request.path == "/v1/batch" and request.body["batch"] == []
    assert request.headers["x-strict-mode"] == "1"
    assert receiver.calls == []  # creates no data
    report = dict(line.split(None, 1) for line in run.stdout.splitlines())
    assert report["endpoint"] == receiver.url
    assert report["region"] == "us"
    assert report["auth"] == "Basic (key ****5b4a from env CDP_API_KEY)"
    assert report["status"] == "200"
    assert report["verdict"] == "ok: the key was accepted"


def test_connect_test_json(send, receiver):
    run = send("connect", "test", "--json")
    assert run.exit_code == 0
    result = json.loads(run.stdout)
    assert set(result) == {"ok", "status", "endpoint", "region", "auth", "latency_ms"}
    assert result["ok"] is True and result["status"] == 200 and result["auth"] == "Basic"
    assert result["latency_ms"] >= 0


def test_connect_test_send_event_delivers_one_call(send, receiver):
    run = send("connect", "test", "--send-event")
    assert run.exit_code == 0, run.stderr
    [call] = receiver.calls
    assert call["type"] == "track" and call["event"] == "cdp connect test"
    assert receiver.requests[0].path == "/v1/track"


def test_connect_test_wrong_key_exits_3_and_says_where_the_key_came_from(cli, receiver, monkeypatch):
    monkeypatch.setenv("CDP_ENDPOINT", receiver.url)
    run = cli("connect", "test", "--api-key", "wrong-key-000000", secret="wrong-key-000000")
    assert run.exit_code == 3
    assert "failed: the key was rejected" in run.stdout
    assert "Hint: the key came from --api-key" in run.stderr
    assert (
        cli(
            "config", "set", "api-key", "--profile", "ci", input="wrong-key-111111\n", secret="wrong-key-111111"
        ).exit_code
        == 0
    )
    run = cli("connect", "test", "--profile", "ci", secret="wrong-key-111111")
    assert run.exit_code == 3
    assert "the key came from profile ci" in run.stderr


def test_connect_test_bearer_key(cli):
    key = "pk_us_0123456789abcdef"
    with Receiver(api_key=key) as receiver:
        run = cli("connect", "test", "--json", "--api-key", key, "--endpoint", receiver.url, secret=key)
        assert run.exit_code == 0, run.stderr
        assert json.loads(run.stdout)["auth"] == "Bearer"
        assert receiver.requests[0].headers["authorization"] == f"Bearer {key}"


def test_connect_test_unreachable_exits_6(cli):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = cli(
        "connect", "test", "--api-key", API_KEY, "--endpoint", f"http://127.0.0.1:{port}", "--retries", "0", "--json"
    )
    assert run.exit_code == 6
    result = json.loads(run.stdout)
    assert result["ok"] is False and result["status"] is None and result["error"] == "connection refused"
    assert "unreachable (refused)" in run.stderr


def test_connect_test_timeout_exits_6(send, receiver):
    receiver.latency = 1.0
    run = send("connect", "test", "--timeout", "0.2", "--retries", "0")
    assert run.exit_code == 6
    assert "unreachable (timeout)" in run.stderr and "timed out after 0.2s" in run.stderr


def test_region_key_against_the_other_region_warns(cli):
    key = "pk_eu_0123456789abcdef"
    run = cli("connect", "test", "--dry-run", "--api-key", key, "--endpoint", "https://cdp.customer.io/v1", secret=key)
    assert run.exit_code == 0
    assert "Warning: the API key is for region eu but the endpoint is region us's" in run.stderr


# -- completions and help -------------------------------------------------------------------


@pytest.mark.parametrize("shell", COMPLETION_SHELLS)
def test_checked_in_completions_match_the_app(cli, shell):
    expected = completion_script(shell)
    assert (ROOT / "completions" / f"cdp.{shell}").read_text() == expected, (
        f"completions/cdp.{shell} is stale: run `cdp completions {shell} > completions/cdp.{shell}`"
    )
    run = cli("completions", shell)
    assert run.exit_code == 0 and run.stdout == expected


def complete_bash(words: str, tmp_path: Path) -> list[str]:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
        "_CDP_COMPLETE": "complete_bash",
        "CDP_CONFIG_DIR": os.environ["CDP_CONFIG_DIR"],
    }
    done = subprocess.run([sys.executable, "-m", "cdpcli"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_checked_in_cli_reference_matches_the_app():
    """docs/cli.md is generated from the app; a changed option or help text must regenerate it."""
    from cdpcli.cli.docs import cli_reference

    expected = cli_reference()
    assert (ROOT / "docs" / "cli.md").read_text() == expected, (
        "docs/cli.md is stale: run `python -m cdpcli.cli.docs > docs/cli.md`"
    )
    for command in (
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
        "import",
        "connect test",
        "config list",
        "serve",
    ):
        assert f"## `cdp {command}`" in expected
    assert "[env: CDP_API_KEY]" in expected and "\\[" not in expected


def test_completion_offers_regions_types_and_profiles(cli, tmp_path):
    assert cli("config", "set", "region", "eu", "--profile", "staging").exit_code == 0
    assert complete_bash("cdp track --region ", tmp_path) == ["us", "eu"]
    assert complete_bash("cdp import --type ", tmp_path) == ["identify", "track", "page", "screen", "group", "alias"]
    assert complete_bash("cdp track --profile ", tmp_path) == ["staging"]
    assert "track" in complete_bash("cdp tr", tmp_path)


def commands(group=None, prefix=()):
    import typer.main

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("command", list(commands()), ids=" ".join)
def test_every_command_has_a_summary_and_a_pasteable_example(cli, command):
    run = cli(*command, "--help")
    assert run.exit_code == 0
    text = " ".join(run.stdout.split())
    assert "Example: cdp " + " ".join(command) in text
    import typer.main

    click_command = typer.main.get_command(app)
    for part in command:
        click_command = click_command.commands[part]
    summary = (click_command.help or "").strip().splitlines()[0]
    assert summary.endswith(".") and len(summary) <= 100


# -- connect test: proxies and TLS (issue 16 items 3 and "what held") ----------------------


def closed_port() -> int:
    import socket

    with socket.socket() as sock:  # free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_connect_test_names_the_proxy_when_it_is_the_proxy_that_is_down(send, receiver, monkeypatch, variable):
    port = closed_port()
    monkeypatch.setenv(variable, f"http://proxyuser:proxysecret@127.0.0.1:{port}")
    run = send("connect", "test", "--retries", "0")
    assert run.exit_code == 6
    report = dict(line.split(None, 1) for line in run.stdout.splitlines())
    assert report["proxy"] == f"http://127.0.0.1:{port} (from {variable})"
    assert report["verdict"] == "failed: unreachable (proxy)"
    assert report["error"] == f"connection refused by the proxy http://127.0.0.1:{port} (from {variable})"
    assert "Hint: the proxy comes from the environment" in run.stderr and "NO_PROXY" in run.stderr
    assert "proxysecret" not in run.stdout + run.stderr and "proxyuser" not in run.stdout + run.stderr
    assert receiver.requests == []
    run = send("connect", "test", "--retries", "0", "--json")
    result = json.loads(run.stdout)
    assert result["proxy"] == f"http://127.0.0.1:{port} (from {variable})" and result["exit_code"] == 6
    # the same for a call: the error says it was the proxy
    run = send("track", "-u", "1", "-e", "E", "--retries", "0")
    assert run.exit_code == 6 and f"connection refused by the proxy http://127.0.0.1:{port}" in run.stderr


def test_connect_test_no_proxy_goes_direct(send, receiver, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    run = send("connect", "test", "--retries", "0")
    assert run.exit_code == 0, run.stderr
    assert "proxy" not in run.stdout
    assert len(receiver.requests) == 1


def test_connect_test_json_failure_carries_hint_and_exit_code(cli):
    port = closed_port()
    run = cli(
        "connect", "test", "--api-key", API_KEY, "--endpoint", f"http://127.0.0.1:{port}", "--retries", "0", "--json"
    )
    assert run.exit_code == 6
    [line] = run.stdout.splitlines()
    result = json.loads(line)
    assert result["ok"] is False and result["exit_code"] == 6
    assert result["hint"] == "nothing listens there: check --endpoint, or start `cdp serve`"


def test_connect_test_help_documents_tls_and_proxies(cli):
    text = " ".join(cli("connect", "test", "--help").stdout.split())
    for word in ("certificate checks", "SSL_CERT_FILE", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        assert word in text


@pytest.fixture
def tls_receiver(tmp_path):
    """A loopback HTTPS server with a self-signed certificate for 127.0.0.1: (url, cert path)."""
    import shutil
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"HTTPS://127.0.0.1:{server.server_address[1]}/v1", cert, seen
    finally:
        server.shutdown()
        server.server_close()


def test_tls_certificates_are_checked_and_ssl_cert_file_is_honoured(cli, tls_receiver, monkeypatch):
    url, cert, seen = tls_receiver
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    run = cli("connect", "test", "--api-key", API_KEY, "--endpoint", url, "--retries", "0")
    assert run.exit_code == 6
    assert "unreachable (tls)" in run.stdout and "certificate verify failed" in run.stdout
    assert "SSL_CERT_FILE" in run.stderr  # the hint says where a private CA goes
    run = cli("track", "-u", "1", "-e", "E", "--api-key", API_KEY, "--endpoint", url, "--retries", "0")
    assert run.exit_code == 6 and "TLS error" in run.stderr
    assert seen == []
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    run = cli("connect", "test", "--api-key", API_KEY, "--endpoint", url, "--retries", "0")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert seen == ["/v1/batch"]


@pytest.mark.parametrize(
    "proxy", ["ftp://proxyuser:proxysecret@127.0.0.1:1", "http://[::1", "socks5://proxyuser:proxysecret@127.0.0.1:1"]
)
def test_a_proxy_setting_httpx_refuses_is_a_usage_error(send, receiver, monkeypatch, proxy):
    import importlib.util

    if proxy.startswith("socks5") and importlib.util.find_spec("socksio") is not None:
        pytest.skip("with socksio installed httpx takes SOCKS proxies")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    for command in (["connect", "test"], ["track", "-u", "1", "-e", "E"]):
        run = send(*command, "--retries", "0", "--json")
        assert run.exit_code == 2, run.stderr
        assert run.stderr.startswith("Error: the proxy setting in the environment cannot be used (HTTP_PROXY=")
        assert "unexpected" not in run.stderr and "proxysecret" not in run.stdout + run.stderr
        assert json.loads(run.stdout)["exit_code"] == 2
    assert receiver.requests == []


def test_every_command_names_its_module_for_the_lean_start():
    """`cdp CMD` imports only CMD's module (run.COMMAND_MODULES): each command and group of the
    full app must be there, and found in the module it names."""
    import importlib

    from cdpcli.cli.run import COMMAND_MODULES

    names = {info.name or info.callback.__name__ for info in app.registered_commands}
    names |= {info.name for info in app.registered_groups}
    assert names == set(COMMAND_MODULES)
    for name, module in COMMAND_MODULES.items():
        source = Path(importlib.import_module(f"cdpcli.cli.{module}").__file__).read_text()
        assert f'"{name}"' in source or f"def {name}(" in source or f"{name} = app.command" in source, (name, module)


def test_a_command_starts_without_importing_the_others():
    probe = (
        "import sys; from cdpcli.cli.run import app_for; app_for(['track']); "
        "print(sorted(m for m in sys.modules if m.startswith('cdpcli.cli.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = done.stdout
    assert "cdpcli.cli.calls" in loaded
    for other in ("cdpcli.cli.operations", "cdpcli.cli.expect", "cdpcli.cli.serve", "cdpcli.cli.import_"):
        assert other not in loaded, other

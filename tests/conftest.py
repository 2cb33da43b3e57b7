"""Shared fixtures: a real receiver on loopback and a runner that checks every output for the key."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from cdpcli.cli import app
from cdpcli.server import Receiver

API_KEY = "test-key-9f8e7d6c5b4a"  # long enough that a leak would be unmistakable


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
    with Receiver(api_key=API_KEY) as server:
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

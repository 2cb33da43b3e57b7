"""The API key never shows in a message, whatever the command read before it resolved its
target: a key pasted where a file name goes (`cdp import KEY`) is masked like `-p KEY`, from
the flag, the environment or the profile alike. Each case has a key of its own: the keys to
hide are registered process-wide, so one registered by another test would hide a leak here."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import API_KEY


def _key(case: str) -> str:
    return f"sk_us_{case}_PASTED0123456789"  # a key shaped like Customer.io's, unique to the case


def _profile(tmp_path, key: str) -> dict[str, str]:
    """A config dir whose default profile stores `key` (private, as cdp config set writes it)."""
    path = tmp_path / "config.toml"
    path.write_text(f'[default]\napi-key = "{key}"\n')
    os.chmod(path, 0o600)
    os.chmod(tmp_path, 0o700)
    return {"CDP_CONFIG_DIR": str(tmp_path)}


@pytest.mark.parametrize("where", ["flag", "env", "profile"])
@pytest.mark.parametrize("mode", ["send", "dry-run", "json", "preflight"])
def test_a_key_pasted_as_a_file_name_is_masked(cli, tmp_path, monkeypatch, where, mode):
    key = _key(f"{where}_{mode}".replace("-", ""))
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    monkeypatch.delenv("CDP_PROFILE", raising=False)
    env = {"CDP_CONFIG_DIR": str(tmp_path / "none")}
    args = ["import", key, "--endpoint", "http://127.0.0.1:9/v1"]
    if where == "flag":
        args += ["--api-key", key]
    elif where == "env":
        env["CDP_API_KEY"] = key
    else:
        env = _profile(tmp_path, key)
    args += {"send": [], "dry-run": ["--dry-run"], "json": ["--json"], "preflight": ["--preflight"]}[mode]
    run = cli(*args, env=env, secret=key)
    assert run.exit_code == 2
    assert "cannot read ****" in run.stderr, run.stderr
    if mode == "json":
        assert json.loads(run.stdout)["error"].startswith("cannot read ****")


def test_the_profile_named_by_the_flag_is_the_one_hidden(cli, tmp_path, monkeypatch):
    key = _key("namedprofile")
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(f'[default]\napi-key = "{API_KEY}"\n[ci]\napi-key = "{key}"\n')
    os.chmod(path, 0o600)
    os.chmod(tmp_path, 0o700)
    run = cli("import", key, "--profile", "ci", env={"CDP_CONFIG_DIR": str(tmp_path)}, secret=key)
    assert run.exit_code == 2 and "cannot read ****" in run.stderr, run.stderr


@pytest.mark.parametrize("where", ["flag", "flag=", "env"])
@pytest.mark.parametrize(
    "args",
    [("{key}",), ("track", "-u", "1", "-e", "E", "{key}"), ("import", "--concurrency", "{key}")],
    ids=["command", "extra-argument", "bad-value"],
)
def test_a_key_in_a_usage_error_is_masked(cli, tmp_path, monkeypatch, where, args):
    """Click's usage errors (before any command runs) quote what was typed: `cdp KEY`."""
    key = _key(f"usage_{where}_{len(args)}_{args[0][:3]}".replace("=", "eq").replace("{", "").replace("}", ""))
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    env = {"CDP_CONFIG_DIR": str(tmp_path)}
    typed = [arg.format(key=key) for arg in args]
    if where == "flag":
        typed += ["--api-key", key]
    elif where == "flag=":
        typed += [f"--api-key={key}"]
    else:
        env["CDP_API_KEY"] = key
    run = cli(*typed, env=env, secret=key)  # fails on the key in stdout or stderr
    assert run.exit_code == 2 and run.stderr.startswith("Error: "), run.stderr
    quoted = args[0] != "import"  # Click quotes a command or an argument it does not take, not a bad number
    assert ("****" in run.stderr) == quoted, run.stderr


def test_keys_are_hidden_even_where_no_home_directory_can_be_found(cli, monkeypatch, tmp_path):
    """An arbitrary-UID container has no HOME and no passwd entry: Path.home() raises. Looking
    for the profile's key to hide must not turn the error being reported into a traceback."""
    import pathlib

    def no_home() -> pathlib.Path:
        raise RuntimeError("Could not determine home directory.")

    for name in ("CDP_CONFIG_DIR", "XDG_CONFIG_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pathlib.Path, "home", staticmethod(no_home))
    monkeypatch.chdir(tmp_path)
    run = cli("import", "missing.ndjson", "--api-key", "sk_no_home_key_123", secret="sk_no_home_key_123")
    assert run.exit_code == 2 and "cannot read missing.ndjson" in run.stderr, run.stderr

"""`cdp config` and the config file: values checked when set, a broken file never blocks what
flags and environment can do, and the file and its directories stay private."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cdpcli import config
from tests.conftest import API_KEY

KEY = "sk_us_SECRETkey0123456789"  # any leak would be unmistakable


@pytest.fixture
def umask():
    """Run with a given umask, restoring the old one."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def config_dir() -> Path:
    return Path(os.environ["CDP_CONFIG_DIR"])


def config_file() -> Path:
    return config_dir() / "config.toml"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- every value is checked when it is set ------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("endpoint", "notaurl", "endpoint 'notaurl' is not a URL"),
        ("endpoint", "127.0.0.1:8787", "is not a URL"),
        ("region", "mars", "region must be us or eu, not 'mars'"),
        ("timeout", "0", "timeout must be a positive number of seconds up to 86,400, not '0'"),
        ("timeout", "-1", "timeout must be a positive number"),
        ("timeout", "nan", "timeout must be a positive number"),
        ("timeout", "inf", "timeout must be a positive number"),
        ("timeout", "1e400", "timeout must be a positive number"),
        ("timeout", "soon", "timeout must be a positive number"),
        ("retries", "-1", "retries must be a whole number ≥ 0, not '-1'"),
        ("retries", "1.5", "retries must be a whole number"),
        ("retries", "1_0", "retries must be a whole number"),
        ("retries", "lots", "retries must be a whole number"),
        ("strict", "maybe", "strict must be true or false, not 'maybe'"),
        ("gzip", "2", "gzip must be true or false, not '2'"),
    ],
)
def test_config_set_refuses_a_bad_value_and_stores_nothing(cli, key, value, message):
    run = cli("config", "set", "--", key, value)  # `--`: so that -1 is a value, not an option
    assert run.exit_code == 2, run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith("Error: ") and message in run.stderr
    assert not config_file().exists()


def test_a_refused_value_leaves_the_stored_one(cli):
    assert cli("config", "set", "endpoint", "http://127.0.0.1:8787").exit_code == 0
    assert cli("config", "set", "endpoint", "notaurl").exit_code == 2
    run = cli("config", "get", "endpoint")
    assert (run.exit_code, run.stdout) == (0, "http://127.0.0.1:8787\n")
    # and every later command still works
    run = cli("track", "-u", "1", "-e", "E", "--dry-run")
    assert run.exit_code == 0 and run.stdout.startswith("POST http://127.0.0.1:8787/v1/track\n")


def test_endpoint_error_has_a_hint(cli):
    run = cli("config", "set", "endpoint", "notaurl")
    assert run.stderr.startswith("Error: endpoint 'notaurl' is not a URL") and "\nHint: " in run.stderr


def test_endpoint_is_checked_by_wire_base_url(cli, monkeypatch):
    """One place decides what an endpoint is: what wire.base_url refuses, config set refuses."""
    import cdpcli.settings
    import cdpcli.wire

    def refuse(endpoint, region):
        raise ValueError("refused by base_url")

    assert cdpcli.settings.base_url is cdpcli.wire.base_url
    monkeypatch.setattr(cdpcli.settings, "base_url", refuse)
    run = cli("config", "set", "endpoint", "https://cdp.customer.io/v1")
    assert run.exit_code == 2 and "Error: endpoint refused by base_url" in run.stderr


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("endpoint", "http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("endpoint", "HTTPS://cdp-eu.customer.io/v1", "HTTPS://cdp-eu.customer.io/v1"),
        ("region", "EU", "eu"),
        ("timeout", "2.5", 2.5),
        ("timeout", "30", 30.0),
        ("retries", "0", 0),
        ("retries", "12", 12),
        ("strict", "off", False),
        ("gzip", "yes", True),
    ],
)
def test_config_set_stores_a_good_value_typed(cli, key, value, stored):
    run = cli("config", "set", key, value)
    assert run.exit_code == 0, run.stderr
    assert config.load_config()["default"][key] == stored


@pytest.mark.parametrize(
    ("typed", "what"),
    [
        ("sk_us_SECRETab\ncd1234567", "a line break (CR or LF) at character 15"),
        ("sk_us_SECRETab\rcd1234567", "a line break (CR or LF) at character 15"),
        ("sk_us_SECRETab\x00cd1234567", "a control character (U+0000) at character 15"),
        ("sk_us_SECRETab\x7fcd1234567", "a control character (U+007F) at character 15"),
        ("sk_us_SECRETab\tcd1234567", "a control character (U+0009) at character 15"),
        ("sk_us_SECRETabécd1234567", "a non-ASCII character at character 15"),
    ],
)
def test_config_set_api_key_refuses_control_and_non_ascii_characters_without_echoing_it(cli, typed, what):
    # from stdin (the way the README recommends) ...
    run = cli("config", "set", "api-key", input=typed + "\n", secret="SECRETab")
    assert run.exit_code == 2 and run.stdout == ""
    assert f"Error: the API key holds {what} (the key is not shown)" in run.stderr
    assert "cd1234567" not in run.stderr and "****" not in run.stderr
    # ... and as an argument
    run = cli("config", "set", "api-key", typed, secret="SECRETab")
    assert run.exit_code == 2 and what in run.stderr and "cd1234567" not in run.stderr
    assert not config_file().exists()


def test_config_set_api_key_from_stdin_takes_the_whole_input(cli):
    """A key cut at its first line break would be stored silently wrong."""
    run = cli("config", "set", "api-key", input="sk_us_SECRETab\ncd1234567\n", secret="SECRETab")
    assert run.exit_code == 2 and "a line break (CR or LF) at character 15" in run.stderr
    assert not config_file().exists()


def test_a_bad_value_written_into_the_file_by_hand_names_the_file(cli):
    config_dir().mkdir(mode=0o700)
    config_file().write_text('[default]\ntimeout = nan\nregion = "eu"\n')
    config_file().chmod(0o600)
    run = cli("track", "-u", "1", "-e", "E", "--dry-run")
    assert run.exit_code == 2 and run.stdout == ""
    assert (
        f"Error: {config_file()} [default] timeout: timeout must be a positive number of seconds up to 86,400, not nan"
        in run.stderr
    )
    assert "Hint: store a valid value: cdp config set timeout VALUE --profile default" in run.stderr
    # a flag or the environment overrides it, as the precedence says
    assert cli("track", "-u", "1", "-e", "E", "--dry-run", "--timeout", "5").exit_code == 0
    assert cli("track", "-u", "1", "-e", "E", "--dry-run", env={"CDP_TIMEOUT": "5"}).exit_code == 0


# -- profiles that do not exist -------------------------------------------------------------


def test_config_list_of_an_unknown_profile_exits_2_naming_the_profiles(cli):
    assert cli("config", "set", "region", "eu", "--profile", "staging").exit_code == 0
    assert cli("config", "set", "region", "us", "--profile", "prod").exit_code == 0
    for args in (["list"], ["list", "--json"], ["get", "region"], ["unset", "region"]):
        run = cli("config", *args, "--profile", "typo")
        assert run.exit_code == 2, (args, run.stderr)
        message = f"no profile 'typo' in {config_file()} (profiles: prod, staging)"
        hint = "create it with: cdp config set region us --profile typo"
        if "--json" in args:  # errors under --json: one object on stdout
            assert json.loads(run.stdout) == {"ok": False, "error": message, "hint": hint, "exit_code": 2}
            continue
        assert run.stdout == ""
        assert f"Error: {message}\nHint: {hint}\n" in run.stderr
    run = cli("config", "list", "--profile", "staging")
    assert (run.exit_code, run.stdout) == (0, "[staging]\nregion = eu\n")
    # the default profile needs no creating
    run = cli("config", "list", "--profile", "default")
    assert run.exit_code == 0


# -- a broken config file -----------------------------------------------------------------

BROKEN = '[default]\nregion = "eu"\nendpoint http://127.0.0.1:8787\n'  # line 3 has no '='


def break_config(text: str | bytes = BROKEN) -> Path:
    config_dir().mkdir(mode=0o700, exist_ok=True)
    path = config_file()
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(0o600)
    return path


def mv_command(path: Path) -> str:
    return f"mv {shlex.quote(str(path))} {shlex.quote(str(path) + '.broken')}"


def test_a_broken_config_does_not_block_a_command_whose_settings_are_all_given(cli):
    path = break_config()
    run = cli(
        "track", "-u", "1", "-e", "E", "--dry-run", "--api-key", KEY, "--endpoint", "http://127.0.0.1:1", secret=KEY
    )
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("POST http://127.0.0.1:1/v1/track\n")
    warnings = [line for line in run.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1, run.stderr  # once
    assert f"Warning: ignoring config file {path}: it is not valid TOML: line 3, column 10:" in warnings[0]
    assert mv_command(path) in warnings[0]
    assert "Error" not in run.stderr


def test_a_broken_config_with_the_key_in_the_environment_goes_on(cli):
    path = break_config()
    run = cli("config", "list", "--resolved", "--json", env={"CDP_API_KEY": KEY, "CDP_REGION": "eu"}, secret=KEY)
    assert run.exit_code == 0, run.stderr
    settings = json.loads(run.stdout)["settings"]
    assert settings["api-key"] == {"value": "****6789", "source": "env CDP_API_KEY"}
    assert settings["region"] == {"value": "eu", "source": "env CDP_REGION"}
    assert run.stderr.count(f"Warning: ignoring config file {path}") == 1


def test_a_broken_config_that_is_needed_is_an_error_that_says_how_to_fix_it(cli):
    path = break_config()
    for args in (
        ["track", "-u", "1", "-e", "E"],
        ["track", "-u", "1", "-e", "E", "--dry-run"],
        ["config", "list", "--resolved"],
    ):
        run = cli(*args)
        assert run.exit_code == 2, (args, run.stderr)
        assert run.stdout == ""
        assert f"Error: config file {path} is not valid TOML: line 3, column 10: Expected '=' after a key" in run.stderr
        assert f"Hint: fix line 3 of {path}, or move it aside and start afresh: {mv_command(path)}" in run.stderr
        assert "--api-key or CDP_API_KEY" in run.stderr
    # a profile asked for by name can only come from the file
    run = cli("track", "-u", "1", "-e", "E", "--dry-run", "--api-key", KEY, "--profile", "prod", secret=KEY)
    assert run.exit_code == 2 and f"Error: config file {path} is not valid TOML" in run.stderr
    run = cli("track", "-u", "1", "-e", "E", "--dry-run", "--api-key", KEY, env={"CDP_PROFILE": "prod"}, secret=KEY)
    assert run.exit_code == 2 and f"Error: config file {path} is not valid TOML" in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["config", "set", "region", "us"],
        ["config", "unset", "region"],
        ["config", "get", "region"],
        ["config", "list"],
    ],
)
def test_config_commands_on_a_broken_file_exit_2_with_the_exact_mv(cli, args):
    path = break_config()
    run = cli(*args)
    assert run.exit_code == 2 and run.stdout == ""
    assert f"Error: config file {path} is not valid TOML: line 3" in run.stderr
    assert f"Hint: fix line 3 of {path}, or move it aside and start afresh: {mv_command(path)}" in run.stderr
    assert path.read_text() == BROKEN  # never rewritten: it may hold keys


def test_config_set_api_key_on_a_broken_file_then_the_suggested_mv_repairs_it(cli):
    path = break_config()
    run = cli("config", "set", "api-key", input=KEY + "\n", secret=KEY)
    assert run.exit_code == 2
    hint = run.stderr.split("start afresh: ", 1)[1].strip()
    assert hint == mv_command(path)
    subprocess.run(shlex.split(hint), check=True)  # the command works as printed
    assert path.with_name("config.toml.broken").read_text() == BROKEN
    assert cli("config", "set", "api-key", input=KEY + "\n", secret=KEY).exit_code == 0
    assert config.load_config() == {"default": {"api-key": KEY}}
    # with a .broken there already, the next suggestion does not overwrite it
    break_config()
    run = cli("config", "list")
    assert f"mv {shlex.quote(str(path))} {shlex.quote(str(path) + '.broken-2')}" in run.stderr


def test_a_config_file_that_is_not_utf8_names_its_line(cli):
    path = break_config(b'[default]\nregion = "eu"\n\n# caf\xe9\n')
    run = cli("config", "list")
    assert run.exit_code == 2
    assert f"Error: config file {path} is not UTF-8 text (byte 0xe9 at line 4)" in run.stderr
    assert f"Hint: fix line 4 of {path}" in run.stderr


def test_an_unterminated_config_file_names_its_last_line(cli):
    path = break_config('[default]\nregion = "eu\n')
    run = cli("config", "get", "region")
    assert run.exit_code == 2
    assert f"config file {path} is not valid TOML: line 2" in run.stderr


def test_a_config_file_that_is_a_directory_is_an_error_or_skipped(cli):
    config_file().mkdir(parents=True)
    run = cli("config", "list")
    assert run.exit_code == 2 and f"Error: config file {config_file()} is not a regular file" in run.stderr
    run = cli("track", "-u", "1", "-e", "E", "--dry-run", "--api-key", KEY, secret=KEY)
    assert run.exit_code == 0 and "Warning: ignoring config file" in run.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_config_file_that_is_a_fifo_does_not_hang(tmp_path):
    directory = tmp_path / "fifo-config"
    directory.mkdir(mode=0o700)
    os.mkfifo(directory / "config.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")} | {"CDP_CONFIG_DIR": str(directory)}
    try:
        run = subprocess.run(
            [sys.executable, "-m", "cdpcli", "config", "list"], env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("cdp config list hung on a FIFO config.toml")
    assert run.returncode == 2 and "is not a regular file" in run.stderr


# -- the file and its directories stay private ------------------------------------------------


def test_config_set_never_writes_through_a_planted_tmp_symlink(cli, tmp_path):
    config_dir().mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("victim\n")
    (config_dir() / "config.toml.tmp").symlink_to("../victim")
    run = cli("config", "set", "api-key", input=KEY + "\n", secret=KEY)
    assert run.exit_code == 0, run.stderr
    assert victim.read_text() == "victim\n"
    path = config_file()
    assert stat.S_ISREG(path.lstat().st_mode) and mode(path) == 0o600
    assert config.load_config() == {"default": {"api-key": KEY}}
    # no temp file left behind besides the planted one
    assert sorted(p.name for p in config_dir().iterdir()) == ["config.toml", "config.toml.tmp"]


def test_a_symlinked_config_file_is_refused(cli, tmp_path):
    config_dir().mkdir(mode=0o700)
    victim = tmp_path / "victim.toml"
    victim.write_text("")  # valid (empty) TOML: the refusal must not depend on the content
    config_file().symlink_to(victim)
    for args, stdin in ((["config", "set", "api-key"], KEY + "\n"), (["config", "set", "region", "eu"], None)):
        run = cli(*args, input=stdin, secret=KEY)
        assert run.exit_code == 2, run.stderr
        assert f"Error: config file {config_file()} is a symbolic link" in run.stderr
        assert "Hint: remove the link" in run.stderr
    assert victim.read_text() == ""
    assert config_file().is_symlink()


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_config_directories_cdp_creates_are_0700_and_the_file_0600_whatever_the_umask(
    cli, umask, tmp_path, monkeypatch, mask
):
    base = tmp_path / "home"
    base.mkdir()
    base.chmod(0o755)
    monkeypatch.setenv("CDP_CONFIG_DIR", str(base / "a" / "b" / "cdp"))
    umask(mask)
    run = cli("config", "set", "api-key", input=KEY + "\n", secret=KEY)
    assert run.exit_code == 0, run.stderr
    for directory in (base / "a", base / "a" / "b", base / "a" / "b" / "cdp"):
        assert mode(directory) == 0o700, directory
    assert mode(base) == 0o755  # not ours: left alone
    assert mode(config_file()) == 0o600
    assert "Warning" not in run.stderr


def test_config_file_goes_back_to_0600_when_rewritten(cli):
    assert cli("config", "set", "region", "eu").exit_code == 0
    config_file().chmod(0o644)
    run = cli("config", "set", "region", "us")
    assert run.exit_code == 0
    assert mode(config_file()) == 0o600


def test_the_default_config_dir_and_new_parents_are_0700(cli, umask, tmp_path, monkeypatch):
    monkeypatch.delenv("CDP_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg" / "config"))
    umask(0o022)
    assert cli("config", "set", "region", "eu").exit_code == 0
    assert (tmp_path / "xdg" / "config" / "cdp" / "config.toml").is_file()
    for directory in (tmp_path / "xdg", tmp_path / "xdg" / "config", tmp_path / "xdg" / "config" / "cdp"):
        assert mode(directory) == 0o700, directory


@pytest.mark.parametrize("bits", [0o770, 0o707, 0o777, 0o1777])
def test_a_config_directory_others_can_write_gets_a_warning(cli, bits):
    assert cli("config", "set", "region", "eu").exit_code == 0
    config_dir().chmod(bits)
    expected = f"Warning: config directory {config_dir()} can be written by other users"
    run = cli("config", "set", "region", "us")
    assert run.exit_code == 0 and run.stderr.count(expected) == 1, run.stderr
    assert f"chmod go-w {config_dir()}" in run.stderr
    run = cli("track", "-u", "1", "-e", "E", "--dry-run")
    assert run.exit_code == 0 and run.stderr.count(expected) == 1, run.stderr
    assert mode(config_dir()) == bits  # a warning, not a change behind the user's back


def test_a_private_config_directory_gets_no_warning(cli):
    assert cli("config", "set", "region", "eu").exit_code == 0
    config_dir().chmod(0o750)  # group may read and enter, not write
    run = cli("track", "-u", "1", "-e", "E", "--dry-run")
    assert run.exit_code == 0 and "Warning" not in run.stderr


def test_a_config_dir_that_cannot_be_made_is_an_error(cli, tmp_path, monkeypatch):
    (tmp_path / "plain-file").write_text("")
    monkeypatch.setenv("CDP_CONFIG_DIR", str(tmp_path / "plain-file" / "cdp"))
    run = cli("config", "set", "region", "eu")
    assert run.exit_code == 2 and run.stdout == ""
    assert "Error: cannot create config directory" in run.stderr and "Hint: set CDP_CONFIG_DIR" in run.stderr


def test_config_set_api_key_in_a_subprocess_is_private(tmp_path):
    """The same as a user's shell: a real process, umask 000, stdin piped."""
    directory = tmp_path / "sub" / "cdp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")} | {"CDP_CONFIG_DIR": str(directory)}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, runpy, sys; os.umask(0); sys.argv = ['cdp', 'config', 'set', 'api-key']; runpy.run_module('cdpcli', run_name='__main__')",
        ],
        input=KEY + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert KEY not in run.stdout + run.stderr and "****6789" in run.stderr
    assert mode(directory) == 0o700 and mode(directory.parent) == 0o700
    assert mode(directory / "config.toml") == 0o600


# -- config and precedence ------------------------------------------------------------------


def test_set_api_key_from_stdin_is_stored_private_and_never_shown(cli):
    key = "sk_us_topsecret987654"
    run = cli("config", "set", "api-key", input=key + "\n", secret=key)
    assert run.exit_code == 0, run.stderr
    assert "****7654" in run.stderr
    path = config_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert key in path.read_text()
    for args in (
        ["config", "get", "api-key"],
        ["config", "list"],
        ["config", "list", "--resolved"],
        ["config", "list", "--json"],
    ):
        run = cli(*args, secret=key)
        assert run.exit_code == 0 and "****7654" in run.stdout


def test_set_api_key_as_argument_warns_about_history(cli):
    run = cli("config", "set", "api-key", "plain-key-123456", secret="plain-key-123456")
    assert run.exit_code == 0
    assert "shell history" in run.stderr


def test_config_set_get_unset_and_validation(cli):
    assert cli("config", "set", "region", "eu", "--profile", "staging").exit_code == 0
    assert cli("config", "set", "timeout", "2.5", "--profile", "staging").exit_code == 0
    assert cli("config", "set", "strict", "false", "--profile", "staging").exit_code == 0
    run = cli("config", "get", "region", "--profile", "staging")
    assert (run.exit_code, run.stdout) == (0, "eu\n")
    assert cli("config", "get", "strict", "--profile", "staging").stdout == "false\n"
    run = cli("config", "list", "--profile", "staging")
    assert run.stdout == "[staging]\nregion = eu\ntimeout = 2.5\nstrict = false\n"
    assert cli("config", "unset", "timeout", "--profile", "staging").exit_code == 0
    run = cli("config", "get", "timeout", "--profile", "staging")
    assert run.exit_code == 2 and "timeout is not set in profile staging" in run.stderr
    run = cli("config", "set", "region", "mars")
    assert run.exit_code == 2 and "region must be us or eu, not 'mars'" in run.stderr
    run = cli("config", "set", "retries", "lots")
    assert run.exit_code == 2 and "retries must be a whole number" in run.stderr
    run = cli("config", "set", "colour", "blue")
    assert run.exit_code == 2 and "unknown setting 'colour'" in run.stderr and "Hint: settings: api-key" in run.stderr


def test_config_readable_by_others_warns(cli):
    assert cli("config", "set", "region", "eu").exit_code == 0
    config_file().chmod(0o644)
    run = cli("config", "list")
    assert "can be read by other users" in run.stderr and "chmod 600" in run.stderr


def test_warnings_are_said_before_an_error_resolving_ends_in(cli):
    assert cli("config", "set", "region", "eu").exit_code == 0
    config_file().chmod(0o644)
    run = cli("track", "-u", "1", "-e", "E", "--dry-run", "--profile", "nosuch")
    assert run.exit_code == 2
    warned, failed = run.stderr.find("can be read by other users"), run.stderr.find("no profile 'nosuch'")
    assert 0 <= warned < failed, run.stderr


def test_each_resolve_returns_its_own_warnings_and_keeps_none(cli):
    """A library caller (a long-lived worker) resolves many times: each Target says what is
    wrong with the file, and nothing is remembered between calls."""
    from cdpcli.errors import UsageError
    from cdpcli.target import Target

    assert cli("config", "set", "region", "eu").exit_code == 0
    config_file().chmod(0o644)
    first, second = Target.resolve(), Target.resolve()
    assert len(first.warnings) == 1 and "can be read by other users" in first.warnings[0]
    assert second.warnings == first.warnings and second.warnings is not first.warnings
    config_file().chmod(0o600)
    assert Target.resolve().warnings == []
    said: list[str] = []
    config_file().chmod(0o644)
    with pytest.raises(UsageError):
        Target.resolve(profile="nosuch", warnings=said)
    assert len(said) == 1  # kept by the caller although resolving failed


def resolved(cli, *args: str, env: dict[str, str] | None = None) -> dict:
    run = cli("config", "list", "--resolved", "--json", *args, env=env)
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)["settings"]


@pytest.mark.parametrize(
    ("flag", "env", "profile", "value", "source"),
    [
        (None, None, None, "us", "default"),
        (None, None, "eu", "eu", "profile default"),
        (None, "eu", None, "eu", "env CDP_REGION"),
        (None, "eu", "us", "eu", "env CDP_REGION"),
        ("us", "eu", "eu", "us", "--region"),
        ("eu", None, "us", "eu", "--region"),
    ],
)
def test_precedence_flag_env_profile_default(cli, flag, env, profile, value, source):
    if profile:
        assert cli("config", "set", "region", profile).exit_code == 0
    args = ["--region", flag] if flag else []
    settings = resolved(cli, *args, env={"CDP_REGION": env} if env else None)
    assert settings["region"] == {"value": value, "source": source}
    expected_base = {"us": "https://cdp.customer.io/v1", "eu": "https://cdp-eu.customer.io/v1"}[value]
    assert settings["endpoint"]["value"] == expected_base


def test_profile_selection_by_flag_and_env(cli, send, receiver):
    assert cli("config", "set", "endpoint", receiver.url, "--profile", "local").exit_code == 0
    assert cli("config", "set", "retries", "7", "--profile", "local").exit_code == 0
    assert resolved(cli, "--profile", "local")["retries"] == {"value": "7", "source": "profile local"}
    assert resolved(cli, env={"CDP_PROFILE": "local"})["retries"] == {"value": "7", "source": "profile local"}
    assert resolved(cli, "--profile", "local", "--retries", "1")["retries"] == {"value": "1", "source": "--retries"}
    assert resolved(cli, "--profile", "local", env={"CDP_RETRIES": "2"})["retries"]["source"] == "env CDP_RETRIES"
    run = cli("track", "-u", "1", "-e", "E", "--profile", "nope", "--dry-run")
    assert run.exit_code == 2 and "no profile 'nope'" in run.stderr and "profiles: local" in run.stderr


def test_profile_settings_are_used_to_send(cli, monkeypatch, receiver):
    assert cli("config", "set", "api-key", "--profile", "local", input=API_KEY + "\n").exit_code == 0
    assert cli("config", "set", "endpoint", receiver.url, "--profile", "local").exit_code == 0
    assert cli("config", "set", "strict", "false", "--profile", "local").exit_code == 0
    run = cli("track", "-u", "1", "-e", "E", "--profile", "local")
    assert run.exit_code == 0, run.stderr
    assert "x-strict-mode" not in receiver.requests[0].headers
    monkeypatch.setenv("CDP_STRICT", "1")  # env beats the profile
    assert cli("track", "-u", "1", "-e", "E", "--profile", "local").exit_code == 0
    assert receiver.requests[1].headers["x-strict-mode"] == "1"


def test_config_set_api_key_with_bytes_that_are_not_utf8_on_stdin(tmp_path):
    """A real process: stdin bytes that are not UTF-8 are a usage error, never a traceback."""
    directory = tmp_path / "bytes" / "cdp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")} | {"CDP_CONFIG_DIR": str(directory)}
    run = subprocess.run(
        [sys.executable, "-m", "cdpcli", "config", "set", "api-key"],
        input=b"sk_us_SECRET\xffabcdef\n",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert run.stdout == b""
    assert b"Error: the API key holds bytes that are not UTF-8 text at character 13" in run.stderr
    assert b"SECRET" not in run.stderr and b"Traceback" not in run.stderr
    assert not (directory / "config.toml").exists()


def test_config_set_and_unset_keep_what_else_the_file_holds(cli):
    """cdp reads only profile tables, but a rewrite must not drop what a user wrote by hand."""
    config_dir().mkdir(mode=0o700)
    config_file().write_text(
        'note = "written by hand"\n\n[default]\nregion = "eu"\n\n[prod]\nretries = 5\nextra = [1, 2]\n'
    )
    config_file().chmod(0o600)
    assert cli("config", "set", "timeout", "3", "--profile", "prod").exit_code == 0
    assert cli("config", "unset", "region").exit_code == 0
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    assert tomllib.loads(config_file().read_text()) == {
        "note": "written by hand",
        "prod": {"retries": 5, "extra": [1, 2], "timeout": 3.0},
    }


def test_a_hand_edited_endpoint_password_is_never_listed(cli, tmp_path):
    """`config set` refuses user:password@, but a file edited by hand may hold one."""
    path = tmp_path / "config"
    path.mkdir(mode=0o700)
    (path / "config.toml").write_text('[default]\nendpoint = "http://user:s3cret-pass@127.0.0.1:9/v1"\n')
    (path / "config.toml").chmod(0o600)
    for args in (("config", "list"), ("config", "list", "--json"), ("config", "get", "endpoint")):
        run = cli(*args)
        assert "s3cret-pass" not in run.stdout + run.stderr, args
        assert "****@127.0.0.1:9" in run.stdout, args


def test_an_unknown_setting_in_the_file_is_named_not_silently_ignored(cli, tmp_path):
    path = tmp_path / "config"
    path.mkdir(mode=0o700)
    (path / "config.toml").write_text('[default]\napi_key = "test-key-9f8e7d6c5b4a"\n')
    (path / "config.toml").chmod(0o600)
    run = cli("track", "--user", "1", "--event", "E", "--dry-run")
    assert "ignoring unknown setting api_key (did you mean api-key?)" in run.stderr

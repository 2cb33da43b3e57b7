"""The surface of `cdp` (issue 11, "Friendly at the surface"): help, usage errors, NO_COLOR."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from cdpcli.cli.app import app
from cdpcli.cli.import_ import IMPORT_PANELS

ROOT = Path(__file__).resolve().parent.parent


def cdp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """cdp in its own process (its real main(): start-up, lean app, exit code)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cdpcli", *args], capture_output=True, text=True, env=full, timeout=60)


def help_text(cli, *command: str) -> str:
    run = cli(*command, "--help", env={"COLUMNS": "80"})
    assert run.exit_code == 0 and run.stderr == ""
    return run.stdout


def option_row(text: str, flag: str) -> str:
    """The help row of an option (its first line)."""
    for line in text.splitlines():
        if line.startswith("│") and re.search(rf"(^|[\s,│]){re.escape(flag)}([\s,]|$)", line):
            return line
    raise AssertionError(f"{flag} not in help")


@pytest.mark.parametrize(
    ("command", "flag", "metavar"),
    [
        ("track", "--user,--user-id", "ID"),
        ("track", "--anonymous-id", "ID"),
        ("track", "--message-id", "ID"),
        ("group", "--group,--group-id", "ID"),
        ("alias", "--previous-id", "ID"),
        ("track", "--event", "NAME"),
        ("page", "--name", "NAME"),
        ("track", "--profile", "NAME"),
        ("identify", "--trait", "KEY=VALUE|KEY:=JSON"),
        ("track", "--property", "KEY=VALUE|KEY:=JSON"),
        ("track", "--context-field", "KEY=VALUE|KEY:=JSON"),
        ("identify", "--traits", "JSON|@FILE"),
        ("track", "--properties", "JSON|@FILE"),
        ("track", "--context", "JSON|@FILE"),
        ("track", "--integrations", "JSON|@FILE"),
        ("track", "--region", "us|eu"),
        ("import", "--type", "TYPE"),
        ("serve", "--port", "PORT"),
        ("serve", "--latency-ms", "MS"),
        ("serve", "--seed", "N"),
        ("serve", "--max-calls", "N"),
        ("serve", "--rate-limit", "N"),
        ("serve", "--fail-first", "K"),
        ("serve", "--status-for", "EVENT=CODE"),
    ],
)
def test_help_shows_metavars(cli, command, flag, metavar):
    row = option_row(help_text(cli, command), flag)
    assert f" {metavar} " in row and "<str>" not in row


def test_help_names_the_import_files_and_call_types(cli):
    text = help_text(cli, "import")
    assert "Usage: cdp import [OPTIONS] [FILE]..." in text
    assert "identify, track, page, screen, group, alias" in " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("command", [("track",), ("import",), ("connect", "test"), ("config", "list"), ()])
def test_plain_flags_show_no_type(cli, command):
    text = help_text(cli, *command)
    assert "<bool>" not in text and "<int>" not in text.split("Output")[-1]
    for flag in ("--help", "--json", "--verbose", "--dry-run", "--strict", "--gzip", "--resolved", "--version"):
        if flag in text:
            assert "<" not in option_row(text, flag)
    if "--verbose" in text:
        assert "[default: 0]" not in text and "INTEGER" not in text


@pytest.mark.parametrize(
    ("flag", "variable"),
    [
        ("--api-key", "CDP_API_KEY"),
        ("--region", "CDP_REGION"),
        ("--endpoint", "CDP_ENDPOINT"),
        ("--profile", "CDP_PROFILE"),
        ("--timeout", "CDP_TIMEOUT"),
        ("--retries", "CDP_RETRIES"),
        ("--strict", "CDP_STRICT"),
        ("--gzip", "CDP_GZIP"),
    ],
)
def test_every_env_backed_option_says_so(cli, flag, variable):
    text = help_text(cli, "track")
    assert f"[env: {variable}]" in text
    lines = text.splitlines()
    at = lines.index(option_row(text, flag))
    # on the option's own rows, before the next option
    following = []
    for line in lines[at + 1 :]:
        if re.match(r"│ (\*  )?--", line) or line.startswith("╰"):
            break
        following.append(line)
    assert f"[env: {variable}]" in "".join([lines[at], *following])


def test_env_is_read_by_cdp_not_by_click_flag_env_profile_order_kept(cli, monkeypatch):
    """The [env: …] notes are text: precedence stays cdp's own (flag > env > profile > default)."""
    monkeypatch.setenv("CDP_REGION", "eu")
    run = cli("config", "list", "--resolved", "--json")
    assert json.loads(run.stdout)["settings"]["region"] == {"value": "eu", "source": "env CDP_REGION"}
    run = cli("config", "list", "--resolved", "--json", "--region", "us")
    assert json.loads(run.stdout)["settings"]["region"] == {"value": "us", "source": "--region"}


def commands(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("command", list(commands()), ids=" ".join)
def test_examples_fit_80_columns_unbroken(cli, command):
    """Every `cdp …` example of the docstring is on one line of the help at COLUMNS=80.
    (serve's help is cdpcli/cli/serve.py's, outside this change.)"""
    click_command = typer.main.get_command(app)
    for part in command:
        click_command = click_command.commands[part]
    examples = [
        m.strip() for m in re.findall(r"(?:^|:\s)\s*((?:\S+ \| )?cdp \S.*?)(?:\s{3}\(|$)", click_command.help, re.M)
    ]
    assert examples
    lines = [line.strip() for line in help_text(cli, *command).splitlines()]
    for example in examples:
        assert any(example in line for line in lines), example
    assert all(len(line) <= 80 for line in help_text(cli, *command).splitlines())


def test_import_help_fits_80_columns_in_140_lines_and_docs_keep_each_long_help(cli):
    """Its options in panels with short help; the full help of each is in docs/cli.md's
    "Options in detail" (after the docstring's form feed, which --help leaves out)."""
    lines = help_text(cli, "import").splitlines()
    assert len(lines) <= 140 and max(map(len, lines)) <= 80
    assert "Options in detail" not in "\n".join(lines)
    general = lines.index(next(line for line in lines if line.startswith("╭─ Options ")))
    assert lines[general + 1].startswith("│ --help") and lines[general + 2].startswith("╰")  # the rest in panels
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = reference[reference.index("## `cdp import`") :].split("\n## ")[0]
    details = section.split("**Options in detail**")[1]
    commands = typer.main.get_command(app).commands
    shared = {  # the operations' bulk options: one declaration, whole help in both commands
        param.name: param.help for param in commands["person"].commands["delete"].params
    }
    panelled = [
        param for param in commands["import"].params if getattr(param, "rich_help_panel", None) in IMPORT_PANELS
    ]
    own = [param for param in panelled if param.name not in shared]
    assert len(own) >= 25 and len(panelled) - len(own) == 5
    for param in panelled:
        if param.name in shared:
            assert param.help == shared[param.name]
        else:
            assert f"\n* `{param.opts[0]}" in details, f"{param.opts[0]} has no long help in docs/cli.md"


# -- one error style -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("track", "-u", "1"), "Error: Missing option '--event' / '-e'."),
        (("track", "-u", "1", "-e", "E", "--bogus"), "Error: No such option: --bogus"),
        (("track", "-u", "1", "-e", "E", "--retries", "abc"), "Error: Invalid value for '--retries'"),
    ],
)
def test_usage_errors_read_error_and_hint_without_a_box(cli, args, message):
    for run in (cli(*args), cdp(*args)):
        code = run.exit_code if hasattr(run, "exit_code") else run.returncode
        assert code == 2 and run.stdout == ""
        lines = run.stderr.splitlines()
        assert lines[0].startswith(message) and lines[1].startswith("Hint: see `cdp ")
        assert len(lines) == 2 and "╭" not in run.stderr and "│" not in run.stderr


def test_usage_errors_under_json_are_one_object_too(cli):
    for run in (cli("track", "-u", "1", "--json"), cdp("track", "-u", "1", "--json")):
        code = run.exit_code if hasattr(run, "exit_code") else run.returncode
        assert code == 2
        assert json.loads(run.stdout) == {
            "ok": False,
            "error": "Missing option '--event' / '-e'.",
            "hint": "see `cdp track --help`",
            "exit_code": 2,
        }
        assert run.stderr.splitlines() == ["Error: Missing option '--event' / '-e'.", "Hint: see `cdp track --help`"]


@pytest.mark.parametrize("args", [("track", "--help"), ("--help",), ("config",), ("import", "--help")])
def test_no_color_help_has_no_ansi_codes_on_a_forced_terminal(args):
    forced = cdp(*args, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stdout  # the terminal is forced: without NO_COLOR there is style
    run = cdp(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[" not in run.stdout + run.stderr and "Usage:" in run.stdout


def test_no_color_errors_have_no_ansi_codes():
    run = cdp("track", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert run.returncode == 2 and "\x1b[" not in run.stderr


# -- only the options a command uses -------------------------------------------------------


@pytest.mark.parametrize("flag", ["--dry-run", "--quiet", "-q", "-v", "--verbose"])
def test_config_list_refuses_sending_options(cli, flag):
    """--gzip stays: it is a setting --resolved shows; `config list --dry-run --gzip` fails."""
    run = cli("config", "list", flag, "--gzip")
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith(f"Error: No such option: {flag}")


def test_config_list_takes_the_connection_settings_it_resolves(cli):
    run = cli(
        "config", "list", "--resolved", "--json", "--region", "eu", "--timeout", "3", "--retries", "1", "--no-gzip"
    )
    assert run.exit_code == 0
    settings = json.loads(run.stdout)["settings"]
    assert settings["region"]["value"] == "eu" and settings["timeout"] == {"value": "3.0", "source": "--timeout"}
    text = help_text(cli, "config", "list")
    for flag in ("--api-key", "--region", "--endpoint", "--profile", "--timeout", "--retries", "--strict", "--json"):
        assert flag in text
    assert "--dry-run" not in text and "--quiet" not in text and "--verbose" not in text


@pytest.mark.parametrize(
    "command",
    [
        ("config", "set", "region", "eu"),
        ("config", "get", "region"),
        ("config", "unset", "region"),
        ("completions", "bash"),
        ("serve",),
    ],
)
@pytest.mark.parametrize("flag", ["--dry-run", "--gzip"])
def test_commands_without_sending_options_refuse_them(cli, command, flag):
    run = cli(*command, flag)
    assert run.exit_code == 2 and run.stderr.startswith(f"Error: No such option: {flag}")

"""Under --json every outcome is one JSON object on stdout (issue #10 item 12), including the
usage errors Typer catches before a command runs; run as a real process, through main()."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def cdp(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "CDP_CONFIG_DIR": str(cwd / "cfg")}
    return subprocess.run(
        [sys.executable, "-m", "cdpcli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args, error",
    [
        (("track", "--user", "1", "--json"), "Missing option '--event'"),
        (
            ("track", "--user", "1", "--event", "E", "--retries", "abc", "--json", "--dry-run"),
            "Invalid value for '--retries'",
        ),
        (("import", "--no-such-flag", "--json"), "No such option: --no-such-flag"),
    ],
)
def test_usage_errors_before_a_command_runs_are_one_json_object(tmp_path, args, error):
    run = cdp(*args, cwd=tmp_path)
    assert run.returncode == 2
    [line] = run.stdout.splitlines()
    result = json.loads(line)
    assert result["ok"] is False and result["exit_code"] == 2 and error in result["error"]
    assert result["hint"] == f"see `cdp {args[0]} --help`"
    assert error in run.stderr  # the human message stays on stderr


def test_without_json_usage_errors_stay_on_stderr(tmp_path):
    run = cdp("track", "--user", "1", cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert "Missing option '--event'" in run.stderr


def test_json_success_and_help_are_unchanged(tmp_path):
    run = cdp("track", "--user", "1", "--event", "E", "--dry-run", "--json", cwd=tmp_path)
    assert run.returncode == 0
    assert json.loads(run.stdout)["body"]["event"] == "E"
    assert cdp("track", "--help", "--json", cwd=tmp_path).returncode == 0

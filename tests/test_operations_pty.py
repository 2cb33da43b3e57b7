"""Issue 12: the confirmation of deletes under a real terminal (a pty): cdp shows the count and
the first ids, asks `Delete N people from Customer.io? [y/N]`, sends on y and nothing on n."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import API_KEY

pytestmark = pytest.mark.slow  # real terminals (pty) and processes

pty = pytest.importorskip("pty")


def run_in_pty(args: list[str], answer: bytes | None, env: dict[str, str]) -> tuple[int, str, str]:
    """cdp with stdin and stderr on a pty (stdout a pipe, kept apart): waits for the question,
    types `answer`; returns (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", *args],
        stdin=slave,
        stderr=slave,
        stdout=subprocess.PIPE,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 60
    answered = answer is None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
            if not answered and b"[y/N] " in shown:
                os.write(master, answer)
                answered = True
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    assert API_KEY not in shown.decode() and API_KEY not in stdout.decode()
    return process.returncode, stdout.decode(), shown.decode().replace("\r\n", "\n")


@pytest.fixture
def env(receiver, tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    environ.update(CDP_ENDPOINT=receiver.url, CDP_API_KEY=API_KEY, CDP_CONFIG_DIR=str(tmp_path / "config"))
    environ["NO_COLOR"] = "1"
    return environ


def test_yes_at_the_prompt_deletes_every_id(receiver, env, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"user-{n}\n" for n in range(1204)))
    code, stdout, terminal = run_in_pty(["person", "delete", "--from", str(ids), "--json"], b"y\n", env)
    assert code == 0, terminal
    shown = ", ".join(f"user-{n}" for n in range(10))
    assert f"1,204 people: {shown}, and 1,194 more (--dry-run prints every request)" in terminal
    assert "Delete 1,204 people from Customer.io? [y/N] " in terminal
    assert '"sent":1204' in stdout
    assert len(receiver.calls) == 1204


def test_no_at_the_prompt_sends_nothing(receiver, env):
    code, stdout, terminal = run_in_pty(["person", "suppress", "--user", "42"], b"n\n", env)
    assert code == 1
    assert "1 person: 42" in terminal
    assert "Suppress 1 person in Customer.io" in terminal
    assert "not confirmed: nothing was sent" in terminal
    assert stdout == ""
    assert receiver.requests == []


def test_enter_is_no(receiver, env):
    code, _, terminal = run_in_pty(["object", "delete", "--object", "acme", "--anonymous-id", "a"], b"\n", env)
    assert code == 1
    assert "Delete 1 object from Customer.io? [y/N] " in terminal
    assert receiver.requests == []


def test_yes_flag_and_dry_run_do_not_ask_on_a_terminal(receiver, env):
    code, stdout, terminal = run_in_pty(["person", "delete", "--user", "42", "--yes"], None, env)
    assert code == 0 and "[y/N]" not in terminal
    assert stdout.startswith("track accepted: HTTP 200")
    code, stdout, terminal = run_in_pty(["person", "delete", "--user", "43", "--dry-run"], None, env)
    assert code == 0 and "[y/N]" not in terminal
    assert [call["userId"] for call in receiver.calls] == ["42"]


@pytest.mark.slow
def test_the_question_counts_distinct_ids_and_says_what_was_dropped(receiver, env, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# churned accounts\nuser-1\nuser-2\nuser-1\n")
    code, stdout, terminal = run_in_pty(["person", "delete", "--from", str(ids)], b"y\n", env)
    assert code == 0, terminal
    assert "2 people: user-1, user-2\n(dropped: 1 repeated id, 1 comment line)\n" in terminal
    assert "Delete 2 people from Customer.io? [y/N] " in terminal
    assert sorted(call["userId"] for call in receiver.calls) == ["user-1", "user-2"]

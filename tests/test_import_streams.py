"""A pipe, a FIFO or /dev/stdin named as FILE (`cdp import <(zcat x.gz)`, `mkfifo f`,
`cat f | cdp import /dev/stdin`) is read as stdin is: opened once, by the import, nothing
looking at its bytes before (a look took them: the first 128 KB of a 20,000-line pipe were
lost, a gzip pipe read as empty, a FIFO waited for good on a second writer)."""

from __future__ import annotations

import gzip
import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cdpcli.errors import UsageError
from cdpcli.importing.sources import make_sources
from tests.conftest import API_KEY

LINES = 5000  # ~400 KB: well past the 128 KB a probe used to take


def calls(count: int) -> bytes:
    return b"".join(
        json.dumps(
            {"type": "track", "userId": f"u-{n}", "event": "E", "properties": {"n": n, "pad": "x" * 40}}
        ).encode()
        + b"\n"
        for n in range(1, count + 1)
    )


def env_for(receiver, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "TMPDIR": str(tmp_path),
        "CDP_API_KEY": API_KEY,
        "CDP_ENDPOINT": receiver.url,
        "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
    }


def run_cdp(args: list[str], receiver, tmp_path: Path, **popen) -> tuple[int, dict, str]:
    """cdp in a process of its own (a real pipe or FIFO needs one); its exit code, its --json
    summary and its stderr. A run that waits for good fails the test after 60 s."""
    return run_command([sys.executable, "-m", "cdpcli", *args, "--json"], receiver, tmp_path, **popen)


def run_command(command: list[str], receiver, tmp_path: Path, **popen) -> tuple[int, dict, str]:
    """`command` (a cdp run ending in --json, or a shell that runs one) as run_cdp runs it."""
    proc = subprocess.run(
        command,
        capture_output=True,
        cwd=tmp_path,
        env=env_for(receiver, tmp_path),
        timeout=60,
        **popen,
    )
    err = proc.stderr.decode()
    assert API_KEY not in err and "Traceback" not in err, err
    return proc.returncode, json.loads(proc.stdout.decode().splitlines()[-1]), err


def write_then_close(fd: int, data: bytes) -> threading.Thread:
    def write() -> None:
        with os.fdopen(fd, "wb") as out:
            out.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def numbers(receiver) -> list[int]:
    return sorted(call["properties"]["n"] for call in receiver.calls)


@pytest.mark.slow
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_pipe_named_as_dev_fd_is_read_whole(receiver, tmp_path: Path, compressed: bool) -> None:
    """`cdp import <(cat big.ndjson)`: the shell passes /dev/fd/63, a pipe."""
    data = calls(LINES)
    read_end, write_end = os.pipe()
    writer = write_then_close(write_end, gzip.compress(data) if compressed else data)
    try:
        code, summary, err = run_cdp(["import", f"/dev/fd/{read_end}"], receiver, tmp_path, pass_fds=(read_end,))
    finally:
        os.close(read_end)
    writer.join(timeout=10)
    assert code == 0, err
    assert (summary["read"], summary["sent"]) == (LINES, LINES)
    assert numbers(receiver) == list(range(1, LINES + 1))


@pytest.mark.slow
def test_dev_stdin_named_as_file_is_read_whole(receiver, tmp_path: Path) -> None:
    code, summary, err = run_cdp(["import", "/dev/stdin"], receiver, tmp_path, input=calls(LINES))
    assert code == 0, err
    assert summary["sent"] == LINES
    assert numbers(receiver) == list(range(1, LINES + 1))


@pytest.mark.slow
@pytest.mark.parametrize("order", ["none", "phased"])
def test_a_fifo_is_read_once_and_never_waited_on_again(receiver, tmp_path: Path, order: str) -> None:
    """A FIFO opened twice waits for a second writer that never comes (it hung for good);
    under order=phased it is copied first, as stdin is, and each phase reads the copy."""
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as out:  # waits for the import to open it
            out.write(calls(LINES))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    code, summary, err = run_cdp(["import", str(fifo), "--order", order], receiver, tmp_path)
    writer.join(timeout=10)
    assert code == 0, err
    assert summary["sent"] == LINES
    assert numbers(receiver) == list(range(1, LINES + 1))


@pytest.mark.slow
def test_bulk_ids_from_a_pipe_are_all_sent(receiver, tmp_path: Path) -> None:
    """`cdp person delete --from <(…) --yes`: the confirmation's look at the ids used to drain
    the pipe before the send read it (read 0, ok)."""
    read_end, write_end = os.pipe()
    writer = write_then_close(write_end, b"".join(f"id-{n}\n".encode() for n in range(300)))
    try:
        code, summary, err = run_cdp(
            ["person", "delete", "--from", f"/dev/fd/{read_end}", "--yes"], receiver, tmp_path, pass_fds=(read_end,)
        )
    finally:
        os.close(read_end)
    writer.join(timeout=10)
    assert code == 0, err
    assert summary["sent"] == 300
    assert sorted(call["userId"] for call in receiver.calls) == sorted(f"id-{n}" for n in range(300))


def test_a_named_pipe_is_a_stream_source_keyed_by_its_name(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    plain = tmp_path / "a.ndjson"
    plain.write_bytes(calls(1))
    (source,), _ = make_sources([str(fifo)])  # returns at once: nothing opened yet
    assert source.stream and source.read_once and not source.is_file
    assert source.key == str(fifo)  # not realpath: /dev/fd/63 resolves to a new pipe:[N] each run
    # a directory's walk still passes over a FIFO, with a word
    sources, warnings = make_sources([str(tmp_path)])
    assert [s.name for s in sources] == [str(plain)]
    assert any("special file" in warning for warning in warnings)


def test_a_stream_source_cannot_be_opened_twice(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"{}\n")
    os.close(write_end)
    try:
        (source,), _ = make_sources([f"/dev/fd/{read_end}"])
        with source.open() as handle:
            assert handle.read() == b"{}\n"
        with pytest.raises(UsageError, match="read only once"):
            source.open()
    finally:
        os.close(read_end)


@pytest.mark.slow
def test_a_pipe_with_a_checkpoint_resumes_as_stdin_does(receiver, tmp_path: Path) -> None:
    """`cdp import <(cat f) --checkpoint ck.json`, the shell's own process substitution (its
    /dev/fd/63, the same name on every run): keyed by that name, settled by line count; the
    same input again sends nothing, another input under that name is refused by its first line."""

    def import_pipe(data: bytes) -> tuple[int, dict, str]:
        (tmp_path / "data.ndjson").write_bytes(data)
        script = 'exec "$0" -m cdpcli import <(cat data.ndjson) --checkpoint ck.json --json'
        return run_command(["bash", "-c", script, sys.executable], receiver, tmp_path)

    code, summary, err = import_pipe(calls(300))
    assert (code, summary["sent"]) == (0, 300), err
    code, summary, err = import_pipe(calls(300))
    assert (code, summary["sent"], summary["skipped"]) == (0, 0, 300), err
    assert len(receiver.calls) == 300
    code, summary, err = import_pipe(b'{"type":"track","userId":"other","event":"E"}\n' + calls(300))
    assert code == 2 and "does not start as it did" in err, err


@pytest.mark.slow
def test_dev_stdin_on_a_terminal_is_refused_as_stdin_is(tmp_path: Path) -> None:
    """`cdp import` with stdin a terminal is a usage error; so is `cdp import /dev/stdin` (it
    used to wait for typed input)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: cdp on the pty
        os.chdir(tmp_path)
        os.execvp(sys.executable, [sys.executable, "-m", "cdpcli", "import", "/dev/stdin", "--dry-run"])
    out = b""
    deadline = time.monotonic() + 30  # waiting for typed input was the defect: fail, not hang
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.5)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        out += data
    else:
        os.kill(pid, signal.SIGKILL)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2, out
    assert b"/dev/stdin is a terminal" in out


@pytest.mark.slow
def test_parquet_through_a_pipe_is_copied_once_then_read(receiver, tmp_path: Path) -> None:
    """Parquet needs to seek: a pipe's bytes are copied to a private file first, read once."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    buffer = io.BytesIO()
    users = [f"u-{n}" for n in range(500)]
    pq.write_table(pa.table({"type": ["identify"] * 500, "userId": users}), buffer)
    read_end, write_end = os.pipe()
    writer = write_then_close(write_end, buffer.getvalue())
    try:
        args = ["import", "--format", "parquet", f"/dev/fd/{read_end}"]
        code, summary, err = run_cdp(args, receiver, tmp_path, pass_fds=(read_end,))
    finally:
        os.close(read_end)
        writer.join(timeout=10)
    assert code == 0, err
    assert sorted(call["userId"] for call in receiver.calls) == sorted(users)


def test_one_pipe_under_two_names_is_refused(receiver, tmp_path: Path) -> None:
    """`cat f | cdp import - /dev/stdin`: the second name would read nothing."""
    proc = subprocess.run(
        [sys.executable, "-m", "cdpcli", "import", "-", "/dev/stdin"],
        input=calls(3),
        capture_output=True,
        cwd=tmp_path,
        env=env_for(receiver, tmp_path),
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert b"- and /dev/stdin are the same input, given twice" in proc.stderr
    assert receiver.calls == []

"""`--order phased` on stdin: the copy it makes first (the spool) stops at Ctrl-C and SIGTERM
even while the producer never ends, lives in a private folder under $TMPDIR, and a spool
left by a killed run is removed by the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from tests.conftest import API_KEY

TRACK = json.dumps({"type": "track", "userId": "u-1", "event": "Viewed"}).encode() + b"\n"


def wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def private_folder(tmp: str) -> str:
    return os.path.join(tmp, f"cdp-spool-{os.getuid()}")


def spool_size(folder: str) -> int:
    try:
        return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))
    except OSError:
        return 0


def endless_producer(proc: subprocess.Popen, quiet_after: int | None) -> threading.Thread:
    """Writes calls to the import's stdin until the pipe breaks; with `quiet_after`, stops
    writing after that many bytes but keeps the pipe open (a producer that hangs)."""

    def produce() -> None:
        written = 0
        try:
            while quiet_after is None or written < quiet_after:
                proc.stdin.write(TRACK * 100)
                proc.stdin.flush()
                written += len(TRACK) * 100
        except (BrokenPipeError, ValueError, OSError):
            return

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    return thread


def phased_import(receiver, tmp_path, preexec=None) -> tuple[subprocess.Popen, str]:
    """`cdp import --order phased --json` reading its stdin (a pipe the test writes), with its
    own TMPDIR (where the spool goes): the process and that TMPDIR."""
    tmp = str(tmp_path / "tmp")
    os.mkdir(tmp)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TMPDIR": tmp,
        "CDP_API_KEY": API_KEY,
        "CDP_ENDPOINT": receiver.url,
        "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "import", "--order", "phased", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        preexec_fn=preexec,
    )
    return proc, tmp


@pytest.mark.slow
@pytest.mark.parametrize("quiet_after", [None, 50_000], ids=["endless", "hanging"])
# SIGHUP: the terminal closed, a stop as Ctrl-C is (tests/test_order_spool.py: not under nohup)
@pytest.mark.parametrize(
    "signals", [[signal.SIGINT], [signal.SIGTERM], [signal.SIGTERM, signal.SIGTERM], [signal.SIGHUP]]
)
def test_a_signal_stops_the_spool_of_an_endless_stdin(receiver, tmp_path, signals, quiet_after):
    proc, tmp = phased_import(receiver, tmp_path)
    try:
        producer = endless_producer(proc, quiet_after)
        wait_for(lambda: spool_size(private_folder(tmp)) >= 40_000, 30)  # it is copying stdin
        for sig in signals:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    producer.join(timeout=5)
    assert proc.returncode == 130, err.decode()
    assert json.loads(out.decode().splitlines()[-1])["sent"] == 0
    assert receiver.calls == []  # nothing was sent: the run stopped while copying
    assert os.listdir(private_folder(tmp)) == []  # its spool removed


def test_a_stale_spool_of_a_killed_run_is_removed_at_the_next_start(send, receiver, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = private_folder(str(tmp_path))
    os.mkdir(folder, 0o700)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    stale = os.path.join(folder, f"spool-{int(gone.stdout)}-k1ll3d.ndjson")  # a run killed with kill -9
    live = os.path.join(folder, f"spool-{os.getpid()}-running.ndjson")  # a run still going
    for path in (stale, live):
        with open(path, "wb") as handle:
            handle.write(TRACK * 1000)
    run = send("import", "--order", "phased", "--json", input=TRACK.decode())
    assert run.exit_code == 0, run.stderr
    assert os.listdir(folder) == [os.path.basename(live)]


def test_a_spool_folder_others_can_read_is_refused(send, receiver, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = private_folder(str(tmp_path))
    os.mkdir(folder)
    os.chmod(folder, 0o755)
    run = send("import", "--order", "phased", input=TRACK.decode())
    assert run.exit_code == 2
    assert "is not a private folder of this user" in run.stderr and receiver.requests == []
    assert "(--order phased copies stdin to" in run.stderr and "order=" not in run.stderr

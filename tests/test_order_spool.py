"""`--order phased` spooling stdin: SIGHUP (the terminal closed) stops it as Ctrl-C does and
removes the spool (tests/test_import_spool.py, with the other signals), unless the import runs
under nohup; and a spool never fills its file system."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from types import SimpleNamespace

import pytest

from cdpcli.errors import UsageError
from cdpcli.importing import order
from cdpcli.importing.order import spool, spool_directory
from cdpcli.importing.source import Source
from tests.test_import_spool import TRACK, phased_import, private_folder, spool_size, wait_for


@pytest.mark.slow
def test_sighup_under_nohup_is_still_ignored(receiver, tmp_path):
    proc, tmp = phased_import(receiver, tmp_path, preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        proc.stdin.write(TRACK * 1000)
        proc.stdin.flush()
        wait_for(lambda: spool_size(private_folder(tmp)) >= len(TRACK) * 1000, 30)
        proc.send_signal(signal.SIGHUP)  # ignored: the copy goes on to the end of stdin
        out, err = proc.communicate(input=TRACK * 10, timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err.decode()
    assert json.loads(out.decode().splitlines()[-1])["sent"] == 1010


class NearlyFull:
    """os.statvfs of a 100 MB file system (4 KB blocks) that had `free` bytes left before the
    spool folder's files were written."""

    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, path: str) -> SimpleNamespace:
        used = sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))
        return SimpleNamespace(f_frsize=4096, f_blocks=100 * 256, f_bavail=(self.free - used) // 4096)


@pytest.mark.parametrize("via", ["stdin", "items"])
def test_a_spool_stops_before_its_file_system_keeps_less_than_a_tenth_free(tmp_path, monkeypatch, via):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(order.tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    monkeypatch.setattr(order.os, "statvfs", NearlyFull(15 << 20))  # 5 MB above the 10 MB reserve
    lines = [TRACK] * 100_000  # 5.3 MB
    if via == "stdin":
        source = Source("-", "<stdin>", b"-")
        monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(b"".join(lines))))
    else:
        source = Source.of_items("calls", lines)
    with pytest.raises(UsageError) as caught:
        spool(source)
    message = str(caught.value)
    assert "order=phased: copying" in message and "would keep less than 10,485,760 bytes free" in message
    assert "TMPDIR" in caught.value.hint
    assert os.listdir(spool_directory()) == []  # the part copied is removed


def test_a_spool_that_fits_is_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(order.tempfile, "tempdir", None)
    monkeypatch.setattr(order.os, "statvfs", NearlyFull(20 << 20))  # 10 MB above the reserve
    source = Source.of_items("calls", [TRACK] * 100_000)
    path = spool(source)
    assert os.path.getsize(path) == len(TRACK) * 100_000
    os.unlink(path)


def test_a_full_spool_is_a_usage_error_before_anything_is_sent(send, receiver, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(order.tempfile, "tempdir", None)
    monkeypatch.setattr(order.os, "statvfs", NearlyFull(11 << 20))  # 1 MB above the reserve
    run = send("import", "--order", "phased", "--json", input=(TRACK * 40_000).decode())  # 2.2 MB
    assert run.exit_code == 2, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["ok"] is False and "would keep less than 10,485,760 bytes free" in result["error"]
    assert "--order phased: copying <stdin> stopped after" in result["error"]
    assert receiver.calls == [] and os.listdir(spool_directory()) == []

"""`cdp import --order phased`: identify/group, then track/page/screen, then alias, then deletes,
each phase once the one before is acknowledged; checked by the receiver's arrival order."""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from cdpcli.importing import Importer, ImportEvents, ImportOptions, make_sources
from cdpcli.serve import Receiver
from cdpcli.target import Target
from tests.conftest import API_KEY

PHASE = {"identify": 0, "group": 0, "track": 1, "page": 1, "screen": 1, "alias": 2}
DELETES = {"User Deleted", "User Suppressed", "Device Deleted"}


def phase_of(call: dict) -> int:
    if call["type"] == "track" and call["event"] in DELETES:
        return 3
    return PHASE[call["type"]]


def mixed_calls(people: int, seed: int = 7) -> list[dict]:
    """Each person's calls in the order a naive export holds them: activity and merges before
    the identify that creates the profile, deletes in the middle; shuffled across people."""
    calls: list[dict] = []
    for n in range(people):
        user = f"u-{n}"
        calls += [
            {"type": "track", "userId": user, "event": "Viewed", "properties": {"n": n}},
            {"type": "alias", "userId": user, "previousId": f"anon-{n}"},
            {"type": "identify", "userId": user, "traits": {"email": f"{user}@example.com"}},
            {"type": "page", "userId": user, "name": "Home"},
            {"type": "group", "userId": user, "groupId": f"g-{n % 3}"},
            {"type": "screen", "userId": user, "name": "Main"},
        ]
        if n % 4 == 0:
            calls.append({"type": "track", "userId": user, "event": "User Deleted"})
        elif n % 4 == 1:
            calls.append({"type": "track", "userId": user, "event": "User Suppressed"})
        elif n % 4 == 2:
            calls.append(
                {"type": "track", "userId": user, "event": "Device Deleted", "context": {"device": {"token": f"t{n}"}}}
            )
    random.Random(seed).shuffle(calls)
    return calls


def write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def assert_phased(arrived: list[dict]) -> None:
    """Every call of a phase arrived before any call of a later phase."""
    phases = [phase_of(call) for call in arrived]
    assert phases == sorted(phases), "a call arrived before one of an earlier phase"


@pytest.mark.slow
def test_phased_arrival_order_under_latency_and_faults(cli, tmp_path):
    calls = mixed_calls(60)
    lines: list = list(calls)
    lines.insert(10, "")  # blank
    lines.insert(20, "{not json")  # invalid: rejected in the first phase
    lines.insert(30, {"type": "alias", "userId": "x"})  # invalid alias (no previousId): in its phase
    source = write(tmp_path / "in.ndjson", lines)
    with Receiver(api_key=API_KEY, latency_ms=3, fail_rate=0.2, seed=5) as receiver:
        run = cli(
            "import",
            str(source),
            "--order",
            "phased",
            "--endpoint",
            receiver.url,
            "--api-key",
            API_KEY,
            "--batch-events",
            "7",
            "--concurrency",
            "8",
            "--retries",
            "20",
            "--json",
        )
        arrived = list(receiver.calls)
        faults = [r for r in receiver.requests if r.status != 200]
    assert run.exit_code == 1, run.stderr  # the two invalid lines
    assert faults, "the fault injection should have failed some requests"
    assert_phased(arrived)
    assert Counter(call["messageId"] for call in arrived).most_common(1)[0][1] == 1
    assert len(arrived) == len(calls)
    assert Counter(phase_of(c) for c in arrived) == Counter(phase_of(c) for c in calls)
    result = json.loads(run.stdout)
    assert result["read"] == len(lines)
    assert (result["sent"], result["invalid"], result["blank"], result["skipped"]) == (len(calls), 2, 1, 0)
    assert result["unsettled"] == 0 and result["failed"] == 0
    assert result["by_type"]["alias"] == 60 and result["by_type"]["identify"] == 60
    assert sorted(result["invalid_reasons"].values()) == [1, 1]
    rejects = [json.loads(x) for x in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert sorted(r["line"] for r in rejects) == [21, 31]


class Interrupting(ImportEvents):
    """Ctrl-C at the start of phase `at_phase`, or at the first answer within it."""

    def __init__(self, at_phase: int, on_answer: bool = False) -> None:
        self.at_phase = at_phase
        self.on_answer = on_answer
        self.importer: Importer | None = None
        self.phases: list[int] = []
        self.current = -1

    def phase(self, index: int, name: str) -> None:
        self.phases.append(index)
        self.current = index
        if index == self.at_phase and not self.on_answer:
            self.importer.interrupt()

    def exchange(self, exchange) -> None:
        if self.on_answer and self.current == self.at_phase:
            self.importer.interrupt()


def run_import(receiver: Receiver, path: Path, events: ImportEvents, **options):
    target = Target.resolve(endpoint=receiver.url, api_key=API_KEY)
    sources, _ = make_sources([str(path)])
    importer = Importer(target, sources, ImportOptions(order="phased", **options), events)
    events.importer = importer
    return importer.run()


@pytest.mark.parametrize(("at_phase", "on_answer"), [(2, False), (1, True), (3, False)])
def test_interrupted_phased_import_resumes_in_its_phase(tmp_path, at_phase, on_answer):
    calls = mixed_calls(40)
    source = write(tmp_path / "in.ndjson", calls)
    checkpoint = tmp_path / "run.ckpt"
    with Receiver(api_key=API_KEY, latency_ms=2) as receiver:
        events = Interrupting(at_phase, on_answer)
        first = run_import(
            receiver, source, events, checkpoint=str(checkpoint), batch_events=5, concurrency=1, linger=0.05
        )
        assert first.exit_code == 130 and first.interrupted
        assert events.phases == list(range(at_phase + 1))
        saved = json.loads(checkpoint.read_text())
        assert (saved["version"], saved["order"], saved["phase"]) == (3, "phased", at_phase)
        first_calls = list(receiver.calls)
        assert first.read == len(calls) and first.sent == len(first_calls)
        assert first.unsettled == len(calls) - len(first_calls)
        again = Interrupting(at_phase=-1)
        second = run_import(receiver, source, again, checkpoint=str(checkpoint), batch_events=5, concurrency=2)
        assert second.exit_code == 0, second.error
        assert again.phases == list(range(at_phase, 4))  # resumed in the phase it stopped in
        arrived = list(receiver.calls)
    assert_phased(arrived)
    ids = Counter(call["messageId"] for call in arrived)
    assert len(ids) == len(calls) and max(ids.values()) == 1  # every call once, across both runs
    assert second.read == len(calls) and second.skipped == len(first_calls)
    assert second.sent == len(calls) - len(first_calls) and second.unsettled == 0


def test_a_phased_checkpoint_is_not_resumed_without_phases(send, tmp_path):
    source = write(tmp_path / "in.ndjson", mixed_calls(2))
    (tmp_path / "run.ckpt").write_text(json.dumps({"version": 2, "order": "phased", "phase": 2, "sources": {}}))
    run = send("import", str(source), "--checkpoint", "run.ckpt")
    assert run.exit_code == 2 and run.stdout == ""
    assert "--order phased, not --order none" in run.stderr


def test_limit_is_refused_with_phases(send, tmp_path):
    source = write(tmp_path / "in.ndjson", mixed_calls(2))
    run = send("import", str(source), "--order", "phased", "--limit", "3")
    assert run.exit_code == 2 and run.stdout == ""
    assert "--limit cannot be combined with --order phased" in run.stderr
    run = send("import", str(source), "--order", "sorted")
    assert run.exit_code == 2 and "--order 'sorted'" in run.stderr


def test_stdin_is_spooled_to_a_private_file_and_removed(send, receiver, tmp_path, monkeypatch):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    calls = mixed_calls(10)
    text = "".join(json.dumps(c) + "\n" for c in calls)
    run = send("import", "--order", "phased", "--batch-events", "4", "--json", input=text)
    assert run.exit_code == 0, run.stderr
    assert "copying <stdin> to a private temporary file first" in run.stderr
    assert json.loads(run.stdout)["sent"] == len(calls)
    assert_phased(list(receiver.calls))
    (private,) = spool_dir.iterdir()  # the spools' private folder, left empty
    assert list(private.iterdir()) == [] and private.stat().st_mode & 0o777 == 0o700


def test_iterable_source_is_phased_too(receiver, tmp_path):
    from cdpcli.importing import import_lines

    calls = mixed_calls(10)
    target = Target.resolve(endpoint=receiver.url, api_key=API_KEY)
    result = import_lines(iter(calls), target=target, order="phased", batch_events=3)
    assert result.ok and result.sent == result.read == len(calls)
    assert_phased(list(receiver.calls))


# -- seeing it happen: the progress line, plain status lines, the summary by type and reason --


def stats_at(read: int, settled: int, bytes_read: int, seconds: float = 10.0):
    import time as clock

    from cdpcli.importing.engine import Stats

    stats = Stats(read=read, sent=settled, bytes_read=bytes_read)
    stats.started = clock.monotonic() - seconds
    return stats


def test_progress_shows_the_share_settled_elapsed_and_eta():
    from cdpcli.cli.progress import settled_share, status_parts

    stats = stats_at(read=100, settled=50, bytes_read=500)
    assert settled_share(stats, 1000) == 0.25  # half the bytes read, half of those lines settled
    parts = status_parts(stats, 1000, now=stats.started + 10)
    assert parts[0] == " 25% settled"
    assert parts[1] == "0:10 elapsed, ETA 0:30"
    assert status_parts(stats, None, now=stats.started + 10)[:2] == ["50 of 100 lines settled", "0:10 elapsed"]


@pytest.mark.parametrize("width", [20, 40, 80, 200])
def test_progress_line_fits_the_terminal_width(width):
    import io

    from rich.console import Console

    from cdpcli.cli.progress import StatusLine

    stats = stats_at(read=123_456_789, settled=123_000_000, bytes_read=10**12)
    stats.phase = "2/4 track, page, screen"
    stats.retries, stats.invalid = 12_345, 67_890
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, color_system=None)
    console.print(StatusLine(stats, 2 * 10**12))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1 and len(lines[0]) < width
    if width >= 80:
        assert "settled" in lines[0] and "ETA" in lines[0] and "phase 2/4" in lines[0]


def test_progress_without_a_terminal_prints_plain_status_lines(receiver, tmp_path):
    import os
    import queue
    import subprocess
    import sys
    import threading

    env = {
        "PATH": os.environ.get("PATH", ""),
        "CDP_API_KEY": API_KEY,
        "CDP_ENDPOINT": receiver.url,
        "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
        "CDP_STATUS_EVERY": "0.05",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "import", "--progress", "--batch-events", "5"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x.decode()) for x in proc.stderr], daemon=True)
    reader.start()
    try:
        proc.stdin.write("".join(json.dumps(c) + "\n" for c in mixed_calls(2)).encode())
        proc.stdin.flush()
        # stdin stays open, so the import runs until a status line has been seen
        while not (line := lines.get(timeout=30)).startswith("cdp import: "):
            pass
        assert "lines settled" in line and "elapsed" in line and "calls/s" in line
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        stdout = proc.stdout.read().decode()
    finally:
        proc.kill()
    assert stdout == ""
    reader.join(timeout=30)  # stderr's end: every line is in the queue
    rest = [lines.get_nowait() for _ in range(lines.qsize())]
    assert any(x.startswith("Read 14 lines: 14 sent") for x in rest)
    assert "\x1b[" not in "".join(rest)  # no terminal control sequences in a pipe
    assert API_KEY not in "".join(rest)


@pytest.mark.parametrize("by", ["line", "user"])
def test_phased_shards_send_every_call_once_between_them(tmp_path, by):
    calls = mixed_calls(30)
    source = write(tmp_path / "in.ndjson", [*calls, ""])
    target_calls = []
    with Receiver(api_key=API_KEY) as receiver:
        results = []
        for k in range(3):
            from cdpcli.importing.shard import parse_shard

            target = Target.resolve(endpoint=receiver.url, api_key=API_KEY)
            sources, _ = make_sources([str(source)])
            options = ImportOptions(order="phased", shard=parse_shard(f"{k}/3", by), batch_events=4)
            results.append(Importer(target, sources, options).run())
        target_calls = list(receiver.calls)
    assert all(r.ok and r.read == len(calls) + 1 and r.unsettled == 0 for r in results)
    assert sum(r.sent for r in results) == len(calls) == len({c["messageId"] for c in target_calls})
    for r in results:  # the other shards' calls are skipped, once
        assert r.skipped_reasons == {"shard": len(calls) - r.sent + (r.blank == 0)}


@pytest.mark.slow
def test_sigterm_between_phases_then_the_same_command_resumes(tmp_path):
    """A real signal while phase 2 is in flight (slow answers keep it there): exit 130, the
    checkpoint in phase 2; the same command then sends the rest, in order, each call once."""
    import os
    import signal
    import subprocess
    import sys

    calls = mixed_calls(10)
    source = write(tmp_path / "in.ndjson", calls)
    with Receiver(api_key=API_KEY, latency_ms=150) as receiver:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CDP_API_KEY": API_KEY,
            "CDP_ENDPOINT": receiver.url,
            "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
        }
        command = [sys.executable, "-m", "cdpcli", "import", str(source), "--order", "phased", "--checkpoint", "ck"]
        command += ["--batch-events", "3", "--concurrency", "1", "-v"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
        try:
            for line in proc.stderr:
                if b"phase 2 of 4" in line:
                    proc.send_signal(signal.SIGTERM)
                    break
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 130, err
        assert b"Stopped early" in err and API_KEY.encode() not in err
        saved = json.loads((tmp_path / "ck").read_text())
        assert saved["phase"] == 1
        first = list(receiver.calls)
        assert {phase_of(c) for c in first} <= {0, 1} and len(first) < len(calls)
        again = subprocess.run(command, capture_output=True, cwd=tmp_path, env=env, timeout=60)
        assert again.returncode == 0, again.stderr
        assert again.stdout == b""
        arrived = list(receiver.calls)
    assert_phased(arrived)
    assert len(arrived) == len(calls) == len({c["messageId"] for c in arrived})

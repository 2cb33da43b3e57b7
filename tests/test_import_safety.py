"""`cdp import` loses nothing and never crashes (issue #10): odd input, kills, interrupts,
resumes, and files that cannot be written. Each test names the defect it pins down."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cdpcli.serve import Receiver
from tests.conftest import API_KEY
from tests.fakes import ScriptedReceiver
from tests.test_import import received_ids, spawn, summary, tracks, wait_for, write_lines


def rejects_of(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def wire_bodies_are_json(receiver: Receiver) -> None:
    """What reached the receiver parsed as strict JSON (no NaN/Infinity literals)."""
    from cdpcli.jsontext import loads

    for request in receiver.requests:
        assert request.body is not None
        loads(json.dumps(request.body))


# -- odd values: rejected per line, never sent, never a crash -------------------------------


ODD_LINES = [
    ('{"type":"track","userId":"1","event":"E","properties":{"s":"\\ud800"}}', "lone surrogate \\ud800"),
    ('{"type":"track","userId":"2","event":"E","properties":{"n":NaN}}', "NaN is not valid JSON"),
    ('{"type":"track","userId":"3","event":"E","properties":{"n":Infinity}}', "Infinity is not valid JSON"),
    ('{"type":"track","userId":"4","event":"E","properties":{"n":-Infinity}}', "-Infinity is not valid JSON"),
    ('{"type":"track","userId":"5","event":"E","properties":{"n":1e400}}', "too large for a JSON number"),
    ('{"type":"track","userId":6,"event":"E","properties":{"n":NaN}}', "NaN is not valid JSON"),  # plain path too
    ('{"type":"track","userId":"7","event":"E","properties":{"n":' + "9" * 400 + "}}", "too large for a JSON number"),
    (
        '{"type":"track","userId":"8","event":"E","properties":{"a":' + "[" * 300 + "]" * 300 + "}}",
        "nesting deeper than 200 levels",
    ),
    (
        '{"type":"track","userId":"9","event":"E","properties":{"a":' + "[" * 100_000 + "]" * 100_000 + "}}",
        "nesting deeper than 200 levels",
    ),
]


def test_odd_values_are_invalid_lines_and_the_import_goes_on(send, receiver, tmp_path):
    good = [json.dumps(c) for c in tracks(2, start=100)]
    source = write_lines(tmp_path / "in.ndjson", [good[0], *(line for line, _ in ODD_LINES), good[1]])
    run = send("import", str(source), "--json")
    assert run.exit_code == 1, run.stderr
    assert sorted(c["userId"] for c in receiver.calls) == ["u-100", "u-101"]
    wire_bodies_are_json(receiver)
    rejects = rejects_of(tmp_path / "cdp-rejects.ndjson")
    assert [r["line"] for r in rejects] == list(range(2, 2 + len(ODD_LINES)))
    for record, (line, error) in zip(rejects, ODD_LINES, strict=True):
        assert error in record["error"], record["error"]
        assert record["input"] == line  # fixable and feedable back as it was
        assert f"{source}:{record['line']}: " in run.stderr
    result = summary(run)
    assert (result["read"], result["sent"], result["invalid"]) == (len(ODD_LINES) + 2, 2, len(ODD_LINES))
    assert "unexpected" not in run.stderr


def test_a_small_exponent_and_an_escaped_pair_are_fine(send, receiver, tmp_path):
    source = write_lines(
        tmp_path / "in.ndjson",
        [
            '{"type":"track","userId":"1","event":"E","properties":{"n":1e-5,"m":2E+10,"face":"\\ud83d\\ude00"}}',
            '{"type":"track","userId":"2","event":"E","properties":{"note":"NaN and Infinity as words, 1e400 in text"}}',
        ],
    )
    run = send("import", str(source))
    assert run.exit_code == 0, run.stderr
    got = {c["userId"]: c["properties"] for c in receiver.calls}
    assert got["1"] == {"n": 1e-5, "m": 2e10, "face": "\U0001f600"}
    assert got["2"] == {"note": "NaN and Infinity as words, 1e400 in text"}


def test_invalid_utf8_is_kept_recoverable_and_refused_until_fixed(send, receiver, tmp_path):
    raw = b'{"type":"track","userId":"1","event":"E","properties":{"s":"caf\xe9"}}'
    source = tmp_path / "in.ndjson"
    source.write_bytes(raw + b"\n")
    run = send("import", str(source))
    assert run.exit_code == 1
    [record] = rejects_of(tmp_path / "cdp-rejects.ndjson")
    assert "not valid UTF-8" in record["error"]
    import base64

    assert base64.b64decode(record["input_base64"]) == raw  # the original bytes, exactly
    assert "\ufffd" in record["input"]
    # fed back unchanged: refused again, not sent as corrupted text
    fixed = tmp_path / "fixed.ndjson"
    fixed.write_text(json.dumps(record) + "\n")
    run = send("import", str(fixed), "--rejects", str(tmp_path / "again.ndjson"))
    assert run.exit_code == 1 and receiver.calls == []
    assert "remove input_base64" in rejects_of(tmp_path / "again.ndjson")[0]["error"]
    # fixed by hand (input edited, input_base64 removed): sent
    record["input"] = record["input"].replace("\ufffd", "é")
    del record["input_base64"]
    fixed.write_text(json.dumps(record) + "\n")
    assert send("import", str(fixed)).exit_code == 0
    assert receiver.calls[0]["properties"] == {"s": "café"}


def test_bom_and_crlf_are_read_as_text(send, receiver, tmp_path):
    source = tmp_path / "in.ndjson"
    source.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(c).encode() for c in tracks(3)) + b"\r\n")
    run = send("import", str(source), "--json")
    assert run.exit_code == 0, run.stderr
    assert len(receiver.calls) == 3


# -- counts, early stops and the stderr flood ------------------------------------------------


def test_a_csv_stops_after_100_invalid_lines_with_a_format_hint(send, receiver, tmp_path):
    source = tmp_path / "people.txt"  # a .csv name would be read as CSV
    source.write_text("id,email\n" + "".join(f"{i},u{i}@example.com\n" for i in range(500)))
    run = send("import", str(source), "--json")
    assert run.exit_code == 2, run.stderr
    assert "the first 100 lines of" in run.stderr and "is it NDJSON" in run.stderr
    assert f"Hint: it looks like CSV: cdp import --format csv --type TYPE {source}" in run.stderr
    assert receiver.requests == []
    problems = [line for line in run.stderr.splitlines() if line.startswith(str(source))]
    assert len(problems) == 20  # then one line with the total
    assert "80 more rejected lines not shown; all 100 are in cdp-rejects.ndjson" in run.stderr
    assert summary(run)["read"] == 100 and summary(run)["exit_code"] == 2


def test_a_corrupt_gzip_file_is_named_and_is_one_reject(send, receiver, tmp_path):
    """Compressed files are read natively (tests/test_import_inputs.py); a corrupt one is one
    rejects record that names the damage and how to check the file (exit 1)."""
    source = tmp_path / "events.ndjson.gz"
    source.write_bytes(b"\x1f\x8b\x08\x00" + b"not deflate data at all" * 10)
    run = send("import", str(source))
    assert run.exit_code == 1
    assert f"{source}:1: corrupt gzip data" in run.stderr
    assert "check the file, e.g. gzip -t on it" in run.stderr
    assert receiver.requests == [] and len(rejects_of(tmp_path / "cdp-rejects.ndjson")) == 1


def test_max_invalid_stops_with_exit_1_summary_and_checkpoint(send, receiver, tmp_path):
    lines = [json.dumps(c) for c in tracks(10)] + ["bad"] * 5 + [json.dumps(c) for c in tracks(10, start=11)]
    source = write_lines(tmp_path / "in.ndjson", lines)
    checkpoint = tmp_path / "ck.json"
    run = send("import", str(source), "--max-invalid", "3", "--checkpoint", str(checkpoint), "--json")
    assert run.exit_code == 1, run.stderr
    assert "stopped at --max-invalid 3" in run.stderr
    result = summary(run)
    assert result["invalid"] == 3 and result["exit_code"] == 1
    assert len(rejects_of(tmp_path / "cdp-rejects.ndjson")) == 3
    settled = json.loads(checkpoint.read_text())["sources"][os.path.realpath(source)]["settled"]
    assert settled == 13  # 10 delivered, 3 rejected; the rest is for the next run
    assert send("import", str(source), "--max-invalid", "0").exit_code == 2


# -- rejects and checkpoints across interrupted runs -----------------------------------------


def test_resume_never_writes_a_reject_twice(send, receiver, tmp_path):
    """Invalid lines read ahead of the settled point were appended again on resume."""
    lines = [json.dumps(c) for c in tracks(5)] + ["bad 1"] + [json.dumps(c) for c in tracks(5, start=6)] + ["bad 2"]
    source = write_lines(tmp_path / "in.ndjson", lines)
    checkpoint = tmp_path / "ck.json"
    # an earlier run that settled only the first 3 lines, but had rejected both bad lines
    checkpoint.write_text(
        json.dumps({"version": 3, "selection": {}, "sources": {os.path.realpath(source): {"settled": 3}}})
    )
    rejects = tmp_path / "cdp-rejects.ndjson"
    rejects.write_text(
        "".join(
            json.dumps({"source": str(source), "line": n, "error": "invalid JSON", "input": text}) + "\n"
            for n, text in ((6, "bad 1"), (12, "bad 2"))
        )
    )
    run = send("import", str(source), "--checkpoint", str(checkpoint), "--json")
    assert run.exit_code == 1, run.stderr
    assert [r["line"] for r in rejects_of(rejects)] == [6, 12]  # not appended again
    assert summary(run)["invalid"] == 2 and summary(run)["sent"] == 7  # lines 4-5 and 7-11
    assert "2 of the rejects are in cdp-rejects.ndjson already, from an earlier run" in run.stderr
    assert "appended" not in run.stderr


def test_the_same_file_by_another_path_resumes(send, receiver, tmp_path):
    source = write_lines(tmp_path / "same.ndjson", tracks(5))
    assert send("import", "same.ndjson", "--checkpoint", "ck.json").exit_code == 0
    receiver.calls.clear()
    run = send("import", "./same.ndjson", "--checkpoint", "ck.json", "--json")
    assert run.exit_code == 0 and receiver.calls == []
    assert summary(run)["skipped"] == 5
    assert list(json.loads((tmp_path / "ck.json").read_text())["sources"]) == [os.path.realpath(source)]


def test_a_checkpoint_keyed_by_the_typed_path_still_resumes(send, receiver, tmp_path):
    write_lines(tmp_path / "in.ndjson", tracks(4))
    (tmp_path / "ck.json").write_text(
        json.dumps({"version": 3, "selection": {}, "sources": {"in.ndjson": {"settled": 3}}})
    )
    run = send("import", "in.ndjson", "--checkpoint", "ck.json", "--json")
    assert run.exit_code == 0
    assert [c["userId"] for c in receiver.calls] == ["u-4"]


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "invalid JSON"),
        ("[]", 'expected an object with "sources"'),
        ('{"sources": []}', 'expected an object with "sources"'),
        ('{"sources": {"a": 3}}', "is not an object"),
        ('{"sources": {"a": {"settled": "x"}}}', "no whole number 'settled'"),
        ('{"sources": {"a": {"settled": -1}}}', "no whole number 'settled'"),
    ],
)
def test_a_malformed_checkpoint_is_a_usage_error(send, tmp_path, content, problem):
    write_lines(tmp_path / "in.ndjson", tracks(1))
    (tmp_path / "ck.json").write_text(content)
    run = send("import", "in.ndjson", "--checkpoint", "ck.json")
    assert run.exit_code == 2
    assert "not a cdp checkpoint file" in run.stderr and problem in run.stderr
    assert "Hint: remove it" in run.stderr


def test_a_malformed_checkpoint_is_caught_under_python_O_too(receiver, tmp_path):
    write_lines(tmp_path / "in.ndjson", tracks(1))
    (tmp_path / "ck.json").write_text('{"sources": 5}')
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CDP_API_KEY": API_KEY,
        "CDP_ENDPOINT": receiver.url,
        "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    proc = subprocess.run(
        [sys.executable, "-O", "-m", "cdpcli", "import", "in.ndjson", "--checkpoint", "ck.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "not a cdp checkpoint file" in proc.stderr and receiver.calls == []


def test_rejects_and_checkpoint_are_private_and_temp_files_never_follow_links(send, receiver, tmp_path):
    os.umask(0)
    try:
        source = write_lines(tmp_path / "in.ndjson", ["bad", *map(json.dumps, tracks(2))])
        victim = tmp_path / "victim"
        victim.write_text("untouched")
        (tmp_path / "ck.json.tmp").symlink_to(victim)
        run = send("import", str(source), "--checkpoint", "ck.json")
        assert run.exit_code == 1
    finally:
        os.umask(0o022)
    assert victim.read_text() == "untouched"
    for name in ("ck.json", "cdp-rejects.ndjson"):
        mode = os.lstat(tmp_path / name).st_mode
        assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o600, (name, oct(mode))
    assert not list(tmp_path.glob(".ck.json.*.tmp")) and not (tmp_path / "ck.json.lock").exists()


def test_a_planted_rejects_symlink_is_refused_unless_named(send, receiver, tmp_path):
    write_lines(tmp_path / "in.ndjson", ["bad"])
    victim = tmp_path / "victim"
    victim.write_text("")
    (tmp_path / "cdp-rejects.ndjson").symlink_to(victim)
    run = send("import", "in.ndjson")
    assert run.exit_code == 2 and "is a symbolic link" in run.stderr
    assert victim.read_text() == "" and receiver.requests == []
    run = send("import", "in.ndjson", "--rejects", "cdp-rejects.ndjson")  # named: the user's choice
    assert run.exit_code == 1 and "bad" in victim.read_text()


def test_a_rejects_path_that_cannot_be_written_is_refused_before_sending(send, receiver, tmp_path):
    write_lines(tmp_path / "in.ndjson", tracks(2))
    run = send("import", "in.ndjson", "--rejects", "missing/dir/rejects.ndjson")
    assert run.exit_code == 2 and "does not exist" in run.stderr
    assert receiver.requests == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_for_rejects_stops_cleanly_from_the_senders(cli, tmp_path):
    """Undelivered calls whose rejects cannot be written: an error, exit 1 and no hang."""
    big = [{"type": "track", "userId": f"u{i}", "event": "E", "properties": {"pad": "x" * 3000}} for i in range(40)]
    source = write_lines(tmp_path / "in.ndjson", big)
    with ScriptedReceiver(api_key=API_KEY) as receiver:
        receiver.reject_when = lambda call: "refused by the test"
        result: list = []
        worker = threading.Thread(
            target=lambda: result.append(
                cli(
                    "import",
                    str(source),
                    "--endpoint",
                    receiver.url,
                    "--api-key",
                    API_KEY,
                    "--rejects",
                    "/dev/full",
                    "--batch-events",
                    "5",
                    "--checkpoint",
                    str(tmp_path / "ck.json"),
                )
            ),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "the import hung"
    [run] = result
    assert run.exit_code == 1
    assert "cannot write the rejects file /dev/full" in run.stderr
    assert "Traceback" not in run.stderr and "unexpected" not in run.stderr


def test_two_imports_cannot_share_a_checkpoint(receiver, tmp_path):
    checkpoint = tmp_path / "ck.json"
    first = spawn(receiver, "--checkpoint", str(checkpoint), tmp_path=tmp_path)
    try:
        wait_for(lambda: (tmp_path / "ck.json.lock").exists(), 20)
        source = write_lines(tmp_path / "in.ndjson", tracks(1))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CDP_API_KEY": API_KEY,
            "CDP_ENDPOINT": receiver.url,
            "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
        }
        second = subprocess.run(
            [sys.executable, "-m", "cdpcli", "import", str(source), "--checkpoint", str(checkpoint)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        assert "is in use by another cdp import" in second.stderr
    finally:
        first.stdin.close()
        assert first.wait(timeout=20) == 0
    assert receiver.calls == []


def test_id_namespace_changes_every_derived_id_and_same_names_warn(send, receiver, tmp_path):
    for day in ("day1", "day2"):
        (tmp_path / day).mkdir()
        write_lines(tmp_path / day / "events.ndjson", tracks(2))
    run = send("import", "day1/events.ndjson", "day2/events.ndjson")
    assert run.exit_code == 0
    assert "derive messageIds from the same name" in run.stderr
    plain = received_ids(receiver)
    assert len(set(plain)) == 2  # the collision the warning is about
    receiver.calls.clear()
    assert send("import", "day1/events.ndjson", "--id-namespace", "day1").exit_code == 0
    first = received_ids(receiver)
    receiver.calls.clear()
    assert send("import", "day2/events.ndjson", "--id-namespace", "day2").exit_code == 0
    assert not set(first) & set(received_ids(receiver)) and not set(first) & set(plain)


# -- real processes: slow endpoints, kills and Ctrl-C ----------------------------------------


class StderrLines:
    """Collects a process's stderr lines in a thread, so a test can wait for one."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for raw in proc.stderr:
            self.lines.append(raw.decode(errors="replace"))

    def text(self) -> str:
        self._thread.join(timeout=20)
        return "".join(self.lines)

    def has(self, needle: str) -> bool:
        return any(needle in line for line in self.lines)


@pytest.mark.slow
def test_the_checkpoint_advances_while_the_endpoint_is_slow(tmp_path):
    """It was saved only from the packer, which blocks on a full send queue."""
    source = write_lines(tmp_path / "in.ndjson", tracks(2000))
    checkpoint = tmp_path / "ck.json"

    def settled() -> int:
        try:
            return json.loads(checkpoint.read_text())["sources"][os.path.realpath(source)]["settled"]
        except (OSError, ValueError, KeyError):
            return 0

    with Receiver(api_key=API_KEY, latency_ms=1000) as receiver:
        proc = spawn(
            receiver,
            str(source),
            "--checkpoint",
            str(checkpoint),
            "--batch-events",
            "10",
            "--concurrency",
            "2",
            tmp_path=tmp_path,
        )
        try:
            wait_for(lambda: settled() >= 20, 30)  # two batches answered: saved without new input read
            assert proc.poll() is None
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_second_ctrl_c_stops_waiting_but_writes_rejects_checkpoint_and_summary(tmp_path):
    lines = ["bad"] * 4 + [json.dumps(c) for c in tracks(200)]
    source = write_lines(tmp_path / "in.ndjson", lines)
    checkpoint = tmp_path / "ck.json"
    with Receiver(api_key=API_KEY, latency_ms=60_000) as receiver:  # answers that never come in time
        proc = spawn(
            receiver,
            str(source),
            "--checkpoint",
            str(checkpoint),
            "--batch-events",
            "10",
            "--concurrency",
            "2",
            "--json",
            tmp_path=tmp_path,
        )
        err = StderrLines(proc)
        try:
            wait_for(lambda: len(receiver.requests) >= 2, 30)
            proc.send_signal(signal.SIGINT)
            wait_for(lambda: err.has("Interrupted"), 20)
            proc.send_signal(signal.SIGINT)
            out = proc.stdout.read()
            assert proc.wait(timeout=20) == 130
        finally:
            proc.kill()
    stderr = err.text()
    assert "Did not wait for 2 requests in flight" in stderr
    assert [r["line"] for r in rejects_of(tmp_path / "cdp-rejects.ndjson")] == [1, 2, 3, 4]
    assert json.loads(checkpoint.read_text())["sources"][os.path.realpath(source)]["settled"] == 4
    result = json.loads(out.decode().splitlines()[-1])
    assert result["exit_code"] == 130 and result["invalid"] == 4 and result["unsettled"] > 0


@pytest.mark.slow
def test_kill_9_at_any_point_loses_nothing_and_rejects_nothing_twice(tmp_path):
    """kill -9 during an import with a checkpoint, several times, then the same command to the
    end: every valid line delivered (by messageId), every invalid line in rejects exactly once."""
    lines, invalid_lines = [], set()
    for n in range(1, 1501):
        if n % 37 == 0:
            lines.append(f"invalid line {n}")
            invalid_lines.add(n)
        else:
            lines.append(json.dumps({"type": "track", "userId": f"u{n}", "event": "E", "messageId": f"m-{n}"}))
    source = write_lines(tmp_path / "in.ndjson", lines)
    args = (str(source), "--checkpoint", str(tmp_path / "ck.json"), "--batch-events", "25", "--concurrency", "2")
    # ~3 s a full run: kills land before, between and after the checkpoint's 1 s saves
    with Receiver(api_key=API_KEY, latency_ms=100) as receiver:
        for threshold in (150, 500, 800, 1100, 1300):
            proc = spawn(receiver, *args, tmp_path=tmp_path)
            try:
                wait_for(
                    lambda threshold=threshold, proc=proc: len(receiver.calls) >= threshold or proc.poll() is not None,
                    60,
                )
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        proc = spawn(receiver, *args, tmp_path=tmp_path)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err  # 1: some lines were invalid
        delivered = set(received_ids(receiver))
    expected = {f"m-{n}" for n in range(1, 1501) if n not in invalid_lines}
    assert delivered == expected
    rejected = [r["line"] for r in rejects_of(tmp_path / "cdp-rejects.ndjson")]
    assert sorted(rejected) == sorted(invalid_lines)  # each exactly once


def test_a_run_killed_before_any_progress_still_resumes_without_duplicate_rejects(send, receiver, tmp_path):
    """A checkpoint is written as the import starts: a run killed in its first second left one
    that settles nothing, and the rejects it wrote must not be written again."""
    source = write_lines(tmp_path / "in.ndjson", [json.dumps(tracks(1)[0]), "bad"])
    (tmp_path / "ck.json").write_text(json.dumps({"version": 1, "sources": {os.path.realpath(source): {"settled": 0}}}))
    (tmp_path / "cdp-rejects.ndjson").write_text(
        json.dumps({"source": str(source), "line": 2, "error": "invalid JSON", "input": "bad"}) + "\n"
    )
    assert send("import", str(source), "--checkpoint", "ck.json").exit_code == 1
    assert [r["line"] for r in rejects_of(tmp_path / "cdp-rejects.ndjson")] == [2]
    assert len(receiver.calls) == 1


def test_a_checkpoint_that_cannot_be_written_is_refused_before_sending(send, receiver, tmp_path):
    write_lines(tmp_path / "in.ndjson", tracks(1))
    run = send("import", "in.ndjson", "--checkpoint", "missing/ck.json")
    assert run.exit_code == 2 and "--checkpoint 'missing/ck.json'" in run.stderr
    assert receiver.requests == []


def test_a_torn_record_never_swallows_the_next(send, receiver, tmp_path):
    """A record cut short (a disk that filled up, a kill mid-write) had the next one glued to
    it, and that line could not be read back."""
    write_lines(tmp_path / "in.ndjson", ["bad"])
    (tmp_path / "cdp-rejects.ndjson").write_text('{"source": "x.ndjson", "line": 7, "err')  # torn
    assert send("import", "in.ndjson").exit_code == 1
    lines = (tmp_path / "cdp-rejects.ndjson").read_text().split("\n")
    assert lines[0] == '{"source": "x.ndjson", "line": 7, "err'
    assert json.loads(lines[1])["input"] == "bad" and lines[2] == ""


@pytest.mark.parametrize(
    "args, code, error",
    [
        (("--max-invalid", "1"), 1, "stopped at --max-invalid 1"),
        ((), 1, "1 of 2 calls not delivered (1 invalid, 0 failed)"),
        (("--api-key", "wrong-key-0000"), 3, "the API rejected the key"),
    ],
)
def test_json_summary_says_ok_error_and_hint(send, receiver, tmp_path, args, code, error):
    write_lines(tmp_path / "in.ndjson", ["bad", json.dumps(tracks(1)[0])])
    run = send("import", "in.ndjson", "--json", *args)
    assert run.exit_code == code
    [line] = run.stdout.splitlines()
    result = json.loads(line)
    assert result["ok"] is False and error in result["error"] and result["hint"] and result["exit_code"] == code


def test_json_summary_of_a_clean_import_is_ok(send, receiver, tmp_path):
    write_lines(tmp_path / "in.ndjson", tracks(2))
    result = summary(send("import", "in.ndjson", "--json"))
    assert result["ok"] is True and "error" not in result and result["exit_code"] == 0


def test_a_checkpoint_of_another_version_is_refused(send, tmp_path):
    write_lines(tmp_path / "in.ndjson", tracks(1))
    (tmp_path / "ck.json").write_text('{"version": 2, "sources": {}}')
    run = send("import", "in.ndjson", "--checkpoint", "ck.json")
    assert run.exit_code == 2 and "version 2" in run.stderr


# -- found in review: odd paths, later sources, rate waits, bounds --------------------------


def test_a_named_pipe_nothing_reads_is_refused_as_rejects_not_a_hang(send, receiver, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    write_lines(tmp_path / "in.ndjson", ["bad"])
    run = send("import", "in.ndjson", "--rejects", "fifo")
    assert run.exit_code == 2 and "named pipe that nothing reads" in run.stderr


def test_a_checkpoint_that_is_not_a_regular_file_is_refused(send, receiver, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    write_lines(tmp_path / "in.ndjson", tracks(1))
    run = send("import", "in.ndjson", "--checkpoint", "fifo")
    assert run.exit_code == 2 and "is not a regular file" in run.stderr
    assert receiver.requests == []


def test_rejects_to_dev_null_on_resume_do_not_block(send, receiver, tmp_path):
    write_lines(tmp_path / "in.ndjson", ["bad", json.dumps(tracks(1)[0])])
    (tmp_path / "ck.json").write_text('{"version": 1, "sources": {}}')
    run = send("import", "in.ndjson", "--checkpoint", "ck.json", "--rejects", "/dev/null")
    assert run.exit_code == 1 and len(receiver.calls) == 1


def test_a_file_corrupt_from_the_start_does_not_stop_the_others(send, receiver, tmp_path):
    import gzip

    write_lines(tmp_path / "a.ndjson", tracks(3))
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"{}\n")[:10] + b"not deflate" * 5)  # corrupt from the start
    write_lines(tmp_path / "c.ndjson", tracks(2, start=4))
    run = send("import", "a.ndjson", "b.gz", "c.ndjson")
    assert run.exit_code == 1 and "b.gz:1: corrupt gzip data" in run.stderr
    assert len(receiver.calls) == 5


def test_the_same_file_twice_is_a_usage_error(send, receiver, tmp_path):
    write_lines(tmp_path / "a.ndjson", tracks(1))
    run = send("import", "a.ndjson", "./a.ndjson")
    assert run.exit_code == 2 and "given twice" in run.stderr and receiver.requests == []


@pytest.mark.parametrize(
    "args, flag",
    [
        (("--rate", "1e-300"), "--rate"),
        (("--rate", "nan"), "--rate"),
        (("--timeout", "1e300"), "timeout"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(send, tmp_path, args, flag):
    write_lines(tmp_path / "a.ndjson", tracks(1))
    run = send("import", "a.ndjson", *args)
    assert run.exit_code == 2 and flag in run.stderr and "unexpected" not in run.stderr


@pytest.mark.slow
def test_ctrl_c_during_a_rate_wait_sends_nothing_more(receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(20))
    proc = spawn(receiver, str(source), "--batch-events", "1", "--rate", "0.2", "--concurrency", "4", tmp_path=tmp_path)
    try:
        wait_for(lambda: len(receiver.requests) >= 1, 20)  # the first request; the next waits 5 s for its turn
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=4) == 130  # not after the queued waits (~15 s)
    finally:
        proc.kill()
    assert len(receiver.requests) == 1


def test_dry_run_summary_counts_valid_calls_not_unsettled(cli, tmp_path):
    write_lines(tmp_path / "a.ndjson", [*map(json.dumps, tracks(2)), "bad"])
    result = summary(cli("import", "a.ndjson", "--dry-run", "--json"))
    assert result["valid"] == 2 and result["unsettled"] == 0 and result["invalid"] == 1


def test_the_format_stop_is_per_source(send, receiver, tmp_path):
    """100 invalid lines spread over two files are not a file of another format; a file whose
    first 100 lines are all invalid is, and what the other files gave is still delivered."""
    write_lines(tmp_path / "a.ndjson", ["bad"] * 60)
    write_lines(tmp_path / "b.ndjson", ["bad"] * 60 + [json.dumps(c) for c in tracks(3)])
    run = send("import", "a.ndjson", "b.ndjson", "--json")
    assert run.exit_code == 1, run.stderr
    assert len(receiver.calls) == 3 and summary(run)["invalid"] == 120
    receiver.calls.clear()
    write_lines(tmp_path / "good.ndjson", tracks(5))
    (tmp_path / "people.txt").write_text("id,email\n" + "".join(f"{i},u{i}@example.com\n" for i in range(200)))
    run = send("import", "good.ndjson", "people.txt", "--json")
    assert run.exit_code == 2 and "the first 100 lines of people.txt are all invalid" in run.stderr
    assert len(receiver.calls) == 5  # the good file's calls, delivered


def test_an_empty_directory_is_a_usage_error(send, tmp_path):
    """A directory is read recursively (tests/test_import_inputs.py); one with nothing to read
    (hidden files only) is named."""
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / ".DS_Store").write_text("x")
    run = send("import", "day1")
    assert run.exit_code == 2 and "day1 is a directory with no files in it" in run.stderr

"""`cdp import` against the loopback receiver: delivery, rejects, splitting, resume, streaming."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdpcli import __version__
from cdpcli.serve import Receiver
from tests.conftest import API_KEY
from tests.fakes import Scripted

LIBRARY = {"name": "cdpcli", "version": __version__}


def write_lines(path: Path, calls: list) -> Path:
    path.write_text("".join((c if isinstance(c, str) else json.dumps(c)) + "\n" for c in calls))
    return path


def tracks(count: int, start: int = 1) -> list[dict]:
    return [
        {"type": "track", "userId": f"u-{i}", "event": "E", "properties": {"n": i}} for i in range(start, start + count)
    ]


def received_ids(receiver: Receiver) -> list[str]:
    return [c["messageId"] for c in receiver.calls]


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_every_line_delivered_once_in_batches(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(250))
    run = send("import", str(source), "--batch-events", "100", "--json")
    assert run.exit_code == 0, run.stderr
    assert {r.path for r in receiver.requests} == {"/v1/batch"}
    assert sorted(len(r.body["batch"]) for r in receiver.requests) == [50, 100, 100]
    ids = received_ids(receiver)
    assert len(ids) == 250 == len(set(ids))
    assert sorted(c["properties"]["n"] for c in receiver.calls) == list(range(1, 251))
    first = receiver.calls[0]
    assert first["context"] == {"library": LIBRARY}
    assert first["timestamp"].endswith("Z") and len(first["timestamp"]) == 24
    for request in receiver.requests:
        assert request.headers["x-strict-mode"] == "1"
        assert request.body["sentAt"].endswith("Z")
    result = summary(run)
    assert {k: result[k] for k in ("read", "sent", "invalid", "failed", "batches", "requests", "retries")} == {
        "read": 250,
        "sent": 250,
        "invalid": 0,
        "failed": 0,
        "batches": 3,
        "requests": 3,
        "retries": 0,
    }
    assert result["seconds"] > 0 and result["events_per_second"] > 0
    assert "Read 250 lines: 250 sent, 0 invalid, 0 failed.\n3 batches, 3 requests, 0 retries;" in run.stderr
    assert not (tmp_path / "cdp-rejects.ndjson").exists()  # created only when there is a reject


def test_message_ids_are_derived_and_stable_across_runs(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(5) + [{"type": "identify", "userId": "x", "messageId": "mine"}])
    assert send("import", str(source)).exit_code == 0
    first = received_ids(receiver)
    receiver.calls.clear()
    assert send("import", str(tmp_path / ".." / tmp_path.name / "in.ndjson")).exit_code == 0
    assert received_ids(receiver) == first  # same file by another path: same ids
    assert first[-1] == "mine" and len(set(first)) == 6


def test_invalid_lines_go_to_rejects_with_line_numbers(send, receiver, tmp_path):
    lines = [
        json.dumps(tracks(1)[0]),
        "not json",
        json.dumps({"type": "track", "userId": "1"}),  # no event
        "",  # blank lines are skipped, not rejected
        json.dumps({"type": "identify"}),  # no id
        json.dumps({"type": "nope", "userId": "1"}),
        "[1, 2]",
        json.dumps({"type": "track", "userId": "1", "event": "E", "properties": {"x": "é" * 6000}}),  # 36 kB escaped
        json.dumps(tracks(1, start=9)[0]),
    ]
    source = tmp_path / "in.ndjson"
    source.write_text("\n".join(lines) + "\n")
    run = send("import", str(source), "--json")
    assert run.exit_code == 1
    assert sorted(c["userId"] for c in receiver.calls) == ["u-1", "u-9"]
    rejects = [json.loads(text) for text in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 3, 5, 6, 7, 8]
    assert all(r["source"] == str(source) for r in rejects)
    assert rejects[0]["input"] == "not json" and rejects[0]["error"].startswith("invalid JSON")
    assert rejects[1]["error"] == "event: Field required"
    assert rejects[2]["error"].startswith("identify needs userId or anonymousId")
    assert rejects[3]["error"].startswith("type must be one of identify, track")
    assert rejects[4]["error"] == "expected a JSON object, got an array"
    assert "the API accepts at most 32,000" in rejects[5]["error"]
    assert f"{source}:2: invalid JSON" in run.stderr
    assert f"{source}:3: event: Field required" in run.stderr
    result = summary(run)
    # every line read is accounted for: read = sent + invalid + failed + skipped + blank
    assert {k: result[k] for k in ("read", "sent", "invalid", "failed", "skipped", "blank", "unsettled")} == {
        "read": 9,
        "sent": 2,
        "invalid": 6,
        "failed": 0,
        "skipped": 0,
        "blank": 1,
        "unsettled": 0,
    }
    assert result["by_type"] == {"track": 2}
    assert result["invalid_reasons"] == {"invalid JSON": 1, "invalid call": 3, "not an object": 1, "too large": 1}
    assert "Read 9 lines (8 calls):" in run.stderr and "\n1 blank line.\n" in run.stderr
    assert "6 rejects appended to cdp-rejects.ndjson" in run.stderr


def test_lines_off_the_fast_path_are_normalised(send, receiver, tmp_path):
    calls = [
        {"type": "identify", "userId": 42, "traits": {"a": 1}},  # numeric id
        {"type": "track", "userId": "a", "event": "E", "timestamp": "2026-01-02T03:04:05+01:00"},
        {"type": "track", "userId": "b", "event": "E", "context": {"library": {"name": "x"}, "ip": "1.2.3.4"}},
        {"type": "track", "userId": "c", "event": "E", "context": None, "messageId": None},
        {"type": "track", "userId": "d", "event": "E", "properties": {"context": {"nested": True}}},
        '{"type":"track","userId":"e","event":"E","\\u0063ontext":{"ip":"5.6.7.8"}}',  # escaped key
        {"type": "page", "userId": "f", "context": {}},
        {"type": "group", "userId": "g", "groupId": 7, "extra": {"kept": True}},
    ]
    source = write_lines(tmp_path / "in.ndjson", calls)
    run = send("import", str(source))
    assert run.exit_code == 0, run.stderr
    got = {c.get("userId"): c for c in receiver.calls}
    assert got["42"]["traits"] == {"a": 1}
    assert got["a"]["timestamp"] == "2026-01-02T02:04:05.000Z"
    assert got["b"]["context"] == {"library": {"name": "x"}, "ip": "1.2.3.4"}  # a replay keeps its SDK's library
    assert got["c"]["context"] == {"library": LIBRARY} and got["c"]["messageId"].startswith("cdp-")
    assert got["d"]["properties"] == {"context": {"nested": True}} and got["d"]["context"] == {"library": LIBRARY}
    assert got["e"]["context"] == {"library": LIBRARY, "ip": "5.6.7.8"}
    assert got["f"]["context"] == {"library": LIBRARY}
    assert got["g"]["groupId"] == "7" and got["g"]["extra"] == {"kept": True}
    for call in receiver.calls:
        assert list(call).count("context") == 1


def test_type_option_fills_lines_without_type(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", [{"userId": "1", "event": "E"}, {"type": "identify", "userId": "2"}])
    run = send("import", str(source), "--type", "track")
    assert run.exit_code == 0, run.stderr
    assert sorted(c["type"] for c in receiver.calls) == ["identify", "track"]
    run = send("import", str(source))
    assert run.exit_code == 1
    assert "missing type" in run.stderr


def test_injected_faults_still_deliver_each_call_exactly_once(cli, tmp_path, monkeypatch):
    source = write_lines(tmp_path / "in.ndjson", tracks(300))
    # seeded: the faults are the same sequence every run (unseeded, 10 requests at 0.3 drew none ~3 % of runs)
    with Receiver(api_key=API_KEY, fail_rate=0.3, seed=3) as receiver:
        run = cli(
            "import",
            str(source),
            "--endpoint",
            receiver.url,
            "--api-key",
            API_KEY,
            "--batch-events",
            "30",
            "--retries",
            "10",
            "--json",
        )
        assert run.exit_code == 0, run.stderr
        ids = received_ids(receiver)
        assert len(ids) == 300 == len(set(ids))
        failures = [r for r in receiver.requests if r.status != 200]
        assert failures, "the fault injection should have failed some requests"
        assert {r.status for r in failures} <= {500, 503, 429}
        assert summary(run)["retries"] == len(failures)
        retried = [r for r in receiver.requests if "x-retry-count" in r.headers]
        assert len(retried) == len(failures)


def test_a_400_inside_a_batch_is_isolated_by_splitting(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(64))
    receiver.reject_when = lambda call: "userId u-13 is blocked" if call["userId"] == "u-13" else None
    run = send("import", str(source), "--json")
    assert run.exit_code == 1
    assert sorted(c["properties"]["n"] for c in receiver.calls) == [n for n in range(1, 65) if n != 13]
    [reject] = [json.loads(text) for text in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert reject["line"] == 13 and "HTTP 400" in reject["error"] and "userId u-13 is blocked" in reject["error"]
    sent = json.loads(reject["input"])
    assert sent["userId"] == "u-13" and sent["messageId"]  # as sent: fixable and re-importable
    assert len(receiver.requests) <= 1 + 2 * 6  # halves down to the one bad call: log2(64) levels
    result = summary(run)
    assert (result["sent"], result["failed"]) == (63, 1)


def test_413_splits_and_resends(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(10))
    receiver.script.append(Scripted(413))
    run = send("import", str(source))
    assert run.exit_code == 0, run.stderr
    assert [len(r.body["batch"]) for r in receiver.requests] == [10, 5, 5]
    assert len(receiver.calls) == 10


def test_rejected_key_stops_at_once_with_exit_3(cli, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(100))
    run = cli(
        "import",
        str(source),
        "--endpoint",
        receiver.url,
        "--api-key",
        "wrong-key-123456",
        "--batch-events",
        "5",
        "--concurrency",
        "2",
        secret="wrong-key-123456",
    )
    assert run.exit_code == 3
    assert "Error: the API rejected the key (HTTP 401) at " in run.stderr and "; import stopped" in run.stderr
    assert receiver.calls == []
    assert len(receiver.requests) <= 4  # in flight at most, never the 20 batches
    assert not (tmp_path / "cdp-rejects.ndjson").exists()  # nothing rejected: re-run with the right key


def test_unreachable_from_the_start_exits_6(cli, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = write_lines(tmp_path / "in.ndjson", tracks(10))
    run = cli("import", str(source), "--endpoint", f"http://127.0.0.1:{port}", "--api-key", API_KEY, "--retries", "0")
    assert run.exit_code == 6
    assert "connection refused" in run.stderr


def test_5xx_after_retries_goes_to_rejects_and_exits_1(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(4))
    receiver.script.extend([Scripted(200), Scripted(503), Scripted(503)])
    run = send("import", str(source), "--batch-events", "2", "--concurrency", "1", "--retries", "1")
    assert run.exit_code == 1
    rejects = [json.loads(text) for text in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [3, 4]
    assert rejects[0]["error"].startswith("HTTP 503 after 2 attempts")
    # the receiver answered the first batch from its script without recording calls
    assert receiver.calls == []


def test_batches_respect_byte_and_count_limits(send, receiver, tmp_path):
    import random

    rng = random.Random(7)
    calls = [
        {"type": "track", "userId": str(i), "event": "E", "properties": {"pad": "x" * rng.randrange(0, 30_000)}}
        for i in range(60)
    ]
    source = write_lines(tmp_path / "in.ndjson", calls)
    run = send("import", str(source), "--batch-bytes", "100000", "--batch-events", "7")
    assert run.exit_code == 0, run.stderr
    assert len(receiver.calls) == 60
    for request in receiver.requests:
        assert request.raw_size <= 100_000
        assert len(request.body["batch"]) <= 7
    # full batches are cut close to the limit, not far below it
    sizes = [r.raw_size for r in receiver.requests if len(r.body["batch"]) < 7]
    assert all(size > 100_000 - 31_000 for size in sizes[:-1])


def test_default_batches_fill_towards_the_request_limit(send, receiver, tmp_path):
    calls = [{"type": "track", "userId": str(i), "event": "E", "properties": {"pad": "y" * 900}} for i in range(2000)]
    source = write_lines(tmp_path / "in.ndjson", calls)
    assert send("import", str(source)).exit_code == 0
    sizes = [r.raw_size for r in receiver.requests]
    assert max(sizes) <= 500_000
    assert min(sorted(sizes)[1:]) > 480_000  # all but the last, partial one (they arrive in any order)


def test_dry_run_validates_prints_batches_and_sends_nothing(cli, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(3) + ["{oops"])
    run = cli("import", str(source), "--dry-run", "--json", "--endpoint", "http://127.0.0.1:9")
    assert run.exit_code == 1
    [request] = [json.loads(line) for line in run.stdout.splitlines()][:-1]
    assert request["url"] == "http://127.0.0.1:9/v1/batch"
    assert request["headers"]["Authorization"] == "Basic ****"
    assert [c["userId"] for c in request["body"]["batch"]] == ["u-1", "u-2", "u-3"]
    assert json.loads((tmp_path / "cdp-rejects.ndjson").read_text())["line"] == 4


def test_rejects_can_be_fixed_and_fed_back(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", [{"type": "track", "userId": "1"}, tracks(1)[0]])
    assert send("import", str(source)).exit_code == 1
    rejects = tmp_path / "cdp-rejects.ndjson"
    fixed = tmp_path / "fixed.ndjson"
    record = json.loads(rejects.read_text())
    record["input"] = record["input"].replace('"userId": "1"', '"userId": "1", "event": "Fixed"')
    fixed.write_text(json.dumps(record) + "\n")
    run = send("import", str(fixed), "--rejects", str(tmp_path / "again.ndjson"))
    assert run.exit_code == 0, run.stderr
    assert [c["event"] for c in receiver.calls] == ["E", "Fixed"]


def test_rejects_file_must_not_be_an_input(send, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(1))
    run = send("import", str(source), "--rejects", str(source))
    assert run.exit_code == 2
    assert "is both an input and an output" in run.stderr


def test_bad_options(send, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(1))
    assert "--batch-bytes must be between" in send("import", str(source), "--batch-bytes", "600000").stderr
    assert "--batch-events must be between" in send("import", str(source), "--batch-events", "3000").stderr
    assert "--type 'event'" in send("import", str(source), "--type", "event").stderr
    run = send("import", "missing.ndjson")
    assert run.exit_code == 2 and "cannot read missing.ndjson" in run.stderr


def test_checkpoint_resumes_and_guards_the_source(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(20))
    checkpoint = tmp_path / "ck.json"
    assert send("import", str(source), "--checkpoint", str(checkpoint)).exit_code == 0
    saved = json.loads(checkpoint.read_text())
    assert saved["sources"][str(source)]["settled"] == 20
    # more lines appended: the same command sends only those
    with open(source, "a") as handle:
        handle.write("".join(json.dumps(c) + "\n" for c in tracks(5, start=21)))
    receiver.calls.clear()
    run = send("import", str(source), "--checkpoint", str(checkpoint), "--json")
    assert run.exit_code == 0, run.stderr
    assert sorted(c["properties"]["n"] for c in receiver.calls) == list(range(21, 26))
    assert summary(run)["skipped"] == 20
    # a different file under the same name is refused, not silently resumed
    write_lines(source, tracks(30, start=100))
    run = send("import", str(source), "--checkpoint", str(checkpoint))
    assert run.exit_code == 2
    assert "does not start as it did" in run.stderr


# -- as a real process: stdin streaming and signals -----------------------------------------


def spawn(receiver: Receiver, *args: str, tmp_path: Path, stdin=subprocess.PIPE) -> subprocess.Popen:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CDP_API_KEY": API_KEY,
        "CDP_ENDPOINT": receiver.url,
        "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "import", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )


def wait_for(predicate, seconds: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > seconds:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)
    return time.monotonic() - started


def feed(proc: subprocess.Popen, calls: list[dict]) -> None:
    proc.stdin.write("".join(json.dumps(c) + "\n" for c in calls).encode())
    proc.stdin.flush()


@pytest.mark.slow
def test_full_batch_leaves_before_stdin_closes_and_partial_after_linger(receiver, tmp_path):
    proc = spawn(receiver, "--batch-events", "10", tmp_path=tmp_path)
    try:
        feed(proc, tracks(10))
        wait_for(lambda: len(receiver.calls) == 10, 10)  # a full batch: sent with stdin still open
        assert proc.poll() is None
        feed(proc, tracks(3, start=11))  # a slow producer's few lines
        waited = wait_for(lambda: len(receiver.calls) == 13, 5)
        assert 0.5 < waited < 3.0  # held for the 1 s linger, then sent with stdin still open
        assert proc.poll() is None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert len(set(received_ids(receiver))) == 13


def test_stdin_terminal_is_an_error_not_a_hang(receiver, tmp_path):
    leader, follower = pty.openpty()
    try:
        proc = spawn(receiver, tmp_path=tmp_path, stdin=follower)
        _, err = proc.communicate(timeout=20)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 2
    assert b"stdin is a terminal" in err and b"Hint:" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_checkpoint_and_rerun_completes_without_new_ids(receiver, tmp_path, sig):
    first, rest = tracks(40), tracks(60, start=41)
    checkpoint = tmp_path / "ck.json"
    proc = spawn(receiver, "--checkpoint", str(checkpoint), "--batch-events", "10", "--json", tmp_path=tmp_path)
    feed(proc, first + rest[:5])  # 4 full batches go out; 5 lines wait in a partial batch
    wait_for(lambda: len(receiver.calls) >= 40, 10)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert b"Stopped early" in err
    result = json.loads(out.decode().splitlines()[-1])
    assert result["exit_code"] == 130
    saved = json.loads(checkpoint.read_text())["sources"]["-"]
    assert 40 <= saved["settled"] <= 45
    # the same command with the same input: resumes after what was settled
    proc = spawn(receiver, "--checkpoint", str(checkpoint), "--batch-events", "10", tmp_path=tmp_path)
    _, err = proc.communicate(input="".join(json.dumps(c) + "\n" for c in first + rest).encode(), timeout=20)
    assert proc.returncode == 0, err
    ids = received_ids(receiver)
    expected = {c["userId"] for c in first + rest}
    assert {c["userId"] for c in receiver.calls} == expected  # every call at least once
    assert len(set(ids)) == 100  # and no new ids: re-sent calls carry the same messageId


def test_objects_are_checked_on_the_fast_path_too(send, receiver, tmp_path):
    lines = [
        {"type": "track", "userId": "1", "event": "E", "properties": "not an object"},
        {"type": "identify", "userId": "2", "traits": [1, 2]},
        {"type": "track", "userId": "3", "event": "E", "integrations": True},
        {"type": "track", "userId": "4", "event": "E", "properties": None},  # null: as if absent
        {"type": "identify", "userId": "5", "traits": {"properties": "nested, fine"}},
        {"type": "track", "userId": "6", "event": "properties", "properties": {"a": 1}},
        {"type": "track", "userId": "7", "event": "E", "context": "nope"},
    ]
    source = write_lines(tmp_path / "in.ndjson", lines)
    run = send("import", str(source))
    assert run.exit_code == 1
    rejects = [json.loads(text) for text in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert [(r["line"], r["error"]) for r in rejects] == [
        (1, "properties: Input should be a valid dictionary"),
        (2, "traits: Input should be a valid dictionary"),
        (3, "integrations: Input should be a valid dictionary"),
        (7, "context: Input should be a valid dictionary"),
    ]
    got = {c["userId"]: c for c in receiver.calls}
    assert sorted(got) == ["4", "5", "6"]
    assert "properties" not in got["4"]
    assert got["5"]["traits"] == {"properties": "nested, fine"}
    assert got["6"]["properties"] == {"a": 1}


def test_derived_ids_change_when_a_line_changes(send, receiver, tmp_path):
    source = write_lines(tmp_path / "in.ndjson", tracks(3))
    assert send("import", str(source)).exit_code == 0
    before = {c["userId"]: c["messageId"] for c in receiver.calls}
    receiver.calls.clear()
    edited = tracks(3)
    edited[1]["properties"]["n"] = 99
    write_lines(source, edited)
    assert send("import", str(source)).exit_code == 0
    after = {c["userId"]: c["messageId"] for c in receiver.calls}
    assert after["u-1"] == before["u-1"] and after["u-3"] == before["u-3"]
    assert after["u-2"] != before["u-2"]

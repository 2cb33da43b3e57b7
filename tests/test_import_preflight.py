"""Issue #14: `cdp import --preflight` (a report against a generated file with known counts,
golden JSON, fixed clock) and `--recent warn|skip|fail` on real imports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import cdpcli
from cdpcli.importing import ImportOptions, make_sources, select
from cdpcli.importing import preflight as preflight_module
from cdpcli.importing.preflight import Analysis, HyperLogLog, epoch_unit, normalized, preflight
from tests.conftest import API_KEY

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
OLD = "2026-01-01T00:00:00Z"
GOLDEN = Path(__file__).parent / "data" / "preflight-report.json"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def generated() -> list[str]:
    """A file with known counts (see test_preflight_report_matches_the_golden_json)."""
    lines: list[dict | str] = []
    spellings = ("first_name", "firstName", "First_name")
    for i in range(100):  # 100 users identified, the even ones with an email
        traits = {spellings[i % 3]: f"N{i}", "plan": "pro"}
        if i % 2 == 0:
            traits["email"] = f"u{i}@example.com"
        lines.append({"type": "identify", "userId": f"u-{i}", "traits": traits, "timestamp": OLD})
    for i in range(200):  # 200 orders by u-0…u-199: 100 more users, none with an email
        stamp: object = OLD
        if i < 10:
            stamp = iso(NOW - timedelta(hours=1 + i))  # within 72 hours
        elif i < 15:
            stamp = iso(NOW + timedelta(days=1))  # in the future
        elif i < 20:
            stamp = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())  # Unix seconds: valid
        elif i < 23:
            stamp = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()) * 1000  # milliseconds: invalid
        props = {"total": i, ("Total" if i % 50 == 0 else "currency"): "EUR"}
        lines.append(
            {"type": "track", "userId": f"u-{i}", "event": "Order Completed", "properties": props, "timestamp": stamp}
        )
    for i in range(30):  # anonymous pages older than 30 days
        lines.append({"type": "page", "anonymousId": f"a-{i}", "name": "Home", "timestamp": OLD})
    for i in range(5):  # anonymous, 10 days old: still mergeable
        lines.append(
            {"type": "page", "anonymousId": f"b-{i}", "name": "Home", "timestamp": iso(NOW - timedelta(days=10))}
        )
    lines.append({"type": "track", "userId": "u-1", "event": "User Deleted", "timestamp": OLD})
    lines.append({"type": "track", "userId": "u-2", "event": "User Suppressed", "timestamp": OLD})
    lines.append({"type": "track", "userId": "u-1", "event": "Order Completed", "timestamp": OLD})  # re-created
    lines.append({"type": "track", "userId": "u-1", "event": "Order Completed", "timestamp": OLD})  # counted once
    for i in range(4):  # no timestamp: sent with the time of import
        lines.append({"type": "track", "userId": f"s-{i}", "event": "Signed Up"})
    lines += ["not json", "", '{"type":"track","userId":"u-0"}', "", "[1]"]
    return [line if isinstance(line, str) else json.dumps(line) for line in lines]


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(select, "utc_now", lambda: NOW)


def test_preflight_report_matches_the_golden_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # invalid lines are listed by the name given (events.ndjson:121: …)
    (tmp_path / "events.ndjson").write_text("\n".join(generated()) + "\n")
    sources, _ = make_sources(["events.ndjson"], None, None)
    report = preflight(sources, ImportOptions(), now=NOW)
    assert report == json.loads(GOLDEN.read_text())
    # the counts the file was built with
    assert report["by_type"] == {"identify": 100, "track": 205, "page": 35}
    assert report["by_event"] == {"Order Completed": 199, "Signed Up": 4, "User Deleted": 1, "User Suppressed": 1}
    assert report["users"] == {"distinct": 204, "without_email": 154, "estimated": False}  # u-0…199, s-0…3
    stamps = report["timestamps"]
    assert (stamps["recent"], stamps["future"], stamps["missing"]) == (10, 5, 4)
    assert stamps["anonymous_older_than_30_days"] == 30
    assert stamps["epoch"] == {"milliseconds": 3, "seconds": 5} and stamps["epoch_mixed"]
    assert report["name_drift"]["traits"] == {"firstname": {"firstName": 33, "first_name": 34, "First_name": 33}}
    assert report["name_drift"]["properties"] == {"total": {"total": 197, "Total": 4}}
    assert report["deleted_then_sent"] == {"users": 1, "examples": ["u-1"], "truncated": False}
    assert report["invalid_reasons"] == {"invalid JSON": 1, "invalid call": 4, "not an object": 1}
    assert [line.split(": ")[0] for line in report["invalid_lines"]] == [
        f"events.ndjson:{n}" for n in (121, 122, 123, 344, 346, 348)
    ]
    assert (report["read"], report["blank"], report["error"], report["exit_code"]) == (348, 2, None, 0)


def test_preflight_applies_the_same_filters(tmp_path):
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(generated()) + "\n")
    sources, _ = make_sources([str(path)], None, None)
    report = preflight(sources, ImportOptions(types=["page"]), now=NOW)
    assert report["by_type"] == {"page": 35} and report["users"]["distinct"] == 0
    assert report["skipped_reasons"]["types"] == 309  # identify 100, track 209


def test_cli_preflight_json_needs_no_key_and_writes_nothing(cli, tmp_path, monkeypatch, fixed_clock):
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    monkeypatch.setenv("CDP_ENDPOINT", "http://127.0.0.1:9/v1")  # nothing listens: nothing may be sent
    (tmp_path / "events.ndjson").write_text("\n".join(generated()) + "\n")
    run = cli("import", "events.ndjson", "--preflight", "--json", "--checkpoint", "ck.json")
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    (line,) = run.stdout.splitlines()
    report = json.loads(line)
    assert report.pop("preflight") is True
    assert report == json.loads(GOLDEN.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.ndjson"]  # no rejects, no checkpoint


def test_cli_preflight_text_on_stderr(cli, tmp_path, fixed_clock):
    (tmp_path / "events.ndjson").write_text("\n".join(generated()) + "\n")
    run = cli("import", "events.ndjson", "--preflight")
    assert run.exit_code == 0 and run.stdout == ""
    text = run.stderr
    assert "Preflight (nothing sent): 348 lines read, 340 calls to send, 6 invalid, 0 skipped." in text
    assert "Profiles: 204 distinct userIds (each may become a billed profile); 154 never get an email trait." in text
    assert "10 calls within the last 72 hours (may trigger campaigns; see --recent)" in text
    assert "Unix-time timestamps: seconds 5, milliseconds 3: mixed magnitudes, check the units." in text
    assert "Name drift in traits (distinct attributes in Customer.io): first_name / First_name / firstName." in text
    assert "Deleted or suppressed, then sent again later: 1 userId (e.g. u-1)" in text
    assert not (tmp_path / "cdp-rejects.ndjson").exists()


def test_cli_preflight_usage_error_exits_2(cli, tmp_path):
    (tmp_path / "a.ndjson").write_text('{"type":"track","userId":"u","event":"E"}\n')
    run = cli("import", "a.ndjson", "--preflight", "--types", "bogus")
    assert run.exit_code == 2 and run.stdout == ""
    assert "--types 'bogus'" in run.stderr


# -- --recent ----------------------------------------------------------------------------------


def recent_file(tmp_path: Path) -> None:
    times = [OLD, iso(NOW - timedelta(hours=1)), iso(NOW - timedelta(hours=73)), iso(NOW - timedelta(hours=71))]
    calls = [
        {"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}", "timestamp": t}
        for i, t in enumerate(times)
    ]
    (tmp_path / "r.ndjson").write_text("".join(json.dumps(c) + "\n" for c in calls))


def test_recent_warn_sends_everything_and_says_how_many(send, receiver, tmp_path, fixed_clock):
    recent_file(tmp_path)
    run = send("import", "r.ndjson", "--json")
    assert run.exit_code == 0
    assert [c["messageId"] for c in receiver.calls] == ["m0", "m1", "m2", "m3"]
    result = json.loads(run.stdout.splitlines()[-1])
    assert (result["recent"], result["recent_mode"], result["skipped"]) == (2, "warn", 0)
    assert run.stderr.count("within the last 72 hours") == 1
    assert "Warning: 2 of the calls were timestamped within the last 72 hours" in run.stderr


def test_recent_skip_leaves_them_out_settled_not_rejected(send, receiver, tmp_path, fixed_clock):
    recent_file(tmp_path)
    run = send("import", "r.ndjson", "--recent", "skip", "--json", "--checkpoint", "ck.json")
    assert run.exit_code == 0
    assert [c["messageId"] for c in receiver.calls] == ["m0", "m2"]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["skipped_reasons"] == {"recent": 2} and result["sent"] == 2
    assert "Warning" not in run.stderr and "2 skipped (--recent)." in run.stderr
    assert not (tmp_path / "cdp-rejects.ndjson").exists()
    (entry,) = json.loads((tmp_path / "ck.json").read_text())["sources"].values()
    assert entry["settled"] == 4


def test_recent_fail_rejects_each_and_exits_1(send, receiver, tmp_path, fixed_clock):
    recent_file(tmp_path)
    run = send("import", "r.ndjson", "--recent", "fail", "--json")
    assert run.exit_code == 1
    assert [c["messageId"] for c in receiver.calls] == ["m0", "m2"]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["invalid_reasons"] == {"recent": 2}
    records = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert [r["line"] for r in records] == [2, 4]
    assert "within the last 72 hours" in records[0]["error"]
    assert "r.ndjson:2: timestamp 2026-06-15T11:00:00.000Z is within the last 72 hours" in run.stderr


def test_recent_fail_on_every_line_is_not_taken_for_a_format_problem(send, receiver, tmp_path, fixed_clock):
    calls = [
        {"type": "track", "userId": "u", "event": "E", "timestamp": iso(NOW - timedelta(minutes=i))} for i in range(150)
    ]
    (tmp_path / "r.ndjson").write_text("".join(json.dumps(c) + "\n" for c in calls))
    run = send("import", "r.ndjson", "--recent", "fail")
    assert run.exit_code == 1 and "NDJSON" not in run.stderr
    assert "Checked" not in run.stderr and "150 rejects appended" in run.stderr


def test_recent_needs_a_known_mode(send, receiver, tmp_path):
    recent_file(tmp_path)
    run = send("import", "r.ndjson", "--recent", "maybe")
    assert run.exit_code == 2 and receiver.requests == []
    assert "--recent 'maybe': expected one of warn, skip, fail" in run.stderr
    assert API_KEY not in run.stderr


def test_import_lines_takes_the_filters_and_recent(receiver, tmp_path):
    target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)
    calls = [
        {"type": "track", "userId": "u", "event": e, "messageId": f"m{i}", "timestamp": t}
        for i, (e, t) in enumerate(
            [("A", OLD), ("B", OLD), ("A", iso(NOW - timedelta(hours=2))), ("A", "2025-01-01T00:00:00Z")]
        )
    ]
    result = cdpcli.import_lines(
        calls,
        target=target,
        rejects=str(tmp_path / "r.ndjson"),
        events=["A"],
        since="2025-06-01",
        recent="skip",
        now=NOW,
    )
    assert result.ok and [c["messageId"] for c in receiver.calls] == ["m0"]
    assert result.skipped_reasons == {"events": 1, "recent": 1, "since": 1}
    assert result.recent == 1


# -- the pieces --------------------------------------------------------------------------------


def test_names_differing_in_case_underscores_or_camel_case_are_one():
    assert normalized("first_name") == normalized("First_name") == normalized("firstName") == "firstname"
    assert normalized("First Name") == normalized("first-name") == "firstname"


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (1767225600, "seconds"),
        (1767225600.5, "seconds"),
        ("1767225600", "seconds"),
        (1767225600000, "milliseconds"),
        (1767225600000000, "microseconds"),
        (12345, "other"),
        ("2026-01-01T00:00:00Z", None),
        (True, None),
    ],
)
def test_epoch_magnitudes(value, unit):
    assert epoch_unit(value) == unit


def test_distinct_users_are_exact_up_to_the_limit_then_estimated(monkeypatch):
    monkeypatch.setattr(preflight_module, "EXACT_LIMIT", 1_000)
    analysis = Analysis(NOW)
    for i in range(20_000):
        traits = {"email": "x"} if i % 4 == 0 else {}
        analysis.call({"type": "identify", "userId": f"user-{i}", "traits": traits}, stamped=False)
    users = analysis.report()["users"]
    assert users["estimated"] is True
    assert abs(users["distinct"] - 20_000) < 20_000 * 0.04
    assert abs(users["without_email"] - 15_000) < 15_000 * 0.08
    assert len(analysis.users) == 1_000


def test_hyperloglog_counts_small_sets_closely():
    sketch = HyperLogLog()
    for i in range(500):
        sketch.add(hash(f"id-{i}") & (2**64 - 1))
        sketch.add(hash(f"id-{i}") & (2**64 - 1))
    assert 490 <= sketch.count() <= 510


def test_preflight_lists_the_first_20_invalid_lines(cli, tmp_path, fixed_clock):
    lines = ['{"type":"track","userId":"u","event":"E"}'] + ["{oops"] * 25 + ['{"type":"track","userId":"u"}']
    (tmp_path / "bad.ndjson").write_text("\n".join(lines) + "\n")
    run = cli("import", "bad.ndjson", "--preflight", "--json")
    report = json.loads(run.stdout)
    assert report["invalid"] == 26
    assert report["invalid_lines"][0].startswith("bad.ndjson:2: invalid JSON")
    assert [line.split(": ")[0] for line in report["invalid_lines"]] == [f"bad.ndjson:{n}" for n in range(2, 22)]
    text = cli("import", "bad.ndjson", "--preflight").stderr
    assert "\n  bad.ndjson:21: invalid JSON" in text and "bad.ndjson:22:" not in text
    assert "… and 6 more invalid lines" in text

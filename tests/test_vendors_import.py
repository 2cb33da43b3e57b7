"""`cdp import --from VENDOR` and `import_lines(archive=VENDOR)` end to end into the loopback
receiver: each vendor's golden fixture (tests/data/vendors) arrives as its expected calls,
skips and rejects counted by reason, line numbers the file's."""

from __future__ import annotations

import gzip
import json
import zipfile
from collections import Counter
from pathlib import Path

import pytest

import cdpcli
from cdpcli.importing.vendors import VENDORS
from tests.conftest import API_KEY

DATA = Path(__file__).parent / "data" / "vendors"


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def expected(vendor: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / vendor / "expected.jsonl").read_text().splitlines()]


def as_sent(call: dict, wanted: dict) -> dict:
    """A received call compared with its expected form: cdp's context.library and, where the
    export has none, the messageId and timestamp cdp gave it, set aside."""
    call = json.loads(json.dumps(call))
    call.pop("receivedAt", None)  # the receiver's
    call.pop("sentAt", None)
    context = call.get("context", {})
    assert context.pop("library")["name"] == "cdpcli"
    if not context:
        call.pop("context")
    if "messageId" not in wanted:
        assert call.pop("messageId").startswith("cdp-")
    if "timestamp" not in wanted:  # a profile has no time: cdp stamps it when it is read
        assert call.pop("timestamp").endswith("Z")
    return call


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_golden_fixture_imports_as_its_expected_calls(send, receiver, tmp_path, vendor):
    run = send("import", "--from", vendor, str(DATA / vendor / "input.jsonl"), "--json", "--concurrency", "1")
    outcomes = expected(vendor)
    calls = [entry for entry in outcomes if "type" in entry]
    invalid = [entry for entry in outcomes if "invalid" in entry or "passthrough" in entry]
    assert run.exit_code == (1 if invalid else 0), run.stderr
    result = summary(run)
    assert result["sent"] == len(calls)
    assert result["invalid"] == len(invalid)
    assert result["skipped_reasons"] == dict(Counter(entry["skip"] for entry in outcomes if "skip" in entry))
    by_id = {call["messageId"]: call for call in receiver.calls}
    assert len(by_id) == len(calls)
    got = sorted((as_sent(call, want) for call, want in zip(receiver.calls, calls, strict=True)), key=json.dumps)
    assert got == sorted(calls, key=json.dumps)
    rejects = (
        [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()] if invalid else []
    )
    lines = [n + 1 for n, entry in enumerate(outcomes) if "invalid" in entry or "passthrough" in entry]
    assert [reject["line"] for reject in rejects] == lines  # the file's own line numbers


def test_dry_run_shows_the_mapped_calls_and_sends_nothing(send, receiver):
    run = send("import", "--from", "posthog", str(DATA / "posthog" / "input.jsonl"), "--dry-run")
    assert run.exit_code == 1  # the fixture's last line is a reject
    assert receiver.calls == []
    assert '"type":"page"' in run.stdout and "018fd3a2-5b1c-7d3e-9a4f-2c6b8e1d0f77" in run.stdout
    assert "automatic_event" in run.stdout + run.stderr


def test_import_lines_takes_a_vendor(receiver, tmp_path):
    target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)
    records = [json.loads(line) for line in (DATA / "amplitude" / "input.jsonl").read_text().splitlines()]
    result = cdpcli.import_lines(records, target=target, archive="amplitude", rejects=str(tmp_path / "r.ndjson"))
    assert (result.sent, result.invalid) == (4, 1)
    assert result.skipped_reasons == {"session_event": 2}
    assert {call["type"] for call in receiver.calls} == {"track", "identify", "group", "page"}


def test_an_unknown_from_names_every_choice(send, tmp_path):
    run = send("import", "--from", "heap", str(DATA / "ga4" / "input.jsonl"))
    assert run.exit_code == 2
    assert "mixpanel" in run.stderr and "ga4" in run.stderr and "segment" in run.stderr


def test_an_amplitude_export_zip_imports_and_resumes(send, receiver, tmp_path):
    """The Export API's answer as it comes: a zip of gzipped JSON-lines files, one per hour."""
    lines = (DATA / "amplitude" / "input.jsonl").read_bytes()
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for hour in (1, 2):
            # the same records in two hours but with their own ids: distinct events
            data = lines.replace(b"-93f1-", b"-93f%d-" % hour).replace(b'"6a1b"', b'"6a1b-%d"' % hour)
            data = data.replace(b"5f0c6a8e-1b7e", b"5f0c6a8e-%04d" % hour)
            archive.writestr(f"123/123_2024-06-01_{hour}#0.json.gz", gzip.compress(data))
    run = send("import", "--from", "amplitude", str(zipped), "--json", "--checkpoint", "ck.json", "--limit", "5")
    assert run.exit_code == 1, run.stderr  # the first hour's reject; the limit stops in the second
    assert summary(run)["sent"] == 5
    run = send("import", "--from", "amplitude", str(zipped), "--json", "--checkpoint", "ck.json")
    assert run.exit_code == 1  # one reject per hour file
    ids = [call["messageId"] for call in receiver.calls]
    assert len(ids) == len(set(ids)) == 8  # 4 calls an hour, none sent twice
    rejects = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert {(r["source"], r["line"]) for r in rejects} == {
        (f"{zipped}!123/123_2024-06-01_{hour}#0.json.gz", 7) for hour in (1, 2)
    }


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_an_export_read_without_from_stops_naming_it(send, receiver, tmp_path, vendor, via):
    data = (DATA / vendor / "input.jsonl").read_text()
    run = send("import", str(DATA / vendor / "input.jsonl")) if via == "file" else send("import", input=data)
    assert run.exit_code == 2, run.stderr
    assert f"--from {vendor}" in run.stderr
    assert receiver.calls == []


def test_a_segment_archive_without_from_imports_as_it_is(send, receiver, tmp_path):
    line = {"type": "track", "userId": "u", "event": "E", "messageId": "m-1", "writeKey": "w", "projectId": "p"}
    (tmp_path / "a.ndjson").write_text(json.dumps(line) + "\n")
    run = send("import", "a.ndjson")
    assert run.exit_code == 0, run.stderr
    assert [call["messageId"] for call in receiver.calls] == ["m-1"]
    assert "looks like a Segment archive" in run.stderr and "--from segment drops" in run.stderr  # a hint

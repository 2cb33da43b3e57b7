"""`cdp import`'s summary (issue 11): natural sentences, singular/plural right, a short block
that fits 80 columns; every number of the old one-line summary still there."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from types import SimpleNamespace

from cdpcli.cli.import_summary import summary_text
from cdpcli.errors import ExitCode
from cdpcli.importing.events import ImportResult


def result(**changes):
    """A stand-in for ImportResult whose derived counts (calls, valid, rejected) are set
    directly; every other field of ImportResult has its default, so new fields need no edit."""
    defaults = {
        f.name: f.default
        if f.default is not MISSING
        else f.default_factory()
        if f.default_factory is not MISSING
        else 0
        for f in fields(ImportResult)
    }
    base = {
        **defaults,
        "dry_run": False,
        "read": 10,
        "calls": 10,
        "valid": 10,
        "sent": 10,
        "invalid": 0,
        "failed": 0,
        "batches": 1,
        "requests": 1,
        "retries": 0,
        "seconds": 0.25,
        "events_per_second": 40.0,
        "blank": 0,
        "skipped": 0,
        "skipped_reasons": {},
        "rejected": 0,
        "rejects_written": 0,
        "rejects_path": "cdp-rejects.ndjson",
        "exit_code": ExitCode.OK,
        "error": None,
        "checkpoint": None,
        "unsettled": 0,
        "abandoned": 0,
    }
    return SimpleNamespace(**{**base, **changes})


def test_a_clean_run_is_two_short_lines():
    assert (
        summary_text(result())
        == "Read 10 lines: 10 sent, 0 invalid, 0 failed.\n1 batch, 1 request, 0 retries; 0.2 s, 40 calls/s."
    )


def test_singular_and_plural():
    text = summary_text(result(read=1, calls=1, sent=1, valid=1, batches=2, requests=3, retries=1, blank=1))
    assert text.startswith("Read 1 line: 1 sent,")
    assert "2 batches, 3 requests, 1 retry;" in text and "1 blank line." in text
    text = summary_text(result(read=3, calls=1, blank=2, retries=2))
    assert text.startswith("Read 3 lines (1 call):") and "2 retries" in text and "2 blank lines." in text


def test_dry_run_reads_checked_and_valid():
    assert summary_text(result(dry_run=True, valid=9, invalid=1, sent=0)).startswith(
        "Checked 10 lines: 9 valid, 1 invalid, 0 failed."
    )


def test_every_number_is_kept_and_the_block_fits_80_columns():
    text = summary_text(
        result(
            read=1234,
            calls=1200,
            sent=1100,
            invalid=60,
            failed=40,
            batches=12,
            requests=14,
            retries=3,
            blank=4,
            skipped=30,
            rejected=120,
            rejects_written=100,
            exit_code=ExitCode.INTERRUPTED,
            checkpoint="ck.json",
            unsettled=7,
            abandoned=2,
        )
    )
    assert text.splitlines() == [
        "Read 1,234 lines (1,200 calls): 1,100 sent, 60 invalid, 40 failed.",
        "12 batches, 14 requests, 3 retries; 0.2 s, 40 calls/s.",
        "4 blank lines, 30 skipped (settled by an earlier run).",
        "100 rejects appended to cdp-rejects.ndjson (20 more there already from an earlier run).",
        "Stopped early: 7 calls read but not settled; run the same command again to resume from ck.json.",
        "Did not wait for 2 requests in flight: their calls are left for the next run.",
    ]
    assert max(len(line) for line in text.splitlines()) <= 100  # 80 but for the file names


def test_short_lines_fit_80_columns():
    text = summary_text(result(read=99999, calls=99999, sent=99999, batches=40, requests=41, retries=2))
    assert all(len(line) <= 80 for line in text.splitlines())


def test_earlier_rejects_only_and_resume_advice_without_checkpoint():
    text = summary_text(result(rejected=5, rejects_written=0, exit_code=ExitCode.INTERRUPTED, unsettled=1))
    assert "5 of the rejects are in cdp-rejects.ndjson already, from an earlier run." in text
    assert "Stopped early: 1 call read but not settled; re-run with --checkpoint FILE next time" in text


def test_json_output_is_unchanged_by_the_summary(send, tmp_path):
    lines = [json.dumps({"type": "track", "userId": str(i), "event": "E"}) for i in range(3)]
    (tmp_path / "in.ndjson").write_text("\n".join(lines) + "\n")
    run = send("import", "in.ndjson", "--json")
    assert run.exit_code == 0
    out = json.loads(run.stdout)
    assert out["ok"] is True and out["sent"] == 3 and out["exit_code"] == 0
    assert run.stderr.startswith("Read 3 lines: 3 sent, 0 invalid, 0 failed.\n1 batch, 1 request, 0 retries;")


def test_calls_by_type_and_invalid_lines_by_reason_top_ten():
    reasons = {f"reason {n:02}": n for n in range(1, 13)}  # 12 kinds: 10 shown, 2 summed
    text = summary_text(
        result(
            read=200, calls=200, sent=122, invalid=78, by_type={"track": 100, "identify": 22}, invalid_reasons=reasons
        )
    )
    lines = text.splitlines()
    assert "Calls by type: 100 track, 22 identify." in lines
    invalid = text[text.index("Invalid lines by reason:") :]
    assert invalid.startswith("Invalid lines by reason: 12 reason 12, 11 reason 11,")
    assert "reason 03" in invalid and "reason 02" not in invalid.replace("\n  ", " ")
    assert "3 more in 2 other kinds (see --json)." in invalid.replace("\n  ", " ")
    assert all(len(line) <= 80 for line in lines)


def test_one_type_and_nothing_left_out_adds_no_breakdown():
    text = summary_text(result(by_type={"track": 10}))
    assert "by type" not in text and len(text.splitlines()) == 2


def test_skipped_reasons_are_ids_in_json_and_flags_in_the_summary():
    reasons = {"types": 5, "exclude_events": 3, "checkpoint": 2, "csv header": 1}
    text = summary_text(result(skipped=11, skipped_reasons=reasons))
    assert "11 skipped (5 --types, 3 --exclude-events, 2 settled by an earlier run, 1 csv header)" in text


def test_the_cli_renders_the_cores_option_ids_as_flags():
    from cdpcli.cli.output import error_text, flagged
    from cdpcli.errors import UsageError

    assert flagged("since= must be before until=") == "--since must be before --until"
    assert flagged("limit= cannot be combined with order=phased") == "--limit cannot be combined with --order phased"
    assert flagged("types='x': expected types among identify") == "--types 'x': expected types among identify"
    assert flagged("e.g. rate=200, or rate=auto") == "e.g. --rate 200, or --rate auto"
    assert flagged("rate_budget= and archive='s'") == "--rate-budget and --from 's'"
    # not an option: inside a word, a path or a flag, or an id the CLI does not know
    assert flagged("a/limit=3 x-rate=2 userId=5 --since=x") == "a/limit=3 x-rate=2 userId=5 --since=x"
    error = UsageError("sample= must be a fraction", hint="e.g. sample=0.01 for 1 %", option="sample")
    assert error_text(error) == ("--sample must be a fraction", "e.g. --sample 0.01 for 1 %")
    plain = UsageError("limit=3 in a file name stays as it is")  # no option: the text is not the core's form
    assert error_text(plain) == ("limit=3 in a file name stays as it is", None)

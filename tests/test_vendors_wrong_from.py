"""A vendor's export read with another vendor's --from: the lines are said to be the other
vendor's (reason `wrong_vendor`, naming the --from that reads them), and an input whose first
line is one stops before anything is sent (exit 2), as an export read without --from does.
Inputs: the golden fixtures (tests/data/vendors, each in its vendor's documented shape)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpcli.importing.csvrows import marker
from cdpcli.importing.vendors import VENDORS, vendor_line

DATA = Path(__file__).parent / "data" / "vendors"


def first_record(vendor: str) -> bytes:
    return (DATA / vendor / "input.jsonl").read_bytes().split(b"\n", 1)[0]


@pytest.mark.parametrize("given", VENDORS)
@pytest.mark.parametrize("actual", VENDORS)
def test_each_export_read_as_another_is_named(given: str, actual: str) -> None:
    if given == actual:
        return
    kind, reason, error, text = marker(vendor_line(given, first_record(actual)))
    assert (kind, reason, text) == ("invalid", "wrong_vendor", first_record(actual))
    assert error is not None and error.endswith(f"import it with archive={actual}")


def test_a_refused_line_of_no_known_shape_keeps_its_reason() -> None:
    record = json.loads(first_record("amplitude"))
    del record["event_type"]
    kind, reason, _, _ = marker(vendor_line("amplitude", json.dumps(record).encode()))
    assert (kind, reason) == ("invalid", "missing_event")


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_a_mixpanel_export_read_as_amplitude_stops_naming_from_mixpanel(send, receiver, via) -> None:
    path = DATA / "mixpanel" / "input.jsonl"
    args = ("import", "--from", "amplitude")
    run = send(*args, str(path)) if via == "file" else send(*args, input=path.read_text())
    assert run.exit_code == 2, run.stderr
    assert "looks like a Mixpanel raw event export, not an Amplitude export" in run.stderr
    assert "--from mixpanel" in run.stderr and "archive=" not in run.stderr
    assert receiver.calls == []


def test_a_later_line_of_another_export_is_a_reject_naming_it(send, receiver, tmp_path) -> None:
    """A mixed input: the Amplitude row is sent, the Mixpanel one rejected as wrong_vendor."""
    (tmp_path / "mixed.jsonl").write_bytes(first_record("amplitude") + b"\n" + first_record("mixpanel") + b"\n")
    run = send("import", "--from", "amplitude", "mixed.jsonl", "--rejects", "rej.ndjson", "--json")
    assert run.exit_code == 1, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["invalid_reasons"] == {"wrong_vendor": 1}
    (reject,) = [json.loads(line) for line in (tmp_path / "rej.ndjson").read_text().splitlines()]
    assert "archive=mixpanel" in reject["error"] and reject["line"] == 2
    assert len(receiver.calls) == 1

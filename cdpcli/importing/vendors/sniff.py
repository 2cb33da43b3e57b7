"""Which export a source's first lines are, when no vendor was named: each vendor's shape is
told by the keys its export's records always carry (see each vendor module's sources), and a
Segment archive's envelope by the keys its archives add around a call (select.ENVELOPE_KEYS).

A source is a vendor's only when every one of its first JSON lines (up to SNIFF_LINES) has
that vendor's shape and none is a call (a `type` key): a mixed or call-shaped input is left to
the importer as it is.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

from cdpcli.errors import UsageError
from cdpcli.importing.csvrows import INVALID_MARK, marker
from cdpcli.importing.parquet import parquet_lines
from cdpcli.importing.source import Source, source_blocks
from cdpcli.importing.vendors.amplitude import MERGED_ID_KEYS

SNIFF_LINES = 5
SNIFF_BYTES = 1 << 20  # a first line longer than this is not looked at further
ENVELOPE_KEYS = frozenset({"writeKey", "projectId", "_metadata"})
CALL_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})


def record_vendor(record: dict[str, Any]) -> str | None:
    """The vendor whose export a record is shaped like, "segment" for a call in a Segment
    archive's envelope, or None."""
    if "type" in record:
        if record.get("type") in CALL_TYPES and ENVELOPE_KEYS & record.keys():
            return "segment"
        return None
    keys = record.keys()
    if "$distinct_id" in keys and "$properties" in keys:
        return "mixpanel-profiles"
    if {"results", "page_size", "session_id"} <= keys:  # a whole Engage API answer
        return "mixpanel-profiles"
    props = record.get("properties")
    if "event" in keys and isinstance(props, dict) and "distinct_id" in props and "time" in props:
        return "mixpanel"
    if "event_type" in keys and keys & {"event_time", "$insert_id", "server_upload_time"}:
        return "amplitude"
    if keys >= MERGED_ID_KEYS:  # the S3 export's merged-IDs rows
        return "amplitude"
    if {"uuid", "event", "distinct_id"} <= keys:
        return "posthog"
    if {"event_name", "event_timestamp"} <= keys and keys & {"user_pseudo_id", "event_params"}:
        return "ga4"
    return None


def sniff(first_lines: Iterable[bytes]) -> str | None:
    """The vendor (an `archive` option value, or "segment") all of a source's first lines are shaped like;
    None when they are not all one vendor's (or are calls, or not JSON objects)."""
    found: set[str | None] = set()
    seen = 0
    for line in first_lines:
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        found.add(record_vendor(record))
        if len(found) > 1 or None in found:
            return None
        seen += 1
        if seen >= SNIFF_LINES:
            break
    return found.pop() if found else None


TITLES = {
    "segment": "a Segment archive's call",
    "mixpanel": "a Mixpanel raw event export",
    "mixpanel-profiles": "a Mixpanel profile (Engage) export",
    "amplitude": "an Amplitude export",
    "posthog": "a PostHog export",
    "ga4": "a GA4 BigQuery export",
}


def sniff_source(source: Source) -> str | None:
    """`sniff` of a file source's first lines (decompressed; a Parquet file's first rows);
    None for CSV, stdin and iterables (whose lines cannot be read twice)."""
    if not source.is_file or source.format == "csv":
        return None
    if source.format == "parquet":
        rows = parquet_lines(source, lambda count: None)
        try:
            return sniff(itertools.islice(rows, SNIFF_LINES))
        finally:
            rows.close()
    head = b""
    blocks = source_blocks(source, lambda count: None)
    try:
        for data in blocks:
            head += data
            if head.count(b"\n") >= SNIFF_LINES or len(head) > SNIFF_BYTES:
                break
    finally:
        close = getattr(blocks, "close", None)  # a generator: its file is closed now
        if close is not None:
            close()
    lines = head.split(b"\n")[:SNIFF_LINES]
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines = lines[:-1]  # the last one may be cut short
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    return sniff(lines)


def sniff_advice(label: str, vendor: str) -> tuple[str, str]:
    """What to say about a source `sniff` named: (message, hint), options written as Python
    names them (`archive=` is the CLI's --from). A vendor's export is refused (exit 2); a
    Segment archive imports as it is, and the message is a hint only."""
    if vendor == "segment":
        return (
            f"{label} looks like a Segment archive (calls in its envelope)",
            "archive=segment drops the envelope's keys (writeKey is never forwarded)",
        )
    return f"{label} looks like {TITLES[vendor]}, not Data Pipelines calls", f"import it with archive={vendor}"


WRONG_VENDOR = "wrong_vendor"  # the reason id of a record shaped like another vendor's export


def wrong_vendor_error(vendor: str, other: str) -> str:
    """The error of a record that `vendor`'s mapping refuses and that is shaped like `other`'s."""
    return f"this line looks like {TITLES[other]}, not {TITLES[vendor]}: import it with archive={other}"


def wrong_vendor_problem(label: str, first_line: bytes, vendor: str) -> UsageError | None:
    """A source whose first line, as `vendor`'s mapping converted it, is another vendor's
    record (`wrong_vendor`): the whole source is read with the wrong archive=, and every line
    would be rejected; say which one reads it (exit 2, before anything is sent)."""
    if vendor not in TITLES or not first_line.startswith(INVALID_MARK):
        return None
    _, reason, _, text = marker(first_line)
    if reason != WRONG_VENDOR:
        return None
    other = record_vendor(json.loads(text))
    if other is None:
        return None
    return UsageError(
        f"{label} looks like {TITLES[other]}, not {TITLES[vendor]}",
        hint=f"import it with archive={other}",
        option="archive",
    )

"""Which export a source's first lines are, when no `--from` was given: each vendor's shape is
told by the keys its export's records always carry (see each vendor module's sources), and a
Segment archive's envelope by the keys its archives add around a call (select.ENVELOPE_KEYS).

A source is a vendor's only when every one of its first JSON lines (up to SNIFF_LINES) has
that vendor's shape and none is a call (a `type` key): a mixed or call-shaped input is left to
the importer as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

SNIFF_LINES = 5
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
    props = record.get("properties")
    if "event" in keys and isinstance(props, dict) and "distinct_id" in props and "time" in props:
        return "mixpanel"
    if "event_type" in keys and keys & {"event_time", "$insert_id", "server_upload_time"}:
        return "amplitude"
    if {"uuid", "event", "distinct_id"} <= keys:
        return "posthog"
    if {"event_name", "event_timestamp"} <= keys and keys & {"user_pseudo_id", "event_params"}:
        return "ga4"
    return None


def sniff(first_lines: Iterable[bytes]) -> str | None:
    """The vendor (a `--from` name, or "segment") all of a source's first lines are shaped like;
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

"""--from VENDOR mappings: golden fixtures (tests/data/vendors, in each vendor's documented
export shape), the line converter's one-line-out-per-line-in rule, timestamps, and sniffing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdpcli.importing.csvrows import INVALID_MARK, SKIP_MARK, marker
from cdpcli.importing.vendors import VENDORS, map_record, sniff, vendor_chunk, vendor_lines
from cdpcli.importing.vendors.common import (
    EPOCH,
    BadValue,
    timestamp_from_micros,
    timestamp_from_ms,
    timestamp_from_text,
    timestamp_from_unix,
)

DATA = Path(__file__).parent / "data" / "vendors"


def _lines(path: Path) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def _verdict(line: bytes) -> dict:
    if line == b"":
        return {"blank": True}
    if line.startswith(SKIP_MARK):
        return {"skip": marker(line)[1]}
    if line.startswith(INVALID_MARK):
        _, reason, error, _ = marker(line)
        return {"invalid": reason, "error": error}
    try:
        return json.loads(line)
    except ValueError:
        return {"passthrough": True}


@pytest.mark.parametrize("vendor", VENDORS)
def test_golden_fixture(vendor: str) -> None:
    inputs = _lines(DATA / vendor / "input.jsonl")
    expected = [json.loads(line) for line in _lines(DATA / vendor / "expected.jsonl")]
    got = [_verdict(line) for line in vendor_lines(vendor, inputs)]
    assert len(got) == len(inputs)
    assert got == expected


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_fixture_call_passes_the_strict_models(vendor: str) -> None:
    from cdpcli import models

    for line in vendor_lines(vendor, _lines(DATA / vendor / "input.jsonl")):
        if line and not line.startswith(b"\0") and line.startswith(b"{"):
            call = json.loads(line)
            models.validate_call(call)  # raises on a call the API would refuse
            # every event record carries a dedupe id (profiles have none: cdp derives one)
            assert call.get("messageId") or vendor == "mixpanel-profiles"


def test_invalid_marker_keeps_the_record_for_the_rejects_file() -> None:
    line = b'{"event":"Played Song","properties":{"time":"soon","distinct_id":"x"}}'
    (out,) = vendor_lines("mixpanel", [line])
    kind, reason, error, text = marker(out)
    assert (kind, reason, text) == ("invalid", "bad_time", line)
    assert "soon" in (error or "")


# where each vendor's export keeps the event's time (the first golden record, from the pages
# each vendor module cites): Mixpanel `properties.time`, Amplitude `event_time` (and
# `client_event_time`, its fallback), PostHog `timestamp`, GA4 `event_timestamp`
TIME_FIELDS = {
    "mixpanel": ("properties", ("time",)),
    "amplitude": (None, ("event_time", "client_event_time")),
    "posthog": (None, ("timestamp",)),
    "ga4": (None, ("event_timestamp",)),
}


@pytest.mark.parametrize("vendor", list(TIME_FIELDS))
@pytest.mark.parametrize("absent", ["missing", "null"])
def test_a_record_without_its_time_is_a_reject_not_stamped_now(vendor: str, absent: str) -> None:
    """Sent without a timestamp, the API stamps the call with its arrival: a backfilled event
    would look new (and could start a campaign). It is a reject, `missing_time`."""
    record = json.loads(_lines(DATA / vendor / "input.jsonl")[0])
    assert "timestamp" in json.loads(next(vendor_lines(vendor, [json.dumps(record).encode()])))
    outer, keys = TIME_FIELDS[vendor]
    holder = record[outer] if outer else record
    for key in keys:
        if absent == "missing":
            holder.pop(key, None)
        else:
            holder[key] = None
    line = json.dumps(record).encode()
    (out,) = vendor_lines(vendor, [line])
    kind, reason, error, text = marker(out)
    assert (kind, reason, text) == ("invalid", "missing_time", line)
    assert keys[0] in (error or "")


@pytest.mark.parametrize("vendor", list(TIME_FIELDS))
def test_an_unreadable_time_is_bad_time_for_every_vendor(vendor: str) -> None:
    record = json.loads(_lines(DATA / vendor / "input.jsonl")[0])
    outer, keys = TIME_FIELDS[vendor]
    (record[outer] if outer else record)[keys[0]] = "soon"
    (out,) = vendor_lines(vendor, [json.dumps(record).encode()])
    kind, reason, error, _ = marker(out)
    assert (kind, reason) == ("invalid", "bad_time") and "soon" in (error or "")


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(VENDORS),
    st.lists(
        st.one_of(
            st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")),
            st.dictionaries(
                st.sampled_from(["event", "properties", "event_type", "user_id", "uuid", "distinct_id", "time"]),
                st.one_of(
                    st.none(), st.integers(), st.text(max_size=8), st.dictionaries(st.text(max_size=4), st.integers())
                ),
            ).map(lambda d: json.dumps(d).encode()),
        ),
        max_size=12,
    ),
)
def test_one_output_line_per_input_line(vendor: str, lines: list[bytes]) -> None:
    out = list(vendor_lines(vendor, lines))
    assert len(out) == len(lines)
    assert all(b"\n" not in line for line in out)
    assert vendor_chunk(vendor, b"\n".join(lines)).count(b"\n") == max(len(lines) - 1, 0)


def test_mixpanel_seconds_and_milliseconds_are_the_same_moment() -> None:
    assert timestamp_from_unix(1717243512) == timestamp_from_unix(1717243512000) == "2024-06-01T12:05:12.000Z"
    assert timestamp_from_unix(1717243512.345) == "2024-06-01T12:05:12.345Z"
    assert timestamp_from_unix("1717243512") == "2024-06-01T12:05:12.000Z"
    with pytest.raises(BadValue):
        timestamp_from_unix(True)


def test_other_timestamps() -> None:
    assert timestamp_from_micros("1717243512345678") == "2024-06-01T12:05:12.345Z"
    assert timestamp_from_text("2024-06-01 12:05:12.345000") == "2024-06-01T12:05:12.345Z"
    assert timestamp_from_text("2024-06-01T14:05:12.345+02:00") == "2024-06-01T12:05:12.345Z"
    with pytest.raises(BadValue):
        timestamp_from_micros("17.5")


def test_amplitude_message_id_order() -> None:
    base = {"event_type": "x", "user_id": "u_12345", "event_time": "2024-06-01 00:00:00.000000"}
    assert map_record("amplitude", {**base, "$insert_id": "a", "insert_id": "b", "uuid": "c"}).call["messageId"] == "a"  # type: ignore[index]
    assert map_record("amplitude", {**base, "insert_id": "b", "uuid": "c"}).call["messageId"] == "b"  # type: ignore[index]
    assert map_record("amplitude", {**base, "uuid": "c"}).call["messageId"] == "c"  # type: ignore[index]


def test_mixpanel_created_becomes_unix_seconds() -> None:
    def created(value: object) -> object:
        call = map_record("mixpanel-profiles", {"$distinct_id": "u", "$properties": {"$created": value}}).call
        return (call or {}).get("traits", {}).get("created_at")

    assert created("2008-12-12T11:20:47") == created(1229080847) == created(1229080847000) == 1229080847
    assert created(None) is None
    # before the year 1000 the canonical text has a short year: read without reparsing it
    assert created("0999-01-01 00:00:00") == (datetime(999, 1, 1, tzinfo=timezone.utc) - EPOCH) // timedelta(seconds=1)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_canonical_timestamps_are_strftimes_text(moment: datetime) -> None:
    """The fast formatting (isoformat) writes what strftime wrote, for every moment."""
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert timestamp_from_text(moment.isoformat()) == expected
    assert timestamp_from_text(moment.isoformat(sep=" ") + "Z") == expected
    millis = (moment.replace(tzinfo=timezone.utc) - EPOCH) // timedelta(milliseconds=1)
    assert timestamp_from_ms(millis) == expected


def test_ga4_context_keeps_one_order() -> None:
    """Context fields in the mapping's order, whatever the process's string hashing."""
    device = {"operating_system_version": "17", "mobile_model_name": "iPhone", "operating_system": "iOS"}
    row = {
        "event_name": "x",
        "event_timestamp": "1717243512345678",
        "user_pseudo_id": "p",
        "device": device,
        "platform": "IOS",
    }
    context = map_record("ga4", row).call["context"]  # type: ignore[index]
    assert list(context) == ["device", "os"] and list(context["device"]) == ["model", "type"]
    assert list(context["os"]) == ["name", "version"]


def test_ga4_message_id_is_stable_and_distinct() -> None:
    row = {"event_name": "purchase", "event_timestamp": "1717243800000000", "user_pseudo_id": "p.1"}
    first = map_record("ga4", row).call
    again = map_record("ga4", dict(reversed(list(row.items())))).call
    other = map_record("ga4", {**row, "event_timestamp": "1717243800000001"}).call
    assert first and again and other
    assert first["messageId"] == again["messageId"] != other["messageId"]
    # NDJSON extracts write INT64 as strings, Parquet as integers: the same event, the same id
    as_text = {**row, "event_params": [{"key": "quantity", "value": {"int_value": "2"}}]}
    as_int = {
        **row,
        "event_timestamp": 1717243800000000,
        "event_params": [{"key": "quantity", "value": {"int_value": 2}}],
    }
    assert map_record("ga4", as_text).call["messageId"] == map_record("ga4", as_int).call["messageId"]  # type: ignore[index]


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_sniff_names_the_vendor_of_its_fixture(vendor: str) -> None:
    lines = [line for line in _lines(DATA / vendor / "input.jsonl")[:2] if line.strip()]
    assert sniff(lines) == vendor


def test_sniff_leaves_calls_and_mixtures_alone() -> None:
    call = b'{"type":"track","userId":"u","event":"x"}'
    segment = b'{"type":"track","userId":"u","event":"x","writeKey":"w","receivedAt":"2024-01-01T00:00:00Z"}'
    mixpanel = (DATA / "mixpanel" / "input.jsonl").read_bytes().split(b"\n")[0]
    posthog = (DATA / "posthog" / "input.jsonl").read_bytes().split(b"\n")[0]
    assert sniff([call]) is None
    assert sniff([segment]) == "segment"
    assert sniff([mixpanel, posthog]) is None
    assert sniff([mixpanel, b"not json"]) is None
    assert sniff([]) is None
    assert sniff([b"", b"  "]) is None
    engage_page = (DATA / "mixpanel-profiles" / "input.jsonl").read_bytes().split(b"\n")[2]
    assert sniff([engage_page]) == "mixpanel-profiles"


def test_the_reader_converts_each_chunk_keeping_line_numbers(tmp_path: Path) -> None:
    import functools
    import gzip
    import queue
    import threading

    from cdpcli.importing.sources import Chunk, make_sources, read_sources

    raw = (DATA / "amplitude" / "input.jsonl").read_bytes()
    path = tmp_path / "123_2024-06-01_12#0.json.gz"
    path.write_bytes(gzip.compress(raw * 700))  # several reader chunks
    sources, _ = make_sources([str(path)])
    out: queue.Queue = queue.Queue()
    read_sources(sources, out, threading.Event(), lambda n: None, convert=functools.partial(vendor_chunk, "amplitude"))
    lines: list[bytes] = []
    expected_first = 1
    while True:
        item = out.get()
        if not isinstance(item, Chunk):
            assert not isinstance(item, BaseException), item
            break
        assert item.first_line == expected_first
        chunk_lines = item.data.split(b"\n")
        assert len(chunk_lines) == item.count
        lines += chunk_lines
        expected_first += item.count
    per_copy = len(_lines(DATA / "amplitude" / "input.jsonl"))
    assert len(lines) == per_copy * 700
    assert lines[:per_copy] == list(vendor_lines("amplitude", _lines(DATA / "amplitude" / "input.jsonl")))


def test_sniff_source_reads_a_compressed_file_and_gives_advice(tmp_path: Path) -> None:
    import gzip

    from cdpcli.importing.sources import make_sources
    from cdpcli.importing.vendors.sniff import sniff_advice, sniff_source

    path = tmp_path / "123_2024-06-01_12#0.json.gz"
    path.write_bytes(gzip.compress((DATA / "amplitude" / "input.jsonl").read_bytes()))
    (source,), _ = make_sources([str(path)])
    assert sniff_source(source) == "amplitude"
    message, hint = sniff_advice(source.label, "amplitude")
    assert "Amplitude export" in message and hint == "import it with archive=amplitude"
    calls = tmp_path / "calls.ndjson"
    calls.write_bytes(b'{"type":"track","userId":"u","event":"E"}\n')
    (source,), _ = make_sources([str(calls)])
    assert sniff_source(source) is None


SPECIAL_NAMES = st.sampled_from(
    ["$identify", "$groupidentify", "$create_alias", "$set", "$pageview", "$screen", "$mp_web_page_view", "$merge"]
    + ["[Amplitude] Page Viewed", "[Amplitude] Screen Viewed", "page_view", "screen_view", "$device:x"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12) | SPECIAL_NAMES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# every key any mapping reads, so that the records reach deep into each one
MAPPED_KEYS = [
    "event", "properties", "time", "distinct_id", "$insert_id", "$user_id", "$device_id", "$identified_id",
    "$anon_id", "alias", "$distinct_id", "$properties", "$created", "event_type", "user_id", "device_id",
    "event_time", "event_properties", "user_properties", "groups", "group_properties", "uuid", "timestamp",
    "$set", "$set_once", "$group_key", "$group_set", "$anon_distinct_id", "event_name", "event_timestamp",
    "event_params", "user_pseudo_id", "device", "geo", "app_info", "platform", "key", "value", "int_value",
]  # fmt: skip


@pytest.mark.slow  # ~4 s: deep random records
@settings(max_examples=300, deadline=None)
@example(
    "posthog", {"event": "$groupidentify", "distinct_id": "u", "properties": {"$group_key": "k", "$group_set": [1]}}
)
@example("amplitude", {"event_type": "$groupidentify", "user_id": "u", "groups": {"a": "b"}, "group_properties": [1]})
@given(
    st.sampled_from(VENDORS),
    st.dictionaries(
        st.sampled_from(MAPPED_KEYS), JSON_VALUES | st.dictionaries(st.sampled_from(MAPPED_KEYS), JSON_VALUES)
    ),
)
def test_no_record_crashes_a_mapping(vendor: str, record: dict) -> None:
    """Whatever a record holds, its line becomes a call, a skip or an invalid marker, or
    passes through: never an exception."""
    (out,) = vendor_lines(vendor, [json.dumps(record).encode()])
    assert out.startswith((b"{", SKIP_MARK, INVALID_MARK))

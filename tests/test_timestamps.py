"""wire.parse_timestamp reads the common ISO-8601 shapes without datetime.fromisoformat (for
import's speed): it must read each of them exactly as fromisoformat does."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpcli.wire import format_timestamp, parse_timestamp


def by_fromisoformat(text: str) -> str | None:
    """What parse_timestamp returned before it had its own reader (None: refused)."""
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        return format_timestamp(datetime.fromisoformat(iso))
    except (ValueError, OverflowError):
        return None


DIGITS = st.text("0123456789", min_size=1, max_size=2)


@st.composite
def iso_like(draw):
    """Texts shaped like ISO-8601 date-times, valid or not (month 13, hour 24, offset +24:00…)."""
    text = f"{draw(st.integers(0, 9999)):04d}-{draw(DIGITS):0>2}-{draw(DIGITS):0>2}"
    if draw(st.booleans()):
        text += draw(st.sampled_from("T t")) + ":".join(f"{draw(DIGITS):0>2}" for _ in range(3))
        if draw(st.booleans()):
            text += "." + draw(st.text("0123456789", min_size=1, max_size=10))
    zone = draw(st.sampled_from(["", "Z", "z", "offset"]))
    if zone == "offset":
        zone = f"{draw(st.sampled_from('+-'))}{draw(DIGITS):0>2}:{draw(DIGITS):0>2}"
    return text + zone


@settings(max_examples=2000)
@given(text=iso_like())
def test_the_common_shapes_read_as_fromisoformat_reads_them(text):
    try:
        ours = parse_timestamp(text)
    except (ValueError, OverflowError):
        ours = None
    expected = by_fromisoformat(text)
    if expected is None and ours is not None and sys.version_info < (3, 11):
        return  # Python 3.10's fromisoformat reads 3 or 6 fraction digits only: cdp reads 1 to 9
    assert ours == expected


@given(moment=st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(timezone.utc)))
def test_format_timestamp_writes_what_strftime_writes(moment):
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert format_timestamp(moment) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T01:02:03Z", "2024-03-01T01:02:03.000Z"),
        ("2024-03-01T02:02:03+01:00", "2024-03-01T01:02:03.000Z"),
        ("2024-03-01T01:02:03.123456789Z", "2024-03-01T01:02:03.123Z"),
        ("2024-03-01 01:02:03.123", "2024-03-01T01:02:03.123Z"),  # Amplitude's
        ("2024-03-01", "2024-03-01T00:00:00.000Z"),
        ("2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00.000Z"),  # across a leap day
        (1709255000, "2024-03-01T01:03:20.000Z"),
        (1709255000.5, "2024-03-01T01:03:20.500Z"),
    ],
)
def test_exported_shapes(value, expected):
    assert parse_timestamp(value) == expected


@given(seconds=st.integers(0, 253_402_300_799) | st.integers(0, 2**32))
def test_unix_seconds_read_as_fromtimestamp_reads_them(seconds):
    assert parse_timestamp(seconds) == format_timestamp(datetime.fromtimestamp(seconds, timezone.utc))

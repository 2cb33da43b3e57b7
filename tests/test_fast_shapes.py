"""The timestamp shapes import's fast path reads without datetime (wire.parse_timestamp's tables)
read exactly as datetime reads them: Unix seconds with a fraction as fromtimestamp rounds them,
offsets across a day, a month, a year boundary as astimezone moves them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdpcli.wire import format_timestamp, parse_timestamp

LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z


def by_datetime(seconds: float) -> str | None:
    try:
        return format_timestamp(datetime.fromtimestamp(seconds, timezone.utc))
    except (OverflowError, OSError, ValueError):
        return None


@settings(max_examples=3000)
@given(
    seconds=st.floats(0, LAST_SECOND)
    | st.integers(0, LAST_SECOND - 1).map(lambda whole: whole + 0.9995)
    | st.builds(lambda whole, millis: whole + millis / 1000, st.integers(0, 2**34), st.integers(0, 999))
)
@example(0.0)
@example(1709255000.9999995)
@example(1709255000.0000005)
@example(float(LAST_SECOND))
@example(float(LAST_SECOND) - 0.0000001)
@example(0.5e-6)
@example(1.5e-6)
def test_unix_seconds_with_a_fraction_read_as_fromtimestamp_reads_them(seconds):
    try:
        ours = parse_timestamp(seconds)
    except ValueError:
        ours = None
    assert ours == by_datetime(seconds)


@settings(max_examples=2000)
@given(
    moment=st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    digits=st.integers(0, 9),
    separator=st.sampled_from("T "),
)
@example(datetime(2024, 2, 28, 23, 30), -60, 0, "T")  # into a leap day
@example(datetime(2023, 12, 31, 23, 59, 59, 999999), -1, 9, "T")  # into a new year
@example(datetime(2024, 3, 1, 0, 0), 1, 3, " ")  # back into February
def test_offsets_move_the_time_as_astimezone_does(moment, offset_minutes, digits, separator):
    sign = "+" if offset_minutes >= 0 else "-"
    zone = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    written = f"{moment.microsecond:06d}000"[:digits]
    if digits:
        text += "." + written
    millis = int(written[:3].ljust(3, "0")) if digits else 0
    expected_moment = moment.replace(microsecond=millis * 1000) - timedelta(minutes=offset_minutes)
    assert parse_timestamp(text + zone) == format_timestamp(expected_moment.replace(tzinfo=timezone.utc))

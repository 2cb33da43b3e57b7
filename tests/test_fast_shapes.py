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


@settings(max_examples=1500)
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


@settings(max_examples=1000)
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


# -- the fast models read a parsed line as they read its JSON text ------------------------------
# (the fast path reads each line once, refusing duplicate keys, and validates what it read in
# pydantic's Python mode: for every typed field of the models, that must accept, refuse and
# rewrite exactly what validating the JSON text does)

TYPED_PATHS = [
    ("userId",),
    ("anonymousId",),
    ("messageId",),
    ("event",),
    ("name",),
    ("groupId",),
    ("previousId",),
    ("objectTypeId",),
    ("timestamp",),
    ("sentAt",),
    ("integrations", "All"),
    ("context", "active"),
    ("context", "ip"),
    ("context", "channel"),
    ("context", "page", "keywords"),
    ("context", "page", "url"),
    ("context", "campaign", "source"),
    ("context", "device", "type"),
    ("context", "network", "wifi"),
    ("context", "library"),
    ("traits", "email"),
    ("traits", "createdAt"),
    ("traits", "unsubscribed"),
    ("traits", "cio_subscription_preferences", "topics", "t1"),
    ("traits", "object_type_id"),
    ("traits", "relationshipAttributes"),
    ("properties", "url"),
]
TRICKY = st.sampled_from(
    [
        "1",
        "1.0",
        "-0",
        "1e2",
        "1.5",
        "true",
        "false",
        "null",
        '"1"',
        '""',
        '"x"',
        "[]",
        '["a"]',
        '["a", 1]',
        "{}",
        '{"a": "b"}',
        '{"a": true}',
        str(2**70),
        "1e308",
        "1e-400",
        '"2024-03-01T01:02:03Z"',
        '"2024-03-01T01:02:03.000Z"',
        '"web"',
        '"server"',
        '"ios"',
        '"\\u00e9"',
        "1709255000",
        "1709255000.5",
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    kind=st.sampled_from(["identify", "track", "page", "screen", "group", "alias"]),
    mutations=st.lists(st.tuples(st.sampled_from(TYPED_PATHS), TRICKY), min_size=1, max_size=4),
)
def test_the_fast_models_read_a_parsed_line_as_its_text(kind, mutations):
    import json

    from pydantic import ValidationError
    from pydantic_core import from_json

    from cdpcli.importing.shapes import fast_validator

    call: dict = {"type": kind, "userId": "u", "previousId": "p", "event": "E", "groupId": "g"}
    for path, value in mutations:
        node = call
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        node[path[-1]] = json.loads(value)
    line = json.dumps(call).encode()
    for validator in (fast_validator("any"), fast_validator(kind)):
        by_text: list = []
        by_parse: list = []
        try:
            expected = validator.validate_json(line, context=by_text)
        except ValidationError:
            expected = None
        try:
            got = validator.validate_python(from_json(line), context=by_parse)
        except ValidationError:
            got = None
        assert got == expected
        assert by_parse == by_text

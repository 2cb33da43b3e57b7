"""--from VENDOR: a record that names a key twice, at any depth, is an invalid line (`duplicate
key "event"`), as the import's own lines are; pydantic-core's reader, which the converters use,
keeps the last value silently. The cheap pre-check that spares the exact reader on clean lines
(`may_repeat_a_key`) is proven sound against texts written every way JSON allows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from cdpcli.importing.csvrows import INVALID_MARK, marker
from cdpcli.importing.vendors import VENDORS, may_repeat_a_key, vendor_line
from cdpcli.importing.vendors.common import BadValue, json_object

DATA = Path(__file__).parent / "data" / "vendors"


def first_call_line(vendor: str) -> bytes:
    """The vendor's first fixture line that maps to a call (tests/data/vendors: each in the
    shape of the vendor's documented export, see its README)."""
    for line in (DATA / vendor / "input.jsonl").read_bytes().splitlines():
        if line.strip() and vendor_line(vendor, line).startswith(b"{"):
            return line
    raise AssertionError(f"{vendor}: no fixture line maps to a call")


def with_repeat(line: bytes, nested: bool) -> tuple[bytes, str]:
    """The line with its first key (or the first key of its first nested object) named twice,
    the repeat first, holding a different value (as the audit's reproductions do)."""
    record = json.loads(line)
    holder = record
    if nested:
        holder = next(value for value in record.values() if isinstance(value, dict) and value)
    key = next(iter(holder))
    text = json.dumps(record, separators=(",", ":"))
    inner = json.dumps(holder, separators=(",", ":"))
    repeated = "{" + json.dumps(key) + ':"DUPVAL",' + inner[1:]
    return text.replace(inner, repeated, 1).encode(), key


@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_record_naming_a_key_twice_is_an_invalid_line(vendor: str, nested: bool) -> None:
    line = first_call_line(vendor)
    if nested and not any(isinstance(value, dict) and value for value in json.loads(line).values()):
        pytest.skip(f"{vendor}'s record has no nested object")
    repeated, key = with_repeat(line, nested)
    out = vendor_line(vendor, repeated)
    assert out.startswith(INVALID_MARK), out[:200]
    kind, reason, error, text = marker(out)
    assert (kind, reason, text) == ("invalid", "duplicate key", repeated)
    assert f"{vendor}: duplicate key {json.dumps(key)}" in (error or "")


AUDIT_LINES = [
    # the audit's reproductions (fixture records with one key doubled)
    ("mixpanel", b'{"event":"Signed Up","event":"Other","properties":{"time":1704067200,"distinct_id":"u1","$insert_id":"ins-1"}}', "event"),  # noqa: E501
    ("posthog", b'{"uuid":"DUPVAL","uuid":"018fd3a2-5b1c-7d3e-9a4f-2c6b8e1d0f77","event":"$pageview","distinct_id":"u_8812","timestamp":"2024-06-01T12:05:12.345Z","properties":{}}', "uuid"),  # noqa: E501
    ("amplitude", b'{"$insert_id":"DUPVAL","$insert_id":"5f0c","event_type":"Plan Upgraded","user_id":"u_8812","event_time":"2024-06-01 12:05:12.345000"}', "$insert_id"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("vendor", "line", "key"), AUDIT_LINES, ids=[v for v, _, _ in AUDIT_LINES])
def test_the_audits_records_are_invalid_not_sent_with_the_last_value(vendor: str, line: bytes, key: str) -> None:
    _, reason, error, _ = marker(vendor_line(vendor, line))
    assert reason == "duplicate key" and f'duplicate key "{key}"' in (error or "")


def test_posthogs_properties_as_a_json_string_naming_a_key_twice_are_refused() -> None:
    # PostHog's Parquet export model holds properties as a JSON string
    with pytest.raises(BadValue, match='duplicate key "plan"'):
        json_object('{"plan": "a", "plan": "b"}', "properties")


def test_a_clean_record_is_not_sent_to_the_exact_reader() -> None:
    for vendor in VENDORS:
        line = first_call_line(vendor).strip()
        assert not may_repeat_a_key(line, from_json(line)), vendor


# -- the pre-check's soundness: texts written every way JSON allows ------------------------------------------

KEYS = st.sampled_from(["a", "b", "event", "x:y", 'q"', "é", "\u003a", "$insert_id"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(':"\\ aé', max_size=5))


def _objects(children: st.SearchStrategy) -> st.SearchStrategy:
    # an object as its written pairs: a key may come twice
    return st.lists(st.tuples(KEYS, children), max_size=4).map(lambda pairs: ("object", pairs))


VALUES = st.recursive(
    SCALARS,
    lambda children: _objects(children) | st.lists(children, max_size=3).map(lambda a: ("array", a)),
    max_leaves=12,
)


@st.composite
def writers(draw: st.DrawFn) -> dict:
    """How a writer spells JSON: spaces around colons and commas, which characters of a string it
    escapes as \\uXXXX (colons and quotes included, as JSON allows)."""
    return {
        # before each colon in turn (cycled): some keys spaced, others not
        "before": draw(st.lists(st.sampled_from(["", " ", "\t", "  "]), min_size=1, max_size=4)),
        "after": draw(st.sampled_from(["", " "])),
        "comma": draw(st.sampled_from([",", ", "])),
        "escape": draw(st.sets(st.sampled_from(':"aé'))),
        "upper": draw(st.booleans()),
    }


def write(value: object, how: dict) -> tuple[str, bool]:
    """The text of `value` and whether an object in it names a key twice."""
    if isinstance(value, tuple) and value[0] == "object":
        parts, repeated, seen = [], False, set()
        for key, child in value[1]:
            repeated |= key in seen
            seen.add(key)
            child_text, child_repeated = write(child, how)
            repeated |= child_repeated
            before = how["before"][how["keys"][0] % len(how["before"])]
            how["keys"][0] += 1
            parts.append(f"{write_string(key, how)}{before}:{how['after']}{child_text}")
        return "{" + how["comma"].join(parts) + "}", repeated
    if isinstance(value, tuple):
        written = [write(child, how) for child in value[1]]
        return "[" + how["comma"].join(text for text, _ in written) + "]", any(r for _, r in written)
    if isinstance(value, str):
        return write_string(value, how), False
    return json.dumps(value), False


def write_string(text: str, how: dict) -> str:
    out = []
    for char in text:
        if char in how["escape"]:
            code = f"\\u{ord(char):04x}"
            out.append(code.upper().replace("\\U", "\\u") if how["upper"] else code)
        else:
            out.append(json.dumps(char)[1:-1])
    return '"' + "".join(out) + '"'


@settings(max_examples=600, deadline=None)
@given(_objects(VALUES), writers())
def test_the_pre_check_never_misses_a_repeated_key(value: tuple, how: dict) -> None:
    text, repeated = write(value, {**how, "keys": [0]})  # keys: how many were written
    record = from_json(text)
    assert json.loads(text) == record  # the writer wrote JSON
    if repeated:
        assert may_repeat_a_key(text.encode(), record), text

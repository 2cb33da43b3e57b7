"""Inputs the fast path's differential properties (test_import_properties.py, test_fast_*.py) did
not generate, each one where the fast path sent what the plain path refuses, or counted what it
counts once twice:
- text with DEL (U+007F) near the 32,000-byte limit: Python's ensure_ascii writes DEL as
  `\\u007f`, 6 bytes for 1, as the Python SDK counts a message (api-wire-facts.md: PY-CIO's
  `json.dumps(msg)`); the fast path measured only lines over a third of the limit holding
  non-ASCII bytes;
- a timestamp written with the digits of another script: the canonical pattern's `\\d` matched
  them (Rust's regex knows Unicode 15's Kawi and Nag Mundari digits, Python 3.11's does not);
- an archived (`--from segment|rudderstack`) line with a messageId nested deeper than 200
  levels: its envelope was dropped from a call Python's reader read, and the fast path sent it;
- `--recent warn` with a call the fast path hands over after looking at its timestamp (a key
  named "context" inside its properties): counted twice;
- `--since`/`--until` with a timestamp in Unix seconds (either path): never compared, so sent
  whatever the bounds; as text, refused though the preparer sends it.
Beside them, JSON text as other writers write it (whitespace around every token, any share of
the characters of keys and strings escaped), which json.dumps never does: no divergence found.

The plain path is forced by a Preparer whose fast validators refuse every call (the rest of the
preparer, and the Selector before it, unchanged).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdpcli.importing.prepare import InvalidLine, Preparer, SkipLine
from cdpcli.importing.select import ENVELOPE_KEYS, Selector
from cdpcli.importing.sources import Source
from cdpcli.wire import MAX_CALL_BYTES, call_size
from tests.test_import_properties import TIMESTAMPS, calls, iso_timestamps, other_script_digits, typed


class _Refuses:
    """A fast validator that refuses every call: the preparer takes the plain path for each."""

    def validate_python(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("the plain path, forced")


def _preparer(*, plain: bool, default_type: str | None = None) -> Preparer:
    preparer = Preparer(default_type)
    preparer.for_source(Source("in.ndjson", "in.ndjson", b"in.ndjson"))
    if plain:
        preparer.strict_any = _Refuses()
        preparer.strict_default = _Refuses() if default_type else None
    return preparer


def _selectors(archive: str | None = None, **chosen: Any) -> tuple[Selector, Selector]:
    """The fast way and the plain way to prepare a line, with the same choices and "now"."""
    options = dict.fromkeys(
        ("default_type", "archive", "types", "events", "exclude_events", "since", "until", "sample", "limit")
        + ("recent", "now", "shard")
    )
    options.update(archive=archive, **chosen)
    fast, plain = _preparer(plain=False), _preparer(plain=True)
    plain.now, plain.timestamp_field = fast.now, fast.timestamp_field  # the time of calls that have none
    return tuple(Selector(SimpleNamespace(**options), preparer, lambda: None) for preparer in (fast, plain))  # type: ignore[arg-type,return-value]


def _outcome(prepare: Any, line: bytes) -> Any:
    """What one line becomes: the call sent (typed: 1, 1.0 and true differ), or why not."""
    try:
        return typed(json.loads(prepare(7, line)))
    except InvalidLine as exc:
        return ("invalid", exc.reason, str(exc))
    except SkipLine as exc:
        return ("skipped", exc.reason)


def _both_ways(line: bytes) -> tuple[Any, Any]:
    fast, plain = _selectors()
    return _outcome(fast.prepare, line), _outcome(plain.prepare, line)


# -- the size the API counts ----------------------------------------------------------------

# one character of a string as archives hold it, and as it is written in the line
PIECES = [
    ("x", "x"),
    ("\x7f", "\x7f"),  # DEL, raw: 1 byte in, 6 counted
    ("\x7f", "\\u007f"),
    ("é", "é"),
    ("é", "\\u00e9"),
    ("東", "東"),
    ("😀", "😀"),
    ("/", "\\/"),
]


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=3),
    over=st.integers(-12, 12),
    rewritten=st.sampled_from([None, ("userId", 42), ("timestamp", 1709255000), ("sentAt", "2024-03-01T01:02:03Z")]),
    spaced=st.booleans(),
)
@example(pieces=[("\x7f", "\x7f")], over=6, rewritten=None, spaced=False)  # 5,3xx bytes, counted over
@example(pieces=[("\x7f", "\x7f"), ("x", "x")], over=1, rewritten=("userId", 42), spaced=False)
def test_a_call_near_the_size_limit_is_counted_as_the_plain_path_counts_it(pieces, over, rewritten, spaced):
    """Whatever its text holds, escaped or not, and whether the fast path writes it again: a call
    one byte over the limit (as the API counts it) is refused on both paths, one at it sent."""
    call: dict[str, Any] = {"type": "track", "userId": "u", "event": "E", "messageId": "m"}
    if rewritten is not None:
        call[rewritten[0]] = rewritten[1]
    unit = "".join(text for text, _ in pieces)
    # the size the plain path counts for the call with an empty string, and per unit of text
    base = _preparer(plain=True)
    empty = call_size(json.loads(base.prepare(7, json.dumps({**call, "properties": {"s": ""}}).encode())))
    per_unit = call_size({"s": unit}) - call_size({"s": ""})
    units, rest = divmod(MAX_CALL_BYTES + over - empty, per_unit)
    written = "".join(form for _, form in pieces)
    padding = "x" * rest  # the last few bytes, so that the count lands on the limit + over
    separators = (", ", ": ") if spaced else (",", ":")
    head = json.dumps({**call, "properties": {"s": "@"}}, ensure_ascii=False, separators=separators)
    line = head.replace("@", written * units + padding).encode()
    fast, plain = _both_ways(line)
    assert fast == plain
    assert (plain[0] == "invalid") == (over > 0)  # counted: empty + units * per_unit + rest = limit + over


# -- timestamps in other scripts' digits ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    stamp=other_script_digits(iso_timestamps() | st.just("2024-03-01T01:02:03.000Z")),
    field=st.sampled_from(["timestamp", "originalTimestamp", "sentAt"]),
)
@example(stamp="2024-03-01T01:02:0\U00011f53.000Z", field="timestamp")  # a Kawi digit (Unicode 15)
@example(stamp="\u0662\u0660\u0662\u0664-03-01T01:02:03.000Z", field="sentAt")  # Arabic-Indic digits
def test_a_timestamp_in_another_scripts_digits_is_refused_on_both_paths(stamp, field):
    """SPEC's timestamp is ASCII digits: one written with another script's digits is not sent
    as it is (the canonical pattern's \\d matched every script's digits: both paths sent
    Arabic-Indic digits, and the fast path sent the Unicode-15 ones the plain path refused)."""
    line = json.dumps({"type": "track", "userId": "u", "event": "E", "messageId": "m", field: stamp}).encode()
    fast, plain = _both_ways(line)
    assert fast == plain
    assert plain[0] == "invalid" and field in plain[2]


# -- an archive's envelope dropped from a deeply nested call ---------------------------------


@pytest.mark.parametrize("archive", ["segment", "rudderstack"])
@settings(max_examples=60, deadline=None)
@given(
    levels=st.integers(195, 205),
    message_id=st.booleans(),
    envelope=st.sets(st.sampled_from(["writeKey", "receivedAt", "_metadata", "version"]), min_size=1),
)
@example(levels=200, message_id=True, envelope={"receivedAt"})
def test_an_archived_line_nested_too_deep_is_refused_on_both_paths(archive, levels, message_id, envelope):
    """cdp refuses a call nested deeper than 200 levels inside it (jsontext.MAX_DEPTH), with
    its envelope or without."""
    call: dict[str, Any] = {"type": "track", "userId": "u", "event": "E"}
    if message_id:
        call["messageId"] = "ajs-1"
    values = {"writeKey": "wk_1", "receivedAt": "2024-03-01T10:00:00Z", "_metadata": {"bundled": []}, "version": 2}
    call.update((key, values[key]) for key in sorted(envelope))
    line = json.dumps(call)[:-1].encode() + b',"properties":{"d":' + b"[" * levels + b"]" * levels + b"}}"
    fast, plain = (_outcome(selector.prepare, line) for selector in _selectors(archive))
    assert fast == plain
    assert (fast[0] == "invalid") == (levels + 1 > 200)  # properties is one level, the list the rest
    if fast[0] != "invalid":
        assert not set(ENVELOPE_KEYS[archive]) & set(fast[1])


# -- recent: counted once, whichever path sends the call ------------------------------------

NOW = datetime(2024, 3, 4, 12, tzinfo=timezone.utc)


@settings(max_examples=200, deadline=None)
@given(
    call=calls(),
    hours_ago=st.none() | st.floats(-10, 100),
    shape=st.sampled_from(["%Y-%m-%dT%H:%M:%S.000Z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S+00:00", "unix"]),
    mode=st.sampled_from(["warn", "skip", "fail"]),
    nested_context=st.booleans(),
)
@example(
    call={"type": "track", "userId": "u", "event": "E"},
    hours_ago=1.0,
    shape="unix",
    mode="warn",
    nested_context=True,
)
def test_a_recent_call_is_counted_once_on_either_path(call, hours_ago, shape, mode, nested_context):
    """The fast path looked at the timestamp, then handed the line to the plain path (which
    looked again) when a nested "context" hid the top-level one: `recent` said 2 for one call."""
    call.pop("timestamp", None)
    if hours_ago is not None:
        moment = NOW - timedelta(hours=hours_ago)
        call["timestamp"] = int(moment.timestamp()) if shape == "unix" else moment.strftime(shape)
    if nested_context:
        call.setdefault("properties", {})["context"] = {"page": "nested"}
    line = json.dumps(call).encode()
    fast, plain = _selectors(recent=mode, now=NOW)
    assert _outcome(fast.prepare, line) == _outcome(plain.prepare, line)
    assert fast.recent == plain.recent <= 1


# -- JSON text as other writers write it -----------------------------------------------------

WHITESPACE = ["", "", "", " ", "\t", "\r\n", "\n  "]  # JSON's four, as writers indent


def json_text(value: Any, spacing: random.Random, escapes: float) -> str:
    """`value` as any JSON writer may write it (RFC 8259): whitespace around tokens, a share
    `escapes` of the characters of strings and keys escaped (`\\u0041`, `\\/`, a surrogate
    pair), the rest raw (non-ASCII as UTF-8)."""
    if isinstance(value, dict):
        members = [
            _spaced(json_text(key, spacing, escapes), spacing)
            + ":"
            + _spaced(json_text(item, spacing, escapes), spacing)
            for key, item in value.items()
        ]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_spaced(json_text(item, spacing, escapes), spacing) for item in value) + "]"
    if isinstance(value, str):
        return '"' + "".join(_escaped(char, spacing.random() < escapes) for char in value) + '"'
    return json.dumps(value)


def _spaced(token: str, spacing: random.Random) -> str:
    return spacing.choice(WHITESPACE) + token + spacing.choice(WHITESPACE)


def _escaped(char: str, escape: bool) -> str:
    if not escape:
        return json.dumps(char, ensure_ascii=False)[1:-1]
    if char == "/":
        return "\\/"
    return json.dumps(char)[1:-1] if ord(char) > 0xFFFF else f"\\u{ord(char):04x}"


@settings(max_examples=300, deadline=None)
@given(call=calls(), seed=st.integers(0, 2**32), escapes=st.sampled_from([0.0, 0.0, 0.02, 0.3, 1.0]))
def test_a_call_as_any_writer_writes_it_goes_out_as_the_plain_path_sends_it(call, seed, escapes):
    """Escaped keys (`"time\\u0073tamp"`), whitespace before a colon, escaped ASCII in values:
    whatever splicing by bytes the fast path does, it sends what the plain path sends."""
    line = json_text(call, random.Random(seed), escapes).encode()
    fast, plain = _both_ways(line)
    assert fast == plain


# -- since and until: the moment the call is sent with -------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    stamp=TIMESTAMPS | st.integers(0, 2**33).map(str) | st.just(0),
    bound=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)),
    option=st.sampled_from(["since", "until"]),
)
@example(stamp=1_000_000_000, bound=datetime(2020, 1, 1, tzinfo=timezone.utc), option="since")  # Unix seconds
@example(stamp="1000000000", bound=datetime(2020, 1, 1, tzinfo=timezone.utc), option="since")
@example(stamp=0, bound=datetime(2020, 1, 1, tzinfo=timezone.utc), option="since")
def test_since_and_until_judge_the_moment_a_call_is_sent_with(stamp, bound, option):
    """Whatever shape the timestamp is given in (Unix seconds as a number were never compared:
    every such call was sent, whatever the bounds; as text they were refused), a call is skipped
    exactly when the timestamp it would be sent with is outside the bound."""
    line = json.dumps({"type": "track", "userId": "u", "event": "E", "timestamp": stamp}).encode()
    unfiltered = _outcome(_selectors()[0].prepare, line)
    fast, plain = _selectors(**{option: bound})
    chosen = _outcome(fast.prepare, line)
    assert chosen == _outcome(plain.prepare, line)
    if unfiltered[0] == "invalid":
        assert chosen[0] == "invalid"
        return
    sent = datetime.fromisoformat(unfiltered[1]["timestamp"][1].replace("Z", "+00:00"))
    outside = sent < bound if option == "since" else sent >= bound
    assert chosen == (("skipped", option) if outside else unfiltered)

"""The import's promise as properties (issue #10): for any input, no crash, counts that add
up, and every line delivered or in the rejects file exactly once; and the byte-splicing fast
path sends exactly what the plain path would."""

from __future__ import annotations

import itertools
import json
from datetime import datetime

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from cdpcli.importing.prepare import InvalidLine, Preparer
from cdpcli.importing.sources import Source
from cdpcli.jsontext import loads as strict_loads
from cdpcli.serve import Receiver
from tests.conftest import API_KEY

# -- any input: nothing lost, nothing crashes ------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)  # non-ASCII, controls, no surrogates
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
ODD_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1E+400",
    "1e-400",
    "1" + "0" * 400,
    "123456789012345678901234567890",
]
ODD_STRINGS = ["\\ud800", "\\udc00\\ud800", "\\u0000", "\\ud83d\\ude00", "\\\\ud800", "caf\\u00e9"]


def _valid(props):
    return lambda n, ascii_only: json.dumps(
        {"type": "track", "userId": "u", "event": "E", "messageId": f"line-{n}", "properties": props},
        ensure_ascii=ascii_only,
    ).encode()


def _template(fill: str):
    return lambda n, _: (
        '{"type":"track","userId":"u","event":"E","messageId":"line-%d","properties":{"v":%s}}' % (n, fill)
    ).encode()


LINES = st.one_of(
    JSON_VALUES.map(_valid),
    st.sampled_from(ODD_NUMBERS).map(_template),
    st.sampled_from(ODD_STRINGS).map(lambda s: _template(f'"{s}"')),
    st.sampled_from([50, 199, 200, 201, 1_000, 100_000]).map(lambda d: _template("[" * d + "]" * d)),
    st.binary(max_size=60).map(lambda b: lambda n, _: b.replace(b"\n", b" ")),
    st.sampled_from([b"", b"   ", b"\t", b"\r"]).map(lambda b: lambda n, _: b),
    st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"]).map(
        lambda bad: lambda n, _: b'{"type":"track","userId":"u","event":"E","messageId":"line-%d","s":"%s"}' % (n, bad)
    ),
    st.sampled_from([31_000, 40_000]).map(lambda size: _template('"' + "x" * size + '"')),
)
_runs = itertools.count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    makers=st.lists(LINES, max_size=25),
    ascii_only=st.booleans(),
    bom=st.booleans(),
    crlf=st.booleans(),
    compression=st.sampled_from([None, None, "gzip", "gzip-members", "bzip2", "xz"]),
    sample=st.booleans(),
)
def test_any_input_is_delivered_or_rejected_exactly_once(
    cli, tmp_path, makers, ascii_only, bom, crlf, compression, sample
):
    """... or, with a filter (--sample), skipped: each line exactly one of the three, whatever
    the compression."""
    lines = [make(n, ascii_only) for n, make in enumerate(makers, start=1)]
    if lines and lines[0].startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")):
        lines[0] = b" " + lines[0]  # a file starting with compressed magic is read as compressed
    data = (b"\r\n" if crlf else b"\n").join(lines) + (b"\n" if lines else b"")
    if bom and lines:
        data = b"\xef\xbb\xbf" + data
    data = _compressed(data, compression)
    run_id = next(_runs)
    source = tmp_path / f"in-{run_id}.ndjson"
    source.write_bytes(data)
    rejects_path = tmp_path / f"rejects-{run_id}.ndjson"
    with Receiver(api_key=API_KEY) as receiver:
        run = cli(
            "import",
            str(source),
            "--endpoint",
            receiver.url,
            "--api-key",
            API_KEY,
            "--rejects",
            str(rejects_path),
            "--json",
            *(["--sample", "0.5"] if sample else []),
        )
        bodies = [r.body for r in receiver.requests]
        delivered = [c["messageId"] for c in receiver.calls]
    note(run.stderr)
    assert run.exit_code in (0, 1), run.stderr
    assert "unexpected" not in run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    blank = sum(1 for line in lines if not line.strip())
    assert result["read"] == len(lines)
    assert result["blank"] == blank
    assert result["read"] == result["sent"] + result["invalid"] + result["failed"] + result["skipped"] + result["blank"]
    assert result["unsettled"] == 0 and result["failed"] == 0
    assert result["skipped"] == sum(result["skipped_reasons"].values())
    if not sample:
        assert result["skipped"] == 0
    rejects = [json.loads(r) for r in rejects_path.read_text().splitlines()] if rejects_path.exists() else []
    rejected = [r["line"] for r in rejects]
    assert len(rejected) == len(set(rejected)) == result["invalid"]
    assert len(delivered) == len(set(delivered)) == result["sent"]
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            assert n not in rejected and f"line-{n}" not in delivered
        elif not sample:  # exactly one of the two
            assert (n in rejected) != (f"line-{n}" in delivered), (n, line[:80])
        else:  # at most one of the two; the rest are skipped (counted above)
            assert not (n in rejected and f"line-{n}" in delivered), (n, line[:80])
    nonblank = len(lines) - blank
    assert result["skipped"] == nonblank - len(rejected) - len(delivered)
    for body in bodies:  # what went out is JSON every parser reads the same way
        for call in body["batch"]:
            strict_loads(json.dumps(call, ensure_ascii=False))
    assert run.exit_code == (1 if rejected else 0)


def _compressed(data: bytes, compression: str | None) -> bytes:
    import bz2
    import gzip
    import lzma

    if compression == "gzip":
        return gzip.compress(data)
    if compression == "gzip-members":  # concatenated members, cut anywhere (even mid-line)
        cut = len(data) // 2
        return gzip.compress(data[:cut]) + gzip.compress(data[cut:])
    if compression == "bzip2":
        return bz2.compress(data)
    if compression == "xz":
        return lzma.compress(data)
    return data


# -- the fast path and the plain path agree --------------------------------------------------

IDS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)
# ids as exports write them: strings, or JSON integers (Mixpanel's distinct_id, database keys)
ANY_IDS = IDS | st.integers(-(2**70), 2**70)
OBJECTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)
MOMENTS = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30))
ZONES = st.sampled_from(["Z", "z", "", "+00:00", "-00:00"]) | st.builds(
    "{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)
)


@st.composite
def iso_timestamps(draw):
    """Any ISO-8601 date-time in the shapes exporters write: with or without a fraction of 1-9
    digits, Z, an offset or no zone, T or a space, or a date alone."""
    moment = draw(MOMENTS)
    if draw(st.integers(0, 9)) == 0:
        return moment.strftime("%Y-%m-%d")
    text = moment.strftime("%Y-%m-%d") + draw(st.sampled_from("T ")) + moment.strftime("%H:%M:%S")
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + (f"{moment.microsecond:06d}" + draw(st.text("0123456789", min_size=3, max_size=3)))[:digits]
    return text + draw(ZONES)


# The zero of each script's decimal digits (Unicode category Nd) beside ASCII's: Arabic-Indic,
# Devanagari, fullwidth, mathematical bold, and Kawi and Nag Mundari (Unicode 15: digits to
# Rust's regex in pydantic-core, not to Python 3.11's re). SPEC's timestamps are ASCII digits.
OTHER_ZEROS = [0x0660, 0x0966, 0xFF10, 0x1D7CE, 0x11F50, 0x1E4F0]


def other_script_digits(stamps):
    """Timestamps from `stamps` with some (or all) of their digits in another script."""

    @st.composite
    def rewritten(draw):
        text = draw(stamps)
        positions = [at for at, char in enumerate(text) if char.isascii() and char.isdigit()]
        chosen = draw(st.sets(st.sampled_from(positions), min_size=1)) if draw(st.booleans()) else set(positions)
        zero = draw(st.sampled_from(OTHER_ZEROS))
        return "".join(chr(zero + int(char)) if at in chosen else char for at, char in enumerate(text))

    return rewritten()


# every timestamp shape the table names, and cdp's own; Unix seconds as a JSON number
TIMESTAMPS = (
    iso_timestamps()
    | other_script_digits(st.just("2026-11-27T13:31:42.000Z") | iso_timestamps())
    | st.integers(86_400, 253_402_214_400)
    | st.floats(86_400, 253_402_214_400).map(lambda x: round(x, 3))
    | st.sampled_from(["2026-11-27T13:31:42.000Z", "not a time", "2024-13-01T00:00:00Z", "2024-03-01T24:00:00Z"])
)


@st.composite
def calls(draw):
    kind = draw(st.sampled_from(["identify", "track", "page", "screen", "group", "alias"]))
    call: dict = {"type": kind}
    if kind == "alias":
        call.update(userId=draw(ANY_IDS), previousId=draw(ANY_IDS))
    else:
        call[draw(st.sampled_from(["userId", "anonymousId"]))] = draw(ANY_IDS)
    if kind == "track":
        call["event"] = draw(IDS)
    if kind == "group":
        call["groupId"] = draw(ANY_IDS)
        if draw(st.booleans()):
            call["objectTypeId"] = draw(ANY_IDS)
    if kind in ("page", "screen") and draw(st.booleans()):
        call["name"] = draw(TEXT)
    if draw(st.booleans()):
        call["properties" if kind in ("track", "page", "screen") else "traits"] = draw(OBJECTS)
    if draw(st.booleans()):  # a key named context inside an object: must not be spliced into
        call.setdefault("properties", {})["context"] = {"nested": True}
    context = draw(st.sampled_from([None, {}, {"ip": "1.2.3.4"}, {"library": {"name": "sdk"}}, {"locale": "fr"}]))
    if context is not None:
        call["context"] = context
    if draw(st.booleans()):
        call["messageId"] = draw(IDS)
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        if draw(st.booleans()):
            call[field] = draw(TIMESTAMPS)
    if draw(st.booleans()):  # a timestamp inside traits/properties: sent as it is
        call.setdefault("properties", {})[draw(st.sampled_from(["timestamp", "sentAt", "at"]))] = draw(TIMESTAMPS)
    if draw(st.booleans()):
        call["extra"] = draw(JSON_VALUES)
    keys = list(call)
    order = draw(st.permutations(keys))
    return {key: call[key] for key in order}


def typed(value):
    """A parsed JSON value with the kind of each number kept: Python's == takes 1, 1.0 and True
    for one value, the wire does not."""
    if isinstance(value, dict):
        return ("object", {key: typed(item) for key, item in value.items()})
    if isinstance(value, list):
        return ("array", [typed(item) for item in value])
    return (type(value).__name__, repr(value) if isinstance(value, float) else value)


@settings(max_examples=300, deadline=None)
@given(call=calls(), ascii_only=st.booleans(), spaced=st.booleans(), line_no=st.integers(1, 10**6))
def test_the_fast_path_sends_what_the_plain_path_would(call, ascii_only, spaced, line_no):
    line = json.dumps(call, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":")).encode()
    preparer = Preparer(None)
    preparer.for_source(Source("in.ndjson", "in.ndjson", b"in.ndjson"))
    plain = preparer._slow
    took_plain = []
    preparer._slow = lambda *args: took_plain.append(True) or plain(*args)  # type: ignore[method-assign]
    try:
        fast = preparer.prepare(line_no, line)
    except InvalidLine as exc:
        try:
            plain(line_no, line)
        except InvalidLine as again:
            assert str(again) == str(exc)
            return
        raise AssertionError(f"the fast path refused what the plain path accepts: {exc}") from None
    assert typed(strict_loads(fast)) == typed(strict_loads(plain(line_no, line)))
    if not took_plain:
        assert fast.startswith(b"{") and fast.endswith(b"}")


def test_an_ordinary_line_takes_the_fast_path():
    """So that the property above compares two paths, not one with itself."""
    preparer = Preparer(None)
    preparer.for_source(Source("in.ndjson", "in.ndjson", b"in.ndjson"))
    preparer._slow = lambda *args: (_ for _ in ()).throw(AssertionError("took the plain path"))  # type: ignore[method-assign]
    for line in (
        b'{"type":"track","userId":"u","event":"E","properties":{"n":1.5e3}}',
        b'{"type":"identify","userId":"u","context":{"ip":"1.2.3.4"},"traits":{"name":"\xc3\xa9"}}',
        b'{"type":"page","anonymousId":"a","context":{"library":{"name":"analytics.js"}}}',
    ):
        assert strict_loads(preparer.prepare(1, line))


@st.composite
def exported_calls(draw):
    """A valid call as archives and exports write them: any timestamp shape, numeric ids,
    non-ASCII text; none of it needs the plain path."""
    kind = draw(st.sampled_from(["identify", "track", "page", "screen", "group", "alias"]))
    number_ids = st.integers(1, 2**63)  # 0 names nobody: the plain path says so
    ids = st.text("abcdefgh-0123456789é東", min_size=1, max_size=8) | number_ids
    call: dict = {
        "type": kind,
        ("userId" if kind == "alias" else draw(st.sampled_from(["userId", "anonymousId"]))): draw(ids),
    }
    if kind == "alias":
        call["previousId"] = draw(ids)
    if kind == "track":
        call["event"] = draw(st.sampled_from(["Order Completed", "Größe gewählt", "東京"]))
    if kind == "group":
        call["groupId"] = draw(ids)
        if draw(st.booleans()):
            call["objectTypeId"] = draw(ids)
    key = "properties" if kind in ("track", "page", "screen") else "traits"
    call[key] = {"city": draw(st.sampled_from(["Münster", "Paris", "東京"])), "created_at": draw(TIMESTAMPS)}
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        if draw(st.booleans()):
            call[field] = draw(
                iso_timestamps() | st.integers(86_400, 2**33) | st.floats(86_400, 2**33).map(lambda x: round(x, 3))
            )
    if draw(st.booleans()):
        call["context"] = draw(st.sampled_from([{}, {"ip": "1.2.3.4"}, {"library": {"name": "analytics.js"}}]))
    order = draw(st.permutations(list(call)))
    return {key: call[key] for key in order}


@settings(max_examples=200, deadline=None)
@given(call=exported_calls(), ascii_only=st.booleans(), spaced=st.booleans())
def test_every_exported_shape_stays_on_the_fast_path(call, ascii_only, spaced):
    """Every shape of the timestamp and id fields, and non-ASCII text escaped or not, is sent by
    the fast path (the plain path costs 4-10x the CPU), as the plain path would send it; and
    a timestamp inside traits or properties goes out exactly as given."""
    line = json.dumps(call, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":")).encode()
    preparer = Preparer(None)
    preparer.for_source(Source("in.ndjson", "in.ndjson", b"in.ndjson"))
    plain = preparer._slow
    preparer._slow = lambda *args: (_ for _ in ()).throw(AssertionError("took the plain path"))  # type: ignore[method-assign]
    fast = strict_loads(preparer.prepare(3, line))
    assert typed(fast) == typed(strict_loads(plain(3, line)))
    key = "properties" if "properties" in call else "traits"
    assert fast[key] == call[key]
    assert all(
        isinstance(fast[field], str) for field in ("userId", "anonymousId", "groupId", "previousId") if field in call
    )

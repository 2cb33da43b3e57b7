"""Other analytics tools' exports as Data Pipelines calls (option `archive`, the CLI's
`--from VENDOR`).

One module per vendor holds its mapping, a pure function from one parsed export record to a
`Verdict` (common.py): the call it becomes, or a skip or an invalid line with a stable reason
id. Each module's docstring names the vendor pages its facts come from.

`vendor_lines` is the line converter the reader runs: exactly one output line for each input
line, so line numbers, rejects and checkpoint settlement stay the file's own. A record
becomes one call (never two: a second call would need a line number of its own); a skip or an
invalid record becomes a marker line (csvrows.SKIP_MARK / INVALID_MARK, read by prepare.py); a
blank line stays blank; a line that is not a JSON object passes through unchanged, for the
preparer to reject as it rejects any such line. A record the mapping refuses that is shaped
like another vendor's export (sniff.record_vendor) is invalid as `wrong_vendor`, its error
naming the archive= that reads it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic_core import from_json, to_json

from cdpcli.importing.csvrows import INVALID_MARK, MARK, SKIP_MARK
from cdpcli.importing.prepare import InvalidLine, unwrap_reject
from cdpcli.importing.vendors import amplitude, ga4, mixpanel, posthog
from cdpcli.importing.vendors.common import BadValue, Mapping, Verdict, invalid, repeated_key
from cdpcli.importing.vendors.sniff import WRONG_VENDOR, record_vendor, sniff, wrong_vendor_error
from cdpcli.jsontext import may_repeat_a_key
from cdpcli.wire import dumps

MAPPINGS: dict[str, Mapping] = {
    "mixpanel": mixpanel.map_event,
    "mixpanel-profiles": mixpanel.map_profile,
    "amplitude": amplitude.map_event,
    "posthog": posthog.map_event,
    "ga4": ga4.map_event,
}
VENDORS = tuple(MAPPINGS)

__all__ = [
    "MAPPINGS",
    "VENDORS",
    "Verdict",
    "chunk_converter",
    "map_record",
    "sniff",
    "vendor_chunk",
    "vendor_line",
    "vendor_lines",
]


def map_record(name: str, record: dict[str, Any]) -> Verdict:
    """What one parsed export record of vendor `name` becomes."""
    return MAPPINGS[name](record)


def vendor_line(name: str, line: bytes) -> bytes:
    """The output line for one input line (see the module docstring)."""
    text = line.strip()
    if not text:
        return b""
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]
    try:
        # pydantic-core's reader (a third of json.loads' time): what it lets through that cdp
        # refuses (NaN, overflowing numbers, lone surrogates) the preparer refuses in the call
        record = from_json(text)
    except ValueError:
        return line  # the preparer rejects it with the reason any line gets
    if not isinstance(record, dict):
        return line
    if may_repeat_a_key(text, record):
        repeated = repeated_key(text)
        if repeated is not None:
            return _invalid(name, text, "duplicate key", repeated)
    if "type" not in record and "input" in record:  # a rejects record fed back: its call is the line
        try:
            record = unwrap_reject(record)
        except InvalidLine:
            return line  # the preparer rejects it, saying why
        if "type" in record:  # what a mapping made of the original line, which failed later on
            return dumps(record).encode("utf-8", "surrogatepass")
    try:
        verdict = MAPPINGS[name](record)
    except BadValue as exc:  # a field a mapping reads late holds what it cannot read
        verdict = invalid("bad_value", str(exc))
    if verdict.call is not None:
        try:  # pydantic-core's writer: a quarter of json's time; Infinity kept for the preparer to refuse
            return to_json(verdict.call, inf_nan_mode="constants")
        except ValueError:  # a lone surrogate: json's ASCII escapes let the preparer say so
            return dumps(verdict.call).encode()
    if verdict.skip is not None:
        return SKIP_MARK + verdict.skip.encode() + MARK + text
    other = record_vendor(record)  # a line the mapping refuses: is it another tool's? (the cost of invalid lines only)
    if other is not None and other != name:
        return _invalid(name, text, WRONG_VENDOR, wrong_vendor_error(name, other))
    return _invalid(name, text, verdict.invalid or "invalid", verdict.error)


def _invalid(name: str, text: bytes, reason: str, error: str | None) -> bytes:
    record_text = text.decode("utf-8", "surrogateescape")
    return INVALID_MARK + dumps({"error": f"{name}: {error}", "reason": reason, "input": record_text}).encode()


def vendor_lines(name: str, lines: Iterable[bytes]) -> Iterator[bytes]:
    """One output line for each input line (see the module docstring)."""
    if name not in MAPPINGS:
        raise KeyError(name)
    for line in lines:
        yield vendor_line(name, line)


def chunk_converter(name: str | None) -> Callable[[bytes], bytes] | None:
    """The reader's convert hook for the `archive` option's value: a vendor's mapping, or None
    (segment, rudderstack and plain calls are read as they are)."""
    return functools.partial(vendor_chunk, name) if name in MAPPINGS else None


def vendor_chunk(name: str, data: bytes) -> bytes:
    """A chunk of newline-separated lines, each converted: as many lines out as in."""
    return b"\n".join(vendor_line(name, line) for line in data.split(b"\n"))

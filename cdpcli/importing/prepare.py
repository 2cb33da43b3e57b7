"""Turning one line into the bytes of the call to send, or InvalidLine.

Two paths side by side. The fast path reads the line once, refusing a key named twice in any
object (jiter's reader, or pydantic-core's and a count), validates what it read with the strict
models, and splices `messageId`, `timestamp` and `context.library` into the original bytes (a
line with a timestamp or id in another shape is written again from what was read). Lines the
strict models refuse, and the few the fast path cannot be sure of, take the plain path (strict
JSON parse, lax models, dump); its verdict is final. Differential property tests
(tests/test_import_properties.py, tests/test_fast_*.py) pin the two together.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json, to_json

from cdpcli import jsontext
from cdpcli.importing.shapes import fast_validator
from cdpcli.jsontext import may_overflow, may_repeat_a_key
from cdpcli.wire import LIBRARY, MAX_CALL_BYTES, call_size, dumps, may_count_over, now_timestamp, with_library

if TYPE_CHECKING:
    from cdpcli.importing.source import Source

LIBRARY_FIELD = b'"library":' + dumps(LIBRARY).encode()
CONTEXT_FIELD = b',"context":{' + LIBRARY_FIELD + b"}}"
EMPTY_OBJECT_REST = re.compile(rb"\s*}")
# A \u escape with the end of a key (a quote, then a colon) at most 128 bytes after it. Every
# name the fast path splices by or looks for ("context", "messageId", "originalTimestamp",
# "writeKey", …; 17 characters at most, 6 bytes each escaped) is a key found so. Escaped
# non-ASCII text in values costs one short look at each escape (a search from every quote, or
# to the end of each string, cost 4x an ordinary line's CPU, or time quadratic in a string's
# escapes); a false alarm (an escaped quote, then a colon, in a value) only costs the plain path.
ESCAPED_KEY = re.compile(rb'\\u[^"]{0,128}"\s*:')


def has_escaped_key(line: bytes) -> bool:
    """A key written with \\u escapes can hide "context" or "messageId" from byte-level
    splicing: such lines take the slow path (see ESCAPED_KEY for which keys are found)."""
    return ESCAPED_KEY.search(line) is not None


# Another system's secret that archives and SDK relays leave on a call: never forwarded, on any
# import (not only --from segment). Dropped by the plain path; an escaped spelling of the key
# ("write\u004bey") reaches the plain path already (has_escaped_key).
FOREIGN_SECRETS = ("writeKey",)
_FOREIGN_SECRET_BYTES = tuple(f'"{key}"'.encode() for key in FOREIGN_SECRETS)


def may_hold_foreign_secret(data: bytes) -> bool:
    """True when `data` (a chunk of lines, or one) may hold a foreign secret to drop (the plain
    path drops it)."""
    return any(data.find(key) >= 0 for key in _FOREIGN_SECRET_BYTES)


class RepeatedKey(ValueError):
    """A line that may name a key twice in one object (the plain path says which)."""


def _reader_refusing_duplicates() -> Callable[[bytes], Any]:
    """What reads a line for the fast models: jiter's reader (a dependency) refuses a key
    named twice in one object itself; where it cannot be imported (an install without it),
    pydantic-core's reader and a count (see _read_counting_colons). Either refuses NaN and
    Infinity (the plain path names them), which no chunk then needs looking for (~0.3 µs a line)."""
    try:
        jiter_from_json = importlib.import_module("jiter").from_json
    except ImportError:
        return _read_counting_colons

    def read(line: bytes) -> Any:
        return jiter_from_json(line, catch_duplicate_keys=True, cache_mode="keys", allow_inf_nan=False)

    return read


def _read_counting_colons(line: bytes) -> Any:
    """The line read by pydantic-core, which keeps the last of a repeated key silently, or
    RepeatedKey when it may name one twice (jsontext.may_repeat_a_key: a count of colons)."""
    data = from_json(line, cache_strings="keys", allow_inf_nan=False)
    if may_repeat_a_key(line, data):
        raise RepeatedKey("a key may be named twice")
    return data


# The fast path reads each line once (~1.3 µs with jiter, ~2 µs without) and validates what it
# read (~0.5 µs): pydantic-core's JSON validation cannot tell a key named twice (it keeps the last
# silently, and the fast models ignore the keys they do not name), and reading the line a second
# time to look cost more than reading it once and validating the objects.
read_refusing_duplicates = _reader_refusing_duplicates()


class InvalidLine(Exception):
    """A line that cannot be sent; the message is what the rejects file and stderr say, the
    reason its kind in the summary's `invalid_reasons`."""

    def __init__(self, message: str, reason: str = "invalid call", input: bytes | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.input = input  # what the rejects record keeps, when not the line (a CSV row's text)


class LimitReached(Exception):
    """--limit calls were taken: the line at hand is left for the next run (not read)."""


class SkipLine(Exception):
    """A line left out by the user's choice (a filter, a CSV header): counted as skipped, by
    reason, and settled; never sent, never in rejects."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Preparer:
    """Validates one line and returns the bytes of the call to send (see module docstring)."""

    def __init__(self, default_type: str | None) -> None:
        from cdpcli import models

        self.models = models
        self.rules_hold = models.strict_rules_hold
        self.default_type = default_type
        # the core validators themselves: TypeAdapter's Python wrapper costs ~0.5 µs a line
        self.strict_any = fast_validator("any")
        # Any: None only when a line's "type" picks strict_any (see prepare)
        self.strict_default: Any = fast_validator(default_type) if default_type else None
        self.rewrite: list[tuple[str, Any]] = []  # the validation context: see shapes.py
        self.type_prefix = f'{{"type":"{default_type}",'.encode() if default_type else b"{"
        self._id_prefix = b""
        self.last_type = ""  # the type of the call prepare() returned last (for the summary)
        # the strict models' dict of that call (free-form traits and properties not built); None
        # when the plain path made it (preflight reads it instead of parsing the call again)
        self.fast_call: dict[str, Any] | None = None
        # the chunk being prepared may hold a number that overflows a double, which the reader
        # reads as inf (jsontext.may_overflow): then each line is looked at. Looking once per
        # 1 MB chunk costs ~0.3 µs a line's worth of bytes (a translation and finds over the
        # chunk), against ~2x that when every line was looked at on its own
        self.careful = True
        # the chunk may hold a foreign secret: then each line is looked for one (one find). Apart
        # from `careful`: every line of a Segment archive names writeKey, and the number look
        # over each line cost ~1.2 µs of a Segment line's ~20 (see look_ahead)
        self.secrets = True
        # the line at hand as already read, when it was written from that (select.py's envelope
        # drop): no key can be named twice in it, and reading it again cost ~2 µs a Segment line
        self.parsed: dict[str, Any] | None = None
        # --recent (select.py): a call timestamped at or after `recent_from` goes to on_recent
        # (which may raise SkipLine or InvalidLine). Canonical timestamps (…T…:…:….mmmZ) compare
        # as the times they are; "~" sorts after every one of them: off
        self.recent_from = "~"
        self.on_recent: Callable[[str], None] = _nothing
        # a call with no timestamp goes out stamped now: on_recent("") too (recent skip, fail)
        self.recent_when_missing = False
        self.tick()

    def look_ahead(self, data: bytes) -> None:
        """Look once at the chunk whose lines are prepared next (see `careful`, `secrets`)."""
        self.careful = may_overflow(data)
        self.secrets = may_hold_foreign_secret(data)

    def for_source(self, source: Source) -> None:
        self._id_prefix = b"cdp-" + hashlib.sha1(source.id_seed).hexdigest()[:10].encode() + b"-"

    def message_id(self, line_no: int, line: bytes) -> bytes:
        """Derived from (source, line number, line): a re-run sends the same ids.

        The line number makes ids unique within a source by construction, so the content only
        has to tell an edited line from the original: CRC-32 does that at a tenth of SHA-1's cost.
        """
        return b"%s%d-%08x" % (self._id_prefix, line_no, zlib.crc32(line))

    def tick(self) -> None:
        """Read the clock once per chunk of input: the timestamp of calls that have none."""
        self.now = now_timestamp()
        self.timestamp_field = b'"timestamp":"' + self.now.encode() + b'",'

    def prepare(self, line_no: int, line: bytes) -> bytes:
        """The bytes to send for one line, or InvalidLine. The hot path: keep it lean (each
        attribute lookup or call here costs ~1 % of an import's client time). Substrings are
        looked for with bytes.find: CPython 3.11's `sub in bytes` first tries `sub` as an int,
        raising and clearing a TypeError each time (~1,900 instructions)."""
        # without --type, a line with no "type" fails validation anyway: no need to look
        typed = self.strict_default is None or line.find(b'"type"') >= 0
        rewrite = self.rewrite  # the fast models name the fields whose values need rewriting here
        try:
            # read once, refusing a key named twice (RepeatedKey, jiter's error), then validated
            data = read_refusing_duplicates(line) if self.parsed is None else self.parsed
            call = (self.strict_any if typed else self.strict_default).validate_python(data, context=rewrite)
        except ValueError:  # pydantic_core.ValidationError is a ValueError
            rewrite.clear()
            return self._slow(line_no, line)
        if (
            not self.rules_hold(call)
            or (line.find(b"\\u") >= 0 and has_escaped_key(line))
            or (self.careful and may_overflow(line))
            or (self.secrets and may_hold_foreign_secret(line))
        ):
            rewrite.clear()
            return self._slow(line_no, line)
        if rewrite:  # a timestamp or id written another way: the call as read, with the values
            # as the plain path writes them, written again (~0.5 µs; finding each in the bytes
            # and splicing cost ~1 µs, and a nested key of the same name sent the line away)
            for field, _ in rewrite:
                data[field] = call[field]
            rewrite.clear()
            body = to_json(data)
        else:
            body = line
        self.last_type = call["type"] if typed else (self.default_type or "")
        self.fast_call = call
        head = b"{" if typed else self.type_prefix
        if "messageId" not in call:  # derived from the line as read (a re-run sends the same)
            head = b'%s"messageId":"%s",' % (head, self.message_id(line_no, line))
        if "timestamp" not in call:
            head += self.timestamp_field
        ready = self._with_library(body, call.get("context"), head)
        if ready is None:
            return self._slow(line_no, line)
        # after the last hand-over to the plain path, which looks at the timestamp itself
        stamp = call.get("timestamp")
        if stamp is not None and stamp >= self.recent_from:
            self.on_recent(stamp)
        elif stamp is None and self.recent_when_missing:
            self.on_recent("")  # stamped now, above
        if len(ready) > MAX_CALL_BYTES // 6 and may_count_over(ready):
            # the API counts compact JSON with non-ASCII and DEL escaped (é is 6 bytes): measure exactly
            size = call_size(json.loads(ready))
            if size > MAX_CALL_BYTES:
                raise InvalidLine(f"call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,}", "too large")
        return ready

    @staticmethod
    def _with_library(line: bytes, context: dict[str, Any] | None, head: bytes) -> bytes | None:
        """`head` and the line with cdp's context.library spliced in; None when the line's
        top-level "context" cannot be told from a nested one."""
        if context is None:
            if line.find(b'"context"') >= 0:  # a nested key, or an escaped top-level one: unsure
                return None
            return head + line[1:-1] + CONTEXT_FIELD
        if "library" in context:  # the SDK that made the call (a replay): kept as it is
            if line.find(b'"context"') < 0:
                return None
            return head + line[1:]
        at = line.find(b'"context"')
        if at < 0 or line.find(b'"context"', at + 9) >= 0:
            return None
        brace = line.index(b"{", at + 9) + 1  # validated: the value is an object
        glue = b"" if EMPTY_OBJECT_REST.match(line, brace) else b","
        return b"".join((head, line[1:brace], LIBRARY_FIELD, glue, line[brace:]))

    def _slow(self, line_no: int, line: bytes) -> bytes:
        """Lines the strict models refuse: parse, validate with the lax models, re-serialise."""
        from pydantic import ValidationError

        # a marker line of the reader (csvrows.py); the readers turn any line of the input
        # itself that starts with a NUL byte into an invalid one (sources.guard_markers)
        if line.startswith(b"\0"):
            self._marker(line)
        try:
            data = jsontext.loads(line)
        except jsontext.JSONTextError as exc:
            message = str(exc)
            reason = "not UTF-8" if message.startswith("not valid UTF-8") else "invalid JSON"
            raise InvalidLine(message, "duplicate key" if message.startswith("duplicate key") else reason) from None
        if not isinstance(data, dict):
            raise InvalidLine(f"expected a JSON object, got {_json_kind(data)}", "not an object")
        data, line = unwrap_reject_line(data, line)
        for key in FOREIGN_SECRETS:
            data.pop(key, None)
        if "type" not in data and self.default_type:
            data["type"] = self.default_type
        try:
            call = self.models.validate_call(data)
        except ValidationError as exc:
            raise InvalidLine("; ".join(self.models.describe_errors(exc))) from None
        if not call.get("messageId"):
            call["messageId"] = self.message_id(line_no, line).decode()
        stamp = call.get("timestamp")
        if not stamp:
            if self.recent_when_missing:
                self.on_recent("")
            call["timestamp"] = self.now
        elif stamp >= self.recent_from:
            self.on_recent(stamp)
        context = call.get("context")
        if not (isinstance(context, dict) and "library" in context):  # a replay keeps its SDK's
            call["context"] = with_library(context)
        size = call_size(call)
        if size > MAX_CALL_BYTES:
            raise InvalidLine(f"call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,}", "too large")
        self.last_type = call["type"]
        self.fast_call = None
        return dumps(call).encode()

    def _marker(self, line: bytes) -> None:
        from cdpcli.importing.csvrows import marker

        kind, reason, error, text = marker(line)
        if kind == "skip":
            raise SkipLine(reason)
        raise InvalidLine(error or reason, reason, text)


def _nothing(stamp: str) -> None:
    pass


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def unwrap_reject_line(data: dict[str, Any], line: bytes) -> tuple[dict[str, Any], bytes]:
    """`unwrap_reject`, with the line the call is prepared from: a rejects record's call written
    compactly, so that its derived messageId follows the call whatever reads the record first
    (the plain path, or a filter); any other line as it is."""
    inner = unwrap_reject(data)
    return (data, line) if inner is data else (inner, dumps(inner).encode("utf-8", "surrogatepass"))


def unwrap_reject(data: dict[str, Any]) -> dict[str, Any]:
    """A line of a rejects file fed back to import: its `input` is the call (fixed or not)."""
    if "type" not in data and {"source", "line", "error", "input"} <= data.keys():
        if "input_base64" in data:
            raise InvalidLine(
                "rejects record of a line that was not UTF-8: fix its input and remove input_base64 to send it",
                "rejects record",
            )
        inner = data["input"]
        if isinstance(inner, str):
            try:
                inner = jsontext.loads(inner)
            except ValueError:
                raise InvalidLine(
                    "rejects record whose input is not JSON; fix its input first", "rejects record"
                ) from None
        if isinstance(inner, dict):
            return inner
    return data

"""JSON text as cdp reads it: what every parser on the way reads the same way.

Python's json module accepts things that are not JSON (RFC 8259) or not portable, and that
other parsers read differently or refuse:
- `NaN`, `Infinity`, `-Infinity`: not JSON at all; a strict parser refuses the whole body.
- numbers too large for a double (`1e400`, a 400-digit integer): read as infinity by one
  parser, refused by another, so the value the API stores is not the one in the input.
- escaped lone surrogates (`"\\ud800"`): valid JSON grammar but not Unicode text; they cannot
  be encoded as UTF-8, and sending them crashed cdp.
- nesting deeper than MAX_DEPTH levels: pydantic-core's JSON reader (cdp's fast path) stops
  at 201 levels (the call object and 200 inside it); Python's stops near 1,000 with a
  RecursionError. cdp refuses calls nested deeper than 200 levels inside the call, so every
  path (single calls, import's fast and plain paths, cdp serve) draws the same line. The API
  documents no limit.
- a key named twice in one object (`{"event":"a","event":"b"}`): one parser keeps the first
  value, another the last (Python's and pydantic-core's readers keep the last, silently).
cdp refuses all of these with a message that says which, never changing a value silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from pydantic_core import to_json

# Levels of objects and arrays inside a call (the call object itself not counted): the most
# pydantic-core's JSON reader accepts (201 levels in all), so cdp's two import paths agree.
MAX_DEPTH = 200


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONTextError(ValueError):
    """Text cdp will not read as JSON; `str()` is the message for the user."""


def _constant(name: str) -> Any:
    raise JSONTextError(f"{name} is not valid JSON (JSON has no NaN or Infinity; send null or a string)")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONTextError(f"number {_short(text)} is too large for a JSON number (it overflows a double)")
    return value


def _int(text: str) -> int:
    # 309 digits reach 1e308, the largest double: beyond it a parser reading doubles overflows
    if len(text.lstrip("-")) > 308:
        raise JSONTextError(f"number {_short(text)} is too large for a JSON number (it overflows a double)")
    return int(text)


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:10] + "…" + text[-6:]


class RepeatedKey(Exception):
    """An object names `key` twice (raised by each_key_once)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook that refuses an object naming a key twice (RepeatedKey)."""
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedKey(key)
            seen.add(key)
    return value


def duplicate_key_message(key: str) -> str:
    return f"duplicate key {json.dumps(key, ensure_ascii=False)} (an object names each key once)"


def first_repeated_key(text: str | bytes) -> str | None:
    """The first key an object of `text` names twice, or None. Python's reader, lenient: it
    reads what `loads` refuses for other reasons (NaN, a huge number: other checks name those)
    and None when it cannot read `text` at all."""
    try:
        json.loads(text, object_pairs_hook=each_key_once)
    except RepeatedKey as exc:
        return exc.key
    except (ValueError, RecursionError):
        return None
    return None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    try:
        return each_key_once(pairs)
    except RepeatedKey as exc:
        raise JSONTextError(duplicate_key_message(exc.key)) from None


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_object)


def loads(text: str | bytes) -> Any:
    """Parse JSON text strictly (see the module docstring); raises JSONTextError.

    Bytes must be UTF-8 (a BOM is refused as json.loads does)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONTextError(f"not valid UTF-8 (byte 0x{text[exc.start]:02x} at offset {exc.start})") from None
    try:
        value = _DECODER.decode(text)
    except JSONTextError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONTextError(f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise JSONTextError(f"nesting deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer over Python's 4,300-digit limit
        raise JSONTextError(f"invalid JSON: {exc}") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and depth(value) > MAX_DEPTH + 1:
        raise JSONTextError(f"nesting deeper than {MAX_DEPTH} levels")
    check_text(value, text)
    return value


def is_text(text: str) -> bool:
    """False when `text` holds a lone surrogate (undecodable bytes in an argument arrive so),
    which no UTF-8 stream or HTTP header can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: Any, text: str | None = None) -> None:
    """Refuse strings that are not Unicode text (lone surrogates, from `\\ud800` escapes or
    from undecodable bytes in arguments); `text`, when given, lets the common case skip the walk."""
    # the text holding a surrogate itself: look for it below; else only a \ud8xx-\udfxx escape can
    if text is not None and is_text(text) and _SURROGATE_ESCAPE.search(text) is None:
        return
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        raise JSONTextError(
            f"lone surrogate \\u{code:04x} in a string (not Unicode text; a surrogate must be half of a pair)"
        ) from None


def depth(value: Any) -> int:
    """Levels of objects and arrays, the outermost counted (iterative: any depth)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


# After this translation a JSON number is a run of "0"s (its sign and point aside), its exponent
# mark "e" and its end ",": an overflowing number has an exponent of 3 or more digits after a
# digit ("1e400", "2E+308": a 2-digit exponent needs 210+ mantissa digits to overflow) or a run
# of 200+ digits. "+" is deleted: only positive exponents overflow.
_NUMBER_SHAPE = bytes.maketrans(b"123456789E}] \t\r\n", b"000000000e,,,,,,")
_BIG_EXPONENT = re.compile(rb"e0{3,}(?:,|\Z)")
_LONG_RUN = b"0" * 200


def may_overflow(text: bytes) -> bool:
    """False when no number in `text` can overflow a double; True sends it to the exact reader.

    A regular expression over the raw bytes took 6-12 ms for a 470 KB body (':' and digits are
    everywhere); a translation and finds take ~1 ms. Hex ids ("…3e451…") are the usual false
    candidates: each is dismissed by one match at its "e"."""
    shape = text.translate(_NUMBER_SHAPE, b"+")
    if shape.find(_LONG_RUN) >= 0:
        return True
    at = shape.find(b"e000")
    while at >= 0:
        if at and shape[at - 1] == 0x30 and _BIG_EXPONENT.match(shape, at):
            return True
        at = shape.find(b"e000", at + 4)
    return False


# `\u003a` (or `\u003A`), a colon written as an escape: the one way a text hides a colon from a
# count; their common prefix is a cheaper, wider look (it also finds \u0030-\u003f)
_ESCAPED_COLON = b"\\u003"


def may_repeat_a_key(text: bytes, record: Any) -> bool:
    """False when no object in `text` names a key twice (pydantic-core, which read it as
    `record`, keeps the last value of a repeated key silently); True sends the line to the
    exact reader.

    Sound: each key of the text is followed by one colon, and its other colons sit inside
    strings, where JSON writes them as they are (no escape needed). Written back, the record
    holds the same strings and one colon for each key it kept, so it has as many colons as the
    text exactly when no key was dropped. A text holding `\\u003a` may hide colons: there the
    record's keys are counted one by one, exact whatever the strings hold (the text then has
    at least as many colons as keys). Writing back costs ~1-3 µs a line and the counting 2-8
    (benchmarks/vendor_shapes.py has the figures)."""
    count = text.count(b":")
    if _ESCAPED_COLON not in text:
        try:
            return count != to_json(record).count(b":")
        except ValueError:  # a lone surrogate the writer refuses: counted below
            pass
    return count != _keys_in(record)


def _keys_in(value: Any) -> int:
    """The keys of every object in `value`, at any depth."""
    count = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += len(node)
            stack.extend(child for child in node.values() if isinstance(child, (dict, list)))
        elif isinstance(node, list):
            stack.extend(child for child in node if isinstance(child, (dict, list)))
    return count

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
cdp refuses all of these with a message that says which, never changing a value silently.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

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


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int)


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


def check_text(value: Any, text: str | None = None) -> None:
    """Refuse strings that are not Unicode text (lone surrogates, from `\\ud800` escapes or
    from undecodable bytes in arguments); `text`, when given, lets the common case skip the walk."""
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # the text itself holds a surrogate: look for it below
        else:
            if _SURROGATE_ESCAPE.search(text) is None:
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
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def may_need_care(line: bytes) -> bool:
    """Import's fast path sends a line's own bytes: True when they may hold what `loads`
    refuses but pydantic-core's reader accepts (NaN, Infinity, an overflowing number), so the
    line takes the plain path, which decides exactly. Two finds cost ~0.2 µs a line; numbers
    are looked at only in lines with a long exponent or a long run of digits."""
    if line.find(b"NaN") >= 0 or line.find(b"Infinity") >= 0:
        return True
    digits = line.translate(_DIGITS_AS_ZERO)
    return digits.find(b"0e000") >= 0 or digits.find(b"0" * 300) >= 0


# digits -> "0", E -> e, + and - -> "0": "1e+400", "2E-400" and "3e400" all read "0e000"
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E+-", b"000000000e00")

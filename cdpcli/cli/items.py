"""Turning command-line text into JSON: `--traits JSON|@FILE|@-` and `-t KEY=VALUE|KEY:=JSON`.

`KEY=VALUE` sends a string, `KEY:=JSON` raw JSON (httpie's rule). A backslash escapes a
separator inside the key (`a\\=b=c` has key `a=b`).

JSON is read by jsontext.loads (no NaN/Infinity, no numbers that overflow a double, no lone
surrogates, at most jsontext.MAX_DEPTH levels), and argument text that is not Unicode (bytes
that are not UTF-8 arrive as lone surrogates) is refused: all usage errors naming the flag.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from cdpcli import jsontext
from cdpcli.errors import UsageError

_ITEM = re.compile(r"(?P<key>(?:\\.|[^\\=:]|:(?!=))+?)(?P<sep>:=|=)(?P<value>.*)", re.S)


def parse_item(raw: str, flag: str) -> tuple[str, Any]:
    """Split one KEY=VALUE (string) or KEY:=JSON (raw JSON) argument."""
    match = _ITEM.fullmatch(raw)
    if match is None:
        raise UsageError(
            f"{flag} {raw!r}: expected KEY=VALUE or KEY:=JSON",
            hint=f"e.g. {flag} plan=pro (a string) or {flag} price:=9.5 (JSON)",
        )
    key = re.sub(r"\\(.)", r"\1", match["key"])
    if match["sep"] == "=":
        value: Any = match["value"]
        _check_argument(raw, flag)
        return key, value
    _check_argument(match["key"], flag, raw)
    try:
        return key, jsontext.loads(match["value"])
    except jsontext.JSONTextError as exc:
        raise UsageError(
            f"{flag} {_quoted(raw)}: {_after_separator(exc)}",
            hint=f"use {_quoted(key)}=VALUE to send a string, or quote JSON strings: {key}:='\"text\"'",
        ) from None


def _check_argument(text: str, flag: str, shown: str | None = None) -> None:
    try:
        jsontext.check_text(text, text)
    except jsontext.JSONTextError:
        raise UsageError(
            f"{flag} {_quoted(shown or text)}: not valid text (bytes that are not UTF-8 in the argument)",
            hint="pass UTF-8 text; check the shell's locale or the file the value came from",
        ) from None


def check_argument(value: str | None, flag: str) -> None:
    """Refuse argument text that is not Unicode (a usage error naming the flag)."""
    if value is not None:
        _check_argument(value, flag)


def _quoted(text: str) -> str:
    """`text` quoted for a message; undecodable bytes shown as escapes."""
    return repr(text if len(text) <= 200 else text[:197] + "...")


def _after_separator(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("invalid JSON: "):
        return f"invalid JSON after ':=' ({text.removeprefix('invalid JSON: ')})"
    return f"the JSON after ':=' is refused: {text}"


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def text_items(raws: list[str] | None, flag: str, prefix: str) -> dict[str, tuple[str, str, str]]:
    """Each `KEY=VALUE` item (sent as text) by its field's path (`prefix` + KEY): (flag, KEY as
    typed, VALUE), for `typed_form_hint` when the models refuse text there."""
    items = {}
    for raw in raws or ():
        match = _ITEM.fullmatch(raw)
        if match is not None and match["sep"] == "=":
            items[prefix + re.sub(r"\\(.)", r"\1", match["key"])] = (flag, match["key"], match["value"])
    return items


def typed_form_hint(item: tuple[str, str, str], problem: str) -> str | None:
    """The `KEY:=JSON` form of a `KEY=VALUE` item the models refused (`problem`): `-t
    unsubscribed=true` is the text "true", `-t unsubscribed:=true` the boolean."""
    flag, key, value = item
    said = f"{flag} {key}={value} sends the text {value!r}"
    if "boolean" in problem:
        meant = {"true": "true", "false": "false", "1": "true", "0": "false"}.get(value.lower())
        if meant:
            return f"{said}; to send a boolean, write {flag} {key}:={meant}"
        return f"{said}; a boolean is written {flag} {key}:=true or {flag} {key}:=false"
    if ("number" in problem or "integer" in problem) and _NUMBER.fullmatch(value):
        return f"{said}; to send a number, write {flag} {key}:={value}"
    return None


def apply_items(target: dict[str, Any], raws: list[str] | None, flag: str, *, dotted: bool = False) -> dict[str, Any]:
    """Set each item on `target`; with `dotted`, `page.url=…` nests (used for -c context)."""
    for raw in raws or ():
        key, value = parse_item(raw, flag)
        if not dotted:
            target[key] = value
            continue
        *parents, leaf = key.split(".")
        node = target
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return target


def read_json_object(text: str | None, flag: str) -> dict[str, Any] | None:
    """Parse `--flag JSON`, `--flag @FILE` or `--flag @-` (stdin); it must be a JSON object."""
    if text is None:
        return None
    where = "inline"
    data: str | bytes = text
    if text.startswith("@"):
        name = text[1:]
        if name == "-":
            if sys.stdin.isatty():
                raise UsageError(
                    f"{flag} @-: stdin is a terminal", hint=f"pipe JSON in, e.g. echo '{{}}' | cdp … {flag} @-"
                )
            stream = getattr(sys.stdin, "buffer", None)
            data, where = (stream.read() if stream is not None else sys.stdin.read()), "stdin"
        else:
            try:
                with open(name, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                raise UsageError(f"{flag} @{name}: cannot read file ({exc.strerror})") from None
            where = name
    try:
        value = jsontext.loads(data)
    except jsontext.JSONTextError as exc:
        if where == "inline":
            shown = text if len(text) <= 80 else text[:77] + "..."
            head, tail = flag, f": {shown.strip()!r}"
        else:
            head, tail = f"{flag} {text}", ""
        if str(exc).startswith("not valid UTF-8"):
            hint = f"save {text[1:] if where != 'stdin' else 'the input'} as UTF-8, e.g. with iconv -f latin1 -t utf-8"
        else:
            hint = f'{flag} takes a JSON object such as \'{{"plan":"pro"}}\', or @FILE to read one from a file'
        raise UsageError(f"{head}: {exc}{tail}", hint=hint) from None
    if not isinstance(value, dict):
        shown = data if isinstance(data, str) else data.decode("utf-8", "replace")
        raise UsageError(
            f"{flag}: expected a JSON object, got {type(value).__name__}: {shown.strip()[:80]!r}",
            hint=f'{flag} takes an object such as \'{{"plan":"pro"}}\'',
        )
    return value

"""Turning command-line text into JSON: `--traits JSON|@FILE|@-` and `-t KEY=VALUE|KEY:=JSON`.

`KEY=VALUE` sends a string, `KEY:=JSON` raw JSON (httpie's rule). A backslash escapes a
separator inside the key (`a\\=b=c` has key `a=b`).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

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
        return key, match["value"]
    try:
        return key, json.loads(match["value"])
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{flag} {raw!r}: invalid JSON after ':=' ({exc.msg})",
            hint=f"use {key}=VALUE to send a string, or quote JSON strings: {key}:='\"text\"'",
        ) from None


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
    if text.startswith("@"):
        name = text[1:]
        if name == "-":
            if sys.stdin.isatty():
                raise UsageError(f"{flag} @-: stdin is a terminal", hint=f"pipe JSON in, e.g. echo '{{}}' | cdp … {flag} @-")
            text, where = sys.stdin.read(), "stdin"
        else:
            try:
                with open(name, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise UsageError(f"{flag} @{name}: cannot read file ({exc.strerror})") from None
            where = name
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 80 else text[:77] + "..."
        source = f" in {where}" if where != "inline" else ""
        raise UsageError(
            f"{flag}: invalid JSON{source} at line {exc.lineno} column {exc.colno} ({exc.msg}): {shown.strip()!r}",
            hint=f"{flag} takes a JSON object such as '{{\"plan\":\"pro\"}}', or @FILE to read one from a file",
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"{flag}: expected a JSON object, got {type(value).__name__}: {text.strip()[:80]!r}",
            hint=f"{flag} takes an object such as '{{\"plan\":\"pro\"}}'",
        )
    return value

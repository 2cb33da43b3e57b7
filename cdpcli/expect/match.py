"""Partial, deep matching of a call against what an expectation wants, and the closest call
when none matches."""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from typing import Any


def contains(actual: Any, expected: Any) -> bool:
    """Partial, deep match: every key of an expected object is in the actual one and matches;
    arrays match element by element (same length); other values are equal (true is not 1)."""
    return not differences(actual, expected, stop_at_first=True)


def differences(actual: Any, expected: Any, path: str = "", *, stop_at_first: bool = False) -> list[str]:
    """How `actual` differs from the partial `expected`, one line per difference."""
    out: list[str] = []
    where = path or "the call"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {short(actual)}"]
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                out.append(f"{sub}: missing (expected {short(value)})")
            else:
                out += differences(actual[key], value, sub, stop_at_first=stop_at_first)
            if out and stop_at_first:
                return out
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected an array, got {short(actual)}"]
        if len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}"]
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            out += differences(a, e, f"{path}[{index}]", stop_at_first=stop_at_first)
            if out and stop_at_first:
                return out
        return out
    if type(actual) is bool or type(expected) is bool:
        same = type(actual) is type(expected) and actual == expected
    else:
        same = actual == expected
    return [] if same else [f"{where}: expected {short(expected)}, got {short(actual)}"]


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_match(match: dict[str, Any]) -> str:
    return short(match, 100)


def closest_call(calls: list[dict[str, Any]], expected: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The closest call to `expected`: of its type, then with the most similar event name (a
    misspelt one is a letter away), then with the fewest differences, the latest among equals."""
    best: tuple[int, float, int, int] | None = None
    found: tuple[dict[str, Any] | None, list[str]] = (None, [])
    wanted = expected.get("event")
    for index, call in enumerate(calls):
        diff = differences(call, expected)
        other_type = int("type" in expected and call.get("type") != expected["type"])
        similarity = 0.0
        if isinstance(wanted, str) and isinstance(call.get("event"), str):
            similarity = SequenceMatcher(None, wanted.lower(), call["event"].lower()).ratio()
        score = (other_type, -similarity, len(diff), -index)
        if best is None or score < best:
            best, found = score, (call, diff)
    return found

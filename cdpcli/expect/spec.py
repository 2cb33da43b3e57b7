"""An expectations file read: its text in, a Spec out (`parse`, `load`), or ExpectFileError
naming FILE:LINE (exit 2). The format is in the package docstring."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdpcli.errors import UsageError
from cdpcli.expect.lines import json_lines, toml_lines
from cdpcli.expect.match import describe_match

TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
DEFAULT_TIMEOUT = 5.0


class ExpectFileError(UsageError):
    """The expectations file cannot be read or says something cdp expect does not take (exit 2)."""


@dataclass
class Expect:
    name: str
    match: dict[str, Any]
    count: int | None = None
    min: int | None = None
    max: int | None = None
    absent: bool = False


@dataclass
class Sequence:
    name: str
    user: str
    events: list[str]


@dataclass
class EventPlan:
    required: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    additional: bool = True


@dataclass
class Spec:
    timeout: float | None = None
    no_rejects: bool = False
    expects: list[Expect] = field(default_factory=list)
    sequences: list[Sequence] = field(default_factory=list)
    plan: dict[str, EventPlan] | None = None
    allow_unplanned: bool = False


def load(path: str | Path) -> Spec:
    """An expectations file read and parsed: JSON for a .json name, else TOML. ExpectFileError
    (exit 2) names the file when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ExpectFileError(f"cannot read {path}: {reason}", hint="give the path of a TOML or JSON file") from None
    return parse(text, str(path), json_format=True if path.suffix.lower() == ".json" else None)


def parse(text: str, where: str, *, json_format: bool | None = None) -> Spec:
    """A Spec from an expectations file's text (`where` names it in errors: FILE or FILE:LINE);
    JSON when `json_format`, or None and the text starts with `{`; else TOML."""
    if json_format is None:
        json_format = text.lstrip().startswith("{")
    if json_format:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExpectFileError(f"{where}:{exc.lineno}: invalid JSON: {exc.msg}", hint=_HINT) from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib  # lazy: start-up
        else:  # Python 3.10: the same module, as a package
            import tomli as tomllib  # lazy: start-up
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
            line = f":{found.group(1)}" if found else ""
            raise ExpectFileError(f"{where}{line}: invalid TOML: {message}", hint=_HINT) from None
    locate = _Locator(text, where, json_format)
    if locate.repeats:  # TOML refuses a repeated key itself; json.loads keeps the last silently
        path, repeat_line = locate.repeats[0]
        raise ExpectFileError(
            f"{where}:{repeat_line}: duplicate key {json.dumps(path[-1], ensure_ascii=False)}"
            + (f" in {_name(path[:-1])}" if path[:-1] else "")
            + " (a JSON object names each key once; the first value would be lost)",
            hint="keep one of them"
            + (": to expect calls of another match too, add an entry to expect" if path[-1] == "match" else ""),
        )
    return _spec(data, locate)


_HINT = "see `cdp expect --help` for the format: [[expect]] match = {...}, [[sequence]], [plan.events.NAME]"


class _Locator:
    """Where in the file a key is written, as FILE:LINE (expect.lines); FILE alone when the
    line cannot be found."""

    def __init__(self, text: str, where: str, json_format: bool) -> None:
        self.where = where
        self.repeats: list[tuple[tuple[str | int, ...], int]] = []  # JSON keys an object names twice
        self.lines = json_lines(text, self.repeats) if json_format else toml_lines(text)

    def at(self, *path: str | int) -> str:
        """The line of `path`'s key, else of the nearest key or table that holds it."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return f"{self.where}:{line}"
        return self.where

    def fail(self, at: str, message: str) -> ExpectFileError:
        return ExpectFileError(f"{at}: {message}", hint=_HINT)


def _spec(data: Any, locate: _Locator) -> Spec:
    if not isinstance(data, dict):
        raise locate.fail(locate.where, "the file must hold a table (TOML) or an object (JSON)")
    _only(data, ("timeout", "no_rejects", "expect", "sequence", "plan"), (), locate, "the file")
    spec = Spec()
    if "timeout" in data:
        timeout = data["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout <= 3600:
            raise locate.fail(locate.at("timeout"), f"timeout must be a number of seconds (0-3600), not {timeout!r}")
        spec.timeout = float(timeout)
    if "no_rejects" in data:
        spec.no_rejects = _bool(data["no_rejects"], ("no_rejects",), locate)
    for index, entry in enumerate(_list(data.get("expect", []), "expect", locate)):
        spec.expects.append(_expect(entry, index, locate))
    for index, entry in enumerate(_list(data.get("sequence", []), "sequence", locate)):
        spec.sequences.append(_sequence(entry, index, locate))
    if "plan" in data:
        spec.plan, spec.allow_unplanned = _plan(data["plan"], locate)
    if not (spec.expects or spec.sequences or spec.plan is not None or spec.no_rejects):
        raise locate.fail(locate.where, "nothing to check: add [[expect]], [[sequence]], [plan] or no_rejects")
    return spec


def _name(path: tuple[str | int, ...]) -> str:
    """("expect", 0, "count") -> "expect[0].count"; a plan's event names quoted."""
    text = ""
    for position, part in enumerate(path):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = repr(part) if position == 2 and path[:2] == ("plan", "events") else part
            text += f".{shown}" if text else shown
    return text


def _only(
    table: dict[str, Any], names: tuple[str, ...], path: tuple[str | int, ...], locate: _Locator, what: str
) -> None:
    unknown = [name for name in table if name not in names]
    if unknown:
        raise locate.fail(
            locate.at(*path, unknown[0]), f"{what} has an unknown key {unknown[0]!r}; it takes {', '.join(names)}"
        )


def _bool(value: Any, path: tuple[str | int, ...], locate: _Locator) -> bool:
    if not isinstance(value, bool):
        raise locate.fail(locate.at(*path), f"{_name(path)} must be true or false, not {value!r}")
    return value


def _list(value: Any, name: str, locate: _Locator) -> list[Any]:
    if not isinstance(value, list):
        raise locate.fail(locate.at(name), f"{name} must be a list of tables ([[{name}]])")
    return value


def _count(value: Any, path: tuple[str | int, ...], locate: _Locator) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise locate.fail(locate.at(*path), f"{_name(path)} must be a whole number, 0 or more, not {value!r}")
    return value


def _expect(entry: Any, index: int, locate: _Locator) -> Expect:
    """Problems with one key name its line; problems with the entry as a whole, the entry's."""
    at = locate.at("expect", index)
    if not isinstance(entry, dict):
        raise locate.fail(at, f"expect[{index}] must be a table")
    _only(entry, ("name", "match", "count", "min", "max", "absent"), ("expect", index), locate, f"expect[{index}]")
    match = entry.get("match")
    if not isinstance(match, dict) or not match:
        where = locate.at("expect", index, "match") if "match" in entry else at
        raise locate.fail(where, f"expect[{index}] needs match = {{ … }}, the fields a call must have")
    expect = Expect(str(entry.get("name") or describe_match(match)), match)
    for name in ("count", "min", "max"):
        if name in entry:
            setattr(expect, name, _count(entry[name], ("expect", index, name), locate))
    if "absent" in entry:
        expect.absent = _bool(entry["absent"], ("expect", index, "absent"), locate)
    if expect.count is not None and (expect.min is not None or expect.max is not None):
        raise locate.fail(at, f"expect[{index}] takes count, or min and/or max, not both")
    if expect.absent and (expect.count is not None or expect.min is not None or expect.max is not None):
        raise locate.fail(at, f"expect[{index}]: absent = true takes no count, min or max")
    if expect.min is not None and expect.max is not None and expect.min > expect.max:
        raise locate.fail(at, f"expect[{index}]: min ({expect.min}) is over max ({expect.max})")
    return expect


def _sequence(entry: Any, index: int, locate: _Locator) -> Sequence:
    at = locate.at("sequence", index)
    if not isinstance(entry, dict):
        raise locate.fail(at, f"sequence[{index}] must be a table")
    _only(entry, ("name", "user", "events"), ("sequence", index), locate, f"sequence[{index}]")
    user, events = entry.get("user"), entry.get("events")
    if not isinstance(user, (str, int)) or isinstance(user, bool) or user == "":
        raise locate.fail(
            locate.at("sequence", index, "user"), f'sequence[{index}] needs user = "…" (a userId or anonymousId)'
        )
    if not isinstance(events, list) or len(events) < 2 or not all(isinstance(e, str) for e in events):
        raise locate.fail(
            locate.at("sequence", index, "events"),
            f'sequence[{index}] needs events = ["…", "…"], two event names or more',
        )
    name = str(entry.get("name") or f"{' → '.join(events)} for user {user}")
    return Sequence(name, str(user), events)


def _plan(value: Any, locate: _Locator) -> tuple[dict[str, EventPlan], bool]:
    if not isinstance(value, dict):
        raise locate.fail(locate.at("plan"), "plan must be a table")
    _only(value, ("events", "allow_unplanned"), ("plan",), locate, "plan")
    allow = _bool(value.get("allow_unplanned", False), ("plan", "allow_unplanned"), locate)
    events = value.get("events", {})
    if not isinstance(events, dict):
        raise locate.fail(locate.at("plan", "events"), "plan.events must be a table of events")
    return {event: _event_plan(event, entry, locate) for event, entry in events.items()}, allow


def _event_plan(event: str, entry: Any, locate: _Locator) -> EventPlan:
    path = ("plan", "events", event)
    if not isinstance(entry, dict):
        raise locate.fail(locate.at(*path), f"{_name(path)} must be a table")
    _only(entry, ("required", "properties", "additional"), path, locate, _name(path))
    required = entry.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise locate.fail(locate.at(*path, "required"), f"{_name(path)}.required must be a list of property names")
    properties = entry.get("properties", {})
    if not isinstance(properties, dict):
        raise locate.fail(locate.at(*path, "properties"), f"{_name(path)}.properties must be a table of name = type")
    for name, kind in properties.items():
        if kind not in TYPES:
            raise locate.fail(
                locate.at(*path, "properties", name),
                f"{_name(path)}.properties.{name}: unknown type {kind!r}; types: {', '.join(TYPES)}",
            )
    additional = _bool(entry.get("additional", True), (*path, "additional"), locate)
    return EventPlan(list(required), dict(properties), additional)

"""Expectations about the calls a receiver got, checked: the core of `cdp expect` and of the
pytest fixture's `expect()`. Pure: a file's text in, a Spec out (`parse`); a Spec and the calls
and rejects in, Results out (`check`). `settle` re-checks as calls arrive, until every check
holds, none can change any more, or the time is up; how calls are fetched and awaited is the
caller's (HTTP for `cdp expect`, the store itself for the fixture).

An expectations file (TOML or JSON):

    timeout = 5              # seconds to wait for calls that have not arrived yet
    no_rejects = true        # no request refused, no call dropped
    [[expect]]               # calls that match (partial, deep), count = / min = / max = / absent =
    name = "sign-up is tracked"
    match = { type = "track", event = "Signed Up", properties = { plan = "pro" } }
    count = 1
    [[sequence]]             # these events, in this order, for the same user
    user = "42"
    events = ["Signed Up", "Trial Started"]
    [plan.events."Signed Up"]   # a tracking plan for track calls
    required = ["plan"]
    properties = { plan = "string", seats = "integer" }
    additional = false

The plan reports RudderStack's four kinds of violation: Unplanned-Event, Required-Missing,
Datatype-Mismatch, Additional-Properties (`plan.allow_unplanned = true` lets other events be).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdpcli.errors import UsageError

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


@dataclass
class Result:
    """One check: whether it holds, what was expected, and when it does not, the closest call
    with its differences. `final`: no call arriving later can change it."""

    kind: str  # expect, absent, no_rejects, sequence, plan; warning (a kept call's, never a failure)
    name: str
    ok: bool
    expected: str
    problem: str = ""
    closest: dict[str, Any] | None = None
    differences: list[str] = field(default_factory=list)
    final: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "ok": self.ok,
            "expected": self.expected,
            "problem": self.problem or None,
            "closest": self.closest,
            "differences": self.differences,
        }


# -- reading a file --


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
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
            line = f":{found.group(1)}" if found else ""
            raise ExpectFileError(f"{where}{line}: invalid TOML: {message}", hint=_HINT) from None
    return _spec(data, _Locator(text, where, json_format))


_HINT = "see `cdp expect --help` for the format: [[expect]] match = {...}, [[sequence]], [plan.events.NAME]"


class _Locator:
    """Where in the file an entry is, as FILE:LINE when the line can be found (TOML tables)."""

    def __init__(self, text: str, where: str, json_format: bool) -> None:
        self.lines = text.splitlines()
        self.where = where
        self.json_format = json_format

    def of(self, header: str, index: int = 0) -> str:
        if not self.json_format:
            seen = -1
            for number, line in enumerate(self.lines, 1):
                if line.strip().replace(" ", "").startswith(header):
                    seen += 1
                    if seen == index:
                        return f"{self.where}:{number}"
        return self.where

    def fail(self, at: str, message: str) -> ExpectFileError:
        return ExpectFileError(f"{at}: {message}", hint=_HINT)


def _spec(data: Any, locate: _Locator) -> Spec:
    if not isinstance(data, dict):
        raise locate.fail(locate.where, "the file must hold a table (TOML) or an object (JSON)")
    _only(data, ("timeout", "no_rejects", "expect", "sequence", "plan"), locate.where, locate, "the file")
    spec = Spec()
    if "timeout" in data:
        timeout = data["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout <= 3600:
            raise locate.fail(locate.of("timeout"), f"timeout must be a number of seconds (0-3600), not {timeout!r}")
        spec.timeout = float(timeout)
    if "no_rejects" in data:
        spec.no_rejects = _bool(data["no_rejects"], "no_rejects", locate.of("no_rejects"), locate)
    for index, entry in enumerate(_list(data.get("expect", []), "expect", locate)):
        spec.expects.append(_expect(entry, index, locate))
    for index, entry in enumerate(_list(data.get("sequence", []), "sequence", locate)):
        spec.sequences.append(_sequence(entry, index, locate))
    if "plan" in data:
        spec.plan, spec.allow_unplanned = _plan(data["plan"], locate)
    if not (spec.expects or spec.sequences or spec.plan is not None or spec.no_rejects):
        raise locate.fail(locate.where, "nothing to check: add [[expect]], [[sequence]], [plan] or no_rejects")
    return spec


def _only(table: dict[str, Any], names: tuple[str, ...], at: str, locate: _Locator, what: str) -> None:
    unknown = [name for name in table if name not in names]
    if unknown:
        raise locate.fail(at, f"{what} has an unknown key {unknown[0]!r}; it takes {', '.join(names)}")


def _bool(value: Any, name: str, at: str, locate: _Locator) -> bool:
    if not isinstance(value, bool):
        raise locate.fail(at, f"{name} must be true or false, not {value!r}")
    return value


def _list(value: Any, name: str, locate: _Locator) -> list[Any]:
    if not isinstance(value, list):
        raise locate.fail(locate.of(f"[[{name}]]"), f"{name} must be a list of tables ([[{name}]])")
    return value


def _count(value: Any, name: str, at: str, locate: _Locator) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise locate.fail(at, f"{name} must be a whole number, 0 or more, not {value!r}")
    return value


def _expect(entry: Any, index: int, locate: _Locator) -> Expect:
    at = locate.of("[[expect]]", index)
    if not isinstance(entry, dict):
        raise locate.fail(at, f"expect[{index}] must be a table")
    _only(entry, ("name", "match", "count", "min", "max", "absent"), at, locate, f"expect[{index}]")
    match = entry.get("match")
    if not isinstance(match, dict) or not match:
        raise locate.fail(at, f"expect[{index}] needs match = {{ … }}, the fields a call must have")
    expect = Expect(str(entry.get("name") or _describe(match)), match)
    for name in ("count", "min", "max"):
        if name in entry:
            setattr(expect, name, _count(entry[name], f"expect[{index}].{name}", at, locate))
    if "absent" in entry:
        expect.absent = _bool(entry["absent"], f"expect[{index}].absent", at, locate)
    if expect.count is not None and (expect.min is not None or expect.max is not None):
        raise locate.fail(at, f"expect[{index}] takes count, or min and/or max, not both")
    if expect.absent and (expect.count is not None or expect.min is not None or expect.max is not None):
        raise locate.fail(at, f"expect[{index}]: absent = true takes no count, min or max")
    if expect.min is not None and expect.max is not None and expect.min > expect.max:
        raise locate.fail(at, f"expect[{index}]: min ({expect.min}) is over max ({expect.max})")
    return expect


def _sequence(entry: Any, index: int, locate: _Locator) -> Sequence:
    at = locate.of("[[sequence]]", index)
    if not isinstance(entry, dict):
        raise locate.fail(at, f"sequence[{index}] must be a table")
    _only(entry, ("name", "user", "events"), at, locate, f"sequence[{index}]")
    user, events = entry.get("user"), entry.get("events")
    if not isinstance(user, (str, int)) or isinstance(user, bool) or user == "":
        raise locate.fail(at, f'sequence[{index}] needs user = "…" (a userId or anonymousId)')
    if not isinstance(events, list) or len(events) < 2 or not all(isinstance(e, str) for e in events):
        raise locate.fail(at, f'sequence[{index}] needs events = ["…", "…"], two event names or more')
    name = str(entry.get("name") or f"{' → '.join(events)} for user {user}")
    return Sequence(name, str(user), events)


def _plan(value: Any, locate: _Locator) -> tuple[dict[str, EventPlan], bool]:
    at = locate.of("[plan")
    if not isinstance(value, dict):
        raise locate.fail(at, "plan must be a table")
    _only(value, ("events", "allow_unplanned"), at, locate, "plan")
    allow = _bool(value.get("allow_unplanned", False), "plan.allow_unplanned", at, locate)
    events = value.get("events", {})
    if not isinstance(events, dict):
        raise locate.fail(at, "plan.events must be a table of events")
    plan = {}
    for event, entry in events.items():
        where = locate.of(f'[plan.events."{event}"]') if not locate.json_format else at
        if where == locate.where:
            where = locate.of(f"[plan.events.{event}]")
        if not isinstance(entry, dict):
            raise locate.fail(where, f"plan.events.{event!r} must be a table")
        _only(entry, ("required", "properties", "additional"), where, locate, f"plan.events.{event!r}")
        required = entry.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise locate.fail(where, f"plan.events.{event!r}.required must be a list of property names")
        properties = entry.get("properties", {})
        if not isinstance(properties, dict):
            raise locate.fail(where, f"plan.events.{event!r}.properties must be a table of name = type")
        for name, kind in properties.items():
            if kind not in TYPES:
                raise locate.fail(
                    where, f"plan.events.{event!r}.properties.{name}: unknown type {kind!r}; types: {', '.join(TYPES)}"
                )
        additional = _bool(entry.get("additional", True), f"plan.events.{event!r}.additional", where, locate)
        plan[event] = EventPlan(list(required), dict(properties), additional)
    return plan, allow


# -- matching --


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
            return [f"{where}: expected an object, got {_short(actual)}"]
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                out.append(f"{sub}: missing (expected {_short(value)})")
            else:
                out += differences(actual[key], value, sub, stop_at_first=stop_at_first)
            if out and stop_at_first:
                return out
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected an array, got {_short(actual)}"]
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
    return [] if same else [f"{where}: expected {_short(expected)}, got {_short(actual)}"]


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(match: dict[str, Any]) -> str:
    return _short(match, 100)


def _closest(calls: list[dict[str, Any]], expected: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The closest call to `expected`: of its type, then with the most similar event name (a
    misspelt one is a letter away), then with the fewest differences, the latest among equals."""
    from difflib import SequenceMatcher

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


# -- checking --


def check(spec: Spec, calls: list[dict[str, Any]], rejects: list[dict[str, Any]]) -> list[Result]:
    """Every check of `spec` against the calls (oldest first) and rejects, in the file's order."""
    results = [_check_expect(expect, calls) for expect in spec.expects]
    results += [_check_sequence(sequence, calls) for sequence in spec.sequences]
    if spec.plan is not None:
        results += _check_plan(spec.plan, spec.allow_unplanned, calls)
    if spec.no_rejects:
        results.append(_check_no_rejects(rejects))
    return results + _size_warnings(calls)


def _size_warnings(calls: list[dict[str, Any]]) -> list[Result]:
    """A warning (never a failure) for each call the receiver kept with warnings (`_warnings`:
    over 32,000 bytes, where cdp's own sender and the Go SDK stop)."""
    return [
        Result("warning", f"call #{call.get('_seq', '?')}", True, "", "; ".join(call["_warnings"]), call)
        for call in calls
        if call.get("_warnings")
    ]


def _check_expect(expect: Expect, calls: list[dict[str, Any]]) -> Result:
    matched = [call for call in calls if contains(call, expect.match)]
    n = len(matched)
    shown = _describe(expect.match)
    if expect.absent:
        ok = n == 0
        return Result(
            "absent",
            expect.name,
            ok,
            f"no call matching {shown}",
            "" if ok else f"{n} call{'s' if n != 1 else ''} matched",
            None if ok else matched[0],
        )
    if expect.count is not None:
        low, high, wanted = expect.count, expect.count, f"exactly {expect.count}"
    else:
        low, high = expect.min if expect.min is not None else 1, expect.max
        wanted = f"at least {low}" if high is None else f"between {low} and {high}" if low else f"at most {high}"
    ok = n >= low and (high is None or n <= high)
    result = Result("expect", expect.name, ok, f"{wanted} call{'' if wanted.endswith(' 1') else 's'} matching {shown}")
    if ok:
        return result
    result.problem = f"{n} matched"
    if high is not None and n > high:
        result.closest = matched[high]  # the first one too many
    else:
        result.final = False  # more calls may still come
        taken = {id(call) for call in matched}
        result.closest, result.differences = _closest([c for c in calls if id(c) not in taken], expect.match)
    return result


def _user_of(call: dict[str, Any]) -> list[str]:
    return [str(call[key]) for key in ("userId", "anonymousId") if call.get(key) not in (None, "")]


def _check_sequence(sequence: Sequence, calls: list[dict[str, Any]]) -> Result:
    mine = [call for call in calls if sequence.user in _user_of(call) and call.get("event") is not None]
    expected = f"events {' → '.join(sequence.events)} in this order for user {sequence.user}"
    position = 0
    for call in mine:
        if position < len(sequence.events) and call.get("event") == sequence.events[position]:
            position += 1
    if position == len(sequence.events):
        return Result("sequence", sequence.name, True, expected)
    got = [str(call.get("event")) for call in mine]
    missing = sequence.events[position]
    after = f" after {sequence.events[position - 1]!r}" if position else ""
    return Result(
        "sequence",
        sequence.name,
        False,
        expected,
        f"no {missing!r}{after}; user {sequence.user} has: {', '.join(got) or 'no events'}",
        mine[-1] if mine else None,
        final=False,
    )


def _check_plan(plan: dict[str, EventPlan], allow_unplanned: bool, calls: list[dict[str, Any]]) -> list[Result]:
    tracks = [call for call in calls if call.get("type") == "track"]
    results = []
    for event, rules in plan.items():
        violations: list[str] = []
        first_bad: dict[str, Any] | None = None
        for call in (c for c in tracks if c.get("event") == event):
            properties = call.get("properties") or {}
            found = [f"Required-Missing: {name}" for name in rules.required if name not in properties]
            found += [
                f"Datatype-Mismatch: {name} must be {kind}, got {_short(properties[name])}"
                for name, kind in rules.properties.items()
                if name in properties and not TYPES[kind](properties[name])
            ]
            if not rules.additional:
                found += [
                    f"Additional-Properties: {name} is not in the plan"
                    for name in properties
                    if name not in rules.properties and name not in rules.required
                ]
            if found and first_bad is None:
                first_bad = call
            violations += [item for item in found if item not in violations]
        expected = f"track {event!r} calls as planned"
        results.append(
            Result("plan", f"plan: {event}", not violations, expected, "; ".join(violations), first_bad, violations)
        )
    if not allow_unplanned:
        unplanned = sorted({str(c.get("event")) for c in tracks if c.get("event") not in plan})
        first = next((c for c in tracks if c.get("event") not in plan), None)
        results.append(
            Result(
                "plan",
                "plan: no unplanned events",
                not unplanned,
                "only the plan's events",
                ("Unplanned-Event: " + ", ".join(unplanned)) if unplanned else "",
                first,
            )
        )
    return results


def _check_no_rejects(rejects: list[dict[str, Any]]) -> Result:
    ok = not rejects
    problem = ""
    if not ok:
        first = rejects[0]
        problem = (
            f"{len(rejects)} rejected; the first: {first.get('path')} {first.get('status')}: "
            + "; ".join(first.get("errors") or [])[:300]
        )
    return Result(
        "no_rejects", "no rejected requests or calls", ok, "no rejects", problem, rejects[0] if rejects else None
    )


def settle(
    spec: Spec,
    snapshot: Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    wait_for_more: Callable[[int, float], None],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[Result]:
    """Check, and while a failing check may still come to hold (calls yet to arrive), wait for
    the next call (`wait_for_more(last_seq, seconds)`, returning when one came or the time is
    up) and check again, until `timeout` s have passed. Absence and maxima are judged on the
    calls there when the rest holds (or the time is up)."""
    deadline = clock() + timeout
    while True:
        calls, rejects = snapshot()
        results = check(spec, calls, rejects)
        left = deadline - clock()
        if all(r.ok or r.final for r in results) or left <= 0:
            return results
        last = max((int(call.get("_seq", 0)) for call in calls), default=0)
        wait_for_more(last, left)


def summary_line(results: list[Result]) -> str:
    results = [r for r in results if r.kind != "warning"]
    failed = sum(not r.ok for r in results)
    held = len(results) - failed
    return f"{held} of {len(results)} check{'s' if len(results) != 1 else ''} held" + (
        f"; {failed} failed." if failed else "."
    )


def report(results: list[Result]) -> str:
    """The results in words: one line a check, and for a failure what was expected, what was
    found, the closest call and its differences."""
    lines = []
    for result in results:
        if result.kind == "warning":
            lines.append(f"WARN {result.name}: {result.problem}")
            continue
        if result.ok:
            lines.append(f"PASS {result.name}")
            continue
        lines.append(f"FAIL {result.name}")
        lines.append(f"  expected: {result.expected}")
        if result.problem:
            lines.append(f"  found: {result.problem}")
        if result.closest is not None:
            seq = result.closest.get("_seq")
            label = "closest call" if result.kind == "expect" and result.differences else "offending call"
            shown = {k: v for k, v in result.closest.items() if k != "_seq"}
            lines.append(f"  {label}{f' (#{seq})' if seq else ''}: {_short(shown, 300)}")
        if result.differences and result.kind != "plan":
            lines += [f"    - {difference}" for difference in result.differences]
    lines.append(summary_line(results))
    return "\n".join(lines)


def junit(results: list[Result], suite: str = "cdp expect") -> str:
    """The results as JUnit XML (one testcase a check, a <failure> for each that failed)."""
    from xml.etree import ElementTree as ET

    failures = sum(not r.ok for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)), failures=str(failures))
    element = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures), errors="0", skipped="0"
    )
    for result in results:
        case = ET.SubElement(element, "testcase", name=result.name, classname=f"cdp.expect.{result.kind}")
        if not result.ok:
            failure = ET.SubElement(case, "failure", message=result.problem or result.expected, type=result.kind)
            failure.text = report([result]).rsplit("\n", 1)[0]
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# -- against a running receiver (HTTP, through cdpcli.transport) --


def receiver_base(url: str) -> str:
    """A receiver's base URL from what a user gives: http://host:port, …/v1, or …/_cdp."""
    base = url.rstrip("/")
    for tail in ("/v1", "/_cdp"):
        if base.endswith(tail):
            base = base[: -len(tail)]
    return base


def check_against(spec: Spec, url: str, *, api_key: str | None = None, timeout: float | None = None) -> list[Result]:
    """`spec` checked against the receiver at `url` (`cdp serve`), waiting up to `timeout` s
    (the file's, else DEFAULT_TIMEOUT) for calls yet to come. DeliveryError (exit 6) when the
    receiver cannot be reached; CdpError when it is not a cdp serve."""
    from cdpcli.redaction import add_secret
    from cdpcli.transport import get_json

    if api_key:
        add_secret(api_key)  # a server echoing it must not carry it into cdp's messages
    base = receiver_base(url)
    wait = timeout if timeout is not None else spec.timeout if spec.timeout is not None else DEFAULT_TIMEOUT

    def fetch(route: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "10000", **({"cursor": cursor} if cursor else {})}
            status, body = get_json(f"{base}/_cdp/{route}", params=params, api_key=api_key)
            _answer_ok(status, body, base)
            items += body[key]
            cursor = body.get("next")
            if not cursor:
                return items

    def snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return fetch("calls", "calls"), (fetch("rejects", "rejects") if spec.no_rejects else [])

    def wait_for_more(last: int, seconds: float) -> None:
        params = {"since": str(last), "count": "1", "timeout": f"{min(seconds, 300):.3f}"}
        status, body = get_json(f"{base}/_cdp/wait", params=params, api_key=api_key, timeout=seconds + 10)
        if status != 408:
            _answer_ok(status, body, base)

    return settle(spec, snapshot, wait_for_more, wait)


def _answer_ok(status: int, body: Any, base: str) -> None:
    from cdpcli.errors import AUTH_STATUSES, CdpError, DeliveryError, ExitCode

    if status == 200 and isinstance(body, dict):
        return
    if status in AUTH_STATUSES:
        raise DeliveryError(
            f"the receiver at {base} refused the key (HTTP {status})",
            hint="it was started with --api-key: give cdp expect the same key (--api-key)",
            status=status,
            exit_code=ExitCode.AUTH,
        )
    raise CdpError(
        f"{base} answered HTTP {status} to /_cdp/: is it a cdp serve?",
        hint="point --against at the URL that cdp serve prints when it starts",
    )

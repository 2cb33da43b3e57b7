"""A Spec checked against the calls and rejects a receiver got (`check`), and re-checked as
calls arrive until every check holds, none can change, or the time is up (`settle`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdpcli.expect.match import closest_call, contains, describe_match, short
from cdpcli.expect.spec import TYPES, EventPlan, Expect, Sequence, Spec


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
    shown = describe_match(expect.match)
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
    high: int | None
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
        result.closest, result.differences = closest_call([c for c in calls if id(c) not in taken], expect.match)
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
                f"Datatype-Mismatch: {name} must be {kind}, got {short(properties[name])}"
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

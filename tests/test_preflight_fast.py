"""--preflight counts the fast path's calls in batches (cdpcli.importing.preflight.FastCalls:
the strict models' dict of each call and its input line) and the plain path's calls one by one
(the call as sent, parsed). A differential property pins the two together: the same generated
file gives the same report whichever way its calls are counted, batch boundaries, the exact
userId count's limit and the event limit falling anywhere."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from cdpcli.importing import ImportOptions, make_sources
from cdpcli.importing import preflight as preflight_module
from cdpcli.importing.preflight import SCOPES, _keeping_names, naming_validator, preflight
from cdpcli.importing.prepare import InvalidLine, Preparer

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)


class PlainOnly(Preparer):
    """The same preparer, each call then counted as the plain path's are: the reference."""

    def prepare(self, line_no: int, line: bytes) -> bytes:
        ready = super().prepare(line_no, line)
        self.fast_call = None
        return ready


def canonical(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# Timestamps as the calls of real exports give them (docs/scale-out.md names these shapes):
# canonical, without a fraction, with an offset, Unix seconds (Mixpanel), milliseconds (not
# accepted: an invalid line), none; recent, in the future, older than 30 days.
AGES = st.sampled_from([timedelta(hours=-30), timedelta(hours=1), timedelta(hours=80), timedelta(days=45)])
STAMPS = st.one_of(
    st.none(),
    AGES.map(lambda age: canonical(NOW - age)),
    AGES.map(lambda age: (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")),
    AGES.map(lambda age: (NOW - age).strftime("%Y-%m-%dT%H:%M:%S+00:00")),
    AGES.map(lambda age: int((NOW - age).timestamp())),
    AGES.map(lambda age: int((NOW - age).timestamp()) * 1000),
)
# Trait and property names of Segment's spec (identify's traits, track's properties: the
# documented shapes of docs/reference in the SPEC), spelled the ways exports drift apart
NAMES = st.sampled_from(["first_name", "firstName", "First Name", "plan", "total", "Total", "currency"])
VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.booleans())
FREE = st.dictionaries(NAMES, VALUES, max_size=4)
EMAILS = st.sampled_from(["", "a@example.com"])
EVENTS = st.sampled_from(["Order Completed", "Signed Up", "User Deleted", "User Suppressed", "User Unsuppressed"])


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["identify", "track", "page", "group", "screen", "alias"]))
    call: dict[str, Any] = {"type": kind}
    user = draw(st.sampled_from([*(f"u{i}" for i in range(8)), 42, None]))
    if user is not None:
        call["userId"] = user
    if user is None or kind == "alias" or draw(st.booleans()):
        call["anonymousId"] = draw(st.sampled_from(["a1", "a2"]))
    if kind == "alias":
        call["userId"], call["previousId"] = user or "u1", "a1"
    stamp = draw(STAMPS)
    if stamp is not None:
        call["timestamp"] = stamp
    if kind == "track":
        call["event"] = draw(EVENTS)
    if kind == "group":
        call["groupId"] = "g1"
    scope = {"identify": "traits", "group": "traits", "alias": None}.get(kind, "properties")
    if scope is not None and draw(st.booleans()):
        call[scope] = draw(FREE)
        if scope == "traits" and draw(st.booleans()):
            call["traits"]["email"] = draw(EMAILS)
    if draw(st.integers(0, 4)) == 0:  # keys another type has: not this call's event or names
        stray = "event" if kind != "track" else "traits"
        call[stray] = "Stray" if stray == "event" else draw(FREE)
    if scope == "traits" and draw(st.integers(0, 4)) == 0:
        call["properties"] = draw(FREE)
    if draw(st.booleans()):
        email = draw(EMAILS)
        call["context"] = draw(st.sampled_from([{}, {"ip": "203.0.113.9"}, {"traits": {"email": email}}]))
    return call


@st.composite
def lines(draw: st.DrawFn) -> str:
    """Mostly calls (the fast path's), some with another system's secret (the plain path's),
    a few invalid lines."""
    pick = draw(st.integers(0, 9))
    if pick == 0:
        return draw(st.sampled_from(["{oops", "[1]", ""]))
    call = draw(calls())
    return json.dumps({**call, "writeKey": "w"} if pick == 1 else call)


LINES = st.lists(lines(), min_size=1, max_size=40)


def report_of(path: Path, plain: bool) -> dict[str, Any]:
    sources, _ = make_sources([str(path)], None, None)
    return preflight(sources, ImportOptions(preparer=PlainOnly if plain else None), now=NOW)


@settings(max_examples=100, deadline=None)
@given(LINES, st.integers(1, 6), st.integers(1, 6), st.integers(1, 4))
def test_fast_path_calls_counted_in_batches_as_one_by_one(lines, batch, users, events):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.ndjson"
        path.write_text("".join(line + "\n" for line in lines))
        with (
            mock.patch.object(preflight_module, "FAST_BATCH", batch),
            mock.patch.object(preflight_module, "EXACT_LIMIT", users),
            mock.patch.object(preflight_module, "EVENT_LIMIT", events),
        ):
            assert report_of(path, plain=False) == report_of(path, plain=True)


def test_a_timestamp_only_nested_is_not_the_calls_own(tmp_path):
    """A call whose only "timestamp" is a property's is sent with the time of import: missing."""
    call = {"type": "track", "userId": "u", "event": "E", "properties": {"timestamp": canonical(NOW)}}
    (tmp_path / "a.ndjson").write_text(json.dumps(call) + "\n")
    stamps = report_of(tmp_path / "a.ndjson", plain=False)["timestamps"]
    assert (stamps["missing"], stamps["iso"], stamps["recent"], stamps["future"]) == (1, 0, 0, 0)


def test_batches_are_counted_when_the_input_ends(tmp_path):
    """More calls than one batch, and a last partial batch: every call counted once."""
    lines = [
        {
            "type": "identify",
            "userId": f"u{i}",
            "timestamp": canonical(NOW - timedelta(hours=1)),
            "traits": {"plan": "p"},
        }
        for i in range(preflight_module.FAST_BATCH * 2 + 7)
    ]
    (tmp_path / "a.ndjson").write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = report_of(tmp_path / "a.ndjson", plain=False)
    assert report["users"]["distinct"] == len(lines) and report["timestamps"]["recent"] == len(lines)
    assert report["timestamps"]["iso"] == len(lines)


# -- the fast path's validators with every name kept --------------------------------------------

# free-form values of every JSON kind, and names the typed traits and properties check
# (identify's email and createdAt, page's title and url, group's object_type_id) or not
FREE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=4,
)
FREE_NAMES = st.sampled_from(["email", "createdAt", "title", "url", "object_type_id", "plan", "First Name", "é"])


@st.composite
def free_form_calls(draw: st.DrawFn) -> dict[str, Any]:
    call = draw(calls())
    scope = SCOPES.get(call["type"])
    if scope is not None and draw(st.booleans()):
        call[scope] = draw(st.dictionaries(FREE_NAMES, FREE_VALUES, max_size=4))
    return call


def outcome(preparer: Preparer, line_no: int, line: bytes) -> tuple[Any, ...]:
    preparer.fast_call = None
    try:
        ready = preparer.prepare(line_no, line)
    except InvalidLine as exc:
        return ("invalid", str(exc), exc.reason)
    return ("ready", ready, preparer.fast_call is None)


@settings(max_examples=150, deadline=None)
@given(st.lists(free_form_calls(), min_size=1, max_size=8), st.sampled_from([None, "track", "identify"]))
def test_keeping_names_changes_nothing_the_preparer_does(calls_made, default_type):
    """The same lines accepted (by the same path), the same calls made, the same errors; the
    validated call holds every name of its traits or properties."""
    plain, naming = Preparer(default_type), Preparer(default_type)
    assert _keeping_names(naming)
    for preparer in (plain, naming):
        preparer.for_source(SimpleNamespace(id_seed=b"seed"))  # type: ignore[arg-type]
    naming.now, naming.timestamp_field = plain.now, plain.timestamp_field
    for line_no, call in enumerate(calls_made, 1):
        if default_type == call["type"]:
            del call["type"]  # the type given for every line
        line = json.dumps(call, ensure_ascii=False).encode()
        made = outcome(plain, line_no, line)
        assert made == outcome(naming, line_no, line)
        scope = SCOPES.get(call.get("type", default_type))
        if made[0] == "ready" and naming.fast_call is not None and scope in naming.fast_call:
            assert sorted(naming.fast_call[scope]) == sorted(call[scope])


def test_every_kind_of_call_keeps_its_names():
    for kind in ("any", "identify", "group", "track", "page", "screen", "alias"):
        assert naming_validator(kind) is not None, kind


def test_names_are_parsed_when_the_fast_path_drops_them(tmp_path, monkeypatch):
    """A preparer whose fast path does not take the validators that keep names (it changed):
    found by the probe, and the lines are parsed for their names instead."""
    monkeypatch.setattr(preflight_module, "_swap_validators", lambda preparer: True)
    assert not _keeping_names(Preparer(None))
    calls_made = [
        {"type": "identify", "userId": f"u{i}", "traits": {name: "x", "plan": "pro"}}
        for i, name in enumerate(["first_name", "firstName", "first_name"])
    ]
    (tmp_path / "a.ndjson").write_text("".join(json.dumps(call) + "\n" for call in calls_made))
    drift = report_of(tmp_path / "a.ndjson", plain=False)["name_drift"]
    assert drift["traits"] == {"firstname": {"first_name": 2, "firstName": 1}}

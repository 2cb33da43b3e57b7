"""`--from segment|rudderstack` on the fast path: the archive's envelope keys (top level only) are
dropped without Python's json, and the call that goes out is the one the plain way sends: the
line parsed strictly, the envelope dropped, the rest validated and written by the plain path.
Envelope records follow tests/test_import_inputs.py's segment_call (Segment's "full call"
records: projectId, receivedAt, version, _metadata, writeKey around the call) and RudderStack's
server-added keys (rudderId, request_ip, channel)."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpcli.importing.prepare import InvalidLine, Preparer
from cdpcli.importing.select import ENVELOPE_KEYS, Selector
from cdpcli.importing.sources import Source
from cdpcli.jsontext import loads as strict_loads
from cdpcli.wire import dumps
from tests.test_fast_audit import json_text
from tests.test_fast_duplicates import _dump
from tests.test_import_properties import JSON_VALUES, calls, typed


def _selector(archive: str) -> tuple[Selector, Preparer]:
    options = SimpleNamespace(
        default_type=None,
        archive=archive,
        types=None,
        events=None,
        exclude_events=None,
        since=None,
        until=None,
        sample=None,
        limit=None,
        recent=None,
        now=None,
        shard=None,
    )
    preparer = Preparer(None)
    preparer.for_source(Source("in.ndjson", "in.ndjson", b"in.ndjson"))
    return Selector(options, preparer, lambda: None), preparer


def _plain_way(preparer: Preparer, archive: str, line_no: int, line: bytes) -> bytes:
    """What cdp sends for an archive's line, the slow way: strict parse, envelope dropped,
    the plain path's validation and writing."""
    call = strict_loads(line)
    dropped = [call.pop(key) for key in ENVELOPE_KEYS[archive] if key in call]
    return preparer._slow(line_no, dumps(call).encode() if dropped else line)


ENVELOPE_VALUES: dict[str, Any] = {
    "writeKey": st.just("wk_0123456789abcdef"),
    "projectId": st.text(min_size=1, max_size=8),
    "receivedAt": st.sampled_from(["2024-03-01T10:00:00.200Z", "2024-03-01T10:00:00Z"]),
    "version": st.integers(1, 2) | st.just("2"),
    "_metadata": st.fixed_dictionaries(
        {"bundled": st.lists(st.sampled_from(["Segment.io", "Mixpanel"])), "unbundled": st.just([])}
    )
    | JSON_VALUES,
    "rudderId": st.uuids().map(str),
    "request_ip": st.just("10.0.0.1"),
    "channel": st.sampled_from(["web", "server", "mobile"]),
}


@st.composite
def archived_calls(draw, archive: str) -> dict[str, Any]:
    call = draw(calls())
    for key in ENVELOPE_KEYS[archive]:
        if draw(st.booleans()):
            call[key] = draw(ENVELOPE_VALUES[key])
    if draw(st.booleans()):  # the call's own keys of the same names, inside it: kept
        call.setdefault("context", {})["library"] = {"name": "analytics.js", "version": "4.1.0"}
        call.setdefault("properties", {})["version"] = draw(JSON_VALUES)
    order = draw(st.permutations(list(call)))
    return {key: call[key] for key in order}


@pytest.mark.parametrize("archive", ["segment", "rudderstack"])
@settings(max_examples=200, deadline=None)
@given(data=st.data(), ascii_only=st.booleans(), spaced=st.booleans(), line_no=st.integers(1, 10**6))
def test_an_archived_line_goes_out_as_the_plain_way_sends_it(archive, data, ascii_only, spaced, line_no):
    call = data.draw(archived_calls(archive))
    line = json.dumps(call, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":")).encode()
    selector, preparer = _selector(archive)
    try:
        sent = selector.prepare(line_no, line)
    except InvalidLine as exc:
        with pytest.raises(InvalidLine) as again:
            _plain_way(preparer, archive, line_no, line)
        assert str(again.value) == str(exc)
        return
    assert typed(strict_loads(sent)) == typed(strict_loads(_plain_way(preparer, archive, line_no, line)))
    top = strict_loads(sent)
    assert not set(ENVELOPE_KEYS[archive]) & top.keys()


@pytest.mark.parametrize("archive", ["segment", "rudderstack"])
@settings(max_examples=60, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32), escapes=st.sampled_from([0.0, 0.0, 0.05, 1.0]))
def test_an_archived_line_as_any_writer_writes_it_goes_out_as_the_plain_way_sends_it(archive, data, seed, escapes):
    """Whitespace around every token, envelope keys and others escaped (`"write\\u004bey"`)."""
    line = json_text(data.draw(archived_calls(archive)), random.Random(seed), escapes).encode()
    selector, preparer = _selector(archive)
    preparer.look_ahead(line)  # as the packer does for each chunk
    try:
        sent = typed(strict_loads(selector.prepare(3, line)))
    except InvalidLine as exc:
        with pytest.raises(InvalidLine) as again:
            _plain_way(preparer, archive, 3, line)
        assert str(again.value) == str(exc)
        return
    assert sent == typed(strict_loads(_plain_way(preparer, archive, 3, line)))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), position=st.integers(0, 50), again=JSON_VALUES)
def test_a_duplicate_key_in_an_archived_line_is_never_sent(data, position, again):
    """Nor is it hidden by dropping the envelope (a duplicate envelope key included)."""
    call = data.draw(archived_calls("segment"))
    objects = [call] + [value for value in call.values() if isinstance(value, dict) and value]
    target = data.draw(st.sampled_from(objects))
    key = data.draw(st.sampled_from(sorted(target)))
    line = _dump(call, target, (position, key, again), ascii_only=False, spaced=False).encode()
    selector, _ = _selector("segment")
    with pytest.raises(InvalidLine) as refused:
        selector.prepare(1, line)
    assert refused.value.reason == "duplicate key"


def test_a_segment_line_takes_the_fast_path():
    """So that the property above compares two ways, not one with itself."""
    selector, preparer = _selector("segment")
    preparer._slow = lambda *args: (_ for _ in ()).throw(AssertionError("took the plain path"))  # type: ignore[method-assign]
    line = json.dumps(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "user-1",
            "messageId": "ajs-1",
            "timestamp": "2024-03-01T10:00:01.000Z",
            "properties": {"total": 1, "version": 2},
            "context": {"library": {"name": "analytics.js", "version": "4.1.0"}},
            "projectId": "proj_123",
            "version": 2,
            "writeKey": "wk_secret",
            "_metadata": {"bundled": ["Segment.io"], "unbundled": []},
        }
    ).encode()
    sent = strict_loads(selector.prepare(1, line))
    assert sent["properties"]["version"] == 2 and sent["context"]["library"]["version"] == "4.1.0"
    assert not {"projectId", "version", "writeKey", "_metadata"} & sent.keys()

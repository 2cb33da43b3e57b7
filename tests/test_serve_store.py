"""`cdp serve`'s store on its own: what was received, stamped and written out (cdpcli.serve.store)."""

from __future__ import annotations

import io
import json

from cdpcli.serve import Body, Store

NOW = "2026-11-30T12:00:00.000Z"


def test_recorded_calls_are_stamped_kept_counted_and_written_as_ndjson():
    out = io.StringIO()
    store = Store(out, clock=lambda: NOW)
    calls = [{"type": "track", "userId": "1", "event": "E"}, {"type": "track", "userId": "2", "event": "E"}]
    encoded = [b'{"type":"track","userId":"1","event":"E"}', None]  # the size check's JSON, when made
    assert store.record(calls, encoded, body_bytes=120)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"type": "track", "userId": "1", "event": "E", "receivedAt": NOW},
        {"type": "track", "userId": "2", "event": "E", "receivedAt": NOW},
    ]
    assert (store.accepted, store.accepted_bytes, store.calls) == (2, 120, calls)


def test_without_keeping_calls_and_requests_are_only_counted():
    store = Store(keep=False, clock=lambda: NOW)
    assert store.record([{"type": "track", "userId": "1", "event": "E"}], [None], body_bytes=40)
    store.add_request("/v1/track", {}, Body(2, b"{}"), 200)
    assert (store.accepted, store.calls, store.requests) == (1, [], [])


def test_output_that_fails_accepts_nothing_from_then_on():
    out = io.StringIO()
    out.close()
    store = Store(out, clock=lambda: NOW)
    assert not store.record([{"type": "track", "userId": "1", "event": "E"}], [None], body_bytes=40)
    assert isinstance(store.broken, ValueError) and store.accepted == 0 and store.calls == []
    assert store.broken_reason().startswith("writing its output failed (")


def test_requests_are_kept_with_their_body_parsed_whatever_it_was():
    store = Store()
    store.add_request("/v1/track", {"content-type": "application/json"}, Body(14, b'{"userId":"1"}'), 200)
    store.add_request("/v1/track", {}, Body(5, b"{nope"), 400)
    assert [(r.body, r.status) for r in store.requests] == [({"userId": "1"}, 200), (None, 400)]

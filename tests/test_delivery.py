"""The senders (importing/delivery.py) driven directly, through the transport seam: an
httpx.MockTransport answers each /batch request as the test says, so the split on 400 and 413,
the wait on a 429's Retry-After and the stop on 401 are proven in milliseconds. The loopback
tests (test_import.py, test_api.py) keep proving the same over real HTTP.

The answers follow the Pipelines API's OpenAPI document (api-wire-facts.md §4): a 400's body is
`{"meta":{"errors":[…]}}`; 401 and 429 document no body; Retry-After is Segment's header
(delta-seconds; transport.retry_after_seconds reads fractions too).
"""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdpcli.errors import ExitCode
from cdpcli.importing.batches import REF_SHIFT, Batch, BatchRequest
from cdpcli.importing.checkpoint import Settlement
from cdpcli.importing.delivery import Delivery
from cdpcli.importing.options import ImportOptions
from cdpcli.importing.settle import Settle
from cdpcli.importing.source import Source
from cdpcli.importing.stats import Stats
from cdpcli.target import Target

API_KEY = "delivery-test-key-31337"


def track(n: int, event: str = "Item Purchased") -> bytes:
    """A track call as the Pipelines API's /batch takes it (type, userId, event, properties,
    messageId), as the packer hands it over: compact JSON bytes."""
    call = {"type": "track", "userId": str(n), "event": event, "properties": {"n": n}, "messageId": f"m-{n}"}
    return json.dumps(call, separators=(",", ":")).encode()


class Senders:
    """One Delivery over a MockTransport, with the port's effects recorded: what was rejected
    (line, reason), why it stopped, and every request's calls."""

    def __init__(self, answer, *, rate: str | None = None, retries: int = 2, concurrency: int = 1) -> None:
        self.answer = answer
        self.requests: list[list[dict]] = []  # each request's calls
        self.statuses: list[int] = []  # and its answer
        self.rejected: list[tuple[int, str]] = []
        self.errors: list = []
        self.stats = Stats()
        self.settlement = Settlement([Source.of_items("lines", [])])
        self.stop = threading.Event()
        self.port = Settle(self.stats, self.settlement, self.stop, self._stop_with, self._reject)
        target = Target(api_key=API_KEY, endpoint="http://cdp.test/v1", retries=retries)
        options = ImportOptions.build(concurrency=concurrency, rate=rate)
        # backoff_base: a retry without Retry-After waits at most a millisecond here
        self.delivery = Delivery(
            target, options, self.port, transport=httpx.MockTransport(self._handle), backoff_base=0.001
        )

    def _handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/batch" and request.headers["Authorization"].startswith("Basic ")
        calls = json.loads(request.content)["batch"]
        self.requests.append(calls)
        response = self.answer(calls, request)
        self.statuses.append(response.status_code)
        return response

    def _stop_with(self, error) -> None:
        self.errors.append(error)
        self.stop.set()

    def _reject(self, source: int, line_no: int, error: str, line: bytes, shown: str | None = None) -> None:
        self.rejected.append((line_no, error))

    def delivered(self) -> list[str]:
        """The messageIds of the calls in requests answered 2xx, sorted."""
        answered = zip(self.requests, self.statuses, strict=True)
        return sorted(call["messageId"] for calls, status in answered if status < 300 for call in calls)

    def send(self, *batches: list[bytes]) -> float:
        """Queue the batches (lines numbered from 1 across them), let the senders finish;
        the seconds it took."""
        started = time.monotonic()
        queued: queue.Queue = queue.Queue()
        line_no = 0
        for seq, calls in enumerate(batches, start=1):
            batch = Batch(seq=seq)
            for call in calls:
                line_no += 1
                batch.add(call, 0 << REF_SHIFT | line_no)
            self.settlement.opened(batch)
            queued.put(batch)
        threads = self.delivery.start(queued)
        self.delivery.finish(threads, queued, threading.Event())
        return time.monotonic() - started


def test_a_400_splits_the_batch_until_the_refused_call_is_alone():
    def answer(calls, request):
        if any(call["event"] == "Bad Event" for call in calls):
            return httpx.Response(400, json={"meta": {"errors": ["event Bad Event is not allowed"]}})
        return httpx.Response(200, json={})

    run = Senders(answer)
    calls = [track(n, "Bad Event" if n == 6 else "Item Purchased") for n in range(1, 9)]
    seconds = run.send(calls)
    # halves, depth first: 1-4 delivered, 5-8 refused -> 5-6 refused -> 5 delivered, 6 refused
    # alone (to the rejects), then 7-8 delivered
    assert [len(r) for r in run.requests] == [8, 4, 4, 2, 1, 1, 2]
    assert run.rejected == [(6, "HTTP 400: event Bad Event is not allowed")]
    assert (run.stats.sent, run.stats.failed, run.stats.batches, run.stats.requests) == (7, 1, 3, 7)
    assert run.delivered() == [f"m-{n}" for n in (1, 2, 3, 4, 5, 7, 8)]
    assert run.settlement.open == {} and run.errors == []  # settled: the checkpoint may pass it
    assert run.delivery.sender._client.is_closed  # its connections went with the senders
    assert seconds < 2


def test_a_413_splits_until_each_request_fits():
    limit = 400  # bytes of body the endpoint takes; one call is ~110

    def answer(calls, request):
        return httpx.Response(413 if len(request.content) > limit else 200)

    run = Senders(answer)
    seconds = run.send([track(n) for n in range(1, 9)])
    assert run.delivered() == [f"m-{n}" for n in range(1, 9)]
    assert run.rejected == [] and run.stats.sent == 8 and run.stats.failed == 0
    assert [len(r) for r in run.requests][:3] == [8, 4, 2]  # halved while too large
    assert run.settlement.open == {} and seconds < 2


def test_a_call_refused_alone_with_413_is_rejected_not_split_for_ever():
    run = Senders(lambda calls, request: httpx.Response(413))
    run.send([track(1), track(2)])
    assert [len(r) for r in run.requests] == [2, 1, 1]
    assert [line for line, _ in run.rejected] == [1, 2] and all("HTTP 413" in why for _, why in run.rejected)
    assert run.stats.failed == 2 and run.settlement.open == {}


def test_a_429_is_retried_after_its_retry_after():
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.05"}), httpx.Response(200, json={})])
    run = Senders(lambda calls, request: next(answers))
    seconds = run.send([track(1), track(2)])
    assert [len(r) for r in run.requests] == [2, 2]
    assert (run.stats.sent, run.stats.requests, run.stats.retries) == (2, 2, 1)
    assert 0.05 <= seconds < 2  # the wait the API asked for, not the default backoff


def test_rate_auto_answers_a_429_itself_slower_then_the_same_batch():
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.05"}), httpx.Response(200, json={})])
    run = Senders(lambda calls, request: next(answers), rate="auto")
    seconds = run.send([track(1), track(2)])
    assert [len(r) for r in run.requests] == [2, 2] and run.stats.sent == 2
    assert run.stats.retries == 0  # the transport handed the 429 back: not one of its retries
    assert run.delivery.adaptive is not None and run.delivery.adaptive.throttled == 1
    assert run.delivery.rate.rate < 1000  # cut for every sender
    assert 0.05 <= seconds < 2


def test_a_401_stops_everything_and_leaves_the_batches_open():
    run = Senders(lambda calls, request: httpx.Response(401))
    seconds = run.send([track(1), track(2)], [track(3)])
    assert [len(r) for r in run.requests] == [2]  # not retried; the next batch is not sent
    [error] = run.errors
    assert error.exit_code == ExitCode.AUTH and "rejected the key (HTTP 401)" in error.message
    assert API_KEY not in error.message + (error.hint or "")
    # nothing rejected, nothing settled: a re-run with the right key sends both batches
    assert run.rejected == [] and run.stats.failed == 0 and sorted(run.settlement.open) == [1, 2]
    assert seconds < 2


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_that_persists_fails_the_batch_into_the_rejects(status):
    run = Senders(lambda calls, request: httpx.Response(status), retries=2)
    run.send([track(1), track(2)])
    assert len(run.requests) == 3  # the first try and 2 retries
    assert [line for line, _ in run.rejected] == [1, 2]
    assert all(why.startswith(f"HTTP {status} after 3 attempts") for _, why in run.rejected)
    assert run.stats.failed == 2 and run.errors == [] and run.settlement.open == {}


@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=40), st.booleans())
def test_a_batch_body_is_its_calls_as_sent_and_leaves_them_unchanged(numbers, stamped):
    """The /batch body is joined in one copy (head and tail on the first and last call): for
    any number of calls it is `{"batch":[…],"sentAt":"…"}` with the calls in order, and the
    batch's own calls stay as packed (a retry or a split half joins them again)."""
    calls = [track(n) for n in numbers]
    batch = Batch()
    for line_no, call in enumerate(calls, start=1):
        batch.add(call, line_no)
    request = BatchRequest("http://cdp.test/v1/batch", {}, batch, gzip=False)
    sent_at = "2026-11-27T13:31:42.123Z" if stamped else None
    body = request.body_bytes(sent_at)
    assert body.startswith(b'{"batch":[' + b",".join(calls) + b'],"sentAt":"')
    parsed = json.loads(body)
    assert parsed["batch"] == [json.loads(call) for call in calls]
    assert parsed["sentAt"] == sent_at or (sent_at is None and parsed["sentAt"].endswith("Z"))
    assert batch.calls == calls  # not changed in place
    assert request.body_bytes(sent_at) == body or sent_at is None

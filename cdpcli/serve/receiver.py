"""The receiver as a server: `Receiver` puts the judge, the store and the ASGI application
together on a `Listener` (protocol.py: uvicorn on a socket bound at once, served from a thread of
its own or from this one, stopped from any thread), and runs the garbage collector on a schedule
when it owns the process. uvicorn is imported when a receiver is made, never on the one-liner path.
"""

from __future__ import annotations

import gc
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from cdpcli.redaction import mask_write_keys
from cdpcli.serve.asgi import Application
from cdpcli.serve.control import Control
from cdpcli.serve.hosts import HostCheck
from cdpcli.serve.judge import (
    Body,
    Judge,
    Verdict,
    call_kind,
    cannot_record,
    errors,
    injected_failure,
    not_found,
    status_for,
)
from cdpcli.serve.limits import MAX_CONNECTIONS, MAX_REJECT_BYTES, READ_TIMEOUT
from cdpcli.serve.store import MAX_CALLS, CallList, Filters, Received, Store

if TYPE_CHECKING:
    from cdpcli.serve.protocol import Listener


class Receiver:
    """A local Data Pipelines-compatible receiver: the API's paths, auth, strict-mode validation
    and size limits; answers 200 `{}` and records every accepted call (`store`), and every
    refused request (`rejects()`).

    Faults, checked in this order before the verdict: `fail_first` (the first K requests get
    503), `rate_limit` (requests per second, a token bucket holding one second's worth: the
    excess gets 429 with Retry-After), `fail_rate` (a share answered 500/503/429, drawn from
    `seed`); after it, `status_for` ({event: code}: a request carrying such a call gets the code).

    `strict`: None judges each request by its X-Strict-Mode header, True or False every request
    as if it said so. `allow_hosts`: names it answers to besides its own and loopback ones (a
    guard against DNS rebinding, hosts.py). `max_reject_bytes`: what the refused requests kept
    may cost.

    Queries, from any thread: `calls` (a list, and called with filters a query: `calls(event=
    "Signed Up")`), `wait(count, timeout, **filters)`, `rejects()`, `summary()`, `reset()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        out: TextIO | None = None,
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        keep: bool = True,
        log: Callable[[str], None] | None = None,
        collect_every: float | None = None,
        seed: int | None = None,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_calls: int = MAX_CALLS,
        keep_requests: bool | None = None,
        rate_limit: float | None = None,
        fail_first: int = 0,
        status_for: dict[str, int] | None = None,
        strict: bool | None = None,
        allow_hosts: Iterable[str] = (),
        max_reject_bytes: int = MAX_REJECT_BYTES,
    ) -> None:
        from cdpcli.serve.protocol import Listener  # lazy: start-up (uvicorn, only when serving)

        self.judge = Judge(api_key, strict=strict)
        self.judge.warm()
        self.store = Store(
            out, keep=keep, max_calls=max_calls, keep_requests=keep_requests, max_reject_bytes=max_reject_bytes
        )
        self.fail_rate = fail_rate
        self.fail_first = fail_first
        self.status_for = dict(status_for or {})
        self._bucket = TokenBucket(rate_limit) if rate_limit else None
        self._requests_seen = 0  # requests to the API's paths, for --fail-first
        self.latency = latency_ms / 1000
        self.log = log or (lambda text: None)
        # seeded, --fail-rate's faults repeat run to run for a client sending one request at a
        # time (concurrent requests draw in the order they arrive)
        self._random = random.Random(seed)
        self.application = Application(
            self.handle,
            log=self.log,
            read_timeout=read_timeout,
            after_post=self._answered,
            hosts=HostCheck(host, allow_hosts),
        )
        # bound and listening now, so that the port is known and a busy one is an OSError here
        self.listener: Listener = Listener(
            self.application, host, port, read_timeout=read_timeout, max_connections=max_connections, log=self.log
        )
        # None leaves the process's garbage collector alone (tests, a receiver inside another
        # program); `cdp serve` owns its process and collects every SERVE_COLLECT_EVERY s
        self._collection = CollectionSchedule(collect_every)
        self.application.control = Control(self.store, self.judge, stopping=self.listener.stopping_event)

    @property
    def port(self) -> int:
        return self.listener.address[1]

    @property
    def host(self) -> str:
        """The address listened on, as it goes in a URL ([::1] for IPv6)."""
        address = self.listener.address[0]
        return f"[{address}]" if ":" in address else address

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def connections(self) -> int:
        """Connections open right now."""
        return self.listener.connections

    @property
    def calls(self) -> CallList:
        """The calls kept, oldest first; called with filters, the matching ones:
        `receiver.calls(type="track", event="Signed Up", userId="42", since=…)`."""
        return self.store.calls

    def wait(
        self, count: int = 1, timeout: float = 5.0, *, since: str | int | None = None, **filters: str
    ) -> list[dict[str, Any]]:
        """Wait (never polling) until `count` calls that the filters take are kept, and return
        them (each with `_seq`); TimeoutError after `timeout` s, with `.calls` what matched."""
        ok, calls = self.store.wait(Filters.of(filters, since), count, timeout)
        if not ok:
            shown = ", ".join(f"{name}={value!r}" for name, value in filters.items()) or "any call"
            error = TimeoutError(f"{len(calls)} of {count} calls ({shown}) arrived within {timeout:g} s")
            error.calls = calls  # type: ignore[attr-defined]
            raise error
        return calls

    def rejects(self) -> list[dict[str, Any]]:
        """The refused requests (and calls dropped without strict mode), each with `errors` and `body`."""
        return list(self.store.rejects)

    def summary(self) -> dict[str, Any]:
        """{"accepted", "rejected", "evicted", "kept", "by_type", "by_event"}."""
        return self.store.summary()

    def reset(self) -> None:
        """Forget every call, reject and count."""
        self.store.reset()

    @property
    def requests(self) -> list[Received]:
        return self.store.requests

    @property
    def accepted(self) -> int:
        return self.store.accepted

    @property
    def accepted_bytes(self) -> int:
        return self.store.accepted_bytes

    def start(self) -> Receiver:
        """Serve from a thread of its own (its own event loop; no signal handlers)."""
        self._collection.take_over()
        self.listener.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until stop(), Ctrl-C (from the main thread), or output that fails."""
        self._collection.take_over()
        try:
            self.listener.serve_forever()
        finally:
            self._collection.give_back()

    def stop(self) -> None:
        self.listener.stop()
        self._collection.give_back()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled (True), or for `timeout` s (False)."""
        return self.application.wait_idle(timeout)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request handling (on the event loop) --

    async def handle(self, path: str, headers: dict[str, str], body: Body) -> Verdict:
        """The verdict on a POST, its request kept, after --latency."""
        if self.store.broken is not None:
            verdict = cannot_record(self.store.broken_reason())
        elif (kind := call_kind(path)) is None:
            verdict = not_found(path, headers.get("host"))
        else:
            verdict = await self.answer(kind, path, headers, body)
        refused = verdict.status >= 400 or bool(verdict.dropped)
        if refused or self.store.keep_requests:
            # kept with any writeKey masked (Customer.io's browser and mobile SDKs send the key so);
            # only then: the look costs ~0.6 ms for a 600 KB body, 3% of what judging it does
            shown = body.text if body.text is None else mask_write_keys(body.text)
            self.store.add_request(path, headers, Body(body.raw_size, shown, body.problem), verdict.status)
        if refused:
            messages = _messages(verdict.answer) if verdict.status >= 400 else verdict.dropped
            self.store.add_reject(path, verdict.status, messages, shown)
        if self.latency:
            await self.listener.pause(self.latency)
        return verdict

    async def answer(self, kind: str, path: str, headers: dict[str, str], body: Body) -> Verdict:
        """The answer to a request on one of the API's paths: a fault (--fail-rate), or the
        judge's verdict with its calls recorded. A subclass may answer otherwise (and may wait
        first, with `listener.pause`): tests/fakes.py scripts answers that way."""
        self._requests_seen += 1
        if self._requests_seen <= self.fail_first:
            return Verdict(
                503, errors(f"injected failure (--fail-first {self.fail_first}: request {self._requests_seen})")
            )
        if self._bucket is not None and (wait := self._bucket.take()) > 0:
            return Verdict(
                429,
                errors(f"rate limited (--rate-limit {self._bucket.rate:g} requests per second)"),
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if self.fail_rate and self._random.random() < self.fail_rate:
            return injected_failure(self._random.choice((500, 503, 429)))
        verdict = self.judge.verdict(kind, headers, body)
        if self.status_for and verdict.calls:
            fault = status_for(kind, verdict.calls, self.status_for)
            if fault is not None:
                return fault
        for note in verdict.notes:
            self.log(f"POST {path}: {note}")
        if verdict.calls and not self.store.record(
            verdict.calls, verdict.encoded, len(body.text or b""), verdict.warnings
        ):
            return cannot_record(self.store.broken_reason())
        return verdict

    def _answered(self) -> None:
        if self.store.broken is not None:  # this request's answer is out: now stop
            self.listener.stop_listening()


def _messages(answer: Any) -> list[str]:
    """The error messages of an answer's body (`{"meta": {"errors": [...]}}`)."""
    try:
        return [str(message) for message in answer["meta"]["errors"]]
    except (TypeError, KeyError):
        return []


class TokenBucket:
    """`rate` requests a second, in bursts of up to `rate` (at least 1): `take()` is 0 when a
    request may go, else the seconds until it could."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> float:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class CollectionSchedule:
    """Automatic garbage collection off while serving; a full collection every `every` s
    (None: the collector is left alone).

    A 500 KB body parses into ~10,000 containers, and CPython's collector runs every 700
    new ones, promoting the bodies in flight to older generations that it then rescans: with
    16 concurrent batch requests it took a third of the receiver's CPU, and more the more
    clients sent at once. Parsed JSON holds no reference cycles (after repeated 100,000-call
    imports gc.collect() finds nothing), so a collection on a schedule loses nothing.
    """

    def __init__(self, every: float | None) -> None:
        self.every = every
        self._stopped = threading.Event()
        self._collector: threading.Thread | None = None

    def take_over(self) -> None:
        if self.every is None or self._collector is not None:
            return
        gc.disable()
        self._collector = threading.Thread(target=self._collect, name="cdp-serve-gc", daemon=True)
        self._collector.start()

    def _collect(self) -> None:
        assert self.every is not None
        while not self._stopped.wait(self.every):
            gc.collect()

    def give_back(self) -> None:
        if self._collector is not None and not self._stopped.is_set():
            self._stopped.set()
            gc.enable()

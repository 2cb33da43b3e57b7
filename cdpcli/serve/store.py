"""What a receiver was sent: the calls it accepted (kept in memory, or only counted), the
requests as they came, the requests and calls it refused (`rejects`), and the NDJSON output
every accepted call is appended to.

Each accepted call gets a sequence number (1, 2, …; never reused, not even after a reset) and
`receivedAt`; at most `max_calls` are kept, the oldest evicted first (and counted). Queries
(`query`, `wait`, `summary`) read a snapshot; `subscribe` tells a listener (the server-side
wait, the event stream) of each change, on the thread that made it.

One lock guards all of it: the event loop records, the test or command that owns the receiver
reads, and a write of one request's calls is whole lines that never interleave with another's.
Once the output cannot be written (`broken`), nothing more is accepted: the receiver answers 503
and stops, so that no call is ever answered 200 without being recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic_core import to_json

from cdpcli.serve.limits import MAX_REJECT_BYTES
from cdpcli.serve.rejects import Counts, RejectLog, as_given, reject_record
from cdpcli.wire import CALL_TYPES, now_timestamp, parse_timestamp

# the fields a query may filter calls on (exact match, as strings)
# `user` matches the userId or the anonymousId (the live view's filter: one person, either id)
FILTERS = ("type", "event", "userId", "anonymousId", "messageId", "user")
MAX_CALLS = 100_000  # calls kept by default (--max-calls)


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw_size: int  # the body's bytes on the wire (gzip-compressed when it was)
    status: int
    method: str = "POST"
    gzip: bool = False
    key: str | None = None  # the API key it carried (Basic user name or Bearer token), as received


class CallList(list[dict[str, Any]]):
    """The calls kept, oldest first: a list, and called with filters it answers a query
    (`receiver.calls(event="Signed Up")`: the matching calls, like `Store.query`)."""

    store: Store

    def __call__(self, *, since: str | int | None = None, **filters: str) -> list[dict[str, Any]]:
        return [call for _, call in self.store.select(Filters.of(filters, since))]


@dataclass(frozen=True)
class Filters:
    """Which calls a query takes: exact values of FILTERS, and `since` (after a sequence
    number, or received at or after a timestamp)."""

    fields: tuple[tuple[str, str], ...] = ()
    after_seq: int = 0
    from_time: str | None = None

    @classmethod
    def of(cls, values: dict[str, Any], since: str | int | None = None) -> Filters:
        """Filters from keyword values; ValueError names an unknown filter or a bad `since`."""
        unknown = sorted(set(values) - set(FILTERS))
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r}; filters are {', '.join(FILTERS)}, since")
        fields = tuple((name, str(value)) for name, value in values.items() if value is not None)
        if "type" in values and values["type"] is not None and str(values["type"]) not in CALL_TYPES:
            raise ValueError(f"type must be one of {', '.join(CALL_TYPES)}, not {values['type']!r}")
        after_seq, from_time = 0, None
        if since is not None and since != "":
            text = str(since).strip()
            if text.isdigit():
                after_seq = int(text)
            else:
                try:
                    from_time = parse_timestamp(text)
                except ValueError:
                    raise ValueError(
                        f"since must be a sequence number or a timestamp (ISO 8601), not {text!r}"
                    ) from None
        return cls(fields, after_seq, from_time)

    def match(self, seq: int, call: dict[str, Any]) -> bool:
        if seq <= self.after_seq:
            return False
        if self.from_time is not None and call.get("receivedAt", "") < self.from_time:
            return False
        return all(
            value in (_text(call.get("userId")), _text(call.get("anonymousId")))
            if name == "user"
            else _text(call.get(name)) == value
            for name, value in self.fields
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class Store:
    """What one receiver was sent (see the module's docstring); `clock` stamps `receivedAt`."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        keep: bool = True,
        max_calls: int = MAX_CALLS,
        keep_requests: bool | None = None,
        clock: Callable[[], str] = now_timestamp,
        max_reject_bytes: int = MAX_REJECT_BYTES,
    ) -> None:
        self.out = out
        self.keep = keep and max_calls > 0  # keep calls in memory; off: only counted
        self.keep_requests = keep if keep_requests is None else keep_requests  # every request (tests)
        self.max_calls = max_calls
        self.calls = CallList()
        self.calls.store = self
        self.first_seq = 1  # the sequence number of calls[0]
        self.next_seq = 1
        self.evicted = 0  # calls dropped to stay within max_calls
        self.accepted = 0  # calls accepted, counted even when not kept
        self.accepted_bytes = 0  # bodies (uncompressed) of the requests that carried them
        self.counts = Counts()  # by type and by event name
        self.requests: list[Received] = []
        # refused requests (and calls dropped without strict mode), bodies as text (rejects.as_given)
        self.reject_log = RejectLog(max_reject_bytes)
        self.rejected = 0
        self._reject_seq = 0
        # why `out` can no longer be written (the reader closed the pipe, the disk is full):
        # from then on every request gets a 503 and the receiver stops listening
        self.broken: OSError | ValueError | None = None
        self._clock = clock  # each request's receivedAt
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._listeners: list[Callable[[str, list[dict[str, Any]]], None]] = []
        self.last_record_at = 0.0  # time.monotonic() of the last record (tests measure waits by it)

    def record(
        self,
        calls: list[dict[str, Any]],
        encoded: list[bytes | None],
        body_bytes: int,
        warnings: list[list[str]] | None = None,
    ) -> bool:
        """Keep and write out the accepted calls, each with `receivedAt` (`encoded`: each one's
        compact JSON when already made, else None; `warnings`: each one's, kept as `_warnings`,
        never written out); False when `out` cannot be written (then none of them counts as
        accepted, and `broken` says why)."""
        data = b""
        if self.keep or self.out is not None:
            received = self._clock()
            if self.out is not None:
                data = _lines(calls, encoded, received)
            for call in calls:
                call["receivedAt"] = received
        for call, texts in zip(calls, warnings or (), strict=False):
            if texts:
                call["_warnings"] = texts
        with self._lock:
            if self.broken is not None:
                return False
            if data:
                try:
                    self._write(data)
                except (OSError, ValueError) as exc:  # ValueError: a closed file
                    self.broken = exc
                    return False
            self.accepted += len(calls)
            self.accepted_bytes += body_bytes
            first = self.next_seq
            self.next_seq += len(calls)
            self.counts.add(calls)
            if self.keep:
                self.calls.extend(calls)
                over = len(self.calls) - self.max_calls
                if over > 0:
                    del self.calls[:over]
                    self.first_seq += over
                    self.evicted += over
            else:
                self.first_seq = self.next_seq
            self._changed.notify_all()
        self.last_record_at = time.monotonic()
        self._tell("call", [_numbered(seq, call) for seq, call in enumerate(calls, first)] if self._listeners else [])
        return True

    def add_reject(self, path: str, status: int, errors: list[str], text: bytes | None) -> None:
        """Keep a refused request (or the calls dropped from one without strict mode: status
        200) with its errors and its body as received (rejects.RejectLog: bounded by bytes)."""
        with self._lock:
            self._reject_seq += 1
            self.rejected += 1
            reject = reject_record(self._reject_seq, self.next_seq - 1, self._clock(), path, status, errors, text)
            if self.keep:
                self.reject_log.add(reject)
            self._changed.notify_all()
        if self._listeners:
            self._tell("reject", [as_given(reject)])

    @property
    def rejects(self) -> list[dict[str, Any]]:
        """The rejects kept, oldest first, each as the answers give it (rejects.as_given)."""
        return self.reject_page(after=0, limit=None)

    def reject_page(
        self, *, after: int = 0, limit: int | None = None, before: int | None = None
    ) -> list[dict[str, Any]]:
        """The rejects kept with a sequence number over `after` (and under `before`), oldest
        first: the first `limit` of them, or with `before` the last `limit`."""
        with self._lock:
            kept = self.reject_log.select(after, before)
        if limit is not None:
            kept = kept[-limit:] if before is not None else kept[:limit]
        return [as_given(reject) for reject in kept]

    # -- queries (any thread) --

    def select(self, filters: Filters) -> list[tuple[int, dict[str, Any]]]:
        """Every kept call that `filters` take, with its sequence number, oldest first."""
        with self._lock:
            calls, first = list(self.calls), self.first_seq
        start = max(0, filters.after_seq + 1 - first)
        return [(seq, call) for seq, call in enumerate(calls[start:], first + start) if filters.match(seq, call)]

    def query(
        self, filters: Filters, *, limit: int = 100, cursor: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of the calls `filters` take (each with `_seq`), oldest first, after the
        sequence number `cursor`; and the cursor of the next page (None: this was the last)."""
        if cursor:
            filters = Filters(filters.fields, max(filters.after_seq, cursor), filters.from_time)
        with self._lock:
            calls, first = list(self.calls), self.first_seq
        start = max(0, filters.after_seq + 1 - first)
        page: list[dict[str, Any]] = []
        for seq, call in enumerate(calls[start:], first + start):
            if filters.match(seq, call):
                if len(page) == limit:
                    return page, page[-1]["_seq"]
                page.append(_numbered(seq, call))
        return page, None

    def catch_up(self, seen: Seen) -> None:
        """`seen` brought up to date with what is kept now (under the store's lock): for a waiter
        that is woken another way (the /_cdp/wait route's event loop)."""
        with self._lock:
            seen.update(self)

    def wait(self, filters: Filters, count: int = 1, timeout: float = 5.0) -> tuple[bool, list[dict[str, Any]]]:
        """Wait until `count` calls that `filters` take are kept: (True, them), or at `timeout`
        s (False, those that were). Woken by each change, never polling."""
        deadline = time.monotonic() + timeout
        seen = Seen(filters)
        with self._changed:
            while True:
                seen.update(self)
                if len(seen.matched) >= count:
                    return True, seen.numbered()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, seen.numbered()
                self._changed.wait(left)

    def summary(self) -> dict[str, Any]:
        """The counts: calls accepted, rejected, evicted and kept; by type; by event (the
        TOP_EVENTS most frequent, the rest counted in `by_event_other`); rejects kept, evicted
        and the bytes they cost."""
        with self._lock:
            return {
                "accepted": self.accepted,
                "rejected": self.rejected,
                "evicted": self.evicted,
                "kept": len(self.calls),
                **self.counts.figures(),
                **self.reject_log.figures(),
            }

    def reset(self) -> None:
        """Forget every call and reject, and the counts (sequence numbers go on from where they were)."""
        with self._lock:
            self.calls.clear()
            self.first_seq = self.next_seq
            self.evicted = self.accepted = self.accepted_bytes = self.rejected = 0
            self.counts.clear()
            self.reject_log.clear()
            self.requests.clear()
            self._changed.notify_all()
        self._tell("reset", [])

    def subscribe(self, listener: Callable[[str, list[dict[str, Any]]], None]) -> Callable[[], None]:
        """Call `listener(kind, items)` on each change ("call" with the new calls, "reject",
        "reset"), on the thread that made it; returns the function that unsubscribes."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = [other for other in self._listeners if other is not listener]

        return unsubscribe

    def _tell(self, kind: str, items: list[dict[str, Any]]) -> None:
        for listener in self._listeners:
            try:
                listener(kind, items)
            except Exception:  # noqa: BLE001 - a listener's failure is never the sender's
                pass

    def _write(self, data: bytes) -> None:
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:  # a text file or stdout: its bytes, not decoded and encoded again
            buffer.write(data)
            buffer.flush()
        else:
            self.out.write(data.decode("utf-8"))  # type: ignore[union-attr]
            self.out.flush()  # type: ignore[union-attr]

    def add_request(self, path: str, headers: dict[str, str], body: Any, status: int) -> None:
        """Keep a request as it came (when keeping): `body` a judge.Body, its text parsed
        whatever it was, and the key it carried."""
        if not self.keep_requests:
            return
        parsed = None
        if body.text is not None:
            try:
                parsed = json.loads(body.text)
            except Exception:  # noqa: BLE001 - a log of what came, whatever it was
                pass
        gzip = headers.get("content-encoding", "").lower() == "gzip"
        received = Received(path, headers, parsed, body.raw_size, status, "POST", gzip, key_of(headers))
        with self._lock:
            self.requests.append(received)

    def broken_reason(self) -> str:
        """Why `out` cannot be written, for the 503 answers and serve's last words."""
        exc = self.broken
        if isinstance(exc, BrokenPipeError):
            return "its output was closed by the reader"
        return f"writing its output failed ({strerror(exc)})"


class Seen:
    """The calls a wait has matched so far, brought up to date by looking only at the calls
    kept since the last look (a reset starts it again)."""

    def __init__(self, filters: Filters) -> None:
        self.filters = filters
        self.matched: list[tuple[int, dict[str, Any]]] = []
        self.next = filters.after_seq + 1

    def update(self, store: Store) -> None:
        """Look at the new calls (the caller may hold the store's lock: this takes none)."""
        if store.first_seq > self.next:  # a reset or eviction: what went is gone from the answer
            self.matched = [(seq, call) for seq, call in self.matched if seq >= store.first_seq]
            self.next = store.first_seq
        start = self.next - store.first_seq
        for seq, call in enumerate(store.calls[start:], self.next):
            if self.filters.match(seq, call):
                self.matched.append((seq, call))
        self.next = store.first_seq + len(store.calls)

    def numbered(self) -> list[dict[str, Any]]:
        return [_numbered(seq, call) for seq, call in self.matched]


def key_of(headers: dict[str, str]) -> str | None:
    """The API key a request carried (the Basic user name, or the Bearer token), None without one."""
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credential.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(credential, validate=True).decode("utf-8").partition(":")[0] or None
    except (binascii.Error, ValueError):
        return None


def _numbered(seq: int, call: dict[str, Any]) -> dict[str, Any]:
    """A call as queries give it: with its sequence number, `_seq`."""
    return {**call, "_seq": seq}


def _lines(calls: list[dict[str, Any]], encoded: list[bytes | None], received: str) -> bytes:
    """The calls as NDJSON, each with `"receivedAt": received`."""
    # each call's compact JSON from the size check, receivedAt spliced in before its closing
    # brace: a json.dumps per call took 8.8 of the 18 ms a 470 KB batch cost
    tail = b',"receivedAt":"%s"}' % received.encode()
    lines = []
    for call, made in zip(calls, encoded, strict=True):
        if made is None or "receivedAt" in call:
            call["receivedAt"] = received
            lines.append(to_json(call))
        else:
            lines.append(made[:-1] + tail)
    return b"\n".join(lines) + b"\n"


def strerror(exc: BaseException | None) -> str:
    """An OS error in words (its strerror), or any other exception's message."""
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)

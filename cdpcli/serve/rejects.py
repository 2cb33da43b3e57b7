"""What a receiver refused, kept bounded: `RejectLog` (refused requests, and calls dropped without
strict mode, with their errors and bodies) and `Counts` (calls by type and by event name). The
store calls both under its lock; neither takes one of its own."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from cdpcli.jsontext import JSONTextError
from cdpcli.jsontext import loads as strict_loads
from cdpcli.serve.limits import MAX_REJECT_BYTES

MAX_REJECTS = 10_000  # rejected requests kept at most
REJECT_BODY_BYTES = 64 * 1024  # a rejected body longer than this is kept cut, as text
REJECT_OVERHEAD = 400  # bytes a kept reject costs beyond its body and errors (its dict and fields)
# distinct event names /_cdp/summary counts one by one: past twice this many, the rarest are
# folded into `by_event_other`, so that a million distinct names cost no more than these
TOP_EVENTS = 1_000


def reject_record(
    seq: int, after_call: int, received: str, path: str, status: int, errors: list[str], text: bytes | None
) -> dict[str, Any]:
    """A reject as kept: its body as text, cut to REJECT_BODY_BYTES, and what keeping it costs;
    `afterCall` is the sequence number of the last call accepted before it (their order)."""
    body = None if text is None else text[:REJECT_BODY_BYTES].decode("utf-8", "replace")
    return {
        "seq": seq,
        "afterCall": after_call,
        "receivedAt": received,
        "path": path,
        "status": status,
        "errors": list(errors),
        "body": body,
        "bytes": 0 if text is None else len(text),
        "cost": REJECT_OVERHEAD + len(body or "") + sum(len(error) for error in errors),
    }


class RejectLog:
    """The rejects kept, oldest first, at most `max_bytes` of them (their cost) and MAX_REJECTS."""

    def __init__(self, max_bytes: int = MAX_REJECT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.kept: deque[dict[str, Any]] = deque()
        self.bytes = 0
        self.evicted = 0

    def add(self, reject: dict[str, Any]) -> None:
        self.kept.append(reject)
        self.bytes += reject["cost"]
        while self.kept and (self.bytes > self.max_bytes or len(self.kept) > MAX_REJECTS):
            self.bytes -= self.kept.popleft()["cost"]
            self.evicted += 1

    def select(self, after: int, before: int | None) -> list[dict[str, Any]]:
        return [r for r in self.kept if r["seq"] > after and (before is None or r["seq"] < before)]

    def clear(self) -> None:
        self.kept.clear()
        self.bytes = self.evicted = 0

    def figures(self) -> dict[str, int]:
        return {"rejects_kept": len(self.kept), "rejects_evicted": self.evicted, "reject_bytes": self.bytes}


def as_given(reject: dict[str, Any]) -> dict[str, Any]:
    """A reject as the answers give it: its body parsed when it is strict JSON (so that a NaN, an
    infinity or a lone surrogate never reaches an answer as bare JSON), else the text; a body
    cut to REJECT_BODY_BYTES ends with a marker and has `"truncated": true`."""
    given = {key: value for key, value in reject.items() if key != "cost"}
    text = reject["body"]
    if text is None:
        return given
    if reject["bytes"] > REJECT_BODY_BYTES:
        given["body"] = f"{text}… [cut: the first {REJECT_BODY_BYTES:,} of {reject['bytes']:,} bytes kept]"
        given["truncated"] = True
        return given
    try:
        given["body"] = strict_loads(text)
    except (JSONTextError, RecursionError):
        pass
    return given


class Counts:
    """Calls counted by type and by event name, the names bounded: past 2 x TOP_EVENTS distinct
    ones, all but the TOP_EVENTS most frequent are folded into `other`."""

    def __init__(self) -> None:
        self.by_type: Counter[str] = Counter()
        self.by_event: Counter[str] = Counter()
        self.other = 0

    def add(self, calls: list[dict[str, Any]]) -> None:
        for call in calls:
            self.by_type[str(call.get("type"))] += 1
            event = call.get("event")
            if event is not None:
                self.by_event[str(event)] += 1
        if len(self.by_event) > 2 * TOP_EVENTS:
            kept = dict(self.by_event.most_common(TOP_EVENTS))
            self.other += sum(self.by_event.values()) - sum(kept.values())
            self.by_event = Counter(kept)

    def clear(self) -> None:
        self.by_type.clear()
        self.by_event.clear()
        self.other = 0

    def figures(self) -> dict[str, Any]:
        top = dict(self.by_event.most_common(TOP_EVENTS))
        return {
            "by_type": dict(self.by_type),
            "by_event": top,
            "by_event_other": self.other + sum(self.by_event.values()) - sum(top.values()),
        }

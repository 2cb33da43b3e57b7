"""What a receiver was sent: the calls it accepted (kept in memory, or only counted), the
requests as they came, and the NDJSON output every accepted call is appended to.

One lock guards all of it: the event loop records, the test or command that owns the receiver
reads, and a write of one request's calls is whole lines that never interleave with another's.
Once the output cannot be written (`broken`), nothing more is accepted: the receiver answers 503
and stops, so that no call is ever answered 200 without being recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic_core import to_json

from cdpcli.wire import now_timestamp


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw_size: int
    status: int


class Store:
    """What one receiver was sent (see the module's docstring); `clock` stamps `receivedAt`."""

    def __init__(
        self, out: TextIO | None = None, *, keep: bool = True, clock: Callable[[], str] = now_timestamp
    ) -> None:
        self.out = out
        self.keep = keep  # keep calls and requests in memory (tests); off for long runs
        self.calls: list[dict[str, Any]] = []
        self.accepted = 0  # calls accepted, counted even when not kept
        self.accepted_bytes = 0  # bodies (uncompressed) of the requests that carried them
        self.requests: list[Received] = []
        # why `out` can no longer be written (the reader closed the pipe, the disk is full):
        # from then on every request gets a 503 and the receiver stops listening
        self.broken: OSError | ValueError | None = None
        self._clock = clock  # each request's receivedAt
        self._lock = threading.Lock()

    def record(self, calls: list[dict[str, Any]], encoded: list[bytes | None], body_bytes: int) -> bool:
        """Keep and write out the accepted calls, each with `receivedAt` (`encoded`: each one's
        compact JSON when already made, else None); False when `out` cannot be written (then none
        of them counts as accepted, and `broken` says why)."""
        data = b""
        if self.keep or self.out is not None:
            received = self._clock()
            if self.out is not None:
                data = _lines(calls, encoded, received)
            for call in calls:
                call["receivedAt"] = received
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
            if self.keep:
                self.calls.extend(calls)
        return True

    def _write(self, data: bytes) -> None:
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:  # a text file or stdout: its bytes, not decoded and encoded again
            buffer.write(data)
            buffer.flush()
        else:
            self.out.write(data.decode("utf-8"))  # type: ignore[union-attr]
            self.out.flush()  # type: ignore[union-attr]

    def add_request(self, path: str, headers: dict[str, str], text: bytes | None, raw_size: int, status: int) -> None:
        """Keep a request as it came (when keeping), its body parsed whatever it was."""
        if not self.keep:
            return
        parsed = None
        if text is not None:
            try:
                parsed = json.loads(text)
            except Exception:  # noqa: BLE001 - a log of what came, whatever it was
                pass
        with self._lock:
            self.requests.append(Received(path, headers, parsed, raw_size, status))

    def broken_reason(self) -> str:
        """Why `out` cannot be written, for the 503 answers and serve's last words."""
        exc = self.broken
        if isinstance(exc, BrokenPipeError):
            return "its output was closed by the reader"
        return f"writing its output failed ({strerror(exc)})"


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

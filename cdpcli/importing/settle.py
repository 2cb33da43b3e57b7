"""The port the senders report through: what became of each batch they took (delivered, or
failed into the rejects file), why everything must stop, and the counts they add.

The engine makes one per import and hands it to delivery.py, so the senders know these few
doors and nothing else of the engine: they stand below it, not on it. Every method may be
called from any sender thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cdpcli.errors import CdpError
from cdpcli.importing.batches import Batch, unref
from cdpcli.importing.checkpoint import Settlement
from cdpcli.importing.stats import Stats

# (source index, line number, reason, the call's bytes, the text shown to the user)
RejectLine = Callable[[int, int, str, bytes, str], None]


class Settle:
    """The senders' view of one import. `stop` is set when nothing more may be sent; `lock`
    guards the Stats fields the senders write (sent, failed, batches, requests, retries)."""

    def __init__(
        self,
        stats: Stats,
        settlement: Settlement,
        stop: threading.Event,
        stop_with: Callable[[CdpError], None],
        reject: RejectLine,
        lock: threading.Lock | None = None,
    ) -> None:
        self.stats = stats
        self.settlement = settlement
        self.stop = stop
        self._stop_with = stop_with
        self._reject = reject
        self.lock = lock or threading.Lock()

    def delivered(self, batch: Batch) -> None:
        """Every call of `batch` (a whole batch or a split half) was accepted."""
        with self.lock:
            self.stats.batches += 1
            self.stats.sent += len(batch.calls)

    def failed(self, batch: Batch, reason: str) -> None:
        """Every call of `batch` goes to the rejects file with `reason` (FatalStop when it
        cannot be written: then none is counted)."""
        shown = f"not delivered: {reason}"
        for call, (source, line_no) in zip(batch.calls, map(unref, batch.refs), strict=True):
            self._reject(source, line_no, reason, call, shown)
        with self.lock:
            self.stats.failed += len(batch.calls)

    def settled(self, batch: Batch) -> None:
        """Every call of the batch the packer shipped is delivered or rejected: the
        checkpoint may move past it."""
        self.settlement.closed(batch)

    def stop_with(self, error: CdpError) -> None:
        """Stop reading and sending; `error` says why (the first reason wins)."""
        self._stop_with(error)

    def counted(self, *, requests: int = 0, retries: int = 0) -> None:
        with self.lock:
            self.stats.requests += requests
            self.stats.retries += retries

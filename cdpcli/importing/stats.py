"""An import's counts as it goes (Stats), read by a progress display and summed up at the end.

The locking rule: the packer (one thread) writes read, blank, skipped, invalid, bytes_read,
by_type and the reasons without a lock; the senders write sent, failed, batches, requests and
retries under the import's stats lock (settle.py). Readers (progress) take what they see.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    read: int = 0  # every line read, blank and skipped ones included
    blank: int = 0
    skipped: int = 0
    sent: int = 0
    invalid: int = 0
    failed: int = 0
    batches: int = 0
    requests: int = 0
    retries: int = 0
    bytes_read: int = 0
    by_type: dict[str, int] = field(default_factory=dict)  # valid calls (sent or failed) per type
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    # by the user's choice, keyed by stable ids: the option that left the line out ("types",
    # "shard", …), "checkpoint" (settled by an earlier run), or what the reader skipped
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    phase: str = ""  # order phased: "2/4 track, page, screen" while that phase is sent
    # the settled share of the input's bytes (share.py), set by the import once it knows them
    settled_share: Callable[[], float | None] | None = None

    @property
    def calls(self) -> int:
        """Lines that were calls to judge (neither blank nor settled by an earlier run)."""
        return self.read - self.blank - self.skipped

    def _skipped_reasons(self) -> dict[str, int]:
        """Lines skipped by reason: the checkpoint's (settled by an earlier run), and the rest."""
        reasons = dict(self.skipped_reasons)
        by_checkpoint = self.skipped - sum(reasons.values())
        if by_checkpoint:
            reasons["checkpoint"] = by_checkpoint
        return reasons

    def summary(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        unsettled = self.read - self.sent - self.invalid - self.failed - self.skipped - self.blank
        return {
            "read": self.read,
            "sent": self.sent,
            "invalid": self.invalid,
            "failed": self.failed,
            "skipped": self.skipped,
            "blank": self.blank,
            "unsettled": unsettled,
            "batches": self.batches,
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(seconds, 3),
            "events_per_second": round(self.sent / seconds, 1) if seconds > 0 else 0.0,
            "by_type": dict(sorted(self.by_type.items())),
            "invalid_reasons": dict(sorted(self.invalid_reasons.items())),
            "skipped_reasons": dict(sorted(self._skipped_reasons().items())),
        }

"""Where the packer's batches go (a full one, or a partial one when the input goes quiet):
each is numbered and opened in the settlement, so the checkpoint stays before its lines until
they settle, then queued for the senders; in a dry run it is shown as the request it would be,
and settled at once."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

from cdpcli.importing.batches import Batch, BatchRequest
from cdpcli.importing.checkpoint import Settlement
from cdpcli.importing.events import ImportEvents
from cdpcli.importing.stats import Stats
from cdpcli.target import Target


@dataclass
class DryRun:
    """A dry run's requests go to the front end (ImportEvents.dry_run), never to the senders."""

    target: Target
    events: ImportEvents
    stats: Stats

    def show(self, batch: Batch) -> None:
        target = self.target
        self.events.dry_run(BatchRequest(f"{target.base}/batch", target.headers(), batch, target.gzip))
        self.stats.batches += 1


class Outbox:
    def __init__(
        self, settlement: Settlement, stop: threading.Event, batches: queue.Queue, dry_run: DryRun | None = None
    ) -> None:
        self.settlement = settlement
        self.stop = stop
        self.batches = batches
        self.dry_run = dry_run
        self.seq = 0

    def ship(self, batch: Batch) -> Batch:
        """Hand a batch on; returns the next, empty one."""
        self.seq += 1
        batch.seq = self.seq
        self.settlement.opened(batch)
        if self.dry_run is not None:
            self.dry_run.show(batch)
            self.settlement.closed(batch)
            return Batch()
        while not self.stop.is_set():  # stopping: the batch stays open, so it is not lost
            try:
                self.batches.put(batch, timeout=0.2)
                break
            except queue.Full:
                continue
        return Batch()

"""The import's live progress display on stderr (Rich; imported only when shown)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from cdpcli.importing.engine import Stats


class ImportProgress:
    """Calls/s, sent, rejected, retries, and bytes read of the total when it is known."""

    def __init__(self, stats: Stats, total_bytes: int | None) -> None:
        self.stats = stats
        self.total = total_bytes
        self.console = Console(stderr=True, highlight=False)
        self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cdp-progress", daemon=True)

    def _render(self) -> Text:
        s = self.stats
        seconds = max(time.monotonic() - s.started, 1e-9)
        parts = [
            f"{s.sent / seconds:,.0f} calls/s",
            f"sent {s.sent:,}",
            f"rejected {s.invalid + s.failed:,}",
            f"retries {s.retries:,}",
        ]
        if self.total:
            share = min(s.bytes_read / self.total, 1.0)
            filled = int(share * 30)
            parts.insert(0, f"[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%} of {self.total / 1e6:,.1f} MB")
        else:
            parts.insert(0, f"read {s.bytes_read / 1e6:,.1f} MB")
        return Text("  ".join(parts))

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self._live.update(self._render())

    def start(self) -> ImportProgress:
        self._live.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._live.stop()

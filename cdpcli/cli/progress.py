"""The import's progress on stderr (Rich; imported only when shown): on a terminal, one live
line that fits its width; otherwise (--progress with stderr a file or pipe) a plain status
line every STATUS_EVERY seconds."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from cdpcli.importing.stats import Stats

STATUS_EVERY = 5.0  # seconds between plain status lines
# tests (and the impatient) may ask for another interval
STATUS_EVERY_ENV = "CDP_STATUS_EVERY"


def status_every() -> float:
    try:
        return max(float(os.environ.get(STATUS_EVERY_ENV, STATUS_EVERY)), 0.01)
    except ValueError:
        return STATUS_EVERY


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def settled_share(stats: Stats, total_bytes: int | None) -> float | None:
    """The share of the input settled (delivered, rejected, skipped or blank), as the import
    measures it (the settled lines' share of the input bytes, importing/share.py); else, of
    the lines read, those settled, times the share of the bytes read (None when neither is
    known yet)."""
    if stats.settled_share is not None and total_bytes:
        return stats.settled_share()
    read = stats.read
    settled = stats.sent + stats.invalid + stats.failed + stats.skipped + stats.blank
    lines = min(settled / read, 1.0) if read else 0.0
    if total_bytes:
        return min(stats.bytes_read / total_bytes, 1.0) * lines
    return None


def status_parts(stats: Stats, total_bytes: int | None, now: float | None = None) -> list[str]:
    """The status in parts, most important first: settled share, elapsed and ETA, rate, counts."""
    elapsed = max((now if now is not None else time.monotonic()) - stats.started, 1e-9)
    share = settled_share(stats, total_bytes)
    settled = stats.sent + stats.invalid + stats.failed + stats.skipped + stats.blank
    if share is not None:
        head = f"{share:4.0%} settled"
        eta = f"ETA {_clock(elapsed * (1 - share) / share)}" if share > 0.001 else "ETA --:--"
        timing = f"{_clock(elapsed)} elapsed, {eta}"
    else:
        head = f"{settled:,} of {stats.read:,} lines settled"
        timing = f"{_clock(elapsed)} elapsed"
    parts = [head, timing, f"{stats.sent / elapsed:,.0f} calls/s"]
    if stats.phase:
        parts.insert(1, f"phase {stats.phase.split(' ', 1)[0]}")
    parts += [f"sent {stats.sent:,}", f"rejected {stats.invalid + stats.failed:,}", f"retries {stats.retries:,}"]
    return parts


class StatusLine:
    """One line, never wider than the console: the least important parts go first, then the
    rest is cut (a wrapped line would leave a stale copy above when the terminal redraws)."""

    def __init__(self, stats: Stats, total_bytes: int | None) -> None:
        self.stats = stats
        self.total = total_bytes

    def text(self, width: int) -> Text:
        width = max(width - 1, 10)  # never the last column: some terminals wrap there
        parts = status_parts(self.stats, self.total)
        if self.total and width >= 60:
            share = settled_share(self.stats, self.total) or 0.0
            filled = int(share * 20)
            parts[0] = f"[{'#' * filled}{'.' * (20 - filled)}] {parts[0]}"
        while len(parts) > 1 and len("  ".join(parts)) > width:
            parts.pop()
        text = Text("  ".join(parts), no_wrap=True, overflow="ellipsis")
        text.truncate(width, overflow="ellipsis")
        return text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.text(options.max_width)


class ImportProgress:
    """A live line on a terminal (transient: gone when the import ends), or plain status lines."""

    def __init__(self, stats: Stats, total_bytes: int | None, every: float | None = None) -> None:
        self.stats = stats
        self.total = total_bytes
        self.console = Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal
        self.every = every if every is not None else status_every()
        self.line = StatusLine(stats, total_bytes)
        # rendered afresh (at the console's width of the moment) at every refresh
        self._live = Live(self.line, console=self.console, auto_refresh=False, transient=True) if self.live else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cdp-progress", daemon=True)

    def _loop(self) -> None:
        if self._live is not None:
            while not self._stop.wait(0.25):
                self._live.refresh()
            return
        while not self._stop.wait(self.every):
            self.print_status()

    def print_status(self) -> None:
        sys.stderr.write("cdp import: " + ", ".join(status_parts(self.stats, self.total)) + "\n")
        sys.stderr.flush()

    def start(self) -> ImportProgress:
        if self._live is not None:
            self._live.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._live is not None:
            self._live.stop()

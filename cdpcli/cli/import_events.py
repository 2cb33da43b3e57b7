"""What every importing command (`cdp import`, the operations' --from) shares: the import's
events on a terminal (progress, reject lines, -v exchanges, dry-run requests), and the run
itself with Ctrl-C/SIGTERM handled and the summary printed."""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cdpcli.cli import startup
from cdpcli.cli.import_summary import report
from cdpcli.cli.options import SendOptions
from cdpcli.cli.output import Output, flagged
from cdpcli.importing.events import ImportEvents

if TYPE_CHECKING:
    from cdpcli.cli.progress import ImportProgress
    from cdpcli.importing.engine import Importer
    from cdpcli.importing.stats import Stats
    from cdpcli.transport import Exchange
    from cdpcli.wire import Request

# stderr shows this many reject lines, then only the total (a CSV fed as NDJSON is thousands)
ECHO_REJECTS = 20


class TerminalEvents(ImportEvents):
    """The import's events on a terminal: progress (Rich), reject lines (the first
    ECHO_REJECTS), retries and exchanges with -v, dry-run requests on stdout."""

    def __init__(self, out: Output, progress: bool) -> None:
        self.out = out
        self.progress = progress
        self._display: ImportProgress | None = None
        self._lock = threading.Lock()
        self.echoed = 0

    def started(self, stats: Stats, total_bytes: int | None) -> None:
        if self.progress:
            from cdpcli.cli.progress import ImportProgress  # lazy: start-up (Rich's live display)

            self._display = ImportProgress(stats, total_bytes).start()

    def finished(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def phase(self, index: int, name: str) -> None:
        self.out.verbose(f"--order phased: phase {index + 1} of 4 ({name})")

    def note(self, text: str) -> None:
        self.out.info(flagged(text))

    def rejected(self, text: str) -> None:
        with self._lock:
            self.echoed += 1
            shown = self.echoed <= ECHO_REJECTS
        if shown:
            # the core names options by id (`format=parquet`): flags in the reason only, never in
            # the file's name before it (`limit=1.ndjson:1:` is a name)
            where, reason = _where_and_reason(text)
            self.out.problem(where + flagged(reason))

    def retrying(self, text: str) -> None:
        self.out.verbose(text)

    def exchange(self, exchange: Exchange) -> None:
        self.out.exchange(exchange)

    def dry_run(self, request: Request) -> None:
        self.out.show_request(request)
        if not self.out.json_mode:
            self.out.result("")  # a blank line between batches

    @property
    def unechoed(self) -> int:
        """Reject lines not shown on stderr (past ECHO_REJECTS)."""
        return max(self.echoed - ECHO_REJECTS, 0)


def terminal_events(opts: SendOptions, progress: bool | None) -> TerminalEvents:
    """The import's events for this command: live progress when asked (--progress), else when
    stderr is a terminal and not --quiet."""
    show = progress if progress is not None else sys.stderr.isatty() and not opts.quiet
    return TerminalEvents(opts.output(), show)


def run_and_report(importer: Importer, out: Output, events: TerminalEvents) -> int:
    """Run an import with Ctrl-C/SIGTERM handled, print its summary; its exit code. Every
    command that imports (`cdp import`, the operations' --from) ends this way."""
    # the garbage collector's settings are the process's: the command sets them (the process
    # ends with it), never the core
    startup.started()
    with interrupts_handled_by(importer, out):
        result = importer.run()
    report(result, out, events.unechoed)
    return int(result.exit_code)


@contextmanager
def interrupts_handled_by(importer: Importer, out: Output) -> Iterator[None]:
    """Ctrl-C and SIGTERM go to importer.interrupt() while it runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if importer.interrupt():
            # written from another thread: the signal may have come in the middle of this
            # thread's own write to stderr, and a write from inside it fails (reentrant call)
            threading.Thread(
                target=out.info,
                args=("Interrupted: finishing requests in flight (Ctrl-C again to stop waiting for them)",),
                daemon=True,
            ).start()

    stops = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # ignored under nohup: left so
        stops.append(signal.SIGHUP)  # the terminal closed: a stop like Ctrl-C, spool removed
    previous = {sig: signal.signal(sig, handler) for sig in stops}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


_WHERE = re.compile(r"^(.*?:\d+: )(.*)\Z", re.DOTALL)


def _where_and_reason(text: str) -> tuple[str, str]:
    """A rejects line's `source:line: ` and its reason (all reason when it has no such start)."""
    found = _WHERE.match(text)
    return (found[1], found[2]) if found else ("", text)

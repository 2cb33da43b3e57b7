"""`cdp import`: the options checked, the core's import run with progress and reject lines on
stderr, and the summary rendered from its ImportResult."""

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdpcli.cli.base import app
from cdpcli.cli.import_summary import report
from cdpcli.cli.options import SendOptions, env_note, sending_command
from cdpcli.cli.output import Output, reporting
from cdpcli.importing.events import ImportEvents
from cdpcli.wire import CALL_TYPES, DEFAULT_BATCH_BYTES

if TYPE_CHECKING:
    from cdpcli.cli.progress import ImportProgress
    from cdpcli.importing import Importer
    from cdpcli.importing.engine import Stats
    from cdpcli.importing.shard import Shard
    from cdpcli.transport import Exchange
    from cdpcli.wire import Request

# stderr shows this many reject lines, then only the total (a CSV fed as NDJSON is thousands)
ECHO_REJECTS = 20


@app.command("import")
@sending_command
def import_(
    opts: SendOptions,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="NDJSON or CSV files, plain or compressed (gzip, bzip2, xz, zstd), or directories (read recursively); none or - reads stdin.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Call type for lines without one: " + ", ".join(CALL_TYPES) + ".",
            metavar="TYPE",
            show_default=False,
            autocompletion=lambda: list(CALL_TYPES),
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.", metavar="N")] = 16,
    batch_bytes: Annotated[
        int, typer.Option("--batch-bytes", help="Largest request body in bytes (API limit 500,000).", metavar="BYTES")
    ] = DEFAULT_BATCH_BYTES,
    batch_events: Annotated[
        int, typer.Option("--batch-events", help="Most calls per request (API limit 2,500).", metavar="N")
    ] = 2500,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            help="Most requests per second (default 1000), or auto: start there (or at the budget's share) and adapt to the API's 429s.",
            metavar="N|auto",
            show_default=False,
            autocompletion=lambda: ["auto"],
        ),
    ] = None,
    rate_budget: Annotated[
        float | None,
        typer.Option(
            "--rate-budget",
            help="Requests per second for all shards together: each takes TOTAL/N (with --shard K/N).",
            metavar="TOTAL",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Send only shard K of N (0 <= K < N): N imports over the same inputs, K = 0…N-1, send every call once between them; messageIds do not change."
            + env_note("CDP_SHARD"),
            metavar="K/N",
            show_default=False,
        ),
    ] = None,
    shard_by: Annotated[
        str,
        typer.Option(
            "--shard-by",
            help="How lines are dealt to shards: line (by number), file (whole files), user (one person's calls on one shard, in order).",
            metavar="line|file|user",
            autocompletion=lambda: ["line", "file", "user"],
        ),
    ] = "line",
    rejects: Annotated[
        str | None,
        typer.Option(
            "--rejects",
            help="Where invalid and undelivered calls are appended, with the reason (created 0600).  \\[default: cdp-rejects.ndjson]",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            "--checkpoint",
            help="Record progress here; the same command run again resumes after it.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="none (fastest), or phased: identify and group calls first, then track/page/screen, then alias, then deletes and suppressions, each phase once the one before is acknowledged (inputs are read once per phase; stdin is copied to a private temporary file).",
            metavar="none|phased",
            autocompletion=lambda: ["none", "phased"],
        ),
    ] = "none",
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Live progress on stderr (default: when stderr is a terminal).",
            metavar="",
            show_default=False,
        ),
    ] = None,
    max_invalid: Annotated[
        int | None,
        typer.Option(
            "--max-invalid",
            help="Stop after this many invalid lines (exit 1; checkpoint and summary written).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    id_namespace: Annotated[
        str | None,
        typer.Option(
            "--id-namespace",
            metavar="NAME",
            help="Mixed into every derived messageId, so that sources with the same file name (day1/events.ndjson, day2/events.ndjson) get different ids. Keep it the same when re-running an import.",
            show_default=False,
        ),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Input format: ndjson or csv (default: csv for .csv names, else ndjson).",
            metavar="FORMAT",
            show_default=False,
            autocompletion=lambda: ["ndjson", "csv"],
        ),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Lines are a Segment or RudderStack archive's calls: keep messageId and timestamp, drop the archive's envelope keys (writeKey, receivedAt, …).",
            metavar="segment|rudderstack",
            show_default=False,
            autocompletion=lambda: ["segment", "rudderstack"],
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="CSV: put column SRC at DEST (userId, traits.email, …); repeatable.",
            metavar="SRC=DEST",
            show_default=False,
        ),
    ] = None,
    infer_types: Annotated[
        bool,
        typer.Option(
            "--infer-types",
            help="CSV: cells that are integers, decimals or true/false become those.",
            metavar="",
            show_default=False,
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only calls timestamped at or after TIME (ISO-8601; UTC unless it says).",
            metavar="TIME",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only calls timestamped before TIME.", metavar="TIME", show_default=False),
    ] = None,
    types: Annotated[
        str | None,
        typer.Option("--types", help="Only calls of these types (comma-separated).", metavar="T,…", show_default=False),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help="Only track calls of these events (comma-separated; other types pass).",
            metavar="NAME,…",
            show_default=False,
        ),
    ] = None,
    exclude_events: Annotated[
        str | None,
        typer.Option(
            "--exclude-events", help="Leave out track calls of these events.", metavar="NAME,…", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="Stop after N calls.", metavar="N", show_default=False),
    ] = None,
    sample: Annotated[
        float | None,
        typer.Option(
            "--sample",
            help="Send this share of the calls (0-1), the same ones every run (a hash of the messageId).",
            metavar="FRACTION",
            show_default=False,
        ),
    ] = None,
    preflight: Annotated[
        bool,
        typer.Option(
            "--preflight",
            help="Read everything (same inputs and filters), send and write nothing, no key needed; report calls by type and event, profiles it may create, recent or odd timestamps, attribute-name drift, deletes followed by calls, invalid lines.",
            metavar="",
            show_default=False,
        ),
    ] = False,
    recent: Annotated[
        str,
        typer.Option(
            "--recent",
            help="Calls timestamped in the last 72 hours may trigger campaigns: warn (count them), skip them, or fail (reject each into the rejects file, reason recent; exit 1).",
            metavar="warn|skip|fail",
            autocompletion=lambda: ["warn", "skip", "fail"],
        ),
    ] = "warn",
) -> None:
    """Stream NDJSON calls (one per line) into /batch requests: fast, resumable, nothing lost.

    Example: cdp import events.ndjson --checkpoint events.ckpt

    Example: cdp import segment-logs/ --from segment --since 2024-01-01

    Example: cdp import people.csv --type identify --column id=userId

    Example: cdp import segment-logs/ --from segment --preflight
    """
    from cdpcli.importing import DEFAULT_REJECTS, Importer, ImportOptions, check_options, make_sources
    from cdpcli.importing.csvrows import parse_columns
    from cdpcli.importing.pacing import resolve_rate
    from cdpcli.importing.select import parse_time
    from cdpcli.importing.shard import shard_sources

    out = opts.output()
    with reporting(out):
        chosen_shard = _shard(shard, shard_by)
        rate_per_process, rate_auto = resolve_rate(rate, rate_budget, chosen_shard)
        options = ImportOptions(
            default_type=type_,
            concurrency=concurrency,
            batch_bytes=batch_bytes,
            batch_events=batch_events,
            rate=rate_per_process,
            rate_auto=rate_auto,
            shard=chosen_shard,
            rejects=rejects if rejects is not None else DEFAULT_REJECTS,
            rejects_explicit=rejects is not None,
            checkpoint=checkpoint,
            order=order,
            max_invalid=max_invalid,
            dry_run=opts.dry_run,
            archive=from_,
            csv_columns=parse_columns(column or []),
            infer_types=infer_types,
            types=_names(types),
            events=_names(events),
            exclude_events=_names(exclude_events),
            since=parse_time(since, "--since") if since is not None else None,
            until=parse_time(until, "--until") if until is not None else None,
            sample=sample,
            limit=limit,
            recent=recent,
        )
        sources, warnings = make_sources(files or [], id_namespace, format_)
        sources = shard_sources(sources, chosen_shard)
        check_options(options, sources)
        if preflight:
            from cdpcli.cli.import_preflight import render
            from cdpcli.importing.preflight import preflight as run_preflight

            for text in warnings:
                out.warn(text)
            found = run_preflight(sources, options)
            render(found, out)
            raise typer.Exit(found["exit_code"])
        target = opts.target()
        for text in warnings:
            out.warn(text)
        events = terminal_events(opts, progress)
        code = run_and_report(Importer(target, sources, options, events), out, events)
    raise typer.Exit(code)


def _names(text: str | None) -> list[str] | None:
    """A comma-separated option as its names (None when not given)."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def _shard(flag: str | None, by: str) -> "Shard | None":
    """--shard K/N, else $CDP_SHARD (an Indexed Job's $JOB_COMPLETION_INDEX goes there)."""
    from cdpcli.errors import UsageError
    from cdpcli.importing.shard import SHARD_ENV, parse_shard

    if flag is not None:
        return parse_shard(flag, by)
    if os.environ.get(SHARD_ENV, "").strip():
        return parse_shard(os.environ[SHARD_ENV], by, origin="$" + SHARD_ENV)
    if by != "line":
        raise UsageError(f"--shard-by {by} needs --shard K/N (or $CDP_SHARD)")
    return None


class TerminalEvents(ImportEvents):
    """The import's events on a terminal: progress (Rich), reject lines (the first
    ECHO_REJECTS), retries and exchanges with -v, dry-run requests on stdout."""

    def __init__(self, out: Output, progress: bool) -> None:
        self.out = out
        self.progress = progress
        self._display: ImportProgress | None = None
        self._lock = threading.Lock()
        self.echoed = 0

    def started(self, stats: "Stats", total_bytes: int | None) -> None:
        if self.progress:
            from cdpcli.cli.progress import ImportProgress

            self._display = ImportProgress(stats, total_bytes).start()

    def finished(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def phase(self, index: int, name: str) -> None:
        self.out.verbose(f"--order phased: phase {index + 1} of 4 ({name})")

    def note(self, text: str) -> None:
        self.out.info(text)

    def rejected(self, text: str) -> None:
        with self._lock:
            self.echoed += 1
            shown = self.echoed <= ECHO_REJECTS
        if shown:
            self.out.problem(text)

    def retrying(self, text: str) -> None:
        self.out.verbose(text)

    def exchange(self, exchange: "Exchange") -> None:
        self.out.exchange(exchange)

    def dry_run(self, request: "Request") -> None:
        self.out.show_request(request)
        if not self.out.json_mode:
            self.out.result("")  # a blank line between batches

    @property
    def unechoed(self) -> int:
        """Reject lines not shown on stderr (past ECHO_REJECTS)."""
        return max(self.echoed - ECHO_REJECTS, 0)


def terminal_events(opts: SendOptions, progress: bool | None) -> "TerminalEvents":
    """The import's events for this command: live progress when asked (--progress), else when
    stderr is a terminal and not --quiet."""
    show = progress if progress is not None else sys.stderr.isatty() and not opts.quiet
    return TerminalEvents(opts.output(), show)


def run_and_report(importer: "Importer", out: Output, events: "TerminalEvents") -> int:
    """Run an import with Ctrl-C/SIGTERM handled, print its summary; its exit code. Every
    command that imports (`cdp import`, the operations' --from) ends this way."""
    with interrupts_handled_by(importer, out):
        result = importer.run()
    report(result, out, events)
    return int(result.exit_code)


@contextmanager
def interrupts_handled_by(importer: "Importer", out: Output) -> Iterator[None]:
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

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

"""The import engine: lines in, batches out, every line settled exactly once.

Pipeline (threads, bounded queues, so memory stays flat for any input length):

    reader thread ──chunks of lines──▶ this thread: prepare + pack ──batches──▶ N senders

- sources.py: the reader hands over whole lines in chunks as soon as they arrive (os.read
  returns what a pipe has), so a slow producer's lines are not held back; the packer sends a
  partial batch after `linger` seconds without new input.
- prepare.py: a line becomes the bytes of its call (fast path: the original bytes, spliced)
  or InvalidLine. batches.py: calls packed into /batch requests.
- delivery.py: senders retry per transport.Sender; a 400 (or 413) on a batch is split in
  halves until the calls the API rejects are isolated; 401/403 stops everything.
- rejects.py, checkpoint.py: every line ends settled exactly once, delivered or in the rejects
  file with its reason; the checkpoint records, per source, how many leading lines are settled.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdpcli.errors import CdpError, ExitCode, FatalStop, UsageError
from cdpcli.importing.batches import REF_SHIFT, Batch, BatchRequest
from cdpcli.importing.checkpoint import Checkpoint, CheckpointSaver, Settlement
from cdpcli.importing.csvrows import CsvMapping
from cdpcli.importing.delivery import Delivery
from cdpcli.importing.events import ImportEvents, ImportResult
from cdpcli.importing.order import OtherPhase
from cdpcli.importing.pacing import check_rate
from cdpcli.importing.prepare import InvalidLine, LimitReached, Preparer, SkipLine, needs_plain_path
from cdpcli.importing.rejects import DEFAULT_REJECTS, Rejects
from cdpcli.importing.select import Selector, wanted
from cdpcli.importing.shard import shard_label
from cdpcli.importing.sources import (
    _END,
    BOM,
    FORMAT_PROBE_LINES,
    Chunk,
    Source,
    SourceFailed,
    check_start_problem,
    first_line_of,
    format_hint,
    line_hash,
    read_sources,
)
from cdpcli.wire import DEFAULT_BATCH_BYTES, MAX_BATCH_CALLS, MAX_REQUEST_BYTES

if TYPE_CHECKING:
    from cdpcli.importing.order import PhaseFilter
    from cdpcli.importing.shard import Shard
    from cdpcli.target import Target


@dataclass
class ImportOptions:
    default_type: str | None = None
    concurrency: int = 16
    batch_bytes: int = DEFAULT_BATCH_BYTES
    batch_events: int = MAX_BATCH_CALLS
    rate: float = 1000.0
    rejects: str = DEFAULT_REJECTS
    rejects_explicit: bool = False  # --rejects was given (a symlink there is followed)
    checkpoint: str | None = None
    dry_run: bool = False  # validate and batch; show each request (ImportEvents.dry_run), send none
    linger: float = 1.0  # seconds without new input before a partial batch goes
    max_invalid: int | None = None
    checkpoint_every: float = 1.0  # seconds between checkpoint saves
    # inputs (#14)
    archive: str | None = None  # "segment" or "rudderstack": drop that archive's envelope keys
    csv_columns: dict[str, str] = field(default_factory=dict)  # CSV column -> destination (dotted)
    infer_types: bool = False  # CSV cells that look like numbers or booleans become them
    # choosing what to send (select.py); lines left out are skipped, by reason
    types: list[str] | None = None
    events: list[str] | None = None
    exclude_events: list[str] | None = None
    since: datetime | None = None  # calls timestamped at or after this
    until: datetime | None = None  # and before this
    sample: float | None = None  # the share of calls kept, chosen by a hash of the messageId
    limit: int | None = None  # stop after this many calls
    # calls timestamped in the last 72 hours: "warn" (counted in ImportResult.recent), "skip"
    # (skipped, reason --recent), "fail" (rejected, reason "recent"); None: not looked at
    recent: str | None = "warn"
    now: datetime | None = None  # the clock of --recent (None: the time the import starts)
    write_rejects: bool = True  # False: invalid lines are counted, never written (--preflight)
    # past one machine (#15)
    shard: Shard | None = None  # send only this shard's share (shard.py)
    rate_auto: bool = False  # adapt the rate to the API's 429s, starting at `rate` (delivery.py)
    order: str = "none"  # or "phased" (order.py): identify/group, then track…, alias, deletes
    # makes the Preparer from default_type (None: Preparer itself); cdp's operations (issue 12)
    # turn each line of ids into its call first (cdpcli.operations.OperationPreparer)
    preparer: Callable[[str | None], Preparer] | None = None


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
    skipped_reasons: dict[str, int] = field(default_factory=dict)  # by the user's choice (filters, headers)
    started: float = field(default_factory=time.monotonic)
    phase: str = ""  # --order phased: "2/4 track, page, screen" while that phase is sent

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


def check_limits(batch_bytes: int, batch_events: int, concurrency: int, rate: float) -> None:
    if not 1_000 <= batch_bytes <= MAX_REQUEST_BYTES:
        raise UsageError(
            f"--batch-bytes must be between 1,000 and {MAX_REQUEST_BYTES:,} (the API's limit), not {batch_bytes:,}"
        )
    if not 1 <= batch_events <= MAX_BATCH_CALLS:
        raise UsageError(f"--batch-events must be between 1 and {MAX_BATCH_CALLS:,}, not {batch_events:,}")
    if not 1 <= concurrency <= 256:
        raise UsageError(f"--concurrency must be between 1 and 256, not {concurrency}")
    check_rate(rate, "--rate")


class Importer:
    """One import: the packer loop (this thread), the reader thread, the senders (Delivery),
    the checkpoint timer; `run()` returns the ImportResult. `interrupt()` (Ctrl-C, SIGTERM):
    the first stops reading and lets requests in flight finish; a second stops waiting."""

    def __init__(
        self, target: Target, sources: list[Source], options: ImportOptions, events: ImportEvents | None = None
    ) -> None:
        self.target = target
        self.events = events or ImportEvents()
        self.sources = sources
        self.options = options
        self.stats = Stats()
        self.stop = threading.Event()  # stop reading and sending new requests
        self.stop_reading = threading.Event()  # stop reading; what is packed is still delivered
        self.fatal: CdpError | None = None
        self.interrupted = False
        self.abandoned = 0  # requests in flight not waited for (a second Ctrl-C)
        self._give_up = threading.Event()  # a second Ctrl-C: stop waiting for the senders
        self.checkpoint, self.rejects, self.start_phase = open_outputs(sources, options)
        self.phaser: PhaseFilter | None = None
        self.settlement = Settlement(sources)
        self.settlement.phase = self.start_phase
        self.saver = CheckpointSaver(self.checkpoint, self.settlement, self.rejects, sources)
        self.delivery = Delivery(self) if not options.dry_run else None
        self.stats_lock = threading.Lock()
        self._seq = 0
        self._first_bytes: dict[int, bytes] = {}  # each source's first bytes, for format hints
        self._judged = [0] * len(sources)  # per source: lines judged valid or invalid so far
        self._invalid_in = [0] * len(sources)  # per source: of which invalid

    # packer (main thread) --------------------------------------------------------------------

    def run(self) -> ImportResult:
        preparer = (self.options.preparer or Preparer)(self.options.default_type)
        shard = self.options.shard
        self.line_shard = shard if shard is not None and shard.by == "line" else None
        self.select = Selector(self.options, preparer, self.stop_reading.set) if wanted(self.options) else None
        self.phaser = None
        spooled: list[str] = []
        if self.options.order == "phased":
            from cdpcli.importing.order import PhaseFilter

            inner = self.select.prepare if self.select is not None else preparer.prepare
            self.phaser = PhaseFilter(inner, self.options.default_type, self.start_phase, len(self.sources))
        # a little slack for the senders; more would only hold memory (each batch ~0.6 MB)
        batches: queue.Queue = queue.Queue(maxsize=4)
        senders: list[threading.Thread] = []
        saver = None
        try:
            if self.phaser is not None:
                self._spool(spooled)
            senders = self.delivery.start(batches) if self.delivery else []
            self.events.started(self.stats, sum(s.size or 0 for s in self.sources) or None)
            if self.checkpoint.path and not self.options.dry_run:
                saver = self.saver.start(self.options.checkpoint_every, self.stop_with)
            # pydantic, typer and httpx leave ~26k long-lived objects that every full collection
            # would scan again while the hot loop allocates; freezing them cut ~20 % of its time
            gc.freeze()
            if self.phaser is None:
                self._read_all(preparer, batches)
            else:
                self._read_phases(preparer, batches)
        except FatalStop as exc:
            self.stop_with(exc)
        except BaseException:
            self.stop_reading.set()
            self.stop.set()
            raise
        finally:
            try:
                self._finish(senders, batches, saver)
                self.events.finished()
            finally:
                for path in spooled:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        return self._result()

    def _read_all(self, preparer: Preparer, batches: queue.Queue) -> None:
        """One pass over the sources: read, pack, ship (FatalStop raised)."""
        chunks: queue.Queue = queue.Queue(maxsize=4)  # 4 MB of input at most
        reader = threading.Thread(
            target=read_sources,
            args=(self.sources, chunks, self.stop_reading, self._count_bytes, csv_mapping(self.options)),
            name="cdp-reader",
            daemon=True,
        )
        reader.start()
        batch = Batch()
        current = -1
        last_input = time.monotonic()
        item = None
        try:
            while True:
                try:
                    item = chunks.get(timeout=0.1)
                except queue.Empty:
                    if self.stop_reading.is_set():
                        break
                    if batch.calls and time.monotonic() - last_input >= self.options.linger:
                        batch = self._ship(batch, batches)  # quiet input: let the partial batch go
                        self.settlement.handled(current, self.settlement.last_handled[current], batch)
                    continue
                if item is _END or self.stop_reading.is_set():
                    break
                if isinstance(item, SourceFailed):  # unreadable after its retries: one reject, go on
                    self.reject(item.source, item.line_no, item.error, b"")
                    self.stats.read += 1
                    self.stats.invalid += 1
                    self.stats.invalid_reasons["unreadable"] = self.stats.invalid_reasons.get("unreadable", 0) + 1
                    continue
                if isinstance(item, CdpError):  # the input cannot be read on (truncated, corrupt)
                    self.stop_with(item, sending=False)  # what came before it is still delivered
                    break
                if isinstance(item, BaseException):
                    raise item
                last_input = time.monotonic()
                if item.source != current:
                    current = item.source
                    preparer.for_source(self.sources[current])
                preparer.tick()
                batch = self._pack(item, batch, batches, preparer)
        finally:
            if item is not _END:  # stopped early: the reader may be waiting on a full queue
                release_reader(chunks, self.stop_reading)
        if batch.calls and not self.stop.is_set():
            batch = self._ship(batch, batches)
            self.settlement.handled(current, self.settlement.last_handled[current], batch)

    def _read_phases(self, preparer: Preparer, batches: queue.Queue) -> None:
        """--order phased: one pass per phase, each once every call of the one before is settled."""
        from cdpcli.importing.order import PHASES

        phaser = self.phaser
        assert phaser is not None
        for phase in range(self.start_phase, len(PHASES)):
            if phase != self.start_phase:
                self.settlement.next_phase(phase)
                phaser.phase, phaser.first = phase, False
                self.save_checkpoint()
            self.stats.phase = f"{phase + 1}/{len(PHASES)} {PHASES[phase]}"
            self.events.phase(phase, PHASES[phase])
            if self.stop_reading.is_set():
                return
            self._read_all(preparer, batches)
            if self.stop_reading.is_set():
                return  # stopped (interrupted, --max-invalid, an error): this phase resumes
            if not self.settlement.wait_idle(self.stop.is_set):
                return

    def _spool(self, spooled: list[str]) -> None:
        """--order phased reads every input once per phase: stdin and iterables go to a
        private temporary file first."""
        from cdpcli.importing.order import spool

        for source in self.sources:
            if source.items is not None or source.name == "-":
                self.events.note(
                    f"--order phased: copying {source.label} to a private temporary file first (it is read once per phase)"
                )
                spooled.append(spool(source))

    def _finish(self, senders: list[threading.Thread], batches: queue.Queue, saver: threading.Thread | None) -> None:
        """Let the senders finish (unless a second Ctrl-C gives up on them), then put the
        rejects on disk and save the checkpoint of what is truly settled."""
        for _ in senders:
            while True:  # never block for good: a sender may be gone
                try:
                    batches.put(None, timeout=0.1)
                    break
                except queue.Full:
                    if self._give_up.is_set() or not any(t.is_alive() for t in senders):
                        break
        for thread in senders:
            while thread.is_alive() and not self._give_up.is_set():
                thread.join(timeout=0.1)
        if self._give_up.is_set() and self.delivery:
            with self.stats_lock:
                self.abandoned = self.delivery.in_flight
        if saver is not None:
            self.saver.stop()
        try:
            self.save_checkpoint()
        except FatalStop as exc:
            self.stop_with(exc)
        finally:
            try:
                self.rejects.close()
            except FatalStop as exc:
                self.stop_with(exc)
            self.checkpoint.release()

    def _pack(self, chunk: Chunk, batch: Batch, batches: queue.Queue, preparer: Preparer) -> Batch:
        """Validate a chunk's lines into batches; returns the batch being filled. The hot loop:
        the batch's fields live in locals while it fills."""
        source = chunk.source
        skip = self.sources[source].skip
        prepare = self.select.prepare_for(chunk.data) if self.select is not None else preparer.prepare
        phaser = self.phaser
        if phaser is not None:  # --order phased: the phase filter skips what is settled
            phaser.skip = skip if phaser.first else 0
            phaser.source = source
            skip = 0
            prepare = phaser.prepare
        max_bytes, max_calls = self.options.batch_bytes, self.options.batch_events
        origin = source << REF_SHIFT  # | the line number: see REF_SHIFT
        lines = chunk.data.split(b"\n")
        if chunk.first_line == 1:
            if lines[0].startswith(BOM):  # a UTF-8 byte order mark (Windows exports): not data
                lines[0] = lines[0][3:]
            if not self._check_start(source, lines[0].strip()):
                return batch
        line_shard = self.line_shard
        if line_shard is None:
            preparer.careful = needs_plain_path(chunk.data)
        else:
            lines = line_shard.mask(lines, chunk.first_line)  # counted as --shard below
            # the per-chunk look-ahead (~1.5 µs a line's worth) over this shard's lines only:
            # over the whole chunk, every shard paid it for every line
            preparer.careful = needs_plain_path(b"\n".join(lines))
        blank = skipped = other = 0
        by_type = self.stats.by_type
        line_no = chunk.first_line - 1
        calls, refs, filled = batch.calls, batch.refs, batch.size
        try:
            for raw in lines:
                line_no += 1
                if line_no <= skip:
                    skipped += 1
                    continue
                line = raw.strip()
                if not line:
                    blank += 1
                    continue
                try:
                    ready = prepare(line_no, line)
                except LimitReached:  # --limit: this line is not read (the next run starts here)
                    line_no -= 1
                    break
                except SkipLine as exc:  # left out by the user's choice: settled, never rejected
                    skipped += 1
                    reasons = self.stats.skipped_reasons
                    reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
                    continue
                except OtherPhase as exc:  # --order phased: sent in its own phase's pass
                    if exc.settled:
                        skipped += 1  # by an earlier run
                    else:
                        other += 1
                    continue
                except InvalidLine as exc:
                    # lines of this chunk before this one that were judged (valid or invalid)
                    judged_before = line_no - chunk.first_line - blank - skipped - other
                    if self._invalid(source, line_no, exc, line, judged_before):
                        break  # stopping (--max-invalid, or not NDJSON): this line is handled
                    continue
                size = len(ready) + 1  # and a comma
                if calls and (filled + size > max_bytes or len(calls) >= max_calls):
                    batch.size = filled
                    batch = self._ship(batch, batches)
                    calls, refs, filled = batch.calls, batch.refs, batch.size
                calls.append(ready)
                refs.append(origin | line_no)
                filled += size
                kind = preparer.last_type
                by_type[kind] = by_type.get(kind, 0) + 1
        except FatalStop:
            line_no -= 1  # its reject is not written: not handled
            raise
        finally:
            batch.size = filled
            if phaser is not None and not phaser.first:
                # a later phase's pass: the first pass counted its lines as read, and its
                # blank and other shards' lines; only what this phase's lines became is new
                self._judged[source] += line_no - chunk.first_line + 1 - blank - skipped - other
                self.stats.skipped += skipped
            else:
                if line_shard is not None:  # the other shards' lines passed as blank ones: skipped
                    foreign = line_shard.foreign(max(chunk.first_line, skip + 1), line_no)
                    blank -= foreign
                    skipped += foreign
                    if foreign:
                        reasons = self.stats.skipped_reasons
                        reasons["--shard"] = reasons.get("--shard", 0) + foreign
                self.stats.read += line_no - chunk.first_line + 1
                self._judged[source] += line_no - chunk.first_line + 1 - blank - skipped - other
                self.stats.blank += blank
                self.stats.skipped += skipped
            self.settlement.handled(source, line_no, batch)
        return batch

    def _invalid(self, source: int, line_no: int, exc: InvalidLine, line: bytes, judged_before: int) -> bool:
        """Record an invalid line; True when the import must stop reading here.
        `judged_before`: lines of the current chunk before this one that were judged."""
        stats = self.stats
        label = self.sources[source].label
        self.reject(source, line_no, str(exc), line if exc.input is None else exc.input)
        stats.invalid += 1
        stats.invalid_reasons[exc.reason] = stats.invalid_reasons.get(exc.reason, 0) + 1
        if exc.reason != "recent":  # a valid call left out by --recent fail: not a format problem
            self._invalid_in[source] += 1
        every_one_invalid = self._judged[source] + judged_before + 1 == self._invalid_in[source]
        if self._invalid_in[source] == FORMAT_PROBE_LINES and every_one_invalid:
            # this source is not NDJSON; what other sources gave is still delivered
            self.stop_with(
                UsageError(
                    f"the first {FORMAT_PROBE_LINES} lines of {label} are all invalid: is it NDJSON (one JSON call per line)?",
                    hint=format_hint(self.sources[source], self._first_bytes.get(source, b"")),
                ),
                sending=False,
            )
            return True
        limit = self.options.max_invalid
        if limit is not None and stats.invalid >= limit:
            # lines packed so far are still delivered: only reading stops
            self.stop_with(
                FatalStop(
                    f"{stats.invalid:,} invalid lines: stopped at --max-invalid {limit:,}",
                    hint="fix the input (see the rejects file), then run the same command again",
                ),
                sending=False,
            )
            return True
        return False

    def reject(self, source: int, line_no: int, error: str, line: bytes, shown: str | None = None) -> None:
        """Write the line's rejects record (FatalStop when it cannot be), and tell the front end
        unless an earlier run wrote it already."""
        if self.rejects.add(self.sources[source], line_no, error, line):
            self.events.rejected(f"{self.sources[source].label}:{line_no}: {shown or error}")

    def _check_start(self, source_index: int, line: bytes) -> bool:
        """A source's first line, as it is read: False (and the import stops, with its
        summary) when the source cannot be imported. File sources were checked before
        anything was sent (check_start_problem); this catches stdin and a file changed since."""
        source = self.sources[source_index]
        self._first_bytes[source_index] = line[:8]
        problem = check_start_problem(source, line, self.options.checkpoint)
        if problem:
            self.stop_with(problem)
            return False
        self.settlement.first_hash[source_index] = line_hash(line)
        return True

    def _ship(self, batch: Batch, batches: queue.Queue) -> Batch:
        """Hand a full (or lingering) batch to the senders; returns the next, empty one."""
        self._seq += 1
        batch.seq = self._seq
        self.settlement.opened(batch)
        if self.delivery is None:  # a dry run: the request is shown, not sent
            self.events.dry_run(
                BatchRequest(f"{self.target.base}/batch", self.target.headers(), batch, self.target.gzip)
            )
            self.stats.batches += 1
            self.settlement.closed(batch)
            return Batch()
        while not self.stop.is_set():  # stopping: the batch stays open, so it is not lost
            try:
                batches.put(batch, timeout=0.2)
                break
            except queue.Full:
                continue
        return Batch()

    def _count_bytes(self, count: int) -> None:
        if self.phaser is None or self.phaser.first:  # a later phase reads the same bytes again
            self.stats.bytes_read += count

    def save_checkpoint(self) -> None:
        if not self.options.dry_run:
            self.saver.save()

    def stop_with(self, error: CdpError, *, sending: bool = True) -> None:
        """Record why the import stops (the first reason wins); stop reading, and unless
        `sending` is false, stop sending too."""
        with self.stats_lock:
            # after a second Ctrl-C, a sender still running may fail on the closed rejects
            # file: the import was interrupted, and that is what it reports
            if self.fatal is None and not self._give_up.is_set():
                self.fatal = error
        self.stop_reading.set()
        if sending:
            self.stop.set()

    def interrupt(self) -> bool:
        """Ctrl-C or SIGTERM: the first stops reading and sending new requests (those in flight
        finish, their calls settle); a second stops waiting for them (the checkpoint leaves them
        for the next run). True for the first."""
        if self.interrupted:
            self._give_up.set()
            return False
        self.interrupted = True
        self.stop_reading.set()
        self.stop.set()
        return True

    def _exit_code(self) -> int:
        if self.fatal:
            return int(self.fatal.exit_code)
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        if self.stats.invalid or self.stats.failed:
            return int(ExitCode.ERROR)
        return int(ExitCode.OK)

    def _result(self) -> ImportResult:
        adaptive = self.delivery.adaptive if self.delivery else None
        counts = self.stats.summary()
        if self.options.dry_run:  # nothing is sent: the valid calls are checked, not left unsettled
            counts["unsettled"] = 0
        return ImportResult(
            **counts,
            exit_code=self._exit_code(),
            error=self.fatal,
            interrupted=self.interrupted,
            abandoned=self.abandoned,
            dry_run=self.options.dry_run,
            rejects_path=self.rejects.path,
            rejects_written=self.rejects.count,
            checkpoint=self.options.checkpoint,
            shard=shard_label(self.options.shard),
            throttled=adaptive.throttled if adaptive else 0,
            rate_reached=self.delivery.rate.rate if adaptive and self.delivery else None,
            recent=self.select.recent if self.select is not None else 0,
            recent_mode=self.options.recent,
        )


class UnwrittenRejects(Rejects):
    """Rejects counted, never written (--preflight)."""

    def add(self, source: Source, line_no: int, error: str, line: bytes) -> bool:
        self.count += 1
        return True

    def close(self) -> None:
        pass


def csv_mapping(options: ImportOptions) -> CsvMapping:
    return CsvMapping(options.default_type, options.csv_columns, options.infer_types)


def release_reader(chunks: queue.Queue, stop_reading: threading.Event) -> None:
    """An import that stops early (--limit, --max-invalid, a rejected key) leaves the reader
    thread blocked on a full queue, holding its file or generator: in a long-lived process
    (an Airflow or Dask worker) one leaked per import. Told to stop, and its queue emptied, it
    ends at its next put; a queue that stays empty for a moment means it is not blocked there."""
    stop_reading.set()
    while True:
        try:
            chunks.get(timeout=0.05)
        except queue.Empty:
            return


def open_outputs(sources: list[Source], options: ImportOptions) -> tuple[Checkpoint, Rejects, int]:
    """Before anything is sent: the checkpoint taken (locked, applied to the sources), every
    file's start checked against it, the rejects file checked, and the checkpoint saved once."""
    checkpoint = Checkpoint(options.checkpoint)
    try:
        checkpoint.bind_shard(shard_label(options.shard))
        phase = checkpoint.bind_order(options.order)
        checkpoint.apply(sources)
        for source in sources:
            if source.is_file and source.version is None:  # an object's version was compared (apply)
                try:
                    problem = check_start_problem(
                        source, first_line_of(source, csv_mapping(options)), options.checkpoint
                    )
                except OSError as exc:
                    problem = UsageError(f"cannot read {source.label}: {exc.strerror or exc}")
                if problem:
                    raise problem
        # an earlier run with this checkpoint may have written rejects for lines past its
        # settled point (the checkpoint exists from the start of a run: see below)
        rejects = (Rejects if options.write_rejects else UnwrittenRejects)(
            options.rejects,
            explicit=options.rejects_explicit,
            sources=sources,
            resuming=checkpoint.existed,
            shard=shard_label(options.shard),
        )
        if not options.dry_run:
            rejects.check()
            if options.checkpoint:
                # saved at once: a run killed in its first second is still known as resumed
                # by the next (its rejects are then not written twice), and a path that
                # cannot be written is a usage error before anything is sent
                try:
                    checkpoint.save(sources, [s.skip for s in sources], [s.first_line_hash for s in sources])
                except OSError as exc:
                    raise UsageError(
                        f"--checkpoint {options.checkpoint}: cannot write it ({exc.strerror or exc})",
                        hint="check that its directory exists and is writable",
                    ) from None
    except BaseException:
        checkpoint.release()
        raise
    return checkpoint, rejects, phase

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

import os
import queue
import threading
import time
from typing import TYPE_CHECKING

from cdpcli.errors import CdpError, FatalStop, UsageError
from cdpcli.importing.batches import Batch
from cdpcli.importing.checkpoint import Checkpoint, CheckpointSaver, Settlement
from cdpcli.importing.csvrows import CsvMapping
from cdpcli.importing.events import ImportEvents, ImportResult
from cdpcli.importing.options import ImportOptions
from cdpcli.importing.order import PHASES, PhaseFilter, spool
from cdpcli.importing.outbox import DryRun, Outbox
from cdpcli.importing.packer import Packer
from cdpcli.importing.prepare import Preparer
from cdpcli.importing.rejects import Rejects
from cdpcli.importing.select import Selector, selection_of, wanted
from cdpcli.importing.settle import Settle
from cdpcli.importing.shard import shard_label
from cdpcli.importing.share import share_for
from cdpcli.importing.sources import (
    _END,
    Source,
    SourceFailed,
    check_start_problem,
    first_line_of,
    read_sources,
)
from cdpcli.importing.stats import Stats
from cdpcli.importing.stopping import Stopping
from cdpcli.importing.vendors import chunk_converter

if TYPE_CHECKING:
    from cdpcli.importing.delivery import Delivery
    from cdpcli.importing.identities import IdentityMap
    from cdpcli.target import Target


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
        self.stopping = Stopping()
        self.stop = self.stopping.stop  # stop reading and sending new requests
        self.stop_reading = self.stopping.stop_reading  # stop reading; what is packed is still delivered
        self.stop_with = self.stopping.stop_with
        self.abandoned = 0  # requests in flight not waited for (a second Ctrl-C)
        self.checkpoint, self.rejects, self.start_phase = open_outputs(sources, options)
        if self.checkpoint.left_out:
            self.events.note(left_out_note(self.checkpoint.left_out))
        self.phaser: PhaseFilter | None = None
        self.settlement = Settlement(sources)
        self.settlement.phase = self.start_phase
        self.saver = CheckpointSaver(self.checkpoint, self.settlement, self.rejects, sources)
        self.port = Settle(self.stats, self.settlement, self.stop, self.stop_with, self.reject)
        self.delivery: Delivery | None = None
        if not options.dry_run:
            # the senders bring httpx (~9 MiB and ~140 modules): a dry run or preflight never loads it
            from cdpcli.importing.delivery import Delivery  # lazy: start-up

            self.delivery = Delivery(target, options, self.port, self.events)
        self.select: Selector | None = None
        self.convert = chunk_converter(options.archive)  # a vendor's mapping, in the reader thread
        self.identities: IdentityMap | None = None
        if options.resolve_identities:
            # sqlite3 and the identity map: ~1.5 ms of every other import's start-up
            from cdpcli.importing.identities import IdentityMap  # lazy: start-up

            self.identities = IdentityMap()

    # packer (main thread) --------------------------------------------------------------------

    def run(self) -> ImportResult:
        # a little slack for the senders; more would only hold memory (each batch ~0.6 MB)
        batches: queue.Queue = queue.Queue(maxsize=4)
        dry_run = DryRun(self.target, self.events, self.stats) if self.delivery is None else None
        packer = self._packer(Outbox(self.settlement, self.stop, batches, dry_run))
        senders: list[threading.Thread] = []
        saver = None
        spooled: list[str] = []
        try:
            spooled = before_reading(self.sources, self.options, self.events, self.identities, self.stop_reading)
            senders = self.delivery.start(batches) if self.delivery else []
            self.share = share_for(self.sources, self.phaser)
            self.stats.settled_share = self.share.measured(self.settlement)  # no cycle back to self
            self.events.started(self.stats, self.share.total)
            if self.checkpoint.path and not self.options.dry_run:
                saver = self.saver.start(self.options.checkpoint_every, self.stop_with)
            if self.phaser is None:
                self._read_all(packer)
            else:
                self._read_phases(packer)
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
                after_reading(spooled, self.identities)
        return self._result()

    def _packer(self, outbox: Outbox) -> Packer:
        """The preparer, with the filters and the phases around it when asked for, and the
        packer that runs it over every chunk."""
        preparer = make_preparer(self.options, self.identities)
        self.select = Selector(self.options, preparer, self.stop_reading.set) if wanted(self.options) else None
        if self.select is not None and self.identities is not None:
            self.select.user_of = self.identities.user_of
        self.phaser = None
        if self.options.order == "phased":
            inner = self.select.prepare if self.select is not None else preparer.prepare
            self.phaser = PhaseFilter(inner, self.options.default_type, self.start_phase, len(self.sources))
        return Packer(
            self.sources,
            self.options,
            self.stats,
            self.settlement,
            preparer,
            ship=outbox.ship,
            reject=self.reject,
            stop_with=self.stop_with,
            select=self.select,
            phaser=self.phaser,
            note=self.events.note,
        )

    def _read_all(self, packer: Packer) -> None:
        """One pass over the sources: read, pack, ship (FatalStop raised)."""
        chunks: queue.Queue = queue.Queue(maxsize=4)  # 4 MB of input at most
        reader = threading.Thread(
            target=read_sources,
            args=(self.sources, chunks, self.stop_reading, self._count_bytes, csv_mapping(self.options), self.convert),
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
                        batch = packer.ship(batch)  # quiet input: let the partial batch go
                        self.settlement.handled(current, self.settlement.last_handled[current], batch)
                    continue
                if item is _END or self.stop_reading.is_set():
                    break
                if isinstance(item, SourceFailed):  # unreadable after its retries: one reject, go on
                    packer.unreadable(item)
                    continue
                if isinstance(item, CdpError):  # the input cannot be read on (truncated, corrupt)
                    self.stop_with(item, sending=False)  # what came before it is still delivered
                    break
                if isinstance(item, BaseException):
                    raise item
                last_input = time.monotonic()
                self.share.saw(item)
                if item.source != current:
                    current = item.source
                    packer.preparer.for_source(self.sources[current])
                packer.preparer.tick()
                batch = packer.pack(item, batch)
        finally:
            if item is not _END:  # stopped early: the reader may be waiting on a full queue
                release_reader(chunks, self.stop_reading)
        if batch.calls and not self.stop.is_set():
            batch = packer.ship(batch)
            self.settlement.handled(current, self.settlement.last_handled[current], batch)

    def _read_phases(self, packer: Packer) -> None:
        """order phased: one pass per phase, each once every call of the one before is settled."""
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
            self._read_all(packer)
            if self.stop_reading.is_set():
                return  # stopped (interrupted, max_invalid, an error): this phase resumes
            if not self.settlement.wait_idle(self.stop.is_set):
                return

    def _finish(self, senders: list[threading.Thread], batches: queue.Queue, saver: threading.Thread | None) -> None:
        """Let the senders finish (unless a second Ctrl-C gives up on them), then put the
        rejects on disk and save the checkpoint of what is truly settled."""
        if self.delivery is not None:
            self.abandoned = self.delivery.finish(senders, batches, self.stopping.give_up)
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

    def reject(self, source: int, line_no: int, error: str, line: bytes, shown: str | None = None) -> None:
        """Write the line's rejects record (FatalStop when it cannot be), and tell the front end
        unless an earlier run wrote it already."""
        if self.rejects.add(self.sources[source], line_no, error, line):
            self.events.rejected(f"{self.sources[source].label}:{line_no}: {shown or error}")

    def _count_bytes(self, count: int) -> None:
        if self.phaser is None or self.phaser.first:  # a later phase reads the same bytes again
            self.stats.bytes_read += count

    def save_checkpoint(self) -> None:
        if not self.options.dry_run:
            self.saver.save()

    def interrupt(self) -> bool:
        """Ctrl-C or SIGTERM (Stopping.interrupt): True for the first."""
        return self.stopping.interrupt()

    def _result(self) -> ImportResult:
        adaptive = self.delivery.adaptive if self.delivery else None
        counts = self.stats.summary()
        if self.options.dry_run:  # nothing is sent: the valid calls are checked, not left unsettled
            counts["unsettled"] = 0
        return ImportResult(
            **counts,
            exit_code=self.stopping.exit_code(self.stats),
            error=self.stopping.fatal,
            interrupted=self.stopping.interrupted,
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
            identities=self.identities.stats.as_dict() if self.identities is not None else None,
        )


def make_preparer(options: ImportOptions, identities: IdentityMap | None) -> Preparer:
    """The import's Preparer: marker lines read when a vendor's converter makes the lines,
    each prepared call given its resolved userId under resolve_identities."""
    preparer = (options.preparer or Preparer)(options.default_type)
    if identities is not None:
        from cdpcli.importing.identities import rewriting  # lazy: start-up (see Importer)

        preparer.prepare = rewriting(preparer.prepare, identities)  # type: ignore[method-assign,assignment]
    return preparer


def before_reading(
    sources: list[Source],
    options: ImportOptions,
    events: ImportEvents,
    identities: IdentityMap | None,
    stop: threading.Event,
) -> list[str]:
    """What reads the input more than once needs first: stdin and iterables spooled
    (order=phased, resolve_identities), and the identities learned (its first pass)."""
    spooled = spool_all(sources, events, stop) if options.order == "phased" or identities is not None else []
    if identities is not None:
        events.note("resolve_identities: reading the input once to learn who each anonymous id is")
        from cdpcli.importing.identities import learn_sources  # lazy: start-up (see Importer)

        learn_sources(identities, sources, chunk_converter(options.archive), csv_mapping(options))
    return spooled


def after_reading(spooled: list[str], identities: IdentityMap | None) -> None:
    """The private copies and the identity map removed."""
    if identities is not None:
        identities.close()
    for path in spooled:
        try:
            os.unlink(path)
        except OSError:
            pass


def left_out_note(left: list[str]) -> str:
    """What a resumed run says of inputs an earlier run began that it is not given."""
    if len(left) == 1:
        return (
            f"checkpoint: {left[0]}, which an earlier run began, is not among this run's inputs: "
            "its lines not yet sent, if any, are not sent by this run"
        )
    named = ", ".join(left[:3]) + (", …" if len(left) > 3 else "")
    return (
        f"checkpoint: {len(left):,} inputs an earlier run began are not among this run's ({named}): "
        "their lines not yet sent, if any, are not sent by this run"
    )


def spool_all(sources: list[Source], events: ImportEvents, stop: threading.Event) -> list[str]:
    """order phased reads every input once per phase: stdin and iterables go to a private
    temporary file first (each source's `spool` points at it); the files' paths."""
    spooled = []
    for source in sources:
        if source.read_once:  # stdin, a pipe or FIFO named as a file, an iterable
            events.note(
                f"order=phased: copying {source.label} to a private temporary file first (it is read once per phase)"
            )
            spooled.append(spool(source, stop.is_set))  # an interrupt stops the copy
    return spooled


class UnwrittenRejects(Rejects):
    """Rejects counted, never written (preflight)."""

    def add(self, source: Source, line_no: int, error: str, line: bytes) -> bool:
        self.count += 1
        return True

    def close(self) -> None:
        pass


def csv_mapping(options: ImportOptions) -> CsvMapping:
    return CsvMapping(options.default_type, options.csv_columns, options.infer_types, options.delimiter)


def release_reader(chunks: queue.Queue, stop_reading: threading.Event) -> None:
    """An import that stops early (limit, max_invalid, a rejected key) leaves the reader
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
        checkpoint.bind_selection(selection_of(options))
        checkpoint.apply(sources)
        for source in sources:
            if source.is_file and source.version is None:  # an object's version was compared (apply)
                try:
                    first = first_line_of(source, csv_mapping(options), chunk_converter(options.archive))
                    problem = check_start_problem(source, first, options.checkpoint)
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
                        f"checkpoint={options.checkpoint!r}: cannot write it ({exc.strerror or exc})",
                        hint="check that its directory exists and is writable",
                        option="checkpoint",
                    ) from None
    except BaseException:
        checkpoint.release()
        raise
    return checkpoint, rejects, phase

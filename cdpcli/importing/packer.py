"""The packer: the hot loop of an import, on the engine's main thread. Each chunk of lines the
reader hands over becomes prepared calls packed into batches (a full batch is shipped to the
senders); each line is counted once (read, blank, skipped by reason, invalid, or a valid call
by type), and the settlement learns how far the chunk was handled.

A chunk's lines are judged in one function whose batch fields live in locals while it fills:
per line, the loop costs what it did inside the engine (measured with benchmarks/import_ab.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cdpcli.errors import CdpError, FatalStop, UsageError
from cdpcli.importing.batches import REF_SHIFT, Batch
from cdpcli.importing.checkpoint import Settlement
from cdpcli.importing.options import ImportOptions
from cdpcli.importing.order import OtherPhase, PhaseFilter
from cdpcli.importing.prepare import InvalidLine, LimitReached, Preparer, SkipLine
from cdpcli.importing.select import Selector
from cdpcli.importing.shard import Shard
from cdpcli.importing.sources import (
    BOM,
    FORMAT_PROBE_LINES,
    Chunk,
    Source,
    SourceFailed,
    check_start_problem,
    format_hint,
    line_hash,
)
from cdpcli.importing.stats import Stats
from cdpcli.importing.vendors.sniff import sniff, sniff_advice, wrong_vendor_problem

# what the packer calls to reject a line: (source index, line number, reason, line)
RejectLine = Callable[[int, int, str, bytes], None]


class StopWith(Protocol):
    def __call__(self, error: CdpError, *, sending: bool = True) -> None:
        """Stop reading; and unless `sending` is false, stop sending too."""


class Packer:
    """Judges and packs the chunks of one import. `ship(batch)` hands a full batch on and
    returns the next, empty one; `stop_with(error, sending=…)` stops the import; `note(text)`
    tells the user something worth knowing (a Segment archive read without archive=)."""

    def __init__(
        self,
        sources: list[Source],
        options: ImportOptions,
        stats: Stats,
        settlement: Settlement,
        preparer: Preparer,
        *,
        ship: Callable[[Batch], Batch],
        reject: RejectLine,
        stop_with: StopWith,
        select: Selector | None = None,
        phaser: PhaseFilter | None = None,
        note: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.sources = sources
        self.options = options
        self.stats = stats
        self.settlement = settlement
        self.preparer = preparer
        self.ship = ship
        self.reject = reject
        self.stop_with = stop_with
        self.select = select
        self.phaser = phaser
        self.note = note
        self._noted_segment = False  # the Segment-archive note: once per run, not per source
        shard = options.shard
        self.line_shard: Shard | None = shard if shard is not None and shard.by == "line" else None
        self._first_bytes: dict[int, bytes] = {}  # each source's first bytes, for format hints
        self._judged = [0] * len(sources)  # per source: lines judged valid or invalid so far
        self._invalid_in = [0] * len(sources)  # per source: of which invalid

    def pack(self, chunk: Chunk, batch: Batch) -> Batch:
        """A chunk's lines judged and packed; the batch being filled (its fields live in locals;
        each call's origin packs the source and the line number: see REF_SHIFT)."""
        if (prepared := self._lines_of(chunk)) is None:
            return batch
        (lines, prepare, skip), source = prepared, chunk.source
        max_bytes, max_calls, origin = self.options.batch_bytes, self.options.batch_events, source << REF_SHIFT
        by_type, reasons, preparer = self.stats.by_type, self.stats.skipped_reasons, self.preparer
        blank = skipped = other = 0
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
                except LimitReached:  # limit: this line is not read (the next run starts here)
                    line_no -= 1
                    break
                except SkipLine as exc:  # left out by the user's choice: settled, never rejected
                    skipped += 1
                    reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
                    continue
                except OtherPhase as exc:  # order phased: sent in its own phase's pass
                    if exc.settled:
                        skipped += 1  # by an earlier run
                    else:
                        other += 1
                    continue
                except InvalidLine as exc:
                    # lines of this chunk before this one that were judged (valid or invalid)
                    judged_before = line_no - chunk.first_line - blank - skipped - other
                    if self._invalid(source, line_no, exc, line, judged_before):
                        break  # stopping (max_invalid, or not NDJSON): this line is handled
                    continue
                size = len(ready) + 1  # and a comma
                if calls and (filled + size > max_bytes or len(calls) >= max_calls):
                    batch.size = filled
                    batch = self.ship(batch)
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
            self._account(chunk, line_no, skip, blank, skipped, other)
            self.settlement.handled(source, line_no, batch)
        return batch

    def _lines_of(self, chunk: Chunk) -> tuple[list[bytes], Callable[[int, bytes], bytes], int] | None:
        """A chunk's lines, what prepares each, and how many leading lines of its source are
        settled already; None when the source cannot be imported (its first line)."""
        source = chunk.source
        skip = self.sources[source].skip
        preparer = self.preparer
        prepare = self.select.prepare_for(chunk.data) if self.select is not None else preparer.prepare
        phaser = self.phaser
        if phaser is not None:  # order phased: the phase filter skips what is settled
            phaser.reading(source, self.sources[source], skip)
            skip = 0
            prepare = phaser.prepare
        lines = chunk.data.split(b"\n")
        if chunk.first_line == 1:
            if lines[0].startswith(BOM):  # a UTF-8 byte order mark (Windows exports): not data
                lines[0] = lines[0][3:]
            if not self._check_start(source, lines[0].strip()):
                return None
        line_shard = self.line_shard
        if line_shard is None:
            preparer.look_ahead(chunk.data)
        else:
            lines = line_shard.mask(lines, chunk.first_line)  # counted as skipped (shard) below
            # the per-chunk look-ahead (~1.5 µs a line's worth) over this shard's lines only:
            # over the whole chunk, every shard paid it for every line
            preparer.look_ahead(b"\n".join(lines))
        return lines, prepare, skip

    def _account(self, chunk: Chunk, line_no: int, skip: int, blank: int, skipped: int, other: int) -> None:
        """Add what a chunk's lines up to `line_no` became to the counts."""
        stats, source = self.stats, chunk.source
        phaser, line_shard = self.phaser, self.line_shard
        if phaser is not None and not phaser.first:
            # a later phase's pass: the first pass counted its lines as read, and its
            # blank and other shards' lines; only what this phase's lines became is new
            self._judged[source] += line_no - chunk.first_line + 1 - blank - skipped - other
            stats.skipped += skipped
            return
        if line_shard is not None:  # the other shards' lines passed as blank ones: skipped
            foreign = line_shard.foreign(max(chunk.first_line, skip + 1), line_no)
            blank -= foreign
            skipped += foreign
            if foreign:
                stats.skipped_reasons["shard"] = stats.skipped_reasons.get("shard", 0) + foreign
        stats.read += line_no - chunk.first_line + 1
        self._judged[source] += line_no - chunk.first_line + 1 - blank - skipped - other
        stats.blank += blank
        stats.skipped += skipped

    def _invalid(self, source: int, line_no: int, exc: InvalidLine, line: bytes, judged_before: int) -> bool:
        """Record an invalid line; True when the import must stop reading here.
        `judged_before`: lines of the current chunk before this one that were judged."""
        stats = self.stats
        if exc.reason == "damaged":  # the rest of the source is lost: see Settlement.damage
            self.settlement.damaged(source, line_no)
        self.reject(source, line_no, str(exc), line if exc.input is None else exc.input)
        stats.invalid += 1
        stats.invalid_reasons[exc.reason] = stats.invalid_reasons.get(exc.reason, 0) + 1
        if exc.reason != "recent":  # a valid call left out by recent=fail: not a format problem
            self._invalid_in[source] += 1
        every_one_invalid = self._judged[source] + judged_before + 1 == self._invalid_in[source]
        if self._invalid_in[source] == FORMAT_PROBE_LINES and every_one_invalid:
            # this source is not NDJSON; what other sources gave is still delivered
            label = self.sources[source].label
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
                    f"{stats.invalid:,} invalid lines: stopped at max_invalid={limit:,}",
                    hint="fix the input (see the rejects file), then run the same import again",
                    option="max_invalid",
                ),
                sending=False,
            )
            return True
        return False

    def _vendor_problem(self, source: Source, line: bytes) -> UsageError | None:
        """Another tool's export read as calls (no archive= given), or as a vendor's that it is
        not (sniff.wrong_vendor_problem): every line would be rejected; say which archive=
        reads it instead. A Segment archive imports as it is:
        a note (once per run) says what archive=segment would drop. Judged on each source's
        first line as the reader hands it over: a second read of the input's start cost a
        re-open (and a GET of an S3 object) on every run."""
        if self.options.archive is not None or source.format == "csv":
            return wrong_vendor_problem(source.label, line, self.options.archive) if self.options.archive else None
        vendor = sniff([line])
        if vendor is None:
            return None
        message, hint = sniff_advice(source.label, vendor)
        if vendor != "segment":
            return UsageError(message, hint=hint, option="archive")
        if not self._noted_segment:
            self._noted_segment = True
            self.note(f"{message}; {hint}")
        return None

    def unreadable(self, failed: SourceFailed) -> None:
        """A source the reader could not read on after its retries: one reject for the line it
        stopped in, counted read and invalid. It stays unsettled, so a resumed run reads it again."""
        self.reject(failed.source, failed.line_no, failed.error, b"")
        self.stats.read += 1
        self.stats.invalid += 1
        self.stats.invalid_reasons["unreadable"] = self.stats.invalid_reasons.get("unreadable", 0) + 1

    def _check_start(self, source_index: int, line: bytes) -> bool:
        """A source's first line, as it is read: False (and the import stops, with its
        summary) when the source cannot be imported. File sources were checked before
        anything was sent (check_start_problem); this catches stdin and a file changed since."""
        source = self.sources[source_index]
        self._first_bytes[source_index] = line[:8]
        problem = check_start_problem(source, line, self.options.checkpoint) or self._vendor_problem(source, line)
        if problem:
            self.stop_with(problem)
            return False
        self.settlement.first_hash[source_index] = line_hash(line)
        return True

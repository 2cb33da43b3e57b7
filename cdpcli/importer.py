"""`cdp import`: stream NDJSON lines into /batch requests, fast, resumable, losing nothing.

Pipeline (threads, bounded queues, so memory stays flat for any input length):

    reader thread ──chunks of lines──▶ main thread: validate + splice + pack ──batches──▶ N senders

- The reader hands over whole lines in chunks as soon as they arrive (os.read returns what a
  pipe has), so a slow producer's lines are not held back; the packer sends a partial batch
  after `linger` seconds without new input.
- Validation uses the strict models on the raw bytes (pydantic's JSON parser); a valid line
  goes out as its original bytes with `messageId`, `timestamp` and `context.library` spliced
  in. Only lines the strict models refuse take the slow path (json.loads, lax models, dump);
  the lax verdict is final.
- Senders retry per transport.Sender; a 400 (or 413) on a batch is split in halves until the
  calls the API rejects are isolated; 401/403 stops everything.
- Every line ends settled exactly once: delivered, or in the rejects file with its reason.
  The checkpoint records, per source, how many leading lines are settled.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import queue
import re
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cdpcli.errors import ExitCode, UsageError
from cdpcli.wire import (
    DEFAULT_BATCH_BYTES,
    LIBRARY,
    MAX_BATCH_CALLS,
    MAX_CALL_BYTES,
    MAX_REQUEST_BYTES,
    Request,
    call_size,
    dumps,
    now_timestamp,
    with_library,
)

CHUNK_BYTES = 1 << 20
LIBRARY_FIELD = b'"library":' + dumps(LIBRARY).encode()
CONTEXT_FIELD = b',"context":{' + LIBRARY_FIELD + b"}}"
EMPTY_OBJECT_REST = re.compile(rb"\s*}")
# A JSON string token, and whether a colon follows it (then it is a key); linear time.
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"\s*(:?)')


def has_escaped_key(line: bytes) -> bool:
    """A key written with \\u escapes can hide "context" or "messageId" from byte-level
    splicing: such lines take the slow path."""
    return any(match[1] and b"\\u" in match[0] for match in JSON_STRING.finditer(line))
_BODY_HEAD = b'{"batch":['
_BODY_TAIL_LEN = len(b'],"sentAt":"2026-11-27T13:31:42.000Z"}')


class InvalidLine(Exception):
    """A line that cannot be sent; the message is what the rejects file and stderr say."""


# -- sources and the reader ----------------------------------------------------------------


@dataclass
class Source:
    name: str  # as typed: a path, or "-" for stdin
    label: str  # in messages and rejects: the path, or <stdin>
    id_seed: bytes  # what derived messageIds are made from, stable across re-runs
    size: int | None = None  # bytes, when known (files)
    skip: int = 0  # lines settled by an earlier run (checkpoint)
    first_line_hash: str | None = None  # what the checkpoint saw

    def open(self) -> BinaryIO:
        if self.name == "-":
            return sys.stdin.buffer
        return open(self.name, "rb", buffering=0)  # unbuffered: read() is one read(2) of CHUNK_BYTES


def make_sources(names: list[str]) -> list[Source]:
    sources = []
    for name in names or ["-"]:
        if name == "-":
            if sys.stdin is None or sys.stdin.isatty():
                raise UsageError(
                    "stdin is a terminal; cdp import reads NDJSON from files or a pipe",
                    hint="cdp import events.ndjson, or: cat events.ndjson | cdp import",
                )
            sources.append(Source("-", "<stdin>", b"<stdin>"))
            continue
        try:
            size = os.stat(name).st_size
            with open(name, "rb"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from None
        # the file name, not its directory, so `cdp import ./a.ndjson` and `cdp import a.ndjson`
        # (or the same file moved) derive the same messageIds
        sources.append(Source(name, name, os.path.basename(name).encode(), size=size))
    return sources


@dataclass
class Chunk:
    source: int
    first_line: int  # number of the first line in `data`
    data: bytes  # whole lines, newline-separated (no trailing newline)
    count: int


_END = object()


def read_sources(
    sources: list[Source], out: queue.Queue, stop: threading.Event, progress: Callable[[int], None]
) -> None:
    """Reader thread: whole lines in chunks, then _END; errors are put on the queue too."""
    try:
        for index, source in enumerate(sources):
            handle = source.open()
            # read1 returns what a pipe has (no waiting to fill the chunk): slow producers' lines
            # are seen at once
            read = getattr(handle, "read1", handle.read)
            line_no = 1
            tail = b""
            while not stop.is_set():
                data = read(CHUNK_BYTES)
                if not data:
                    break
                progress(len(data))
                cut = data.rfind(b"\n")
                if cut < 0:
                    tail += data
                    if len(tail) > 64 * CHUNK_BYTES:  # a 64 MB line is not NDJSON
                        raise UsageError(f"{source.label}:{line_no}: line longer than 64 MB; is this NDJSON?")
                    continue
                block = tail + data[:cut]
                tail = data[cut + 1 :]
                count = block.count(b"\n") + 1
                out.put(Chunk(index, line_no, block, count))
                line_no += count
            if tail and not stop.is_set():
                out.put(Chunk(index, line_no, tail, 1))
            if handle is not sys.stdin.buffer:
                handle.close()
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
        out.put(exc)
    out.put(_END)


# -- turning a line into a call ready to send ------------------------------------------------


class Preparer:
    """Validates one line and returns the bytes of the call to send (see module docstring)."""

    def __init__(self, default_type: str | None) -> None:
        from cdpcli import models

        self.models = models
        self.rules_hold = models.strict_rules_hold
        self.default_type = default_type
        # the core validators themselves: TypeAdapter's Python wrapper costs ~0.5 µs a line
        self.strict_any = models.adapter("any", "strict").validator
        self.strict_default = models.adapter(default_type, "strict").validator if default_type else None
        self.type_prefix = f'{{"type":"{default_type}",'.encode() if default_type else b"{"
        self._id_prefix = b""
        self.tick()

    def for_source(self, source: Source) -> None:
        self._id_prefix = b"cdp-" + hashlib.sha1(source.id_seed).hexdigest()[:10].encode() + b"-"

    def message_id(self, line_no: int, line: bytes) -> bytes:
        """Derived from (source, line number, line): a re-run sends the same ids.

        The line number makes ids unique within a source by construction, so the content only
        has to tell an edited line from the original: CRC-32 does that at a tenth of SHA-1's cost.
        """
        return b"%s%d-%08x" % (self._id_prefix, line_no, zlib.crc32(line))

    def tick(self) -> None:
        """Read the clock once per chunk of input: the timestamp of calls that have none."""
        self.now = now_timestamp()
        self.timestamp_field = b'"timestamp":"' + self.now.encode() + b'",'

    def prepare(self, line_no: int, line: bytes) -> bytes:
        """The bytes to send for one line, or InvalidLine. The hot path: keep it lean (each
        attribute lookup or call here costs ~1 % of an import's client time). Substrings are
        looked for with bytes.find: CPython 3.11's `sub in bytes` first tries `sub` as an int,
        raising and clearing a TypeError each time (~1,900 instructions)."""
        # without --type, a line with no "type" fails strict validation anyway: no need to look
        typed = self.strict_default is None or line.find(b'"type"') >= 0
        try:
            call = (self.strict_any if typed else self.strict_default).validate_json(line)
        except ValueError:  # pydantic_core.ValidationError is a ValueError
            return self._slow(line_no, line)
        if not self.rules_hold(call) or (line.find(b"\\u") >= 0 and has_escaped_key(line)):
            return self._slow(line_no, line)
        head = b"{" if typed else self.type_prefix
        if "messageId" not in call:
            head = b'%s"messageId":"%s",' % (head, self.message_id(line_no, line))
        if "timestamp" not in call:
            head += self.timestamp_field
        context = call.get("context")
        if context is None:
            if line.find(b'"context"') >= 0:  # a nested key, or an escaped top-level one: unsure
                return self._slow(line_no, line)
            ready = head + line[1:-1] + CONTEXT_FIELD
        else:
            at = line.find(b'"context"')
            if "library" in context or at < 0 or line.find(b'"context"', at + 9) >= 0:
                return self._slow(line_no, line)
            brace = line.index(b"{", at + 9) + 1  # validated: the value is an object
            glue = b"" if EMPTY_OBJECT_REST.match(line, brace) else b","
            ready = b"".join((head, line[1:brace], LIBRARY_FIELD, glue, line[brace:]))
        if len(ready) > MAX_CALL_BYTES // 3 and (len(ready) > MAX_CALL_BYTES or not ready.isascii()):
            # the API counts compact JSON with non-ASCII escaped (é is 6 bytes): measure exactly
            size = call_size(json.loads(ready))
            if size > MAX_CALL_BYTES:
                raise InvalidLine(f"call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,}")
        return ready

    def _slow(self, line_no: int, line: bytes) -> bytes:
        """Lines the strict models refuse: parse, validate with the lax models, re-serialise."""
        from pydantic import ValidationError

        try:
            data = json.loads(line)
        except ValueError as exc:
            raise InvalidLine(f"invalid JSON: {getattr(exc, 'msg', exc)} (column {getattr(exc, 'colno', '?')})") from None
        if not isinstance(data, dict):
            raise InvalidLine(f"expected a JSON object, got {type(data).__name__}")
        data = unwrap_reject(data)
        if "type" not in data and self.default_type:
            data["type"] = self.default_type
        try:
            call = self.models.validate_call(data)
        except ValidationError as exc:
            raise InvalidLine("; ".join(self.models.describe_errors(exc))) from None
        if not call.get("messageId"):
            call["messageId"] = self.message_id(line_no, line).decode()
        if not call.get("timestamp"):
            call["timestamp"] = self.now
        call["context"] = with_library(call.get("context"))
        size = call_size(call)
        if size > MAX_CALL_BYTES:
            raise InvalidLine(f"call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,}")
        return dumps(call).encode()


def unwrap_reject(data: dict[str, Any]) -> dict[str, Any]:
    """A line of a rejects file fed back to import: its `input` is the call (fixed or not)."""
    if "type" not in data and {"source", "line", "error", "input"} <= data.keys():
        inner = data["input"]
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except ValueError:
                raise InvalidLine("rejects record whose input is not JSON; fix its input first") from None
        if isinstance(inner, dict):
            return inner
    return data


# -- batches, settlement and checkpoints -----------------------------------------------------


# A call's origin as one int, `source index << REF_SHIFT | line number`: a (source, line)
# tuple per call kept the garbage collector busy (~0.75 µs a call); ints are not tracked.
REF_SHIFT = 40


def unref(packed: int) -> tuple[int, int]:
    return packed >> REF_SHIFT, packed & ((1 << REF_SHIFT) - 1)


@dataclass
class Batch:
    calls: list[bytes] = field(default_factory=list)
    refs: list[int] = field(default_factory=list)  # each call's origin (see REF_SHIFT)
    size: int = len(_BODY_HEAD) + _BODY_TAIL_LEN
    seq: int = 0

    def add(self, call: bytes, origin: int) -> None:
        self.size += len(call) + (1 if self.calls else 0)
        self.calls.append(call)
        self.refs.append(origin)

    def halves(self) -> tuple[Batch, Batch]:
        mid = len(self.calls) // 2
        first, second = Batch(seq=self.seq), Batch(seq=self.seq)
        for call, origin in zip(self.calls[:mid], self.refs[:mid]):
            first.add(call, origin)
        for call, origin in zip(self.calls[mid:], self.refs[mid:]):
            second.add(call, origin)
        return first, second


class BatchRequest(Request):
    """A /batch request whose body is joined from the calls' bytes at send time."""

    def __init__(self, url: str, headers: dict[str, str], batch: Batch, gzip: bool) -> None:
        super().__init__(url, headers, {}, gzip=gzip)
        self.batch = batch

    def body_bytes(self, sent_at: str | None = None) -> bytes:
        stamp = (sent_at or now_timestamp()).encode()
        return _BODY_HEAD + b",".join(self.batch.calls) + b'],"sentAt":"' + stamp + b'"}'

    def body(self, sent_at: str | None = None) -> dict[str, Any]:
        return json.loads(self.body_bytes(sent_at))


class Settlement:
    """Which lines are settled (delivered or rejected), for the checkpoint.

    Lines of a source are read in order, so its settled prefix ends just before the first
    line of its oldest batch still open (being filled, queued, in flight, or left unsent by an
    interruption), or at the last line handled when none is open.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.lock = threading.Lock()
        self.last_handled = [s.skip for s in sources]
        self.open: dict[int, dict[int, int]] = {}  # batch seq -> {source: its first line}
        self.first_hash: list[str | None] = [s.first_line_hash for s in sources]

    def handled(self, source: int, line_no: int) -> None:
        self.last_handled[source] = line_no  # only the packer (main thread) writes this

    def opened(self, batch: Batch) -> None:
        with self.lock:
            self.open[batch.seq] = _first_lines(batch)

    def closed(self, batch: Batch) -> None:
        with self.lock:
            self.open.pop(batch.seq, None)

    def settled(self, packing: Batch | None = None) -> list[int]:
        """Per source, how many leading lines are settled; `packing` is the batch being filled."""
        with self.lock:
            done = list(self.last_handled)
            firsts = list(self.open.values())
        if packing is not None:
            firsts.append(_first_lines(packing))
        for batch_firsts in firsts:
            for source, line_no in batch_firsts.items():
                done[source] = min(done[source], line_no - 1)
        return done


def _first_lines(batch: Batch) -> dict[int, int]:
    if not batch.refs:
        return {}
    first_source, first_line = unref(batch.refs[0])
    if unref(batch.refs[-1])[0] == first_source:  # sources are packed in order: one source
        return {first_source: first_line}
    firsts: dict[int, int] = {}
    for source, line_no in map(unref, batch.refs):
        firsts.setdefault(source, line_no)
    return firsts


class Checkpoint:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"version": 1, "sources": {}}
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    self.data = json.load(handle)
                assert isinstance(self.data.get("sources"), dict)
            except (OSError, ValueError, AssertionError):
                raise UsageError(
                    f"--checkpoint {path}: not a cdp checkpoint file",
                    hint="remove it to start from the beginning",
                ) from None

    def apply(self, sources: list[Source]) -> None:
        for source in sources:
            entry = self.data["sources"].get(source.name)
            if entry:
                source.skip = int(entry.get("settled", 0))
                source.first_line_hash = entry.get("first_line_sha256")

    def save(self, sources: list[Source], settled: list[int], hashes: list[str | None]) -> None:
        if not self.path:
            return
        for source, count, digest in zip(sources, settled, hashes):
            self.data["sources"][source.name] = {"settled": count, "first_line_sha256": digest}
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle)
        os.replace(tmp, self.path)


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


# -- rejects ---------------------------------------------------------------------------------


class Rejects:
    """Appends `{"source","line","error","input"}` records; the file is created on first use."""

    def __init__(self, path: str, echo: Callable[[str], None]) -> None:
        self.path = path
        self.echo = echo
        self.count = 0
        self._handle: Any = None
        self._lock = threading.Lock()

    def add(self, source: str, line_no: int, error: str, line: bytes) -> None:
        record = {"source": source, "line": line_no, "error": error, "input": line.decode("utf-8", "replace")}
        with self._lock:
            if self._handle is None:
                self._handle = open(self.path, "a", encoding="utf-8")
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.count += 1
        self.echo(f"{source}:{line_no}: {error}")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


# -- the import ------------------------------------------------------------------------------


@dataclass
class ImportOptions:
    default_type: str | None = None
    concurrency: int = 16
    batch_bytes: int = DEFAULT_BATCH_BYTES
    batch_events: int = MAX_BATCH_CALLS
    rate: float = 1000.0
    rejects: str = "cdp-rejects.ndjson"
    checkpoint: str | None = None
    progress: bool = False
    linger: float = 1.0


@dataclass
class Stats:
    read: int = 0
    skipped: int = 0
    sent: int = 0
    invalid: int = 0
    failed: int = 0
    batches: int = 0
    requests: int = 0
    retries: int = 0
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        return {
            "read": self.read,
            "skipped": self.skipped,
            "sent": self.sent,
            "invalid": self.invalid,
            "failed": self.failed,
            "batches": self.batches,
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(seconds, 3),
            "events_per_second": round(self.sent / seconds, 1) if seconds > 0 else 0.0,
        }


class RateLimiter:
    """At most `rate` request starts per second across all senders (a simple interval gate)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            time.sleep(start - now)


class Importer:
    def __init__(self, session: Any, sources: list[Source], options: ImportOptions) -> None:
        self.session = session
        self.out = session.out
        self.sources = sources
        self.options = options
        self.stats = Stats()
        self.stop = threading.Event()  # stop reading and sending new requests
        self.fatal: tuple[ExitCode, str, str | None] | None = None
        self.interrupted = False
        self.ever_delivered = False
        self.rejects = Rejects(options.rejects, self.out.problem)
        self.checkpoint = Checkpoint(options.checkpoint)
        self.checkpoint.apply(sources)
        self.settlement = Settlement(sources)
        self.url = f"{session.base}/batch"
        self.headers = session.headers()
        self._stats_lock = threading.Lock()
        self._seq = 0

    # packer (main thread) --------------------------------------------------------------------

    def run(self) -> int:
        preparer = Preparer(self.options.default_type)
        chunks: queue.Queue = queue.Queue(maxsize=4)  # 4 MB of input at most
        reader = threading.Thread(
            target=read_sources, args=(self.sources, chunks, self.stop, self._count_bytes), name="cdp-reader", daemon=True
        )
        # a little slack for the senders; more would only hold memory (each batch ~0.6 MB)
        batches: queue.Queue = queue.Queue(maxsize=4)
        senders = self._start_senders(batches)
        progress = self._start_progress()
        restore_signals = self._install_signal_handlers()
        # pydantic, typer and httpx leave ~26k long-lived objects that every full collection
        # would scan again while the hot loop allocates; freezing them cut ~20 % of its time
        gc.freeze()
        reader.start()
        batch = Batch()
        current = -1
        last_input = last_save = time.monotonic()
        try:
            while True:
                try:
                    item = chunks.get(timeout=0.1)
                except queue.Empty:
                    now = time.monotonic()
                    if self.stop.is_set():
                        break
                    if batch.calls and now - last_input >= self.options.linger:
                        batch = self._ship(batch, batches)  # quiet input: let the partial batch go
                    if self.checkpoint.path and now - last_save > 0.5:
                        self._save_checkpoint(batch)
                        last_save = now
                    continue
                if item is _END or self.stop.is_set():
                    break
                if isinstance(item, BaseException):
                    raise item
                last_input = time.monotonic()
                if item.source != current:
                    current = item.source
                    preparer.for_source(self.sources[current])
                preparer.tick()
                batch = self._pack(item, batch, batches, preparer)
                if self.checkpoint.path and last_input - last_save > 0.5:
                    self._save_checkpoint(batch)
                    last_save = last_input
            if batch.calls:
                batch = self._ship(batch, batches)
        except BaseException:
            self.stop.set()
            raise
        finally:
            for _ in senders:
                batches.put(None)
            for thread in senders:
                thread.join()
            if progress:
                progress.stop()
            self._save_checkpoint(batch)
            self.rejects.close()
            restore_signals()
        return self._exit_code()

    def _pack(self, chunk: Chunk, batch: Batch, batches: queue.Queue, preparer: Preparer) -> Batch:
        """Validate a chunk's lines into batches; returns the batch being filled. The hot loop:
        the batch's fields live in locals while it fills."""
        source = chunk.source
        skip = self.sources[source].skip
        label = self.sources[source].label
        prepare = preparer.prepare
        max_bytes, max_calls = self.options.batch_bytes, self.options.batch_events
        origin = source << REF_SHIFT  # | the line number: see REF_SHIFT
        lines = chunk.data.split(b"\n")
        if chunk.first_line == 1:
            self._check_start(source, lines[0].strip())
        read = skipped = 0
        line_no = chunk.first_line - 1
        calls, refs, filled = batch.calls, batch.refs, batch.size
        for raw in lines:
            line_no += 1
            if line_no <= skip:
                skipped += 1
                continue
            line = raw.strip()
            if not line:
                continue
            read += 1
            try:
                ready = prepare(line_no, line)
            except InvalidLine as exc:
                self.stats.invalid += 1
                self.rejects.add(label, line_no, str(exc), line)
                continue
            size = len(ready) + 1  # and a comma
            if calls and (filled + size > max_bytes or len(calls) >= max_calls):
                batch.size = filled
                batch = self._ship(batch, batches)
                calls, refs, filled = batch.calls, batch.refs, batch.size
            calls.append(ready)
            refs.append(origin | line_no)
            filled += size
        batch.size = filled
        self.stats.read += read
        self.stats.skipped += skipped
        self.settlement.handled(source, line_no)  # the checkpoint is saved between chunks
        return batch

    def _check_start(self, source_index: int, line: bytes) -> None:
        source = self.sources[source_index]
        digest = line_hash(line)
        if source.skip and source.first_line_hash and source.first_line_hash != digest:
            raise UsageError(
                f"{source.label} does not start as it did when --checkpoint {self.options.checkpoint} was written",
                hint="it is not the same input: remove the checkpoint to import from the start, or use another --checkpoint",
            )
        self.settlement.first_hash[source_index] = digest

    def _ship(self, batch: Batch, batches: queue.Queue) -> Batch:
        """Hand a full (or lingering) batch to the senders; returns the next, empty one."""
        self._seq += 1
        batch.seq = self._seq
        self.settlement.opened(batch)
        if self.session.dry_run:
            self._print_dry_run(batch)
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
        self.stats.bytes_read += count

    # senders ------------------------------------------------------------------------------

    def _start_senders(self, batches: queue.Queue) -> list[threading.Thread]:
        if self.session.dry_run:
            return []
        self.sender = self.session.sender(connections=self.options.concurrency, on_retry=self._on_retry, stop=self.stop)
        self.rate = RateLimiter(self.options.rate)
        threads = [
            threading.Thread(target=self._send_loop, args=(batches,), name=f"cdp-sender-{i}", daemon=True)
            for i in range(self.options.concurrency)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _on_retry(self, text: str) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        self.out.verbose(text)

    def _send_loop(self, batches: queue.Queue) -> None:
        while True:
            batch = batches.get()
            if batch is None:
                return
            if self.stop.is_set():
                continue  # not sent: it stays open, so the checkpoint resumes before it
            try:
                settled = self._deliver(batch)
            except Exception as exc:  # noqa: BLE001 - never lose a batch silently
                self._fail(batch, f"unexpected {type(exc).__name__}: {exc}")
                settled = True
            if settled:
                self.settlement.closed(batch)

    def _deliver(self, batch: Batch) -> bool:
        """Send one batch; True when every call in it is settled (delivered or rejected)."""
        self.rate.wait()
        outcome = self.sender.send(BatchRequest(self.url, self.headers, batch, self.session.gzip))
        with self._stats_lock:
            self.stats.requests += outcome.attempts
        status = outcome.status
        if outcome.ok:
            self.ever_delivered = True
            with self._stats_lock:
                self.stats.batches += 1
                self.stats.sent += len(batch.calls)
            return True
        if status in (401, 403):
            self._stop_with(ExitCode.AUTH, f"the API rejected the key (HTTP {status}); import stopped",
                            f"the key came from {self.session.source('api-key')}; no further requests were sent")
            return False
        if self.stop.is_set() and (status is None or status >= 500 or status in (408, 429)):
            return False  # interrupted while retrying: left for the next run
        if status in (400, 413) and len(batch.calls) > 1:
            # isolate the calls the API refuses; the rest are delivered
            first, second = batch.halves()
            return self._deliver(first) & self._deliver(second)
        if status is None and not self.ever_delivered:
            self._stop_with(ExitCode.NETWORK, f"cannot reach {self.url}: {outcome.error}",
                            "check --endpoint/--region and your network; `cdp connect test` checks the setup")
            return False
        tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
        reason = f"HTTP {status}{tries}: {outcome.error}" if status is not None else f"{outcome.error}{tries}"
        self._fail(batch, reason)
        return True

    def _stop_with(self, code: ExitCode, message: str, hint: str | None) -> None:
        with self._stats_lock:
            if self.fatal is None:
                self.fatal = (code, message, hint)
        self.stop.set()

    def _fail(self, batch: Batch, reason: str) -> None:
        with self._stats_lock:
            self.stats.failed += len(batch.calls)
        for call, (source, line_no) in zip(batch.calls, map(unref, batch.refs)):
            self.rejects.add(self.sources[source].label, line_no, reason, call)

    # the rest ---------------------------------------------------------------------------

    def _print_dry_run(self, batch: Batch) -> None:
        request = BatchRequest(self.url, self.headers, batch, self.session.gzip)
        self.out.request(self.url, request.redacted_headers(), request.body_bytes().decode("utf-8"))
        if not self.out.json_mode:
            self.out.result("")  # a blank line between batches

    def _save_checkpoint(self, packing: Batch | None = None) -> None:
        if self.checkpoint.path and not self.session.dry_run:
            self.checkpoint.save(self.sources, self.settlement.settled(packing), self.settlement.first_hash)

    def _start_progress(self) -> Any:
        if not self.options.progress:
            return None
        from cdpcli.progress import ImportProgress

        return ImportProgress(self.stats, total_bytes=sum(s.size or 0 for s in self.sources) or None).start()

    def _install_signal_handlers(self) -> Callable[[], None]:
        """Ctrl-C and SIGTERM stop reading and let requests in flight finish; returns an undo."""
        import signal

        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if self.interrupted:  # a second Ctrl-C: give up at once
                os._exit(int(ExitCode.INTERRUPTED))
            self.interrupted = True
            self.stop.set()
            self.out.info("Interrupted: finishing requests in flight (Ctrl-C again to quit at once)")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _exit_code(self) -> int:
        if self.fatal:
            return int(self.fatal[0])
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        if self.stats.invalid or self.stats.failed:
            return int(ExitCode.ERROR)
        return int(ExitCode.OK)


def check_limits(batch_bytes: int, batch_events: int, concurrency: int, rate: float) -> None:
    if not 1_000 <= batch_bytes <= MAX_REQUEST_BYTES:
        raise UsageError(f"--batch-bytes must be between 1,000 and {MAX_REQUEST_BYTES:,} (the API's limit), not {batch_bytes:,}")
    if not 1 <= batch_events <= MAX_BATCH_CALLS:
        raise UsageError(f"--batch-events must be between 1 and {MAX_BATCH_CALLS:,}, not {batch_events:,}")
    if not 1 <= concurrency <= 256:
        raise UsageError(f"--concurrency must be between 1 and 256, not {concurrency}")
    if rate <= 0:
        raise UsageError(f"--rate must be a positive number of requests per second, not {rate:g}")

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

import errno
import gc
import hashlib
import json
import os
import queue
import re
import stat
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cdpcli import files, jsontext
from cdpcli.errors import CdpError, ExitCode, UsageError
from cdpcli.jsontext import may_need_care
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
MAX_LINE_BYTES = 64 * CHUNK_BYTES  # a 64 MB line is not NDJSON: the import stops there
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
    """A line that cannot be sent; the message is what the rejects file and stderr say, the
    reason its kind in the summary's `invalid_reasons`."""

    def __init__(self, message: str, reason: str = "invalid call") -> None:
        super().__init__(message)
        self.reason = reason


class FatalStop(CdpError):
    """Stops the whole import (the rejects file cannot be written, …): exit code per SPEC."""

    def __init__(self, message: str, hint: str | None = None, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code


BOM = b"\xef\xbb\xbf"
# Issue #10: a file of another format (CSV, binary, gzip read as text) is one reject per line;
# when this many first non-blank lines are all invalid, the input is not NDJSON: stop.
FORMAT_PROBE_LINES = 100


# -- sources and the reader ----------------------------------------------------------------


@dataclass
class Source:
    name: str  # as typed: a path, or "-" for stdin
    label: str  # in messages and rejects: the path, or <stdin>
    id_seed: bytes  # what derived messageIds are made from, stable across re-runs
    size: int | None = None  # bytes, when known (files)
    skip: int = 0  # lines settled by an earlier run (checkpoint)
    first_line_hash: str | None = None  # what the checkpoint saw
    key: str = ""  # in the checkpoint: the resolved path (`a.ndjson` and `./a.ndjson` are one file), or "-"

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.name if self.name == "-" else os.path.realpath(self.name)

    def open(self) -> BinaryIO:
        if self.name == "-":
            return sys.stdin.buffer
        return open(self.name, "rb", buffering=0)  # unbuffered: read() is one read(2) of CHUNK_BYTES


def make_sources(names: list[str], id_namespace: str | None = None) -> tuple[list[Source], list[str]]:
    """The sources to read, and warnings about them (sources that would derive the same ids)."""
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
        if os.path.isdir(name):  # before open(), whose IsADirectoryError says less
            raise UsageError(
                f"{name} is a directory",
                hint="name the NDJSON files in it, e.g. cdp import " + os.path.join(name, "*.ndjson"),
            )
        try:
            size = os.stat(name).st_size
            with open(name, "rb"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from None
        # the file name, not its directory, so `cdp import ./a.ndjson` and `cdp import a.ndjson`
        # (or the same file moved) derive the same messageIds
        sources.append(Source(name, name, os.path.basename(name).encode(), size=size))
    keys = [source.key for source in sources]
    for key in set(keys):
        if keys.count(key) > 1:
            shown = [s.name for s in sources if s.key == key]
            raise UsageError(
                f"{' and '.join(shown)} are the same input, given twice",
                hint="name each file once (stdin can be read only once)",
            )
    if id_namespace:
        # mixed into every derived id; without it, ids are as they always were (re-runs of
        # existing imports keep theirs)
        for source in sources:
            source.id_seed = id_namespace.encode("utf-8", "surrogateescape") + b"\0" + source.id_seed
    warnings = []
    seen: dict[bytes, Source] = {}
    for source in sources:
        other = seen.setdefault(source.id_seed, source)
        if other is not source and other.key != source.key:
            warnings.append(
                f"{other.label} and {source.label} derive messageIds from the same name: an identical line at the "
                "same line number in both gets the same id, and the API keeps only one; "
                "import them in separate runs with different --id-namespace values"
            )
    return sources, warnings


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
                    if len(tail) > MAX_LINE_BYTES:
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
        self.last_type = ""  # the type of the call prepare() returned last (for the summary)
        # the chunk being prepared may hold NaN, Infinity or an overflowing number (see
        # jsontext.may_need_care): then each line is looked at. Looking once per 1 MB chunk
        # costs ~5k instructions a line's worth of bytes (a translation and finds over the
        # chunk), against ~10k when every line was looked at on its own (callgrind)
        self.careful = True
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
        if (
            not self.rules_hold(call)
            or (line.find(b"\\u") >= 0 and has_escaped_key(line))
            or (self.careful and may_need_care(line))
        ):
            return self._slow(line_no, line)
        self.last_type = call["type"] if typed else self.default_type
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
        elif "library" in context:  # the SDK that made the call (a replay): kept as it is
            if line.find(b'"context"') < 0:
                return self._slow(line_no, line)
            ready = head + line[1:]
        else:
            at = line.find(b'"context"')
            if at < 0 or line.find(b'"context"', at + 9) >= 0:
                return self._slow(line_no, line)
            brace = line.index(b"{", at + 9) + 1  # validated: the value is an object
            glue = b"" if EMPTY_OBJECT_REST.match(line, brace) else b","
            ready = b"".join((head, line[1:brace], LIBRARY_FIELD, glue, line[brace:]))
        if len(ready) > MAX_CALL_BYTES // 3 and (len(ready) > MAX_CALL_BYTES or not ready.isascii()):
            # the API counts compact JSON with non-ASCII escaped (é is 6 bytes): measure exactly
            size = call_size(json.loads(ready))
            if size > MAX_CALL_BYTES:
                raise InvalidLine(f"call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,}", "too large")
        return ready

    def _slow(self, line_no: int, line: bytes) -> bytes:
        """Lines the strict models refuse: parse, validate with the lax models, re-serialise."""
        from pydantic import ValidationError

        try:
            data = jsontext.loads(line)
        except jsontext.JSONTextError as exc:
            raise InvalidLine(
                str(exc), "not UTF-8" if str(exc).startswith("not valid UTF-8") else "invalid JSON"
            ) from None
        if not isinstance(data, dict):
            raise InvalidLine(f"expected a JSON object, got {_json_kind(data)}", "not an object")
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
        context = call.get("context")
        if not (isinstance(context, dict) and "library" in context):  # a replay keeps its SDK's
            call["context"] = with_library(context)
        size = call_size(call)
        if size > MAX_CALL_BYTES:
            raise InvalidLine(f"call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,}", "too large")
        self.last_type = call["type"]
        return dumps(call).encode()


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def unwrap_reject(data: dict[str, Any]) -> dict[str, Any]:
    """A line of a rejects file fed back to import: its `input` is the call (fixed or not)."""
    if "type" not in data and {"source", "line", "error", "input"} <= data.keys():
        if "input_base64" in data:
            raise InvalidLine(
                "rejects record of a line that was not UTF-8: fix its input and remove input_base64 to send it",
                "rejects record",
            )
        inner = data["input"]
        if isinstance(inner, str):
            try:
                inner = jsontext.loads(inner)
            except ValueError:
                raise InvalidLine(
                    "rejects record whose input is not JSON; fix its input first", "rejects record"
                ) from None
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
        for call, origin in zip(self.calls[:mid], self.refs[:mid], strict=True):
            first.add(call, origin)
        for call, origin in zip(self.calls[mid:], self.refs[mid:], strict=True):
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
    interruption), or at the last line handled when none is open. Any thread may ask.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.lock = threading.Lock()
        self.last_handled = [s.skip for s in sources]
        self.open: dict[int, dict[int, int]] = {}  # batch seq -> {source: its first line}
        self.filling: dict[int, int] = {}  # the batch being filled: {source: its first line}
        self.first_hash: list[str | None] = [s.first_line_hash for s in sources]

    def handled(self, source: int, line_no: int, filling: Batch | None = None) -> None:
        """The packer is done with `source` up to `line_no`; `filling` is its batch being filled."""
        firsts = _first_lines(filling) if filling is not None else {}
        with self.lock:
            self.last_handled[source] = line_no
            self.filling = firsts

    def opened(self, batch: Batch) -> None:
        """`batch` leaves the packer: every line up to its last is handled, none is filling
        (a 1 MB chunk holds ~5,000 lines: the packer may block inside one for long)."""
        firsts = _first_lines(batch)
        source, last = unref(batch.refs[-1]) if batch.refs else (None, 0)
        with self.lock:
            self.open[batch.seq] = firsts
            self.filling = {}
            if source is not None and last > self.last_handled[source]:
                self.last_handled[source] = last

    def closed(self, batch: Batch) -> None:
        with self.lock:
            self.open.pop(batch.seq, None)

    def settled(self) -> list[int]:
        """Per source, how many leading lines are settled."""
        with self.lock:
            done = list(self.last_handled)
            firsts = [*self.open.values(), self.filling]
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


CHECKPOINT_HINT = "remove it to import from the start, or pass another --checkpoint"


class Checkpoint:
    """Per source (keyed by resolved path, "-" for stdin): how many leading lines are settled,
    and a hash of the first line to tell another input under the same name.

    Held with an exclusive lock (`<file>.lock`): two imports sharing one checkpoint would each
    overwrite the other's progress. Saved atomically (files.write_atomic) and only after the
    rejects file is on disk (see Importer.save_checkpoint)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"version": 1, "sources": {}}
        self.existed = False  # an earlier run wrote it: this run resumes
        self._lock_fd: int | None = None
        self._save_lock = threading.Lock()
        if not path:
            return
        try:
            kind = os.stat(path).st_mode
        except OSError:
            kind = None
        if kind is not None and not stat.S_ISREG(kind):
            raise UsageError(f"--checkpoint {path} is not a regular file", hint=CHECKPOINT_HINT)
        self._take_lock()
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.release()
            raise UsageError(f"--checkpoint {path}: cannot read it ({exc.strerror})", hint=CHECKPOINT_HINT) from None
        problem = None
        try:
            data = jsontext.loads(text)
            problem = _checkpoint_problem(data)
        except ValueError as exc:
            problem = str(exc)
        if problem:
            self.release()
            raise UsageError(f"--checkpoint {path}: not a cdp checkpoint file ({problem})", hint=CHECKPOINT_HINT)
        self.data = data
        self.existed = True

    def _take_lock(self) -> None:
        import fcntl

        assert self.path is not None
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), files.PRIVATE)
        except OSError as exc:
            raise UsageError(
                f"--checkpoint {self.path}: cannot create {lock_path} ({exc.strerror})",
                hint="check that the checkpoint's directory exists and is writable",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder unlinks the lock file when it ends: a lock taken on a file that was
            # unlinked meanwhile guards nothing, so the file locked must still be the one there
            if os.fstat(fd).st_ino != os.stat(lock_path).st_ino:
                raise OSError("the lock file was replaced")
        except OSError:
            os.close(fd)
            raise UsageError(
                f"--checkpoint {self.path} is in use by another cdp import",
                hint="wait for it to finish, or give this import its own --checkpoint",
            ) from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None and self.path:
            try:
                os.unlink(self.path + ".lock")  # still ours: we hold the lock
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    def apply(self, sources: list[Source]) -> None:
        entries = self.data["sources"]
        for source in sources:
            # older checkpoints keyed files by the path as typed
            entry = entries.get(source.key) or entries.get(source.name)
            if entry:
                source.skip = entry["settled"]
                source.first_line_hash = entry.get("first_line_sha256")

    def save(self, sources: list[Source], settled: list[int], hashes: list[str | None]) -> None:
        if not self.path:
            return
        with self._save_lock:
            for source, count, digest in zip(sources, settled, hashes, strict=True):
                if source.name in self.data["sources"] and source.name != source.key:
                    del self.data["sources"][source.name]  # re-keyed by resolved path
                self.data["sources"][source.key] = {"settled": count, "first_line_sha256": digest}
            files.write_atomic(self.path, json.dumps(self.data).encode())


def _checkpoint_problem(data: Any) -> str | None:
    """What makes `data` not a checkpoint (checked in full: `python -O` drops asserts)."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        return 'expected an object with "sources"'
    if data.get("version", 1) != 1:
        return f"version {data.get('version')!r}; this cdp reads version 1"
    for key, entry in data["sources"].items():
        if not isinstance(entry, dict):
            return f"entry {key!r} is not an object"
        settled = entry.get("settled")
        if not isinstance(settled, int) or isinstance(settled, bool) or settled < 0:
            return f"entry {key!r} has no whole number 'settled'"
        digest = entry.get("first_line_sha256")
        if digest is not None and not isinstance(digest, str):
            return f"entry {key!r} has a malformed first_line_sha256"
    return None


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


# -- rejects ---------------------------------------------------------------------------------


# JSON leaves these raw inside strings, but Python's str.splitlines() and some editors break
# lines at them: escaped, each record stays one line for every reader.
_LINE_BREAKS_ESCAPED = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


class Rejects:
    """Appends `{"source","line","error","input"}` records (`input_base64` too when the line is
    not UTF-8); the file is created 0600 on first use.

    Each (source, line) is written at most once across resumed runs: records an earlier run
    wrote for lines this run reads again (ahead of the checkpoint) are not repeated. `sync()`
    puts everything written so far on disk; the checkpoint is saved only after it.
    """

    def __init__(self, path: str, *, explicit: bool, sources: list[Source], resuming: bool) -> None:
        self.path = path
        self.explicit = explicit  # named by the user: a symlink there is theirs to follow
        self.count = 0  # records this run wrote
        self._fd: int | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._earlier: set[tuple[str, int]] = self._read_earlier(sources) if resuming else set()

    def check(self) -> None:
        """Before the first request: the rejects file can be created or appended to."""
        path = self.path
        if os.path.islink(path) and not self.explicit:
            raise UsageError(
                f"the rejects file {path} is a symbolic link (to {os.readlink(path)}); cdp will not append customer data through it",
                hint="remove the link, or name the file explicitly with --rejects",
            )
        if os.path.isdir(path):
            raise UsageError(f"--rejects {path} is a directory", hint="name a file, e.g. --rejects rejects.ndjson")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise UsageError(
                f"--rejects {path}: directory {directory} does not exist", hint="create it, or pick another --rejects"
            )
        target = path if os.path.exists(path) else directory
        if not os.access(target, os.W_OK):
            raise UsageError(
                f"--rejects {path}: {'file' if target == path else 'directory'} is not writable",
                hint="pick another --rejects",
            )
        if os.path.exists(path) and stat.S_ISFIFO(os.stat(path).st_mode):
            # a pipe: writing would block for good with no reader; try once without waiting
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                raise UsageError(
                    f"--rejects {path} is a named pipe that nothing reads",
                    hint="start its reader first, or pick a regular file",
                ) from None

    def _read_earlier(self, sources: list[Source]) -> set[tuple[str, int]]:
        """(source key, line) of records already in the rejects file for these sources."""
        keys = {s.label: s.key for s in sources} | {s.name: s.key for s in sources} | {s.key: s.key for s in sources}
        earlier: set[tuple[str, int]] = set()
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                return earlier  # a pipe or a device (/dev/null): nothing to read back
            handle = open(self.path, "rb")  # noqa: SIM115 (closed below, after the stat check)
        except OSError:
            return earlier
        with handle:
            for raw in handle:
                try:
                    record = json.loads(raw)
                    key = keys.get(record["source"]) or os.path.realpath(record["source"])
                    earlier.add((key, int(record["line"])))
                except (ValueError, KeyError, TypeError):
                    continue  # not a record of ours (edited by hand): nothing to match
        return earlier

    def add(self, source: Source, line_no: int, error: str, line: bytes) -> bool:
        """Write one record; False when an earlier run already wrote one for this line.
        Raises FatalStop when the file cannot be written."""
        if (source.key, line_no) in self._earlier:
            return False
        try:
            text = line.decode("utf-8")
            record = {"source": source.label, "line": line_no, "error": error, "input": text}
        except UnicodeDecodeError:
            # the original bytes stay recoverable; `input` is for reading only (U+FFFD marks
            # what was not UTF-8), and import refuses the record until it is fixed
            import base64

            record = {
                "source": source.label,
                "line": line_no,
                "error": error,
                "input": line.decode("utf-8", "replace"),
                "input_base64": base64.b64encode(line).decode("ascii"),
            }
        text = json.dumps(record, ensure_ascii=False)
        if not text.isascii():  # readable UTF-8, but no character a line splitter takes for a newline
            text = text.translate(_LINE_BREAKS_ESCAPED)
        data = (text + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            if self._closed:
                raise FatalStop(f"a reject for {source.label}:{line_no} came after the rejects file was closed")
            try:
                if self._fd is None:
                    self._open()
                # one write(2) a record, unbuffered: a failure (disk full) is seen at the record
                # it hits, which is then not counted as written
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                # never cut the file back: other imports may append to it too; a torn record
                # gets its own line at the next open (see _open)
                raise _rejects_error(self.path, exc) from None
            self.count += 1
        return True

    def _open(self) -> None:
        self._fd = files.open_append_private(self.path, follow_symlink=self.explicit)
        size = os.fstat(self._fd).st_size
        if size and self._last_byte(size) != b"\n":
            # a record torn by an older run (killed or out of space mid-write): it must not
            # swallow the next one; the line it was for is read again and rejected again
            os.write(self._fd, b"\n")

    def _last_byte(self, size: int) -> bytes:
        """The file's last byte (the append descriptor cannot read); b"\n" when unreadable."""
        try:
            fd = os.open(self.path, os.O_RDONLY | (0 if self.explicit else getattr(os, "O_NOFOLLOW", 0)))
        except OSError:
            return b"\n"
        try:
            return os.pread(fd, 1, size - 1)
        except OSError:
            return b"\n"
        finally:
            os.close(fd)

    def sync(self) -> None:
        """Everything written so far is on disk (raises FatalStop when it cannot be)."""
        with self._lock:
            if self._fd is None:
                return
            try:
                os.fsync(self._fd)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: a pipe or device, which has no disk to sync
                    raise _rejects_error(self.path, exc) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # as in sync()
                    raise _rejects_error(self.path, exc) from None
            finally:
                os.close(fd)


def _rejects_error(path: str, exc: OSError) -> FatalStop:
    hint = (
        "free space on its disk, then run the same command again"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT)
        else "fix the path or its permissions (--rejects), then run the same command again"
    )
    return FatalStop(f"cannot write the rejects file {path}: {exc.strerror or exc}", hint=hint)


# -- the import ------------------------------------------------------------------------------


DEFAULT_REJECTS = "cdp-rejects.ndjson"
# stderr shows this many reject lines, then only the total (a CSV fed as NDJSON is thousands)
ECHO_REJECTS = 20


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
    progress: bool = False
    linger: float = 1.0
    max_invalid: int | None = None
    checkpoint_every: float = 1.0  # seconds between checkpoint saves


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
    started: float = field(default_factory=time.monotonic)

    @property
    def calls(self) -> int:
        """Lines that were calls to judge (neither blank nor settled by an earlier run)."""
        return self.read - self.blank - self.skipped

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
            "skipped_reasons": {"checkpoint": self.skipped} if self.skipped else {},
        }


class RateLimiter:
    """At most `rate` request starts per second across all senders (a simple interval gate)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Wait for this request's turn; False when `stop` was set meanwhile (do not send)."""
        if not self.interval:
            return not stop.is_set()
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now and stop.wait(start - now):
            return False
        return not stop.is_set()


class Importer:
    def __init__(self, session: Any, sources: list[Source], options: ImportOptions) -> None:
        self.session = session
        self.out = session.out
        self.sources = sources
        self.options = options
        self.stats = Stats()
        self.stop = threading.Event()  # stop reading and sending new requests
        self.stop_reading = threading.Event()  # stop reading; what is packed is still delivered
        self.fatal: CdpError | None = None
        self.interrupted = False
        self.abandoned = 0  # requests in flight not waited for (a second Ctrl-C)
        self._in_flight = 0
        self._give_up = threading.Event()  # a second Ctrl-C: stop waiting for the senders
        self.ever_delivered = False
        self.checkpoint = Checkpoint(options.checkpoint)
        try:
            self.checkpoint.apply(sources)
            for source in sources:  # every file's start, before anything is sent
                if source.name != "-":
                    try:
                        problem = check_start_problem(source, first_line_of(source.name), options.checkpoint)
                    except OSError as exc:
                        problem = UsageError(f"cannot read {source.label}: {exc.strerror or exc}")
                    if problem:
                        raise problem
            # an earlier run with this checkpoint may have written rejects for lines past its
            # settled point (the checkpoint exists from the start of a run: see below)
            resuming = self.checkpoint.existed
            self.rejects = Rejects(
                options.rejects, explicit=options.rejects_explicit, sources=sources, resuming=resuming
            )
            if not session.dry_run:
                self.rejects.check()
                if options.checkpoint:
                    # saved at once: a run killed in its first second is still known as resumed
                    # by the next (its rejects are then not written twice), and a path that
                    # cannot be written is a usage error before anything is sent
                    try:
                        self.checkpoint.save(sources, [s.skip for s in sources], [s.first_line_hash for s in sources])
                    except OSError as exc:
                        raise UsageError(
                            f"--checkpoint {options.checkpoint}: cannot write it ({exc.strerror or exc})",
                            hint="check that its directory exists and is writable",
                        ) from None
        except BaseException:
            self.checkpoint.release()
            raise
        self.settlement = Settlement(sources)
        self.url = f"{session.base}/batch"
        self.headers = session.headers()
        self._stats_lock = threading.Lock()
        self._seq = 0
        self._echoed = 0
        self._first_bytes: dict[int, bytes] = {}  # each source's first bytes, for format hints
        self._judged = [0] * len(sources)  # per source: lines judged valid or invalid so far
        self._invalid_in = [0] * len(sources)  # per source: of which invalid

    # packer (main thread) --------------------------------------------------------------------

    def run(self) -> int:
        preparer = Preparer(self.options.default_type)
        chunks: queue.Queue = queue.Queue(maxsize=4)  # 4 MB of input at most
        reader = threading.Thread(
            target=read_sources,
            args=(self.sources, chunks, self.stop_reading, self._count_bytes),
            name="cdp-reader",
            daemon=True,
        )
        # a little slack for the senders; more would only hold memory (each batch ~0.6 MB)
        batches: queue.Queue = queue.Queue(maxsize=4)
        senders = self._start_senders(batches)
        progress = self._start_progress()
        restore_signals = self._install_signal_handlers()
        saver = self._start_checkpoint_timer()
        # pydantic, typer and httpx leave ~26k long-lived objects that every full collection
        # would scan again while the hot loop allocates; freezing them cut ~20 % of its time
        gc.freeze()
        reader.start()
        batch = Batch()
        current = -1
        last_input = time.monotonic()
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
                if isinstance(item, BaseException):
                    raise item
                last_input = time.monotonic()
                if item.source != current:
                    current = item.source
                    preparer.for_source(self.sources[current])
                preparer.tick()
                preparer.careful = may_need_care(item.data)
                batch = self._pack(item, batch, batches, preparer)
            if batch.calls and not self.stop.is_set():
                batch = self._ship(batch, batches)
                self.settlement.handled(current, self.settlement.last_handled[current], batch)
        except FatalStop as exc:
            self._stop_with(exc)
        except BaseException:
            self.stop_reading.set()
            self.stop.set()
            raise
        finally:
            self._finish(senders, batches, saver)
            if progress:
                progress.stop()
            restore_signals()
        return self._exit_code()

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
        if self._give_up.is_set():
            with self._stats_lock:
                self.abandoned = self._in_flight
        if saver is not None:
            self._saver_stop.set()
            saver.join()
        try:
            self.save_checkpoint()
        except FatalStop as exc:
            self._stop_with(exc)
        finally:
            try:
                self.rejects.close()
            except FatalStop as exc:
                self._stop_with(exc)
            self.checkpoint.release()

    def _pack(self, chunk: Chunk, batch: Batch, batches: queue.Queue, preparer: Preparer) -> Batch:
        """Validate a chunk's lines into batches; returns the batch being filled. The hot loop:
        the batch's fields live in locals while it fills."""
        source = chunk.source
        skip = self.sources[source].skip
        prepare = preparer.prepare
        max_bytes, max_calls = self.options.batch_bytes, self.options.batch_events
        origin = source << REF_SHIFT  # | the line number: see REF_SHIFT
        lines = chunk.data.split(b"\n")
        if chunk.first_line == 1:
            if lines[0].startswith(BOM):  # a UTF-8 byte order mark (Windows exports): not data
                lines[0] = lines[0][3:]
            if not self._check_start(source, lines[0].strip()):
                return batch
        blank = skipped = 0
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
                except InvalidLine as exc:
                    # lines of this chunk before this one that were judged (valid or invalid)
                    judged_before = line_no - chunk.first_line - blank - skipped
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
            self.stats.read += line_no - chunk.first_line + 1
            self._judged[source] += line_no - chunk.first_line + 1 - blank - skipped
            self.stats.blank += blank
            self.stats.skipped += skipped
            self.settlement.handled(source, line_no, batch)
        return batch

    def _invalid(self, source: int, line_no: int, exc: InvalidLine, line: bytes, judged_before: int) -> bool:
        """Record an invalid line; True when the import must stop reading here.
        `judged_before`: lines of the current chunk before this one that were judged."""
        stats = self.stats
        label = self.sources[source].label
        if self.rejects.add(self.sources[source], line_no, str(exc), line):
            self._echo(f"{label}:{line_no}: {exc}")
        stats.invalid += 1
        stats.invalid_reasons[exc.reason] = stats.invalid_reasons.get(exc.reason, 0) + 1
        self._invalid_in[source] += 1
        every_one_invalid = self._judged[source] + judged_before + 1 == self._invalid_in[source]
        if self._invalid_in[source] == FORMAT_PROBE_LINES and every_one_invalid:
            # this source is not NDJSON; what other sources gave is still delivered
            self._stop_with(
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
            self._stop_with(
                FatalStop(
                    f"{stats.invalid:,} invalid lines: stopped at --max-invalid {limit:,}",
                    hint="fix the input (see the rejects file), then run the same command again",
                ),
                sending=False,
            )
            return True
        return False

    def _echo(self, text: str) -> None:
        with self._stats_lock:
            self._echoed += 1
            shown = self._echoed <= ECHO_REJECTS
        if shown:
            self.out.problem(text)

    @property
    def unechoed(self) -> int:
        """Reject lines not shown on stderr (past ECHO_REJECTS)."""
        return max(self._echoed - ECHO_REJECTS, 0)

    def _check_start(self, source_index: int, line: bytes) -> bool:
        """A source's first line, as it is read: False (and the import stops, with its
        summary) when the source cannot be imported. File sources were checked before
        anything was sent (check_start_problem); this catches stdin and a file changed since."""
        source = self.sources[source_index]
        self._first_bytes[source_index] = line[:8]
        problem = check_start_problem(source, line, self.options.checkpoint)
        if problem:
            self._stop_with(problem)
            return False
        self.settlement.first_hash[source_index] = line_hash(line)
        return True

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

    # checkpoint ----------------------------------------------------------------------------

    def _start_checkpoint_timer(self) -> threading.Thread | None:
        """Saved about every second from its own thread, so that it advances while the packer
        waits (a slow endpoint keeps the send queue full and the packer blocked)."""
        self._saver_stop = threading.Event()
        if not self.checkpoint.path or self.session.dry_run:
            return None

        def save_on_schedule() -> None:
            while not self._saver_stop.wait(self.options.checkpoint_every):
                try:
                    self.save_checkpoint()
                except FatalStop as exc:
                    self._stop_with(exc)
                    return

        thread = threading.Thread(target=save_on_schedule, name="cdp-checkpoint", daemon=True)
        thread.start()
        return thread

    def save_checkpoint(self) -> None:
        """The settled counts, taken before the rejects are synced: every reject they count was
        written before the snapshot, so it is on disk before the checkpoint says so."""
        if not self.checkpoint.path or self.session.dry_run:
            return
        settled = self.settlement.settled()
        hashes = list(self.settlement.first_hash)
        self.rejects.sync()
        try:
            self.checkpoint.save(self.sources, settled, hashes)
        except OSError as exc:
            raise FatalStop(
                f"cannot write the checkpoint {self.checkpoint.path}: {exc.strerror or exc}",
                hint="free space or fix the path (--checkpoint), then run the same command again",
            ) from None

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
            with self._stats_lock:
                self._in_flight += 1
            try:
                settled = self._deliver(batch)
            except FatalStop as exc:  # its rejects could not be written: the batch stays open
                self._stop_with(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - never a dead thread and a hung import
                self._stop_with(
                    FatalStop(
                        f"unexpected {type(exc).__name__} while sending: {exc}",
                        hint="run the same command again (with --checkpoint it resumes); please report this",
                    )
                )
                continue
            finally:
                with self._stats_lock:
                    self._in_flight -= 1
            if settled:
                self.settlement.closed(batch)

    def _deliver(self, batch: Batch) -> bool:
        """Send one batch; True when every call in it is settled (delivered or rejected)."""
        if not self.rate.wait(self.stop):
            return False  # stopping: not sent, the batch stays open for the next run
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
            self._stop_with(
                FatalStop(
                    f"the API rejected the key (HTTP {status}); import stopped",
                    f"the key came from {self.session.source('api-key')}; no further requests were sent",
                    ExitCode.AUTH,
                )
            )
            return False
        if self.stop.is_set() and (status is None or status >= 500 or status in (408, 429)):
            return False  # interrupted while retrying: left for the next run
        if status in (400, 413) and len(batch.calls) > 1:
            # isolate the calls the API refuses; the rest are delivered
            first, second = batch.halves()
            return self._deliver(first) & self._deliver(second)
        if status is None and not self.ever_delivered:
            self._stop_with(
                FatalStop(
                    f"cannot reach {self.url}: {outcome.error}",
                    "check --endpoint/--region and your network; `cdp connect test` checks the setup",
                    ExitCode.NETWORK,
                )
            )
            return False
        tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
        reason = f"HTTP {status}{tries}: {outcome.error}" if status is not None else f"{outcome.error}{tries}"
        self._fail(batch, reason)
        return True

    def _stop_with(self, error: CdpError, *, sending: bool = True) -> None:
        """Record why the import stops (the first reason wins); stop reading, and unless
        `sending` is false, stop sending too."""
        with self._stats_lock:
            # after a second Ctrl-C, a sender still running may fail on the closed rejects
            # file: the import was interrupted, and that is what it reports
            if self.fatal is None and not self._give_up.is_set():
                self.fatal = error
        self.stop_reading.set()
        if sending:
            self.stop.set()

    def _fail(self, batch: Batch, reason: str) -> None:
        for call, (source, line_no) in zip(batch.calls, map(unref, batch.refs), strict=True):
            if self.rejects.add(self.sources[source], line_no, reason, call):
                self._echo(f"{self.sources[source].label}:{line_no}: not delivered: {reason}")
        with self._stats_lock:  # counted once every record is written (a FatalStop counts none)
            self.stats.failed += len(batch.calls)

    # the rest ---------------------------------------------------------------------------

    def _print_dry_run(self, batch: Batch) -> None:
        request = BatchRequest(self.url, self.headers, batch, self.session.gzip)
        self.out.request(self.url, request.redacted_headers(), request.body_bytes().decode("utf-8"))
        if not self.out.json_mode:
            self.out.result("")  # a blank line between batches

    def _start_progress(self) -> Any:
        if not self.options.progress:
            return None
        from cdpcli.progress import ImportProgress

        return ImportProgress(self.stats, total_bytes=sum(s.size or 0 for s in self.sources) or None).start()

    def _install_signal_handlers(self) -> Callable[[], None]:
        """Ctrl-C and SIGTERM stop reading and let requests in flight finish; a second one
        stops waiting for them (the checkpoint leaves them for the next run); returns an undo."""
        import signal

        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if self.interrupted:
                self._give_up.set()
                return
            self.interrupted = True
            self.stop_reading.set()
            self.stop.set()
            self.out.info("Interrupted: finishing requests in flight (Ctrl-C again to stop waiting for them)")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _exit_code(self) -> int:
        if self.fatal:
            return int(self.fatal.exit_code)
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        if self.stats.invalid or self.stats.failed:
            return int(ExitCode.ERROR)
        return int(ExitCode.OK)


def check_start_problem(source: Source, first_line: bytes, checkpoint: str | None) -> UsageError | None:
    """Why a source cannot be imported, from its first line (BOM and whitespace stripped)."""
    if first_line.startswith(COMPRESSED_MAGIC):
        # no line of NDJSON starts with these bytes: say so now, not after 100 rejects
        return UsageError(f"{source.label} is compressed, not NDJSON text", hint=format_hint(source, first_line))
    if source.skip and source.first_line_hash and source.first_line_hash != line_hash(first_line):
        return UsageError(
            f"{source.label} does not start as it did when --checkpoint {checkpoint} was written",
            hint="it is not the same input: remove the checkpoint to import from the start, or use another --checkpoint",
        )
    return None


def first_line_of(path: str) -> bytes:
    """A file's first line as _pack sees it (BOM and surrounding whitespace stripped)."""
    head = b""
    with open(path, "rb") as handle:
        while b"\n" not in head and len(head) <= MAX_LINE_BYTES:
            data = handle.read(CHUNK_BYTES)
            if not data:
                break
            head += data
    line = head.split(b"\n", 1)[0]
    if line.startswith(BOM):
        line = line[3:]
    return line.strip()


COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")  # gzip, bzip2, xz, zstd


def format_hint(source: Source, line: bytes) -> str:
    """What to do when an input is not NDJSON, from what its bytes look like."""
    name = source.name if source.name != "-" else "FILE"
    if line.startswith(b"\x1f\x8b"):
        return f"it is gzip-compressed: zcat {name} | cdp import"
    if line.startswith(b"BZh"):
        return f"it is bzip2-compressed: bzcat {name} | cdp import"
    if line.startswith(b"\xfd7zXZ"):
        return f"it is xz-compressed: xzcat {name} | cdp import"
    if line.startswith(b"\x28\xb5\x2f\xfd"):
        return f"it is zstd-compressed: zstdcat {name} | cdp import"
    if line.startswith(b"["):
        return f"it looks like one JSON array; turn it into one call per line: jq -c '.[]' {name} | cdp import"
    return 'cdp import reads NDJSON: one JSON object per line, each a call with its "type" (or give --type)'


# --rate bounds: one request an hour at the slowest (below, the wait overflows clocks: 1e-300
# crashed), and far above the API's 1,000 requests per second at the fastest
MIN_RATE = 1 / 3600
MAX_RATE = 1_000_000


def check_limits(batch_bytes: int, batch_events: int, concurrency: int, rate: float) -> None:
    if not 1_000 <= batch_bytes <= MAX_REQUEST_BYTES:
        raise UsageError(
            f"--batch-bytes must be between 1,000 and {MAX_REQUEST_BYTES:,} (the API's limit), not {batch_bytes:,}"
        )
    if not 1 <= batch_events <= MAX_BATCH_CALLS:
        raise UsageError(f"--batch-events must be between 1 and {MAX_BATCH_CALLS:,}, not {batch_events:,}")
    if not 1 <= concurrency <= 256:
        raise UsageError(f"--concurrency must be between 1 and 256, not {concurrency}")
    if not (MIN_RATE <= rate <= MAX_RATE):  # NaN fails both comparisons too
        raise UsageError(f"--rate must be between {MIN_RATE:g} and {MAX_RATE:,} requests per second, not {rate:g}")

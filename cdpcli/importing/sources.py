"""Where lines come from: files, stdin, or an iterable given to import_lines; the reader thread
that hands them over in chunks of whole lines; and what a source's first line says about it
(compressed, another input than the checkpoint's)."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from cdpcli.errors import UsageError

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 64 * CHUNK_BYTES  # a 64 MB line is not NDJSON: the import stops there
# Lines of an iterable source per chunk: about a 1 MB file chunk's worth of typical calls.
ITERABLE_CHUNK_LINES = 4096
BOM = b"\xef\xbb\xbf"
# Issue #10: a file of another format (CSV, binary, gzip read as text) is one reject per line;
# when this many first non-blank lines are all invalid, the input is not NDJSON: stop.
FORMAT_PROBE_LINES = 100


@dataclass
class Source:
    name: str  # as typed: a path, or "-" for stdin
    label: str  # in messages and rejects: the path, or <stdin>
    id_seed: bytes  # what derived messageIds are made from, stable across re-runs
    size: int | None = None  # bytes, when known (files)
    skip: int = 0  # lines settled by an earlier run (checkpoint)
    first_line_hash: str | None = None  # what the checkpoint saw
    key: str = ""  # in the checkpoint: the resolved path (`a.ndjson` and `./a.ndjson` are one file), or "-"
    items: Iterable[Any] | None = None  # import_lines: the lines themselves, instead of a file

    def __post_init__(self) -> None:
        if not self.key:
            if self.items is not None:
                self.key = f"<{self.name}>"  # a name, not a path: never resolved
            else:
                self.key = self.name if self.name == "-" else os.path.realpath(self.name)

    @property
    def is_file(self) -> bool:
        return self.items is None and self.name != "-"

    @classmethod
    def of_items(cls, name: str, items: Iterable[Any], id_namespace: str | None = None) -> Source:
        """A source of lines given as bytes, str or dicts (import_lines); `name` seeds its
        derived messageIds as a file's name does."""
        seed = name.encode("utf-8", "surrogateescape")
        if id_namespace:
            seed = id_namespace.encode("utf-8", "surrogateescape") + b"\0" + seed
        return cls(name, name, seed, items=items)

    def open(self) -> BinaryIO:
        if self.name == "-":
            return sys.stdin.buffer
        return open(self.name, "rb", buffering=0)  # unbuffered: read() is one read(2) of CHUNK_BYTES


def check_namespace(id_namespace: str | None) -> None:
    if id_namespace is not None and not id_namespace.strip():
        raise UsageError("--id-namespace must not be empty", hint="leave it out to derive ids as before")


def make_sources(names: list[str], id_namespace: str | None = None) -> tuple[list[Source], list[str]]:
    """The sources to read, and warnings about them (sources that would derive the same ids)."""
    check_namespace(id_namespace)
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
            if source.items is not None:
                _read_items(index, source.items, out, stop, progress)
                continue
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


def _read_items(
    index: int, items: Iterable[Any], out: queue.Queue, stop: threading.Event, progress: Callable[[int], None]
) -> None:
    """An iterable source: each item is one line, in chunks as a file's lines are."""
    line_no = 1
    lines: list[bytes] = []
    size = 0
    for item in items:
        line = item_line(item)
        lines.append(line)
        size += len(line) + 1
        if len(lines) >= ITERABLE_CHUNK_LINES or size >= CHUNK_BYTES:
            if stop.is_set():
                return
            progress(size)
            out.put(Chunk(index, line_no, b"\n".join(lines), len(lines)))
            line_no += len(lines)
            lines, size = [], 0
    if lines and not stop.is_set():
        progress(size)
        out.put(Chunk(index, line_no, b"\n".join(lines), len(lines)))


def item_line(item: Any) -> bytes:
    """One item of an iterable source as one line of bytes. A line break inside a str or bytes
    item can only be whitespace between JSON tokens (JSON strings escape them), so it becomes a
    space and the item stays one line; what is not JSON is rejected as its text shows it."""
    if isinstance(item, dict):
        try:
            line = json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        except (TypeError, ValueError) as exc:  # a value JSON cannot hold, or a cycle
            line = f"<not JSON: {exc}> {item!r}"
        return line.encode("utf-8", "surrogatepass")
    if isinstance(item, str):
        item = item.encode("utf-8", "surrogatepass")  # a lone surrogate: rejected as not UTF-8
    elif not isinstance(item, (bytes, bytearray, memoryview)):
        item = f"<not a line: {type(item).__name__}> {item!r}".encode("utf-8", "surrogatepass")
    return bytes(item).strip().replace(b"\r\n", b" ").replace(b"\n", b" ").replace(b"\r", b" ")


def _json_default(value: Any) -> Any:
    """A datetime or date in a dict item: ISO-8601, as the API reads timestamps."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


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

"""Which sources the names given to an import stand for (files, directories, stdin, an iterable
given to import_lines; source.py is one source and its bytes); the reader thread
that hands them over in chunks of whole lines; and what a source's first line says about it
(compressed, another input than the checkpoint's)."""

from __future__ import annotations

import json
import os
import queue
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cdpcli.errors import UsageError
from cdpcli.importing.archives import archive_sources
from cdpcli.importing.csvrows import CsvMapping, csv_lines
from cdpcli.importing.objectstore import UnreadableSource, is_object_url, object_sources
from cdpcli.importing.parquet import PARQUET_NAME, parquet_lines
from cdpcli.importing.source import (  # noqa: F401 - line_hash and Chunk: their old home, still imported from here
    BOM,
    CHUNK_BYTES,
    MAX_LINE_BYTES,
    Chunk,
    Source,
    line_hash,
    source_blocks,
)

# Lines of an iterable source per chunk: about a 1 MB file chunk's worth of typical calls.
ITERABLE_CHUNK_LINES = 4096
# A file of another format (CSV, binary, gzip read as text) is one reject per line; when this
# many first non-blank lines are all invalid, the input is not NDJSON: stop.
FORMAT_PROBE_LINES = 100


def check_namespace(id_namespace: str | None) -> None:
    if id_namespace is not None and not id_namespace.strip():
        raise UsageError("--id-namespace must not be empty", hint="leave it out to derive ids as before")


FORMATS = ("ndjson", "csv", "parquet")
# a name that says CSV, compressed or not (the bytes say whether it is compressed, not the name)
CSV_NAME = re.compile(r"\.csv(\.(gz|gzip|bz2|xz|zst|zstd))?$", re.IGNORECASE)


def make_sources(
    names: list[str], id_namespace: str | None = None, fmt: str | None = None, s3_endpoint: str | None = None
) -> tuple[list[Source], list[str]]:
    """The sources to read, and warnings about them (sources that would derive the same ids).
    A directory stands for the files under it (recursive, sorted, hidden ones skipped), an
    s3:// prefix for its objects (objectstore.py; `s3_endpoint`: an S3-compatible store's URL);
    `fmt` (--format) is every source's format, else a .csv name is CSV and the rest NDJSON."""
    check_namespace(id_namespace)
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    sources = []
    for name in names or ["-"]:
        if name == "-":
            if sys.stdin is None or sys.stdin.isatty():
                raise UsageError(
                    "stdin is a terminal; cdp import reads NDJSON from files or a pipe",
                    hint="cdp import events.ndjson, or: cat events.ndjson | cdp import",
                )
            sources.append(Source("-", "<stdin>", b"<stdin>", format=fmt or "ndjson"))
            continue
        if is_object_url(name):  # seeded by the key under the prefix, as a directory's files are
            sources.extend(object_sources(name, lambda key: _format_of(key, fmt), s3_endpoint))
            continue
        if os.path.isdir(name):
            sources.extend(_directory_sources(name, fmt))
            continue
        # the file name, not its directory, so `cdp import ./a.ndjson` and `cdp import a.ndjson`
        # (or the same file moved) derive the same messageIds
        sources.extend(_file_sources(name, os.path.basename(name).encode("utf-8", "surrogateescape"), fmt))
    keys = Counter(source.key for source in sources)  # a prefix may hold millions: counted once
    for key, count in keys.items():
        if count > 1:
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


def _directory_sources(name: str, fmt: str | None) -> list[Source]:
    files = files_under(name)
    if not files:
        raise UsageError(f"{name} is a directory with no files in it (hidden ones are skipped)")
    sources = []
    for relative in files:
        path = os.path.join(name, relative)
        # Seeded by the path under the directory argument, not by the file name as a
        # plain file argument is: archives repeat names in every folder (Segment's
        # 2024-01-01/part-0.gz, 2024-01-02/part-0.gz), and one seed for all of them
        # would give an identical line at the same line number the same messageId, so
        # the API would keep only one. The relative path stays the same when the tree
        # is moved or named by another path, so re-runs keep their ids.
        seed = relative.replace(os.sep, "/").encode("utf-8", "surrogateescape")
        sources.extend(_file_sources(path, seed, fmt))
    return sources


def _file_sources(path: str, seed: bytes, fmt: str | None) -> list[Source]:
    """A file, or an archive's members (archives.py), each its own source."""
    return archive_sources(path, seed, fmt, name_format) or [_file_source(path, seed, fmt)]


def name_format(path: str) -> str:
    """The format a file's name says (--format absent)."""
    return "csv" if CSV_NAME.search(path) else "parquet" if PARQUET_NAME.search(path) else "ndjson"


def _file_source(path: str, seed: bytes, fmt: str | None) -> Source:
    try:
        size = os.stat(path).st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return Source(path, path, seed, size=size, format=_format_of(path, fmt))


def _format_of(name: str, fmt: str | None) -> str:
    return fmt or name_format(name)


def files_under(directory: str) -> list[str]:
    """The files under `directory` as paths relative to it, recursively, in sorted path order
    (component by component: 2024-01-01/b before 2024-01-01.x/a), hidden files and folders
    skipped."""
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and os.path.isfile(os.path.join(root, name)):
                found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(found, key=lambda path: path.split(os.sep))


_END = object()


@dataclass
class SourceFailed:
    """Put by the reader when a source cannot be read on (UnreadableSource, after its
    retries): the importer writes one rejects record for `line_no` and goes on with the next."""

    source: int
    line_no: int  # the first line not read in full
    error: str


def read_sources(
    sources: list[Source],
    out: queue.Queue,
    stop: threading.Event,
    progress: Callable[[int], None],
    csv_mapping: CsvMapping | None = None,
    convert: Callable[[bytes], bytes] | None = None,
) -> None:
    """Reader thread: whole lines in chunks, then _END; errors are put on the queue too.
    `convert` turns a chunk's lines (newline-separated) into as many lines (a --from VENDOR
    mapping: vendors.vendor_chunk), in this thread."""
    if convert is not None:
        out = _Converting(out, convert)  # type: ignore[assignment]
    try:
        for index, source in enumerate(sources):
            if source.items is not None:
                _read_items(index, source.items, out, stop, progress)
                continue
            if source.format == "csv":
                source.lines = _read_lines(index, csv_lines(source, progress, csv_mapping or CsvMapping()), out, stop)
                continue
            if source.format == "parquet":
                source.lines = _read_lines(index, parquet_lines(source, progress), out, stop)
                continue
            line_no = 1
            tail = b""
            blocks = source_blocks(source, progress)
            try:
                for data in blocks:
                    if stop.is_set():
                        break
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
            except UnreadableSource as exc:  # after its retries; the lines before it were handed over
                out.put(SourceFailed(index, line_no, _failure(exc)))
                continue
            finally:
                blocks.close()
            if tail and not stop.is_set():
                out.put(Chunk(index, line_no, tail, 1))
                line_no += 1
            if not stop.is_set():
                source.lines = line_no - 1  # read to its end: a checkpoint may skip it once settled
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
        out.put(exc)
    out.put(_END)


class _Converting:
    """The reader's queue, with each chunk's lines converted on the way in."""

    def __init__(self, out: queue.Queue, convert: Callable[[bytes], bytes]) -> None:
        self.out, self.convert = out, convert

    def put(self, item: Any) -> None:
        if isinstance(item, Chunk):
            item = Chunk(item.source, item.first_line, self.convert(item.data), item.count)
        self.out.put(item)


def _failure(exc: UnreadableSource) -> str:
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def source_lines(source: Source) -> Iterator[bytes]:
    """A file source's lines (decompressed as an import reads them), without their newlines."""
    tail = b""
    for block in source_blocks(source, lambda count: None):
        *lines, tail = (tail + block).split(b"\n")
        yield from lines
    if tail:
        yield tail


def _read_lines(index: int, lines: Iterator[bytes], out: queue.Queue, stop: threading.Event) -> int | None:
    """Lines made by a converter (CSV), one for each line of the input, in chunks; how many,
    once read to the end."""
    line_no = 1
    batch: list[bytes] = []
    size = 0
    try:
        for line in lines:
            batch.append(line)
            size += len(line) + 1
            if len(batch) >= ITERABLE_CHUNK_LINES or size >= CHUNK_BYTES:
                if stop.is_set():
                    return None
                out.put(Chunk(index, line_no, b"\n".join(batch), len(batch)))
                line_no += len(batch)
                batch, size = [], 0
        if batch and not stop.is_set():
            out.put(Chunk(index, line_no, b"\n".join(batch), len(batch)))
        return None if stop.is_set() else line_no + len(batch) - 1
    except UnreadableSource as exc:  # after its retries: the lines made before it go first
        if batch and not stop.is_set():
            out.put(Chunk(index, line_no, b"\n".join(batch), len(batch)))
        out.put(SourceFailed(index, line_no + len(batch), _failure(exc)))
        return None
    finally:
        close = getattr(lines, "close", None)
        if close:
            close()


def _read_items(
    index: int, items: Iterable[Any], out: queue.Queue, stop: threading.Event, progress: Callable[[int], None]
) -> None:
    """An iterable source: each item is one line, in chunks as a file's lines are. An import
    that stops early closes a generator it will not finish (its `finally` runs now, not at
    some later garbage collection)."""
    line_no = 1
    lines: list[bytes] = []
    size = 0
    iterator = iter(items)
    for item in iterator:
        line = item_line(item)
        lines.append(line)
        size += len(line) + 1
        if len(lines) >= ITERABLE_CHUNK_LINES or size >= CHUNK_BYTES:
            if stop.is_set():
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
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


def check_start_problem(source: Source, first_line: bytes, checkpoint: str | None) -> UsageError | None:
    """Why a source cannot be imported, from its first line (BOM and whitespace stripped)."""
    if (source.skip or source.phase) and source.first_line_hash and source.first_line_hash != line_hash(first_line):
        return UsageError(
            f"{source.label} does not start as it did when --checkpoint {checkpoint} was written",
            hint="it is not the same input: remove the checkpoint to import from the start, or use another --checkpoint",
        )
    return None


def first_line_of(
    source: Source, csv_mapping: CsvMapping | None = None, convert: Callable[[bytes], bytes] | None = None
) -> bytes:
    """A source's first line as _pack sees it (decompressed, BOM and surrounding whitespace
    stripped); for CSV, the line the converter makes of its header; `convert`ed as the reader
    converts it (read_sources)."""
    if source.format in ("csv", "parquet"):
        lines = (
            csv_lines(source, lambda _: None, csv_mapping or CsvMapping())
            if source.format == "csv"
            else parquet_lines(source, lambda _: None)
        )
        try:
            line = next(lines, b"")
        finally:
            lines.close()
    else:
        head = b""
        blocks = source_blocks(source, lambda _: None)
        try:
            for data in blocks:
                head += data
                if b"\n" in data or len(head) > MAX_LINE_BYTES:
                    break
        finally:
            blocks.close()
        line = head.split(b"\n", 1)[0]
    if line.startswith(BOM):
        line = line[3:]
    return convert(line.strip()).strip() if convert is not None else line.strip()


def format_hint(source: Source, line: bytes) -> str:
    """What to do when an input is not NDJSON, from what its bytes look like."""
    name = source.name if source.name != "-" else "FILE"
    if line.startswith(b"["):
        return f"it looks like one JSON array; turn it into one call per line: jq -c '.[]' {name} | cdp import"
    if source.format != "csv" and b"," in line and not line.startswith(b"{"):
        return f"it looks like CSV: cdp import --format csv --type TYPE {name}"
    return 'cdp import reads NDJSON: one JSON object per line, each a call with its "type" (or give --type)'

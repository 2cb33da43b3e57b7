"""Which sources the names given to an import stand for (files, directories, stdin, an iterable
given to import_lines; source.py is one source and its bytes); the reader thread
that hands them over in chunks of whole lines; and what a source's first line says about it
(compressed, another input than the checkpoint's)."""

from __future__ import annotations

import json
import os
import queue
import re
import stat
import sys
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cdpcli.errors import UsageError
from cdpcli.importing.archives import archive_sources, object_archive_sources
from cdpcli.importing.csvrows import INVALID_MARK, CsvMapping, csv_lines
from cdpcli.importing.decode import DamagedInput
from cdpcli.importing.objectstore import UnreadableSource, is_object_url, object_sources
from cdpcli.importing.parquet import PARQUET_MAGIC, PARQUET_NAME, file_head, parquet_lines
from cdpcli.importing.source import (  # noqa: F401 - line_hash, Chunk, not_text: their old home, still imported from here
    BOM,
    CHUNK_BYTES,
    INPUT_KEPT,
    MAX_LINE_BYTES,
    Chunk,
    Source,
    line_hash,
    not_text,
    source_blocks,
)
from cdpcli.wire import dumps

# Lines of an iterable source per chunk: about a 1 MB file chunk's worth of typical calls.
ITERABLE_CHUNK_LINES = 4096
# A file of another format (CSV, binary, gzip read as text) is one reject per line; when this
# many first non-blank lines are all invalid, the input is not NDJSON: stop.
FORMAT_PROBE_LINES = 100


def check_namespace(id_namespace: str | None) -> None:
    if id_namespace is not None and not id_namespace.strip():
        raise UsageError(
            "id_namespace= must not be empty", hint="leave it out to derive ids as before", option="id_namespace"
        )


FORMATS = ("ndjson", "csv", "parquet")
# a name that says CSV, compressed or not (the bytes say whether it is compressed, not the name)
CSV_NAME = re.compile(r"\.[ct]sv(\.(gz|gzip|bz2|xz|zst|zstd))?$", re.IGNORECASE)  # .tsv: tab-separated CSV


def make_sources(
    names: list[str],
    id_namespace: str | None = None,
    fmt: str | None = None,
    s3_endpoint: str | None = None,
    follow_symlinks: bool = False,
) -> tuple[list[Source], list[str]]:
    """The sources to read, and warnings (what a directory's walk passed over, sources that would
    derive the same ids). A directory stands for the files under it (see files_under), an
    s3:// prefix for its objects (objectstore.py; `s3_endpoint`: an S3-compatible store's URL);
    `fmt` (--format) is every source's format, else a .csv name is CSV and the rest NDJSON."""
    check_namespace(id_namespace)
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}", option="format")
    sources, warnings = list[Source](), list[str]()
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
            for object_ in object_sources(name, lambda key: _format_of(key, fmt), s3_endpoint):
                sources.extend(object_archive_sources(object_, fmt, name_format, warnings) or [object_])
            continue
        if os.path.isdir(name):
            sources.extend(_directory_sources(name, fmt, follow_symlinks, warnings))
            continue
        # the file name, not its directory, so `cdp import ./a.ndjson` and `cdp import a.ndjson`
        # (or the same file moved) derive the same messageIds
        sources.extend(_file_sources(name, os.path.basename(name).encode("utf-8", "surrogateescape"), fmt, warnings))
    keys = Counter(source.key for source in sources)  # a prefix may hold millions: counted once
    for key, count in keys.items():
        if count > 1:
            shown = [s.name for s in sources if s.key == key]
            raise UsageError(
                f"{' and '.join(shown)} are the same input, given twice",
                hint="name each file once (stdin can be read only once)",
            )
    _check_streams_once(sources)
    if id_namespace:
        # mixed into every derived id; without it, ids are as they always were (re-runs of
        # existing imports keep theirs)
        for source in sources:
            source.id_seed = id_namespace.encode("utf-8", "surrogateescape") + b"\0" + source.id_seed
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


def _check_streams_once(sources: list[Source]) -> None:
    """Two names for one pipe (`-` and /dev/stdin, /dev/fd/0): the second would read nothing."""
    seen: dict[tuple[int, int], str] = {}
    for source in sources:
        if source.items is not None or not (source.stream or source.name == "-"):
            continue
        try:
            info = os.fstat(sys.stdin.fileno()) if source.name == "-" else os.stat(source.name)
        except (OSError, ValueError, AttributeError):  # no stdin, or one with no descriptor
            continue
        other = seen.setdefault((info.st_dev, info.st_ino), source.name)
        if other != source.name:
            raise UsageError(
                f"{other} and {source.name} are the same input, given twice",
                hint="name it once: a pipe can be read only once",
            )


def _directory_sources(name: str, fmt: str | None, follow_symlinks: bool, warnings: list[str]) -> list[Source]:
    files = files_under(name, follow_symlinks, warnings)
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
        sources.extend(_file_sources(path, seed, fmt, warnings))
    return sources


def _file_sources(path: str, seed: bytes, fmt: str | None, warnings: list[str]) -> list[Source]:
    """A file, or an archive's members (archives.py), each its own source; a name that is no
    regular file (a pipe, a FIFO, /dev/stdin, a shell's <(…)) is one source read as stdin is:
    opened once, by the import, with no look at its bytes before (a look would take them: the
    first 128 KB of a 20,000-line pipe were lost so), and a tar or zip in it is refused as
    stdin's is (as not text)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        if not os.access(path, os.R_OK):  # opening a FIFO to find out would wait for its writer
            raise UsageError(f"cannot read {path}: permission denied")
        if stat.S_ISCHR(mode) and _is_terminal(path):  # /dev/stdin on a terminal, /dev/tty
            raise UsageError(
                f"{path} is a terminal; cdp import reads NDJSON from files or a pipe",
                hint="cdp import events.ndjson, or: cat events.ndjson | cdp import",
            )
        return [Source(path, path, seed, format=_format_of(path, fmt), stream=True)]
    return archive_sources(path, seed, fmt, name_format, warnings) or [_file_source(path, seed, fmt)]


def _is_terminal(path: str) -> bool:
    """Whether a character device is a terminal (opening one takes none of its input)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


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
    shown = _format_of(path, fmt)
    if fmt is None and shown == "ndjson" and file_head(path).startswith(PARQUET_MAGIC):  # its bytes say Parquet
        shown = "parquet"
    return Source(path, path, seed, size=size, format=shown)


def _format_of(name: str, fmt: str | None) -> str:
    return fmt or name_format(name)


def files_under(directory: str, follow_symlinks: bool = False, warnings: list[str] | None = None) -> list[str]:
    """The files under `directory` as paths relative to it, recursively, in sorted path order
    (component by component: 2024-01-01/b before 2024-01-01.x/a), hidden files and folders
    skipped; one line in `warnings` per kind of entry passed over, with the count and names
    ("symbolic link", "special file": FIFOs, devices, sockets; "repeated folder": a followed
    link to a folder already read; "dangling link"; "unreadable folder"; "second name": a
    link to a file already read).

    Symbolic links are not followed unless `follow_symlinks`: one pointing out of the tree
    would send what it points at (a link to /etc/passwd put its lines in the rejects file).
    Followed, each folder is read once (by device and inode), so a link to a parent ends."""
    found: list[str] = []
    skipped: dict[str, list[str]] = {}
    seen_folders = {_identity(directory)}
    seen_files: set[str] = set()

    def unreadable(exc: OSError) -> None:
        skipped.setdefault("unreadable folder", []).append(os.path.relpath(str(exc.filename), directory))

    for root, dirs, names in os.walk(directory, onerror=unreadable, followlinks=follow_symlinks):
        kept = []
        for name in sorted(dirs):
            path = os.path.join(root, name)
            if name.startswith("."):
                continue
            if os.path.islink(path) and not follow_symlinks:
                skipped.setdefault("symbolic link", []).append(os.path.relpath(path, directory))
            elif follow_symlinks and _identity(path) in seen_folders:
                skipped.setdefault("repeated folder", []).append(os.path.relpath(path, directory))
            else:
                seen_folders.add(_identity(path))
                kept.append(name)
        dirs[:] = kept
        for name in sorted(names):
            path = os.path.join(root, name)
            if name.startswith("."):
                continue
            kind = _kind_skipped(path, follow_symlinks)
            if kind is None and os.path.realpath(path) in seen_files:
                kind = "second name"  # of a file already read (a link to it): read once
            if kind is not None:
                skipped.setdefault(kind, []).append(os.path.relpath(path, directory))
            else:
                seen_files.add(os.path.realpath(path))
                found.append(os.path.relpath(path, directory))
    order = lambda path: path.split(os.sep)  # noqa: E731
    if warnings is not None:
        warnings += skipped_warnings(directory, {kind: sorted(paths, key=order) for kind, paths in skipped.items()})
    return sorted(found, key=order)


def _identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _kind_skipped(path: str, follow_symlinks: bool) -> str | None:
    """Why a directory entry is not read as a file, or None when it is one."""
    if os.path.islink(path) and not follow_symlinks:
        return "symbolic link"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "dangling link"
    return None if stat.S_ISREG(mode) else "special file"


SKIPPED_WHY = {
    "symbolic link": "links are not followed by default",
    "special file": "FIFOs, devices and sockets are not files to import",
    "repeated folder": "links to a folder already read: a loop, or a second link",
    "dangling link": "they point at nothing",
    "second name": "links to a file already read",
    "unreadable folder": "permission denied",
}


def skipped_warnings(directory: str, skipped: dict[str, list[str]]) -> list[str]:
    """One warning line per kind of entry passed over, with the count and the names."""
    warnings = []
    for kind, paths in skipped.items():
        shown = ", ".join(os.path.join(directory, path) for path in paths[:10])
        more = f" and {len(paths) - 10:,} more" if len(paths) > 10 else ""
        plural = "s" if len(paths) != 1 else ""
        warnings.append(f"skipped {len(paths):,} {kind}{plural} under {directory} ({SKIPPED_WHY[kind]}): {shown}{more}")
    return warnings


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
    """Reader thread: whole lines in chunks, then _END; errors are put on the queue too. Each
    chunk says how many of its source's input bytes were read by then (Chunk.through).
    `convert` turns a chunk's lines (newline-separated) into as many lines (a --from VENDOR
    mapping: vendors.vendor_chunk), in this thread."""
    if convert is not None:
        out = _Converting(out, convert)  # type: ignore[assignment]
    try:
        for index, source in enumerate(sources):
            counted = _Counted(progress)
            if source.items is not None:
                _read_items(index, source.items, out, stop, counted)
                continue
            if source.format == "csv":
                lines = csv_lines(source, counted, csv_mapping or CsvMapping())
                source.lines = _read_lines(index, lines, out, stop, counted)
                continue
            if source.format == "parquet":
                source.lines = _read_lines(index, parquet_lines(source, counted), out, stop, counted)
                continue
            _read_ndjson(index, source, out, stop, counted)
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
        out.put(exc)
    out.put(_END)


def _read_ndjson(index: int, source: Source, out: queue.Queue, stop: threading.Event, counted: _Counted) -> None:
    """An NDJSON source's chunks; its line count once read to its end (a checkpoint may skip
    it once settled)."""
    next_line = 1
    pieces = ndjson_pieces(source, counted)
    try:
        for first_line, data, count in pieces:
            if stop.is_set():
                return
            out.put(Chunk(index, first_line, data, count, counted.total))
            next_line = first_line + count
    except UnreadableSource as exc:  # after its retries; the lines before it were handed over
        out.put(SourceFailed(index, next_line, _failure(exc)))
        return
    finally:
        pieces.close()
    if not stop.is_set():
        source.lines = next_line - 1


class _Converting:
    """The reader's queue, with each chunk's lines converted on the way in."""

    def __init__(self, out: queue.Queue, convert: Callable[[bytes], bytes]) -> None:
        self.out, self.convert = out, convert

    def put(self, item: Any) -> None:
        if isinstance(item, Chunk):
            item = Chunk(item.source, item.first_line, self.convert(item.data), item.count, item.through)
        self.out.put(item)


def _failure(exc: UnreadableSource) -> str:
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def ndjson_pieces(source: Source, progress: Callable[[int], None]) -> Generator[tuple[int, bytes, int], None, None]:
    """An NDJSON source as (first line number, whole lines, how many), with marker lines
    (csvrows.INVALID_MARK) for what is not lines of text: a file that is not text is one
    invalid line for the whole file; a line over MAX_LINE_BYTES is one invalid line, and
    reading goes on after it; compressed data cut short or corrupt ends the source with one
    invalid line after the last whole one (what came before is delivered)."""
    line_no = 1
    tail = b""
    overlong = False  # in a line over the limit: its bytes are dropped up to its end
    blocks = source_blocks(source, progress)
    try:
        for data in blocks:
            if line_no == 1 and not tail and not overlong:
                problem = not_text(data)
                if problem:
                    yield 1, invalid_marker(problem, "not text", data[:INPUT_KEPT]), 1
                    return
            if overlong:
                cut = data.find(b"\n")
                if cut < 0:
                    continue
                data, overlong, line_no = data[cut + 1 :], False, line_no + 1
            cut = data.rfind(b"\n")
            if cut < 0:
                tail += data
                if len(tail) > MAX_LINE_BYTES:
                    yield line_no, too_long(tail), 1
                    tail, overlong = b"", True
                continue
            block = tail + data[:cut]
            tail = data[cut + 1 :]
            count = block.count(b"\n") + 1
            yield line_no, guard_markers(block), count
            line_no += count
    except DamagedInput as exc:
        yield line_no, damage_marker(exc, line_no, tail), 1
        return
    finally:
        blocks.close()
    if tail:
        yield line_no, guard_markers(tail), 1


def invalid_marker(error: str, reason: str, data: bytes) -> bytes:
    """A marker line (csvrows.py) that the preparer turns into one invalid line."""
    record = {"error": error, "reason": reason, "input": data.decode("utf-8", "surrogateescape")}
    return INVALID_MARK + dumps(record).encode("utf-8", "surrogateescape")


def too_long(start: bytes) -> bytes:
    return invalid_marker(
        f"line longer than {MAX_LINE_BYTES >> 20} MB: not a call (the record keeps its first {INPUT_KEPT:,} bytes)",
        "line too long",
        start[:INPUT_KEPT],
    )


def damage_marker(exc: DamagedInput, line_no: int, tail: bytes) -> bytes:
    if line_no > 1:
        read = f"read up to line {line_no - 1}, the last whole one before the damage; the rest is lost"
    else:
        read = "no whole line before the damage; nothing of it was read"
    check = f"; {exc.hint}" if exc.hint else ""
    return invalid_marker(f"{exc.problem}: {read}{check}", "damaged", tail[:INPUT_KEPT])


def guard_markers(block: bytes) -> bytes:
    """Lines of the input itself that start with a NUL byte, which would read as marker lines:
    made invalid lines that say so (one find per chunk when there are none)."""
    if block.find(b"\0") < 0:
        return block
    lines = block.split(b"\n")
    for at, line in enumerate(lines):
        if line.strip().startswith(b"\0"):
            lines[at] = invalid_marker("line starts with a NUL byte: not JSON", "invalid JSON", line)
    return b"\n".join(lines)


def source_lines(source: Source) -> Iterator[bytes]:
    """A file source's lines (decompressed as an import reads them), without their newlines."""
    tail = b""
    for block in source_blocks(source, lambda count: None):
        *lines, tail = (tail + block).split(b"\n")
        yield from lines
    if tail:
        yield tail


class _Counted:
    """The reader's progress callback, also counting one source's bytes (`total`)."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress = progress
        self.total = 0

    def __call__(self, count: int) -> None:
        self.total += count
        self.progress(count)


def _read_lines(
    index: int, lines: Iterator[bytes], out: queue.Queue, stop: threading.Event, counted: _Counted
) -> int | None:
    """Lines made by a converter (CSV), one for each line of the input, in chunks; how many,
    once read to the end."""
    line_no = 1
    batch: list[bytes] = []
    size = 0
    try:
        try:
            for line in lines:
                batch.append(line)
                size += len(line) + 1
                if len(batch) >= ITERABLE_CHUNK_LINES or size >= CHUNK_BYTES:
                    if stop.is_set():
                        return None
                    out.put(Chunk(index, line_no, b"\n".join(batch), len(batch), counted.total))
                    line_no += len(batch)
                    batch, size = [], 0
        except DamagedInput as exc:  # what came before is delivered, and the import goes on
            batch.append(damage_marker(exc, line_no + len(batch), b""))
        if batch and not stop.is_set():
            out.put(Chunk(index, line_no, b"\n".join(batch), len(batch), counted.total))
        return None if stop.is_set() else line_no + len(batch) - 1
    except UnreadableSource as exc:  # after its retries: the lines made before it go first
        if batch and not stop.is_set():
            out.put(Chunk(index, line_no, b"\n".join(batch), len(batch), counted.total))
        out.put(SourceFailed(index, line_no + len(batch), _failure(exc)))
        return None
    finally:
        close = getattr(lines, "close", None)
        if close:
            close()


def _read_items(index: int, items: Iterable[Any], out: queue.Queue, stop: threading.Event, progress: _Counted) -> None:
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
            out.put(Chunk(index, line_no, guard_markers(b"\n".join(lines)), len(lines), progress.total))
            line_no += len(lines)
            lines, size = [], 0
    if lines and not stop.is_set():
        progress(size)
        out.put(Chunk(index, line_no, guard_markers(b"\n".join(lines)), len(lines), progress.total))


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
            f"{source.label} does not start as it did when checkpoint={checkpoint!r} was written",
            hint="it is not the same input: remove the checkpoint to import from the start, or use another checkpoint=",
            option="checkpoint",
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
        pieces = ndjson_pieces(source, lambda _: None)
        try:
            first = next(pieces, None)
        finally:
            pieces.close()
        line = first[1].split(b"\n", 1)[0] if first else b""
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

"""One source of lines and its bytes: the seam every kind of input goes through.

A name given to an import stands for one or more `Source`s (sources.make_sources expands it:
a directory into its files, an archive into its members, an object-storage prefix into its
objects). Each source then answers three questions, each in one place:

- where its bytes come from: `Source.open()`: a local file, stdin, the --order phased spool,
  or `opener` for bytes that are not a local file (an object in a bucket, an archive member);
  what must be read as a stream with `read(n)` (`read1` when it has one);
- what the bytes are: `source_blocks` decompresses them when their first bytes say so
  (decode.py), and `format` picks the line reader (ndjson: lines as they are; csv:
  csvrows.csv_lines; other tabular formats: one JSON line per row), in sources.read_sources;
- what a line means: the call it is (prepare.py), after any `--from VENDOR` mapping.

A source's identity across runs: `key` in the checkpoint and rejects, `id_seed` for derived
messageIds, the first line's hash (and `version` where the store gives one) to refuse a
changed input on resume.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cdpcli.errors import UsageError
from cdpcli.importing.decode import MAGIC_BYTES, compression_of, decompressed

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 64 * CHUNK_BYTES  # a 64 MB line is not NDJSON: the import stops there
BOM = b"\xef\xbb\xbf"


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
    format: str = "ndjson"  # or "csv" (--format csv, or a .csv name)
    spooled: str | None = None  # --order phased: stdin or the items, copied to this private file
    phase: int = 0  # --order phased: the phase its checkpoint entry is in
    # bytes that are not a local file: an object in a bucket, an archive's member (see above)
    opener: Callable[[], BinaryIO] | None = None
    # what else identifies the content a checkpoint saw, besides its first line: an object's
    # ETag and size; a resumed run refuses a source whose version changed
    version: str | None = None
    lines: int | None = None  # how many lines it has, once read to its end (checkpoint.py)
    damaged_line: int | None = None  # where an earlier run found it cut or corrupt (checkpoint.py)
    # a name that is no regular file (a pipe, a FIFO, /dev/stdin, a shell's <(…)): read as
    # stdin is, once, with nothing looking at its bytes before the import reads them
    stream: bool = False
    _opened: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            if self.items is not None:
                self.key = f"<{self.name}>"  # a name, not a path: never resolved
            elif self.stream:  # /dev/fd/63 resolves to a pipe's name, new on every run
                self.key = os.path.abspath(self.name)
            else:
                self.key = self.name if self.name == "-" else os.path.realpath(self.name)

    @property
    def is_file(self) -> bool:
        """Bytes that can be read again from the start (a file, an object, a member): the
        checkpoint's first-line check reads them before the import does."""
        return self.items is None and self.name != "-" and not self.stream and self.spooled is None

    @property
    def read_once(self) -> bool:
        """Lines that can be read only once (stdin, a pipe or FIFO, an iterable), not copied
        yet: what reads an input more than once (order=phased) copies them first."""
        return self.spooled is None and (self.items is not None or self.name == "-" or self.stream)

    @classmethod
    def of_items(cls, name: str, items: Iterable[Any], id_namespace: str | None = None) -> Source:
        """A source of lines given as bytes, str or dicts (import_lines); `name` seeds its
        derived messageIds as a file's name does."""
        seed = name.encode("utf-8", "surrogateescape")
        if id_namespace:
            seed = id_namespace.encode("utf-8", "surrogateescape") + b"\0" + seed
        return cls(name, name, seed, items=items)

    def open(self) -> BinaryIO:
        if self.opener is not None:
            return self.opener()
        if self.spooled is not None:
            return open(self.spooled, "rb", buffering=0)
        if self.name == "-":
            return sys.stdin.buffer
        if self.stream:
            # a second open would find a drained pipe, or wait for good on a FIFO's next writer
            if self._opened:
                raise UsageError(
                    f"{self.label} is a pipe, not a file, and was read already: it can be read only once",
                    hint="save it to a file first and import that file",
                )
            self._opened = True
        return open(self.name, "rb", buffering=0)  # unbuffered: read() is one read(2) of CHUNK_BYTES


@dataclass
class Chunk:
    source: int
    first_line: int  # number of the first line in `data`
    data: bytes  # whole lines, newline-separated (no trailing newline)
    count: int
    # the source's input bytes read when this chunk was handed over (compressed ones counted
    # compressed): where its last line ends in the input, for the settled share (share.py)
    through: int = 0


def source_blocks(source: Source, progress: Callable[[int], None]) -> Generator[bytes, None, None]:
    """A file's or stdin's bytes, decompressed when its first bytes say it is compressed
    (decode.py), in blocks of up to CHUNK_BYTES; `progress` counts the bytes read from it."""
    handle = source.open()
    try:
        # read1 returns what a pipe has (no waiting to fill the chunk): slow producers' lines
        # are seen at once
        read = getattr(handle, "read1", handle.read)
        head = b""
        while len(head) < MAGIC_BYTES:  # a pipe may hand over fewer bytes than that at first
            data = read(CHUNK_BYTES)
            if not data:
                break
            head += data
        kind = compression_of(head)
        if kind is not None:
            yield from decompressed(kind, source.label, read, head, progress, CHUNK_BYTES)
            return
        if head:
            progress(len(head))
            yield head
        while True:
            data = read(CHUNK_BYTES)
            if not data:
                return
            progress(len(data))
            yield data
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


# what a rejects record keeps of a line that is not one (a binary file's first bytes, the
# start of a line over the limit, the part of a line before damage)
INPUT_KEPT = 1024
# a binary file is told by its first bytes, as git and grep tell one (8,000 bytes there): a NUL,
# or more than one in ten characters neither text nor whitespace
TEXT_PROBE_BYTES = 8192
NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\ufffd]")
TAR_MAGIC = b"ustar"  # at offset 257 of every tar header (POSIX.1-1988 and GNU)
ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"


def not_text(block: bytes, what: str = "NDJSON") -> str | None:
    """Why a source whose (decompressed) bytes start with `block` is not lines of text (`what`
    it was read as: NDJSON, CSV), or None."""
    head = block[:TEXT_PROBE_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text; convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8)"
    if head[257:262] == TAR_MAGIC:
        return "a tar archive read as one stream: extract it first (tar -xf FILE), then import its files"
    if head.startswith(ZIP_MAGIC):
        return "a zip archive read as one stream: extract it first (unzip FILE), then import its files"
    if head.startswith(PARQUET_MAGIC):
        return f"a Parquet file read as text: read it as Parquet (format=parquet), not as {what}"
    if b"\0" in head:
        return f"not text (NUL bytes in its first block): a binary file is not {what}, and none of it was read"
    text = head.decode("utf-8", "replace")
    if len(NOT_TEXT.findall(text)) * 10 > len(text):
        return "not text (its first block is mostly control bytes or not UTF-8): none of it was read"
    return None


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()

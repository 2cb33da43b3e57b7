"""Archives that hold files (.zip, and tar plain or gzip/bzip2/xz-compressed), read member by
member: each member is its own Source named `ARCHIVE!MEMBER`, with its own line numbers,
rejects, checkpoint entry (keyed by the archive's resolved path and the member's name) and
id seed. A member's bytes go through source_blocks like a file's, so a compressed member
(Amplitude's export is a zip of `.json.gz` files) is decoded as a file is.

Told by their bytes, not their names: a zip starts with a local file header `PK\\x03\\x04`; a
tar has `ustar` at offset 257 of its (decompressed) bytes. Directories, hidden members (a
path part starting with a dot: `.DS_Store`, `__MACOSX/._x` are not data) and links are skipped.

A member that cannot be read to its end (a CRC mismatch, an archive cut off after it was
listed) is an unreadable source, as an object that breaks off is: the lines before it are
imported, it is one rejects record, and the import goes on with the next member.

Cost: a zip member is opened from the central directory (random access). A compressed tar has
no index: listing it decompresses it once, and members are read from one shared decompressed
stream per archive that only moves forward while members are read in order (each member's
first line checked, then each member imported): about three decompressions of the archive in
all, not one per member from its start (which is n² for n members).
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import lzma
import os
import re
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any, BinaryIO, cast

from cdpcli.errors import UsageError
from cdpcli.importing.decode import compression_of
from cdpcli.importing.objectstore import UnreadableSource, open_forward, open_seekable
from cdpcli.importing.source import Source

ZIP_MAGIC = b"PK\x03\x04"
DAMAGED_HINT = "check the archive (unzip -t, or tar -tf); the members before it were imported"
TAR_MAGIC = b"ustar"
TAR_MAGIC_AT = 257
HEAD_BYTES = TAR_MAGIC_AT + len(TAR_MAGIC)
_OPENERS: dict[str, Any] = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
# Objects in a bucket are probed only when their name says archive: telling one by its bytes
# is a GET per object, and a prefix may hold millions (Segment's are all .gz NDJSON).
ARCHIVE_NAME = re.compile(r"\.(zip|tar|tgz|tbz2?|txz|tar\.(gz|bz2|xz))$", re.IGNORECASE)


def archive_kind(path: str | BinaryIO) -> str | None:
    """'zip', 'tar' (its compression told by `compression_of`), or None for other files; of
    the file at `path`, or of a seekable stream (which is left at its start)."""
    try:
        with open(path, "rb") if isinstance(path, str) else contextlib.nullcontext(path) as handle:
            head = handle.read(HEAD_BYTES)
            if head.startswith(ZIP_MAGIC):
                return "zip"
            compression = compression_of(head)
            if compression in _OPENERS:
                handle.seek(0)
                try:
                    with _OPENERS[compression](handle, "rb") as inner:
                        head = inner.read(HEAD_BYTES)
                except (OSError, EOFError, zlib.error, lzma.LZMAError):
                    return None  # damaged: read as a compressed file, whose error names it
                finally:
                    handle.seek(0)
            elif compression is not None:
                return None  # zstd: tarfile cannot read it; read as a compressed file
            handle.seek(0)
    except (OSError, UnreadableSource):
        return None  # read as a file, whose error names it
    return "tar" if head[TAR_MAGIC_AT:HEAD_BYTES] == TAR_MAGIC else None


def archive_sources(
    path: str, seed: bytes, fmt: str | None, name_format: Callable[[str], str] = lambda name: "ndjson"
) -> list[Source]:
    """The members of the archive at `path` as sources, in the archive's order; [] when `path`
    is not an archive. `seed` is what the archive's own name would seed; `fmt` the format
    given for every source, else `name_format(member name)` (as a file's name says)."""
    kind = archive_kind(path)
    if kind is None:
        return []
    members = (
        _zip_members(path, functools.partial(open, path, "rb")) if kind == "zip" else _tar_members(path, _Opener(path))
    )
    return _member_sources(path, os.path.realpath(path), seed, members, fmt, name_format)


def object_archive_sources(object_: Source, fmt: str | None, name_format: Callable[[str], str]) -> list[Source]:
    """The members of an object in a bucket whose name says archive (ARCHIVE_NAME), as
    archive_sources makes a local copy's: `s3://B/K!MEMBER`, seeded and versioned alike; []
    when it is no archive (or no object). A zip is read by ranged GETs (its directory first),
    a tar as a stream."""
    if not ARCHIVE_NAME.search(object_.key):
        return []
    probe = open_seekable(object_)
    if probe is None:
        return []
    with probe:
        kind = archive_kind(probe)
    if kind is None:
        return []
    url = object_.name
    try:
        if kind == "zip":
            members = _zip_members(url, lambda: open_seekable(object_))
        else:
            members = _tar_members(url, _Opener(url, lambda: open_forward(object_)))
    except UnreadableSource as exc:
        raise UsageError(f"cannot read the archive {url}: {exc.message}", hint=exc.hint) from None
    return _member_sources(url, url, object_.id_seed, members, fmt, name_format)


def _member_sources(
    path: str, key: str, seed: bytes, members: list[_Member], fmt: str | None, name_format: Callable[[str], str]
) -> list[Source]:
    if not members:
        raise UsageError(f"{path} is an archive with no files in it (hidden ones are skipped)")
    sources = []
    for member in members:
        label = f"{path}!{member.name}"
        sources.append(
            Source(
                label,
                label,
                seed + b"!" + member.name.encode("utf-8", "surrogateescape"),
                size=member.size,
                key=f"{key}!{member.name}",
                format=fmt or name_format(member.name),
                opener=member.opener,
                version=member.version,
            )
        )
    return sources


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/") if part)


class _Member:
    def __init__(self, name: str, size: int, version: str, opener: Any) -> None:
        self.name, self.size, self.version, self.opener = name, size, version, opener


def _zip_members(path: str, open_raw: Callable[[], Any]) -> list[_Member]:
    try:
        with open_raw() as raw, zipfile.ZipFile(raw) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"cannot read the zip archive {path}: {exc}") from None
    members = []
    for info in infos:
        if info.is_dir() or _hidden(info.filename):
            continue
        version = f"crc32:{info.CRC:08x}:{info.file_size}"
        members.append(_Member(info.filename, info.file_size, version, _zip_opener(path, open_raw, info)))
    return members


def _zip_opener(path: str, open_raw: Callable[[], Any], info: zipfile.ZipInfo) -> Any:
    def opener() -> BinaryIO:
        raw = open_raw()
        try:
            with zipfile.ZipFile(raw) as archive:  # a ZipFile given a stream leaves it open
                return _Damage(archive.open(info), f"{path}!{info.filename}", raw)  # type: ignore[return-value]
        except (OSError, zipfile.BadZipFile) as exc:
            raw.close()
            raise UnreadableSource(f"cannot open the member: {exc}", hint=DAMAGED_HINT) from None

    return opener


class _Damage:
    """A member's stream whose read errors (a CRC mismatch, a cut-off archive) make it an
    unreadable source (one rejects record, the import goes on), not a crash."""

    ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)

    def __init__(self, stream: Any, label: str, raw: Any = None) -> None:
        self.stream, self.label, self.raw = stream, label, raw  # raw: the archive, closed with it

    def read(self, count: int = -1) -> bytes:
        try:
            return self.stream.read(count)
        except self.ERRORS as exc:
            raise UnreadableSource(f"the archive is damaged ({exc})", hint=DAMAGED_HINT) from None

    def read1(self, count: int = -1) -> bytes:
        try:
            return self.stream.read1(count)
        except self.ERRORS as exc:
            raise UnreadableSource(f"the archive is damaged ({exc})", hint=DAMAGED_HINT) from None

    def close(self) -> None:
        self.stream.close()
        if self.raw is not None:
            self.raw.close()


def _tar_members(path: str, opener: _Opener) -> list[_Member]:
    try:
        with opener() as decompressed, tarfile.open(fileobj=decompressed, mode="r:") as archive:
            infos = archive.getmembers()
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error) as exc:
        raise UsageError(f"cannot read the tar archive {path}: {exc}") from None
    stream = _SharedStream(path, opener)
    members = []
    for info in infos:
        if not info.isfile() or _hidden(info.name):
            continue
        version = f"tar:{info.size}:{int(info.mtime)}:{info.chksum}"
        members.append(_Member(info.name, info.size, version, _tar_opener(stream, info.offset_data, info.size)))
    return members


def _tar_opener(stream: _SharedStream, offset: int, size: int) -> Any:
    def opener() -> BinaryIO:
        return _MemberReader(stream, offset, size)  # type: ignore[return-value]

    return opener


class _SharedStream:
    """One archive's (decompressed) bytes, shared by its members' readers: seeking forward
    reads on, seeking back starts over (gzip/bz2/lzma file objects do so), so members read in
    order cost one pass. A lock keeps two readers (a first-line check on one thread, the
    reader thread on another) from moving it under each other."""

    def __init__(self, path: str, opener: _Opener | None = None) -> None:
        self.path, self.opener = path, opener or _Opener(path)
        self.lock = threading.Lock()
        self.handle: IO[bytes] | None = None

    def read_at(self, position: int, count: int) -> bytes:
        with self.lock:
            try:
                if self.handle is None:
                    self.handle = self._open()
                if self.handle.tell() != position:
                    self.handle.seek(position)
                return self.handle.read(count)
            except _Damage.ERRORS as exc:
                self.handle = None  # start over on the next read
                raise UnreadableSource(f"the archive is damaged ({exc})", hint=DAMAGED_HINT) from None

    def _open(self) -> IO[bytes]:
        return self.opener()


class _Opener:
    """An archive's bytes decompressed (gzip, bzip2, xz): of the file at `path`, or of what
    `open_raw` opens (an object's stream); a decompressor given a stream closes it with itself."""

    def __init__(self, path: str, open_raw: Callable[[], Any] | None = None) -> None:
        self.path, self.open_raw = path, open_raw

    def __call__(self) -> IO[bytes]:
        if self.open_raw is None:
            with open(self.path, "rb") as handle:
                kind = compression_of(handle.read(8))
            return _OPENERS[kind](self.path, "rb") if kind in _OPENERS else open(self.path, "rb")
        raw = self.open_raw()
        kind = compression_of(raw.read(8))
        raw.seek(0)
        return cast(IO[bytes], _Closing(_OPENERS[kind](raw, "rb"), raw)) if kind in _OPENERS else raw


class _MemberReader:
    """A member's bytes, `size` of them from `offset` in the shared stream."""

    def __init__(self, stream: _SharedStream, offset: int, size: int) -> None:
        self.stream, self.position, self.end = stream, offset, offset + size

    def read(self, count: int = -1) -> bytes:
        left = self.end - self.position
        if count < 0 or count > left:
            count = left
        if count <= 0:
            return b""
        data = self.stream.read_at(self.position, count)
        self.position += len(data)
        if not data:  # the archive ends before the member does: a truncated download
            raise UnreadableSource("the archive ends inside this member: it is damaged or cut off", hint=DAMAGED_HINT)
        return data

    read1 = read

    def close(self) -> None:
        pass


class _Closing:
    """A decompressor over a stream it was given, closing that stream with itself."""

    def __init__(self, inner: Any, raw: Any) -> None:
        self.inner, self.raw = inner, raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.inner.close()
        self.raw.close()

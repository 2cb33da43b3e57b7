"""Archives that hold files (.zip, and tar plain or gzip/bzip2/xz-compressed), read member by
member: each member is its own Source named `ARCHIVE!MEMBER`, with its own line numbers,
rejects, checkpoint entry (keyed by the archive's resolved path and the member's name) and
id seed. A member's bytes go through source_blocks like a file's, so a compressed member
(Amplitude's export is a zip of `.json.gz` files) is decoded as a file is.

Told by their bytes, not their names: a zip starts with a local file header `PK\\x03\\x04`; a
tar has `ustar` at offset 257 of its (decompressed) bytes. Members are named without `.`
path parts (`tar czf x.tar.gz ./day1` lists `./day1/a.ndjson`: read as `day1/a.ndjson`).
Directories and hidden members (a path part starting with a dot: `.DS_Store`, `__MACOSX/._x`
are not data) are skipped without a word; links, special members (devices, FIFOs) and paths
out of the archive (absolute, or up through `..`) with one warning line per kind.

A member that cannot be read to its end (a CRC mismatch, an archive cut off after it was
listed) is damaged input (decode.DamagedInput), as a cut .gz file is: the lines before it are
imported, the damage is one rejects record (settled: a resume does not read the member
again, and order=phased writes it once), and the import goes on with the next member. An archive
cut or damaged in its listing keeps the members listed before the damage (the last of them
ends in the damage's record); one that cannot be listed at all (a zip's directory is at its
end: a cut zip) is one source whose record says so. Nothing of it stops the import.

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
import posixpath
import re
import stat
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any, BinaryIO, cast

from cdpcli.errors import UsageError
from cdpcli.importing.decode import DamagedInput, compression_of
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
    path: str,
    seed: bytes,
    fmt: str | None,
    name_format: Callable[[str], str] = lambda name: "ndjson",
    warnings: list[str] | None = None,
) -> list[Source]:
    """The members of the archive at `path` as sources, in the archive's order; [] when `path`
    is not an archive. `seed` is what the archive's own name would seed; `fmt` the format
    given for every source, else `name_format(member name)` (as a file's name says). Members
    passed over (links, special members, paths out of the archive) are one line in `warnings`
    per kind."""
    kind = archive_kind(path)
    if kind is None:
        return []
    skipped: dict[str, list[str]] = {}
    members = (
        _zip_members(path, functools.partial(open, path, "rb"), skipped)
        if kind == "zip"
        else _tar_members(path, _Opener(path), skipped)
    )
    if warnings is not None:
        warnings += skipped_warnings(path, skipped)
    return _member_sources(path, os.path.realpath(path), seed, members, fmt, name_format)


SKIPPED_WHY = {
    "link": "an archive's links are not followed",
    "special member": "devices and FIFOs are not files to import",
    "path out of the archive": "an absolute path or one with '..' names no file of the archive",
}

PLURALS = {"link": "links", "special member": "special members", "path out of the archive": "paths out of the archive"}


def skipped_warnings(path: str, skipped: dict[str, list[str]]) -> list[str]:
    """One warning line per kind of member passed over, with the count and the names."""
    warnings = []
    for kind, names in skipped.items():
        shown = ", ".join(f"{path}!{name}" for name in names[:10])
        more = f" and {len(names) - 10:,} more" if len(names) > 10 else ""
        what = kind if len(names) == 1 else PLURALS[kind]
        warnings.append(f"skipped {len(names):,} {what} in {path} ({SKIPPED_WHY[kind]}): {shown}{more}")
    return warnings


def object_archive_sources(
    object_: Source, fmt: str | None, name_format: Callable[[str], str], warnings: list[str] | None = None
) -> list[Source]:
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
    skipped: dict[str, list[str]] = {}
    try:
        if kind == "zip":
            members = _zip_members(url, lambda: open_seekable(object_), skipped)
        else:
            members = _tar_members(url, _Opener(url, lambda: open_forward(object_)), skipped)
    except UnreadableSource as exc:
        raise UsageError(f"cannot read the archive {url}: {exc.message}", hint=exc.hint) from None
    if warnings is not None:
        warnings += skipped_warnings(url, skipped)
    return _member_sources(url, url, object_.id_seed, members, fmt, name_format)


def _member_sources(
    path: str, key: str, seed: bytes, members: list[_Member], fmt: str | None, name_format: Callable[[str], str]
) -> list[Source]:
    if not members:
        raise UsageError(f"{path} is an archive with no files in it (hidden ones are skipped)")
    sources = []
    for member in members:
        if member.name is None:  # the archive could not be listed: one source that says why
            sources.append(Source(path, path, seed, key=key, opener=member.opener, version=member.version))
            continue
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
    """A member of no data: a path part starting with a dot (`.DS_Store`), or macOS's
    resource forks (`__MACOSX/`); of the name as _inside gives it (`./day1/a` is no hidden
    member: `tar czf x.tar.gz ./day1` and `tar -C dir -czf x.tar.gz .` name every member so)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _inside(name: str) -> str | None:
    """A member's path with `.` parts and repeated slashes taken out (`./day1/a.ndjson` is
    `day1/a.ndjson`, also in its label and id seed), or None for one that leaves the archive
    (absolute, or up through `..`)."""
    normal = posixpath.normpath(name)
    if normal.startswith("/") or normal == ".." or normal.startswith("../"):
        return None
    return normal


def _kept_name(name: str, kind: str | None, skipped: dict[str, list[str]]) -> str | None:
    """The name a member is read under, or None for one passed over: a directory or a hidden
    member without a word, a link, a special member or a path out of the archive in `skipped`
    (`kind`: which of the first two it is, None for a file)."""
    inside = _inside(name)
    if kind == "directory" or (inside is not None and _hidden(inside)):
        return None
    if kind is not None or inside is None:
        skipped.setdefault(kind or "path out of the archive", []).append(name)
        return None
    return inside


class _Member:
    """A member of an archive; `name` None: the archive itself, which could not be listed
    (its opener says why)."""

    def __init__(self, name: str | None, size: int | None, version: str, opener: Any) -> None:
        self.name, self.size, self.version, self.opener = name, size, version, opener


def _unlisted(path: str, problem: str) -> _Member:
    """An archive that cannot be listed (cut, or not what its first bytes said): one source
    whose reading fails at once, so it is one rejects record and the import goes on with the
    next input, as a damaged compressed file is. Its version keeps a resumed run from checking
    its first line before the import (which would fail there, stopping everything)."""

    def opener() -> BinaryIO:
        raise DamagedInput(path, problem, hint=DAMAGED_HINT.partition(";")[0])

    return _Member(None, None, "unlisted", opener)


def _zip_members(path: str, open_raw: Callable[[], Any], skipped: dict[str, list[str]]) -> list[_Member]:
    try:
        with open_raw() as raw, zipfile.ZipFile(raw) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:  # its directory, at its end, is cut off or damaged
        return [_unlisted(path, f"the zip archive is damaged or cut off ({exc})")]
    except OSError as exc:
        raise UsageError(f"cannot read the zip archive {path}: {exc}") from None
    members = []
    for info in infos:
        mode = info.external_attr >> 16  # the Unix mode, when the zip was made on Unix
        kind = "directory" if info.is_dir() else "link" if stat.S_ISLNK(mode) else None
        name = _kept_name(info.filename, kind, skipped)
        if name is None:
            continue
        version = f"crc32:{info.CRC:08x}:{info.file_size}"
        members.append(_Member(name, info.file_size, version, _zip_opener(path, open_raw, info)))
    return members


def _zip_opener(path: str, open_raw: Callable[[], Any], info: zipfile.ZipInfo) -> Any:
    def opener() -> BinaryIO:
        raw = open_raw()
        try:
            with zipfile.ZipFile(raw) as archive:  # a ZipFile given a stream leaves it open
                return _Damage(archive.open(info), f"{path}!{info.filename}", raw)  # type: ignore[return-value]
        except (OSError, zipfile.BadZipFile) as exc:
            raw.close()
            raise DamagedInput(f"{path}!{info.filename}", f"cannot open the member: {exc}", hint=DAMAGED_HINT) from None

    return opener


class _Damage:
    """A member's stream whose read errors (a CRC mismatch, a cut-off archive) make it an
    damaged input (one rejects record, the import goes on), not a crash; a store's own read
    errors (objectstore.UnreadableSource, after retries) pass as they are."""

    ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)

    def __init__(self, stream: Any, label: str, raw: Any = None) -> None:
        self.stream, self.label, self.raw = stream, label, raw  # raw: the archive, closed with it

    def read(self, count: int = -1) -> bytes:
        try:
            return self.stream.read(count)
        except self.ERRORS as exc:
            raise DamagedInput(self.label, f"the archive is damaged ({exc})", hint=DAMAGED_HINT) from None

    def read1(self, count: int = -1) -> bytes:
        try:
            return self.stream.read1(count)
        except self.ERRORS as exc:
            raise DamagedInput(self.label, f"the archive is damaged ({exc})", hint=DAMAGED_HINT) from None

    def close(self) -> None:
        self.stream.close()
        if self.raw is not None:
            self.raw.close()


def _tar_members(path: str, opener: _Opener, skipped: dict[str, list[str]]) -> list[_Member]:
    """The members listed before any damage; damage after the last of them makes that one
    end in the damage's error (the members before are imported, the damage is one
    rejects record); damage before any, one source for the archive that says so."""
    infos, damage = _tar_listing(opener)
    stream = _SharedStream(path, opener)
    members: list[_Member] = []
    kept: list[tarfile.TarInfo] = []
    for info in infos:
        kind = (
            None
            if info.isfile()
            else "directory"
            if info.isdir()
            else "link"
            if info.issym() or info.islnk()
            else "special member"
        )
        name = _kept_name(info.name, kind, skipped)
        if name is None:
            continue
        version = f"tar:{info.size}:{int(info.mtime)}:{info.chksum}"
        members.append(_Member(name, info.size, version, _tar_opener(stream, info.offset_data, info.size)))
        kept.append(info)
    if damage is not None:
        if not members:
            return [_unlisted(path, f"{damage}, before its first member")]
        last = kept[-1]
        members[-1].opener = _tar_opener(stream, last.offset_data, last.size, f"{damage} after this member")
    return members


def _tar_listing(opener: _Opener) -> tuple[list[tarfile.TarInfo], str | None]:
    """The archive's entries up to its end, or up to damage (what the damage is)."""
    infos: list[tarfile.TarInfo] = []
    try:
        with opener() as decompressed, tarfile.open(fileobj=decompressed, mode="r:") as archive:
            while (info := archive.next()) is not None:
                infos.append(info)
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error) as exc:
        return infos, f"the archive is damaged or cut off ({exc})"
    return infos, None


def _tar_opener(stream: _SharedStream, offset: int, size: int, damage_after: str | None = None) -> Any:
    def opener() -> BinaryIO:
        return _MemberReader(stream, offset, size, damage_after)  # type: ignore[return-value]

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
            parts: list[bytes] = []
            try:
                if self.handle is None:
                    self.handle = self._open()
                if self.handle.tell() != position:
                    self.handle.seek(position)
                # read1 until `count`: the bytes before a cut come before its error (one
                # read(1 MB) lost the whole megabyte with it); one read1 a block was 20% slower
                read1 = cast(Any, self.handle).read1  # gzip, bz2, lzma and plain files have it
                while count > 0 and (data := read1(count)):
                    parts.append(data)
                    count -= len(data)
            except _Damage.ERRORS as exc:
                self.handle = None  # start over on the next read, which meets the damage again
                if not parts:
                    raise DamagedInput(self.path, f"the archive is damaged ({exc})", hint=DAMAGED_HINT) from None
            return b"".join(parts)

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

    def __init__(self, stream: _SharedStream, offset: int, size: int, damage_after: str | None = None) -> None:
        self.stream, self.position, self.end = stream, offset, offset + size
        self.damage_after = damage_after  # the archive's damage, told once this member is read

    def read(self, count: int = -1) -> bytes:
        left = self.end - self.position
        if count < 0 or count > left:
            count = left
        if count <= 0:
            if self.damage_after is not None:
                raise DamagedInput(self.stream.path, self.damage_after, hint=DAMAGED_HINT)
            return b""
        data = self.stream.read_at(self.position, count)
        self.position += len(data)
        if not data:  # the archive ends before the member does: a truncated download
            raise DamagedInput(
                self.stream.path, "the archive ends inside this member: it is damaged or cut off", hint=DAMAGED_HINT
            )
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

"""Compressed inputs, read natively: gzip (multi-member too), bzip2, xz, and zstd with the
optional extra. The format is told by the first bytes (magic), never by the name, on files and
stdin alike. Decompression runs in the reader thread; zlib, bz2, lzma and zstandard release the
GIL while they work, so it overlaps the packer's work on the main thread.

Each decompress call is bounded (max_length): a small file that inflates to gigabytes (a
"zip bomb") is read chunk by chunk like any large file, never held whole in memory.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from cdpcli.errors import UsageError

GZIP = b"\x1f\x8b"
BZIP2 = b"BZh"
XZ = b"\xfd7zXZ\x00"
ZSTD = b"\x28\xb5\x2f\xfd"
MAGIC_BYTES = 6  # enough to tell every format above
ZSTD_EXTRA = "pip install 'cdp-pipelines-cli[zstd]'"


class DamagedInput(UsageError):
    """Compressed data that cannot be read on (cut short, or corrupt): what came before it
    was read. `problem` is the message without the source's name (for its rejects record)."""

    def __init__(self, label: str, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{label}: {problem}", hint)
        self.problem = problem


def compression_of(head: bytes) -> str | None:
    """'gzip', 'bzip2', 'xz', 'zstd', or None for plain text, from a stream's first bytes."""
    if head.startswith(GZIP):
        return "gzip"
    if head.startswith(BZIP2) and len(head) > 3 and head[3:4] in b"123456789":
        return "bzip2"
    if head.startswith(XZ):
        return "xz"
    if head.startswith(ZSTD):
        return "zstd"
    return None


def _new_decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


def zstd_module() -> Any:
    try:
        import zstandard
    except ImportError:
        raise UsageError(
            "reading zstd-compressed input needs the optional zstd extra",
            hint=f"{ZSTD_EXTRA}, or: zstdcat FILE | cdp import",
        ) from None
    return zstandard


class _Prefixed:
    """A raw stream whose first bytes were read already (to tell its format)."""

    def __init__(self, head: bytes, read: Callable[[int], bytes], progress: Callable[[int], None]) -> None:
        self.head, self._read, self.progress = head, read, progress

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
        else:
            data = self._read(size if size > 0 else 1 << 20)
        self.progress(len(data))
        return data


def decompressed(
    kind: str, label: str, read: Callable[[int], bytes], head: bytes, progress: Callable[[int], None], size: int
) -> Iterator[bytes]:
    """Blocks of decompressed bytes (at most `size` each) from a stream whose first bytes,
    already read, are `head`; `read(n)` gives the rest. Concatenated members (multi-member gzip,
    multi-stream bzip2/xz/zstd) are read one after the other, as zcat does. `progress` counts
    compressed bytes (the share of a file read)."""
    try:
        if kind == "zstd":
            yield from _zstd_blocks(label, _Prefixed(head, read, progress), size)
            return
        yield from _blocks(kind, label, read, head, progress, size)
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        raise DamagedInput(
            label, f"corrupt {kind} data ({exc})", hint=f"check the file, e.g. {_test_command(kind)} on it"
        ) from None


def _blocks(
    kind: str, label: str, read: Callable[[int], bytes], head: bytes, progress: Callable[[int], None], size: int
) -> Iterator[bytes]:
    decoder = _new_decompressor(kind)
    pending = head  # input not yet given to the decoder
    progress(len(head))
    gzip = kind == "gzip"
    while True:
        if decoder.eof:  # a member ended: another follows, or zero padding, or the end
            rest = pending.lstrip(b"\0")
            if not rest:
                more = read(size)
                if not more:
                    return
                progress(len(more))
                pending = more
                continue
            decoder = _new_decompressor(kind)
            pending = rest
        if not pending and (gzip or decoder.needs_input):
            pending = read(size)
            if not pending:
                raise DamagedInput(
                    label,
                    f"the {kind} data ends early (truncated?)",
                    hint=f"check the file, e.g. {_test_command(kind)} on it",
                )
            progress(len(pending))
        block = decoder.decompress(pending, size)
        pending = decoder.unused_data if decoder.eof else decoder.unconsumed_tail if gzip else b""
        if block:
            yield block


# zstandard's decompressobj has no max_length: it is fed this much input at a time, which bounds
# its output (a zstd block holds at most 128 KB from at least a few bytes: ~32 MB per feed)
ZSTD_FEED = 1024


def _zstd_blocks(label: str, raw: _Prefixed, size: int) -> Iterator[bytes]:
    """Frame after frame (decompressobj reads one), so that a stream cut short is noticed."""
    zstandard = zstd_module()
    decompressor = zstandard.ZstdDecompressor()
    frame = decompressor.decompressobj()
    begun = False  # the current frame has had input
    # fed from `pending` at `offset`: slicing the rest off each time copied the whole block per
    # 1 KB fed (~27 ms of copying per compressed MB)
    pending = b""
    offset = 0
    try:
        while True:
            if offset >= len(pending):
                pending, offset = raw.read(size), 0
                if not pending:
                    if begun and not frame.eof:
                        raise DamagedInput(
                            label,
                            "the zstd data ends early (truncated?)",
                            hint=f"check the file, e.g. {_test_command('zstd')} on it",
                        )
                    return
            if frame.eof:
                frame = decompressor.decompressobj()
                begun = False
            piece = pending[offset : offset + ZSTD_FEED]
            offset += len(piece)
            begun = True
            block = frame.decompress(piece)
            if frame.eof:
                pending, offset = frame.unused_data + pending[offset:], 0
            if block:
                yield block
    except zstandard.ZstdError as exc:
        raise DamagedInput(
            label, f"corrupt zstd data ({exc})", hint=f"check the file, e.g. {_test_command('zstd')} on it"
        ) from None


def _test_command(kind: str) -> str:
    return {"gzip": "gzip -t", "bzip2": "bzip2 -t", "xz": "xz -t", "zstd": "zstd -t"}[kind]

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

    def __init__(self, head: bytes, read: Callable[[int], bytes]) -> None:
        self.head, self._read = head, read

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return self._read(size if size > 0 else 1 << 20)


class _Consumed:
    """Counts the compressed bytes the decoder has consumed, as each block is handed over: the
    reader takes up to a megabyte of input at once (a 60 KB .gz whole), which decompresses into
    many blocks, and the bytes read would put the progress share far ahead of the lines settled
    (share.py maps each chunk's lines to this count)."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress = progress
        self.counted = 0

    def at(self, consumed: int) -> None:
        if consumed > self.counted:
            self.progress(consumed - self.counted)
            self.counted = consumed


def decompressed(
    kind: str, label: str, read: Callable[[int], bytes], head: bytes, progress: Callable[[int], None], size: int
) -> Iterator[bytes]:
    """Blocks of decompressed bytes (at most `size` each) from a stream whose first bytes,
    already read, are `head`; `read(n)` gives the rest. Concatenated members (multi-member gzip,
    multi-stream bzip2/xz/zstd) are read one after the other, as zcat does. `progress` counts
    compressed bytes as the decoder consumes them: by the time a block is handed over, those
    that made it (at most one feed of input more), and in the end all of them."""
    consumed = _Consumed(progress)
    try:
        if kind == "zstd":
            yield from _zstd_blocks(label, _Prefixed(head, read), size, consumed)
            return
        if kind == "gzip":
            yield from _gzip_blocks(label, read, head, size, consumed)
            return
        yield from _fed_blocks(kind, label, read, head, size, consumed)
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        raise DamagedInput(
            label, f"corrupt {kind} data ({exc})", hint=f"check the file, e.g. {_test_command(kind)} on it"
        ) from None


def _ends_early(kind: str, label: str) -> DamagedInput:
    return DamagedInput(
        label, f"the {kind} data ends early (truncated?)", hint=f"check the file, e.g. {_test_command(kind)} on it"
    )


def _gzip_blocks(
    label: str, read: Callable[[int], bytes], head: bytes, size: int, consumed: _Consumed
) -> Iterator[bytes]:
    """zlib hands back what it did not consume (unconsumed_tail, unused_data): the bytes
    consumed are exact."""
    decoder = _new_decompressor("gzip")
    pending = head  # input not yet consumed by the decoder
    taken = len(head)  # input read from the stream
    while True:
        if decoder.eof:  # a member ended: another follows, or zero padding, or the end
            rest = pending.lstrip(b"\0")
            if not rest:
                more = read(size)
                if not more:
                    consumed.at(taken)
                    return
                taken += len(more)
                pending = more
                continue
            decoder = _new_decompressor("gzip")
            pending = rest
        if not pending:
            pending = read(size)
            if not pending:
                consumed.at(taken)
                raise _ends_early("gzip", label)
            taken += len(pending)
        block = decoder.decompress(pending, size)
        pending = decoder.unused_data if decoder.eof else decoder.unconsumed_tail
        if block:
            consumed.at(taken - len(pending))
            yield block


# bzip2 and xz decoders keep what they did not consume inside, and do not say how much: they
# are fed this much at a time, and each block is counted up to the input fed by the last call
# that returned output and left none inside (xz: ~45 KB of lines per feed here; 8 KB of xz is
# up to ~500 KB of lines at the ~60x that repetitive exports compress to)
FEED_BYTES = 8192


def _fed_blocks(
    kind: str, label: str, read: Callable[[int], bytes], head: bytes, size: int, consumed: _Consumed
) -> Iterator[bytes]:
    """bzip2 and xz, fed FEED_BYTES at a time; the output gathered into blocks of `size` to
    2 x `size` (a feed's output alone is often small). What was gathered is handed over before
    an error about the data after it."""
    gathered: list[bytes] = []
    try:
        yield from _fed_blocks_gathered(kind, label, read, head, size, consumed, gathered)
    except (DamagedInput, OSError, EOFError, ValueError, lzma.LZMAError):
        if gathered:
            yield b"".join(gathered)
        raise


def _fed_blocks_gathered(
    kind: str,
    label: str,
    read: Callable[[int], bytes],
    head: bytes,
    size: int,
    consumed: _Consumed,
    gathered: list[bytes],
) -> Iterator[bytes]:
    decoder = _new_decompressor(kind)
    pending, offset = head, 0  # input read, fed from `offset` on (no copy of the rest per feed)
    taken = len(head)
    made_by = 0  # the input that made the output gathered so far, as far as it is known
    while True:
        if decoder.eof:  # a stream ended: another follows, or zero padding, or the end
            pending, offset = (decoder.unused_data + pending[offset:]).lstrip(b"\0"), 0
            if not pending:
                more = read(size)
                if not more:
                    break
                taken += len(more)
                pending = more
                continue
            decoder = _new_decompressor(kind)
        piece = b""  # the decoder holds output still: drained first
        if decoder.needs_input:
            if offset >= len(pending):
                pending, offset = read(size), 0
                if not pending:
                    consumed.at(taken)
                    raise _ends_early(kind, label)
                taken += len(pending)
            piece = pending[offset : offset + FEED_BYTES]
            offset += len(piece)
        block = decoder.decompress(piece, size)
        if not block:
            continue
        gathered.append(block)
        if decoder.needs_input or decoder.eof:  # nothing left inside: this output is the input's
            made_by = taken - (len(pending) - offset)
        if sum(map(len, gathered)) >= size:
            consumed.at(made_by)
            yield b"".join(gathered)
            gathered.clear()
    consumed.at(taken)
    if gathered:
        yield b"".join(gathered)
        gathered.clear()


# zstandard's decompressobj has no max_length: it is fed this much input at a time, which bounds
# its output (a zstd block holds at most 128 KB from at least a few bytes: ~32 MB per feed)
ZSTD_FEED = 1024


def _zstd_blocks(label: str, raw: _Prefixed, size: int, consumed: _Consumed) -> Iterator[bytes]:
    """Frame after frame (decompressobj reads one), so that a stream cut short is noticed.
    Each feed is consumed whole (what follows a frame's end comes back as unused_data)."""
    zstandard = zstd_module()
    decompressor = zstandard.ZstdDecompressor()
    frame = decompressor.decompressobj()
    begun = False  # the current frame has had input
    # fed from `pending` at `offset`: slicing the rest off each time copied the whole block per
    # 1 KB fed (~27 ms of copying per compressed MB)
    pending = b""
    offset = 0
    taken = 0
    try:
        while True:
            if offset >= len(pending):
                pending, offset = raw.read(size), 0
                taken += len(pending)
                if not pending:
                    consumed.at(taken)
                    if begun and not frame.eof:
                        raise _ends_early("zstd", label)
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
                consumed.at(taken - (len(pending) - offset))
                yield block
    except zstandard.ZstdError as exc:
        raise DamagedInput(
            label, f"corrupt zstd data ({exc})", hint=f"check the file, e.g. {_test_command('zstd')} on it"
        ) from None


def _test_command(kind: str) -> str:
    return {"gzip": "gzip -t", "bzip2": "bzip2 -t", "xz": "xz -t", "zstd": "zstd -t"}[kind]

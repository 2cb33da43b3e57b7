"""The progress share of a compressed input is the settled lines' share of its compressed bytes:
never the share the reader has read ahead (a 59 KB .gz is read whole at once, and the display
showed 72 % with 46 % settled, then 100 % with a third left)."""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import lzma
import random

import pytest

from cdpcli.importing import Importer, make_sources
from cdpcli.importing.decode import decompressed
from cdpcli.importing.options import ImportOptions
from cdpcli.target import Target
from tests.conftest import API_KEY
from tests.test_import_share import Watch


def zstd(data: bytes) -> bytes:
    return pytest.importorskip("zstandard").ZstdCompressor().compress(data)


def even_calls(count: int) -> bytes:
    """Calls of one size whose ids are random (seeded): every stretch of the file compresses
    alike, so a share of its lines is the same share of its compressed bytes (repeated ids
    compress ever better as the dictionary fills: zstd packs the last lines of a run of
    equal calls 10x tighter than the first)."""
    rng = random.Random(25)
    lines = []
    for _ in range(count):
        call = {"type": "track", "userId": f"{rng.getrandbits(64):016x}", "event": "E", "properties": {}}
        call["properties"]["k"] = f"{rng.getrandbits(64):016x}"
        lines.append(json.dumps(call) + "\n")
    return "".join(lines).encode()


def xz(data: bytes) -> bytes:
    return lzma.compress(data, preset=1)  # the default preset takes ~4 s here for the same test


COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": xz, "zstd": zstd}
COUNT = 20_000  # 2 MB of lines that compress to ~0.5 MB: the reader reads ahead of the sends


@functools.cache
def packed(kind: str) -> tuple[bytes, bytes]:
    data = even_calls(COUNT)
    return data, COMPRESSORS[kind](data)


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_the_share_shown_of_a_compressed_file_is_the_share_settled(receiver, tmp_path, kind):
    count = COUNT
    (tmp_path / "e.ndjson.z").write_bytes(packed(kind)[1])
    target = Target.resolve(endpoint=receiver.url, api_key=API_KEY)
    sources, _ = make_sources([str(tmp_path / "e.ndjson.z")])
    events = Watch(count)
    options = ImportOptions.build(batch_events=250, concurrency=1, rate=100_000)
    assert Importer(target, sources, options, events).run().sent == count
    assert len(events.seen) >= 40
    # every line is one call of the same size, so the share of the calls acknowledged is the
    # share of the input settled: the share shown is within a batch or two of it (bzip2 too:
    # its 900 KB blocks end where the chunks made of them end)
    assert max(abs(shown - sent) for sent, shown in events.seen) < 0.05, events.seen


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_the_compressed_bytes_counted_are_those_consumed_by_each_block(kind):
    data, compressed = packed(kind)
    stream = iter([compressed[6:], b""])  # the whole file in one read, as a small file comes
    counted: list[int] = []
    out = 0
    for block in decompressed(kind, "f", lambda n: next(stream), compressed[:6], counted.append, 1 << 20):
        out += len(block)
        # the compressed bytes counted by the time a block is handed over are no more than its
        # end's share of the compressed file, plus one feed of input
        assert sum(counted) <= len(compressed) * (out / len(data) + 0.05)
    assert sum(counted) == len(compressed) and out == len(data)

"""The progress display's settled share: the settled lines' share of the input bytes, under
every order. Checked against the one share that is exact here: every line is one valid call of
the same size, so the share settled is the share of calls the receiver acknowledged."""

from __future__ import annotations

import json

import pytest

from cdpcli.cli.progress import settled_share
from cdpcli.importing import Importer, ImportEvents, ImportOptions, make_sources
from cdpcli.importing.share import SettledShare
from cdpcli.importing.source import Chunk
from cdpcli.target import Target
from tests.conftest import API_KEY

TYPES = ("identify", "track", "track", "alias")  # phases of different sizes, and no deletes


def equal_calls(count: int) -> bytes:
    lines = []
    for n in range(count):
        kind = TYPES[n % len(TYPES)]
        call = {"type": kind, "userId": f"u{n:06d}", "event": "E", "previousId": f"p{n:06d}"}
        lines.append(json.dumps(call) + "\n")
    return "".join(lines).encode()


class Watch(ImportEvents):
    """The share the display would show at each answer, beside the share truly settled."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen: list[tuple[float, float]] = []

    def started(self, stats, total_bytes) -> None:
        self.stats, self.total = stats, total_bytes

    def exchange(self, exchange) -> None:
        shown = settled_share(self.stats, self.total)
        self.seen.append((self.stats.sent / self.count, shown))


@pytest.mark.parametrize("order", ["none", "phased"])
def test_the_share_shown_is_the_share_settled(receiver, tmp_path, order):
    count = 40_000  # 2.4 MB: read ahead whole by the reader, packed chunk by chunk
    (tmp_path / "e.ndjson").write_bytes(equal_calls(count))
    target = Target.resolve(endpoint=receiver.url, api_key=API_KEY)
    sources, _ = make_sources([str(tmp_path / "e.ndjson")])
    events = Watch(count)
    options = ImportOptions.build(order=order, batch_events=500, concurrency=1, rate=100_000)
    assert Importer(target, sources, options, events).run().sent == count
    assert len(events.seen) >= 40
    # at each answer, the share shown is within a batch or two of the calls acknowledged
    assert max(abs(shown - sent) for sent, shown in events.seen) < 0.05, events.seen


def test_the_settled_bytes_are_interpolated_inside_a_chunk():
    share = SettledShare(2, total_bytes=4000)
    share.saw(Chunk(0, 1, b"", 100, through=1000))
    share.saw(Chunk(0, 101, b"", 100, through=2000))
    share.saw(Chunk(1, 1, b"", 10, through=2000))
    assert share.settled_bytes([150, 0]) == 1500
    assert share.settled_bytes([200, 5]) == 3000
    assert share.share(0, [200, 10]) == 1.0

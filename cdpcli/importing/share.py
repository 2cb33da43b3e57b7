"""How much of an import's input is settled, as a share of its bytes (the progress display).

Lines settle in order per source (checkpoint.Settlement: the settled prefix of each source),
and the reader tells how many of the source's input bytes it had read when it handed over each
chunk (`Chunk.through`: compressed bytes for a compressed file). The settled share is the bytes
up to the settled line of each source, interpolated inside the chunk it falls in, over the
input's size. Counting lines instead misled both ways: the packer's count of lines read grows a
chunk (~5,000 lines) at a time while sends settle in between (0 % shown at 31 % sent), and the
reader reads ahead, so the share of bytes read reached 100 % with 45 % left to send.

With --order phased every phase reads the input again, and a line is settled once its own
phase's pass has passed it: the share is the lines of earlier phases and the current phase's
lines in the settled prefix, over all lines (PhasedShare; each line's phase is the byte the
phase filter keeps for it, and while the first pass still reads, the lines to come are
estimated from the share of the input's bytes read so far). Phases hold very different
numbers of lines (often no deletes at all): counting phases as equal parts showed 84 % done
when everything was sent.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from cdpcli.importing.checkpoint import Settlement
from cdpcli.importing.order import PhaseFilter
from cdpcli.importing.source import Chunk, Source


class SettledShare:
    """Per source, each chunk's last line and the input bytes read through it, as packed."""

    def __init__(self, sources: int, total_bytes: int | None) -> None:
        self.total = total_bytes
        self.last_lines: list[list[int]] = [[] for _ in range(sources)]
        self.through: list[list[int]] = [[] for _ in range(sources)]

    def saw(self, chunk: Chunk) -> None:
        """A chunk the packer takes (the packer's thread; progress reads from another)."""
        lines, through = self.last_lines[chunk.source], self.through[chunk.source]
        if chunk.first_line == 1 and lines:  # a new pass over the source (another phase)
            lines, through = self.last_lines[chunk.source], self.through[chunk.source] = [], []
        lines.append(chunk.first_line + chunk.count - 1)
        through.append(chunk.through)

    def settled_bytes(self, settled: list[int]) -> int:
        """The input bytes up to each source's settled line (`settled`: lines per source)."""
        return sum(self.bytes_at(index, count) for index, count in enumerate(settled[: len(self.through)]))

    def bytes_at(self, source: int, line: int) -> int:
        """Where line `line` of a source ends in its input, as far as the chunks seen tell:
        interpolated inside the chunk it falls in."""
        lines, through = self.last_lines[source], self.through[source]
        at = bisect.bisect_left(lines, line)
        if at >= len(lines) or at >= len(through):
            return through[-1] if through and line >= lines[-1] else 0
        before_line, before_bytes = (lines[at - 1], through[at - 1]) if at else (0, 0)
        span = max(lines[at] - before_line, 1)
        return before_bytes + (through[at] - before_bytes) * (line - before_line) // span

    def measured(self, settlement: Settlement) -> Callable[[], float | None]:
        """The share now, as a progress display asks for it (Stats.settled_share)."""
        return lambda: self.share(*settlement.snapshot())

    def share(self, phase: int, settled: list[int]) -> float | None:
        """The settled share of the input, or None when its size is not known (stdin)."""
        if not self.total:
            return None
        return min(self.settled_bytes(settled) / self.total, 1.0)


class PhasedShare(SettledShare):
    """The settled share under --order phased, counted in lines of each phase (see above)."""

    def __init__(self, sizes: list[int | None], phaser: PhaseFilter) -> None:
        super().__init__(len(sizes), sum(size or 0 for size in sizes) or None)
        self.sizes = sizes
        self.phaser = phaser  # its `known`: per source, each line's phase as a byte; `first`: first pass

    def share(self, phase: int, settled: list[int]) -> float | None:
        if not self.total:
            return None
        done = lines = 0.0
        mark = bytes([phase])
        estimating = self.phaser.first  # the first pass is still finding each line's phase
        for index, known in enumerate(self.phaser.known):
            seen = len(known)
            earlier = sum(known.count(bytes([before])) for before in range(phase))
            done += earlier + known.count(mark, 0, min(settled[index], seen))
            size = self.sizes[index]
            read = min(self.bytes_at(index, seen) / size, 1.0) if estimating and size else 1.0
            lines += seen / read if read > 0 else seen
        return min(done / lines, 1.0) if lines else 0.0


def share_for(sources: list[Source], phaser: PhaseFilter | None) -> SettledShare:
    """The measure for an import of these sources (`phaser`: its --order phased filter)."""
    if phaser is None:
        return SettledShare(len(sources), sum(s.size or 0 for s in sources) or None)
    return PhasedShare([s.size for s in sources], phaser)

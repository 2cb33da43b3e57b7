"""`order=phased`: calls sent in the order Customer.io can process them safely.

The API may process calls out of order, and a merge (alias) sent while the identify that
creates its primary profile is still in flight fails; a delete followed by later calls
re-creates the person. So an import in phases sends, one phase after the other, each phase
starting only once every call of the one before is settled (acknowledged or rejected):

    0  identify, group          (profiles and objects exist)
    1  track, page, screen      (their activity)
    2  alias                    (merges, once both profiles exist)
    3  deletes and suppressions (User Deleted, User Suppressed, Object Deleted, …)

Every pass re-reads the inputs and takes its phase's lines; the others are not counted again
(the first pass of a run counts every line as read). A line that is not a JSON object, or has
no known type, belongs to phase 0, where it is rejected. stdin and iterables are spooled to a
private temporary file first (they can be read only once).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

from cdpcli import files
from cdpcli.errors import UsageError
from cdpcli.importing.sources import CHUNK_BYTES, item_line

if TYPE_CHECKING:
    from cdpcli.importing.source import Source

ORDERS = ("none", "phased")
PHASES = ("identify, group", "track, page, screen", "alias", "deletes and suppressions")
DELETE_EVENTS = frozenset(
    {"User Deleted", "User Suppressed", "Object Deleted", "Relationship Deleted", "Device Deleted"}
)
_PHASE_OF_TYPE = {"identify": 0, "group": 0, "track": 1, "page": 1, "screen": 1, "alias": 2}


def check_order(order: str) -> None:
    if order not in ORDERS:
        raise UsageError(f"order={order!r}: expected one of {', '.join(ORDERS)}", option="order")


def phase_of(line: bytes, default_type: str | None) -> int:
    """The phase a line's call belongs to (0 for what is not a call: it is rejected there)."""
    try:
        call = json.loads(line)
    except (ValueError, RecursionError):
        return 0
    if not isinstance(call, dict):
        return 0
    kind = call.get("type", default_type)
    phase = _PHASE_OF_TYPE.get(kind, 0) if isinstance(kind, str) else 0
    if phase == 1 and kind == "track" and call.get("event") in DELETE_EVENTS:
        return 3
    return phase


class OtherPhase(Exception):  # noqa: N818 - a signal, like SkipLine
    """A line of another phase than the pass's: `settled` when an earlier run settled it."""

    def __init__(self, settled: bool) -> None:
        super().__init__()
        self.settled = settled


class PhaseFilter:
    """prepare() of one pass: the lines of its phase go on to `inner`; the others raise
    OtherPhase. In a run's first pass, resumed in a phase, a line of that phase within the
    checkpoint's settled prefix (`skip`, set per chunk) or of an earlier phase is settled."""

    def __init__(
        self, inner: Callable[[int, bytes], bytes], default_type: str | None, phase: int, sources: int = 1
    ) -> None:
        self.inner = inner
        self.default_type = default_type
        self.phase = phase
        self.first = True  # the run's first pass: it counts every line as read
        self.skip = 0
        # per source, each line's phase as the first pass found it (a byte a line): later
        # passes look it up instead of parsing the line again
        self.known = [bytearray() for _ in range(sources)]
        self.source = 0  # the source of the chunk at hand (set per chunk)

    def prepare(self, line_no: int, line: bytes) -> bytes:
        known = self.known[self.source]
        if line_no <= len(known):
            phase = known[line_no - 1]
        else:
            phase = phase_of(line, self.default_type)
            if len(known) < line_no - 1:  # blank lines, lines of other shards: never asked for
                known.extend(bytes(line_no - 1 - len(known)))
            known.append(phase)
        if phase != self.phase:
            raise OtherPhase(self.first and phase < self.phase)
        if line_no <= self.skip:
            raise OtherPhase(True)
        return self.inner(line_no, line)


def spool(source: Source) -> str:
    """Copy stdin (its bytes as they come, compressed or not) or an iterable's lines to a
    private temporary file, which the source then reads; returns its path (the caller removes it)."""
    fd, path = tempfile.mkstemp(prefix="cdp-spool-", suffix=".ndjson")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), files.PRIVATE)
            if source.items is not None:
                for item in source.items:
                    handle.write(item_line(item) + b"\n")
            else:
                stream = source.open()
                read = getattr(stream, "read1", stream.read)
                while data := read(CHUNK_BYTES):
                    handle.write(data)
        source.items = None
        source.spooled = path
        source.size = os.stat(path).st_size
    except BaseException:
        os.unlink(path)
        raise
    return path

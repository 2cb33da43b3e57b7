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
import re
import select
import stat
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from cdpcli import files
from cdpcli.errors import ExitCode, FatalStop, UsageError
from cdpcli.importing.csvrows import MARK
from cdpcli.importing.prepare import InvalidLine, unwrap_reject
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
    try:
        call = unwrap_reject(call)  # a rejects record fed back: the phase of the call in it
    except InvalidLine:
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
        self.label = ""
        # from this line on, the source at hand was never read (an earlier run found it cut):
        # its lines of the phases before the one resumed in are not settled
        self.unread_from = NEVER

    def reading(self, index: int, source: Source, skip: int) -> None:
        """The next lines are `source`'s (`index`), whose first `skip` lines the checkpoint
        settled in the phase resumed in."""
        self.source, self.label = index, source.label
        self.skip = skip if self.first else 0
        self.unread_from = source.damaged_line or NEVER if self.first and self.phase else NEVER

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
            if line_no >= self.unread_from and phase < self.phase and not line.startswith(MARK):
                self._never_sent(line_no)
            raise OtherPhase(self.first and phase < self.phase)
        if line_no <= self.skip:
            raise OtherPhase(True)
        return self.inner(line_no, line)

    def _never_sent(self, line_no: int) -> None:
        """A line of an earlier phase past where the source was cut when the checkpoint was
        written: the source reads whole now, but its earlier phases are over."""
        raise FatalStop(
            f"{self.label} reads past line {self.unread_from - 1:,} now, where it was cut or corrupt when the "
            f"checkpoint was written; this run resumes in phase {self.phase + 1} ({PHASES[self.phase]}), so its lines "
            f"from line {line_no:,} on of the phases before would never be sent",
            hint=f"import {self.label} again on its own, in all phases, without this checkpoint (the lines sent "
            "before go out again under the same derived messageIds)",
            exit_code=ExitCode.USAGE,
            option="checkpoint",
        )


NEVER = 1 << 62  # a line number no source reaches

# how often a spool that waits for input looks whether the import was interrupted
SPOOL_POLL_SECONDS = 0.1
# a spool stops before it leaves its file system less free space than this: 1 GiB, or a tenth
# of a file system smaller than 10 GiB (a 2 GiB tmpfs keeps ~200 MB) — what the system and
# the other programs writing there need; an endless producer wrote 1.6 GB in 3 s
SPOOL_RESERVE_BYTES = 1 << 30
SPOOL_RESERVE_SHARE = 0.10


def spool_directory() -> str:
    """The private directory spools live in, under $TMPDIR: one per user, 0700, created when
    missing; refused when it is not this user's own private folder (another user could read
    or plant files there)."""
    path = os.path.join(tempfile.gettempdir(), f"cdp-spool-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UsageError(
            f"{path} is not a private folder of this user: cdp will not copy customer data there",
            hint=f"remove it, or point TMPDIR at a private folder (order=phased copies stdin to {path})",
            option="order",
        )
    return path


def remove_stale_spools(directory: str) -> None:
    """Spools of runs that are gone (killed: a normal end removes its own), by the process id
    in their name."""
    for name in os.listdir(directory):
        match = SPOOL_NAME.fullmatch(name)
        if match is None or _running(int(match[1])):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass  # another run removed it first


SPOOL_NAME = re.compile(r"spool-([0-9]+)-[A-Za-z0-9_]+\.ndjson")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal, only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process with that id: not ours to judge
    return True


def spool(source: Source, stopped: Callable[[], bool] = lambda: False) -> str:
    """Copy stdin (its bytes as they come, compressed or not) or an iterable's lines to a
    private temporary file, which the source then reads; returns its path (the caller removes
    it). Stops copying as soon as `stopped()` (Ctrl-C, SIGTERM): it never waits for an
    endless producer to end. Spools of killed runs are removed first."""
    directory = spool_directory()
    remove_stale_spools(directory)
    fd, path = tempfile.mkstemp(prefix=f"spool-{os.getpid()}-", suffix=".ndjson", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), files.PRIVATE)
            room = _SpoolRoom(directory, source.label)
            if source.items is not None:
                for item in source.items:
                    if stopped():
                        break
                    line = item_line(item) + b"\n"
                    room.take(len(line))
                    handle.write(line)
            else:
                stream = source.open()  # held here: _interruptible keeps only its descriptor
                try:
                    read = _interruptible(stream, stopped)
                    while data := read(CHUNK_BYTES):
                        room.take(len(data))
                        handle.write(data)
                finally:
                    if source.name != "-":  # a pipe or FIFO named as a file; stdin stays open
                        stream.close()
        source.items = None
        source.spooled = path
        source.size = os.stat(path).st_size
    except BaseException:
        os.unlink(path)
        raise
    return path


class _SpoolRoom:
    """The bytes a spool may still write before its file system keeps less than its reserve
    free (SPOOL_RESERVE_BYTES); asked again each CHUNK_BYTES (statvfs: microseconds), since
    others write there too."""

    def __init__(self, directory: str, label: str) -> None:
        self.directory, self.label = directory, label
        self.left = 0  # bytes that may be written before the next look
        self.written = 0

    def take(self, size: int) -> None:
        self.written += size
        self.left -= size
        if self.left >= 0:
            return
        info = os.statvfs(self.directory)
        reserve = min(SPOOL_RESERVE_BYTES, int(info.f_blocks * info.f_frsize * SPOOL_RESERVE_SHARE))
        room = info.f_bavail * info.f_frsize - reserve
        if room < -self.left:  # the bytes in hand do not fit
            raise UsageError(
                f"order=phased: copying {self.label} stopped after {self.written - size:,} bytes: "
                f"{self.directory} would keep less than {reserve:,} bytes free",
                hint="import from a file instead (it is read again, not copied), "
                "or point TMPDIR at a file system with more room",
                option="order",
            )
        self.left = min(room + self.left, CHUNK_BYTES)


def _interruptible(stream: BinaryIO, stopped: Callable[[], bool]) -> Callable[[int], bytes]:
    """`read(n)` of a stream that returns b"" once `stopped()`, also while no input comes: a
    pipe is waited on SPOOL_POLL_SECONDS at a time (select), never in one blocking read."""
    read = getattr(stream, "read1", stream.read)
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file descriptor (an in-memory stream)
        fd = -1
    if fd < 0 or os.name != "posix":
        return lambda size: b"" if stopped() else read(size)

    def wait_then_read(size: int) -> bytes:
        while not stopped():
            ready, _, _ = select.select([fd], [], [], SPOOL_POLL_SECONDS)
            if ready:
                return os.read(fd, size)
        return b""

    return wait_then_read

"""Which lines are settled (Settlement), and the checkpoint file that records it per source, so
that the same command run again resumes after them."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cdpcli import files, jsontext
from cdpcli.errors import FatalStop, UsageError
from cdpcli.importing.batches import Batch, unref
from cdpcli.importing.source import Source

if TYPE_CHECKING:
    from cdpcli.importing.rejects import Rejects


class Settlement:
    """Which lines are settled (delivered or rejected), for the checkpoint.

    Lines of a source are read in order, so its settled prefix ends just before the first
    line of its oldest batch still open (being filled, queued, in flight, or left unsent by an
    interruption), or at the last line handled when none is open. Any thread may ask.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.lock = threading.Lock()
        self.last_handled = [s.skip for s in sources]
        self.open: dict[int, dict[int, int]] = {}  # batch seq -> {source: its first line}
        self.filling: dict[int, int] = {}  # the batch being filled: {source: its first line}
        self.first_hash: list[str | None] = [s.first_line_hash for s in sources]
        self.phase = 0  # order=phased: the phase being sent (the counts above are its own)
        # per source, the line where its compressed data broke: the fragment before the damage
        # is in the rejects file, but never settled, so a resume reads that line again (once
        # the file is whole again, the line is sent; still cut, its record is not repeated)
        self.damage: dict[int, int] = {}
        self.idle = threading.Condition(self.lock)  # notified as batches close

    def handled(self, source: int, line_no: int, filling: Batch | None = None) -> None:
        """The packer is done with `source` up to `line_no`; `filling` is its batch being filled."""
        firsts = _first_lines(filling) if filling is not None else {}
        with self.lock:
            self.last_handled[source] = line_no
            self.filling = firsts

    def damaged(self, source: int, line_no: int) -> None:
        """`source` cannot be read past line `line_no` (damaged compressed data)."""
        with self.lock:
            self.damage[source] = line_no

    def opened(self, batch: Batch) -> None:
        """`batch` leaves the packer: every line up to its last is handled, none is filling
        (a 1 MB chunk holds ~5,000 lines: the packer may block inside one for long)."""
        firsts = _first_lines(batch)
        source, last = unref(batch.refs[-1]) if batch.refs else (None, 0)
        with self.lock:
            self.open[batch.seq] = firsts
            self.filling = {}
            if source is not None and last > self.last_handled[source]:
                self.last_handled[source] = last

    def closed(self, batch: Batch) -> None:
        with self.lock:
            self.open.pop(batch.seq, None)
            if not self.open:
                self.idle.notify_all()

    def settled(self) -> list[int]:
        """Per source, how many leading lines are settled."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[int, list[int]]:
        """The phase, and per source how many leading lines are settled in it."""
        with self.lock:
            phase = self.phase
            done = list(self.last_handled)
            firsts = [*self.open.values(), self.filling, self.damage]
        for batch_firsts in firsts:
            for source, line_no in batch_firsts.items():
                done[source] = min(done[source], line_no - 1)
        return phase, done

    def wait_idle(self, give_up: Callable[[], bool]) -> bool:
        """Wait until no batch is open (every call sent so far is settled): True, or False
        once `give_up()` says to stop waiting."""
        with self.lock:
            while self.open:
                if give_up():
                    return False
                self.idle.wait(0.1)
        return True

    def next_phase(self, phase: int) -> None:
        """Every line of the phase before is settled: the next one starts from line 1."""
        with self.lock:
            assert not self.open
            self.phase = phase
            self.last_handled = [0] * len(self.last_handled)
            self.filling = {}


def _first_lines(batch: Batch) -> dict[int, int]:
    if not batch.refs:
        return {}
    first_source, first_line = unref(batch.refs[0])
    if unref(batch.refs[-1])[0] == first_source:  # sources are packed in order: one source
        return {first_source: first_line}
    firsts: dict[int, int] = {}
    for source, line_no in map(unref, batch.refs):
        firsts.setdefault(source, line_no)
    return firsts


CHECKPOINT_HINT = "remove it to import from the start, or pass another checkpoint="
# version 3 records the selection of lines it ran under, always (an empty one too); versions 1
# (order none) and 2 (order phased) were written by cdp 0.2, which recorded none, or by a cdp
# that recorded one only when there was one (then under "selection"). A cdp that reads only
# versions 1 and 2 refuses version 3 instead of resuming it under another selection.
VERSION = 3
RECORDS_SELECTION_SINCE = 3


class Checkpoint:
    """Per source (keyed by resolved path, "-" for stdin): how many leading lines are settled,
    and a hash of the first line to tell another input under the same name.

    Held with an exclusive lock (`<file>.lock`): two imports sharing one checkpoint would each
    overwrite the other's progress. Saved atomically (files.write_atomic) and only after the
    rejects file is on disk (see Importer.save_checkpoint)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"version": VERSION, "sources": {}, "selection": {}}
        self.existed = False  # an earlier run wrote it: this run resumes
        self.left_out: list[str] = []  # see apply
        self._lock_fd: int | None = None
        self._save_lock = threading.Lock()
        if not path:
            return
        try:
            kind = os.stat(path).st_mode
        except OSError:
            kind = None
        if kind is not None and not stat.S_ISREG(kind):
            raise UsageError(f"checkpoint={path!r} is not a regular file", hint=CHECKPOINT_HINT, option="checkpoint")
        self._take_lock()
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.release()
            raise UsageError(
                f"checkpoint={path!r}: cannot read it ({exc.strerror})", hint=CHECKPOINT_HINT, option="checkpoint"
            ) from None
        problem = None
        try:
            data = jsontext.loads(text)
            problem = _checkpoint_problem(data)
        except ValueError as exc:
            problem = str(exc)
        if problem:
            self.release()
            raise UsageError(
                f"checkpoint={path!r}: not a cdp checkpoint file ({problem})", hint=CHECKPOINT_HINT, option="checkpoint"
            )
        self.data = data
        self.existed = True

    def _take_lock(self) -> None:
        assert self.path is not None
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), files.PRIVATE)
        except OSError as exc:
            raise UsageError(
                f"checkpoint={self.path!r}: cannot create {lock_path!r} ({exc.strerror})",
                hint="check that the checkpoint's directory exists and is writable",
                option="checkpoint",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder unlinks the lock file when it ends: a lock taken on a file that was
            # unlinked meanwhile guards nothing, so the file locked must still be the one there
            if os.fstat(fd).st_ino != os.stat(lock_path).st_ino:
                raise OSError("the lock file was replaced")
        except OSError:
            os.close(fd)
            raise UsageError(
                f"checkpoint={self.path!r} is in use by another cdp import",
                hint="wait for it to finish, or give this import its own checkpoint=",
                option="checkpoint",
            ) from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None and self.path:
            try:
                os.unlink(self.path + ".lock")  # still ours: we hold the lock
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    def bind_shard(self, shard: str | None) -> None:
        """A checkpoint belongs to one shard (K/N and shard_by): its settled counts mean
        nothing to another, whose lines are other lines."""
        if self.existed and self.data.get("shard") != shard:
            was = self.data.get("shard")
            raise UsageError(
                f"checkpoint={self.path!r} was written by "
                + (f"shard {was}" if was else "an import without shard=")
                + (f", not shard {shard}" if shard else ", and this import has no shard="),
                hint="give each shard its own checkpoint, or run again with the shard it was written by",
                option="checkpoint",
            )
        if shard:
            self.data["shard"] = shard
        else:
            self.data.pop("shard", None)

    def bind_order(self, order: str) -> int:
        """A checkpoint of an order=phased import counts lines per phase: it means nothing to
        an import without phases, nor the other way round. Returns the phase to resume in."""
        was = self.data.get("order", "none")
        if self.existed and was != order:
            raise UsageError(
                f"checkpoint={self.path!r} was written by an import with order={was}, not order={order}",
                hint=f"run again with order={was} to resume it, or " + CHECKPOINT_HINT,
                option="checkpoint",
            )
        if order == "phased":
            self.data.update(order=order)
            self.data.setdefault("phase", 0)
        else:
            self.data.pop("order", None)
            self.data.pop("phase", None)
        return int(self.data.get("phase", 0))

    def bind_selection(self, selection: dict[str, Any]) -> None:
        """A checkpoint counts as settled the lines its import left out (filters, sample, the
        archive's own lines): under another selection they would be lost, or sent twice."""
        if self.existed and "selection" not in self.data and _made_progress(self.data):
            raise UsageError(
                f"checkpoint={self.path!r} was written by an older cdp, which did not record the selection of "
                "lines it ran under (filters, sample, vendor): lines that run left out would count as "
                "settled here and never be sent",
                hint="remove it and run the import again from the start: the lines sent already go out again "
                "under the same derived messageIds (Segment drops repeated messageIds; whether Customer.io "
                "does is not documented), or pass another checkpoint=",
                option="checkpoint",
            )
        was = self.data.get("selection", {})
        if self.existed and was != selection:
            differs = [
                f"{name}={_shown(was.get(name))} then, {_shown(selection.get(name))} now"
                for name in sorted(was.keys() | selection.keys())
                if was.get(name) != selection.get(name)
            ]
            raise UsageError(
                f"checkpoint={self.path!r} was written under another selection of lines: " + "; ".join(differs),
                hint="run again with the same choices to resume it, or start fresh: " + CHECKPOINT_HINT,
                option="checkpoint",
            )
        self.data["selection"] = selection  # recorded when empty too: see VERSION
        self.data["version"] = VERSION

    def apply(self, sources: list[Source]) -> None:
        """Each source's settled lines. A source with a version (an object's ETag and size)
        that changed since is refused; one whose every line is settled is taken out of
        `sources`, so a resumed run does not read it again (a file is read again: nothing but
        its bytes tells it unchanged)."""
        entries = self.data["sources"]
        phase = self.data.get("phase", 0)
        given = {source.key for source in sources} | {source.name for source in sources}
        # inputs an earlier run began and did not finish, not given now (an object deleted since,
        # a file left out): their other lines are not sent by this run, which must say so
        self.left_out = [key for key, entry in entries.items() if key not in given and _unfinished(entry)]
        for source in sources:
            # older checkpoints keyed files by the path as typed
            entry = entries.get(source.key) or entries.get(source.name)
            if entry:
                source.skip = entry["settled"]
                source.damaged_line = entry.get("damaged")
                if source.damaged_line is not None:  # the line the damage cut is never settled
                    source.skip = min(source.skip, source.damaged_line - 1)  # (another phase's pass skips it)
                source.first_line_hash = entry.get("first_line_sha256")
                source.phase = phase
                _check_version(source, entry, self.path)
        if "order" not in self.data:  # a phased import reads every source once per phase
            sources[:] = [s for s in sources if not _settled_whole(s, entries.get(s.key))]

    def save(
        self,
        sources: list[Source],
        settled: list[int],
        hashes: list[str | None],
        phase: int | None = None,
        damage: dict[int, int] | None = None,
    ) -> None:
        """`damage`: per source, the line this run found it cut or corrupt at (Settlement.damage);
        one an earlier run found is kept until a run reads past it."""
        if not self.path:
            return
        damage = damage or {}
        with self._save_lock:
            if phase is not None and "phase" in self.data:
                self.data["phase"] = phase
            for index, (source, count, digest) in enumerate(zip(sources, settled, hashes, strict=True)):
                if source.name in self.data["sources"] and source.name != source.key:
                    del self.data["sources"][source.name]  # re-keyed by resolved path
                entry: dict[str, Any] = {"settled": count, "first_line_sha256": digest}
                damaged = damage.get(index, source.damaged_line)
                if damaged is not None and count <= damaged:  # not read past it
                    entry["damaged"] = damaged
                if source.version is not None:
                    entry.update(version=source.version, lines=source.lines)
                self.data["sources"][source.key] = entry
            files.write_atomic(self.path, json.dumps(self.data).encode())


def _shown(value: Any) -> str:
    if value is None:
        return "(not given)"
    return ",".join(value) if isinstance(value, list) else str(value)


def _check_version(source: Source, entry: dict[str, Any], path: str | None) -> None:
    was = entry.get("version")
    if source.version is not None and was is not None and was != source.version and (source.skip or source.phase):
        raise UsageError(
            f"{source.label} changed since checkpoint={path!r} was written (ETag and size {was}, now {source.version})",
            hint="it is not the same input: " + CHECKPOINT_HINT,
            option="checkpoint",
        )


def _settled_whole(source: Source, entry: dict[str, Any] | None) -> bool:
    """Every line of an unchanged versioned source is settled."""
    if source.version is None or entry is None or entry.get("version") != source.version:
        return False
    lines = entry.get("lines")
    return lines is not None and entry["settled"] >= lines


def _unfinished(entry: dict[str, Any]) -> bool:
    """An entry with lines settled and, as far as it tells, lines left (a file's count of lines
    is not recorded: one that settled any may have more)."""
    lines = entry.get("lines")
    return bool(entry["settled"]) and (lines is None or entry["settled"] < lines)


def _made_progress(data: dict[str, Any]) -> bool:
    """A checkpoint that settled any line (or reached a later phase): resuming it skips lines."""
    return bool(data.get("phase")) or any(entry["settled"] for entry in data["sources"].values())


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _checkpoint_problem(data: Any) -> str | None:
    """What makes `data` not a checkpoint (checked in full: `python -O` drops asserts)."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        return 'expected an object with "sources"'
    version = data.get("version", 1)
    if version not in (1, 2, VERSION) or isinstance(version, bool):
        return f"version {data.get('version')!r}; this cdp reads versions 1 to {VERSION}"
    if version < RECORDS_SELECTION_SINCE and (version == 2) != (data.get("order") == "phased"):
        return "version 2 is for order=phased"
    if version >= RECORDS_SELECTION_SINCE and "selection" not in data:
        return f"version {version} records a selection, and this one has none"
    phase = data.get("phase", 0)
    if data.get("order", "none") not in ("none", "phased") or phase not in (0, 1, 2, 3) or isinstance(phase, bool):
        return "malformed order or phase"
    if not isinstance(data.get("selection", {}), dict):
        return "malformed selection"
    for key, entry in data["sources"].items():
        if not isinstance(entry, dict):
            return f"entry {key!r} is not an object"
        settled = entry.get("settled")
        if not isinstance(settled, int) or isinstance(settled, bool) or settled < 0:
            return f"entry {key!r} has no whole number 'settled'"
        digest = entry.get("first_line_sha256")
        if digest is not None and not isinstance(digest, str):
            return f"entry {key!r} has a malformed first_line_sha256"
        damaged = entry.get("damaged")
        if damaged is not None and not (_whole_number(damaged) and damaged > 0):
            return f"entry {key!r} has a malformed damaged line"
        lines = entry.get("lines")  # an object's: its line count once read to its end, or null
        if not isinstance(entry.get("version", ""), str) or not (lines is None or _whole_number(lines)):
            return f"entry {key!r} has a malformed version or lines"
    return None


class CheckpointSaver:
    """Saves what is settled: the rejects first, then the checkpoint that counts them."""

    def __init__(self, checkpoint: Checkpoint, settlement: Settlement, rejects: Rejects, sources: list[Source]) -> None:
        self.checkpoint = checkpoint
        self.settlement = settlement
        self.rejects = rejects
        self.sources = sources
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, every: float, on_fatal: Callable[[FatalStop], None]) -> threading.Thread:
        """Save every `every` seconds from a thread of its own, so that the checkpoint advances
        while the packer waits (a slow endpoint keeps the send queue full and the packer
        blocked); a save that fails hands its FatalStop to `on_fatal` and ends the thread."""

        def save_on_schedule() -> None:
            wait = every
            while not self._stop.wait(wait):
                started = time.monotonic()
                try:
                    self.save()
                except FatalStop as exc:
                    on_fatal(exc)
                    return
                # a checkpoint of many sources takes long to write (100,000 objects of a
                # prefix: ~1 s, holding the GIL): saved less often, it costs at most ~5 %
                wait = max(every, 20 * (time.monotonic() - started))

        self._thread = threading.Thread(target=save_on_schedule, name="cdp-checkpoint", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def save(self) -> None:
        """The settled counts, taken before the rejects are synced: every reject they count was
        written before the snapshot, so it is on disk before the checkpoint says so."""
        if not self.checkpoint.path:
            return
        phase, settled = self.settlement.snapshot()
        hashes = list(self.settlement.first_hash)
        with self.settlement.lock:
            damage = dict(self.settlement.damage)
        self.rejects.sync()
        try:
            self.checkpoint.save(self.sources, settled, hashes, phase, damage)
        except OSError as exc:
            raise FatalStop(
                f"cannot write the checkpoint {self.checkpoint.path}: {exc.strerror or exc}",
                hint="free space or fix the path (checkpoint=), then run the same import again",
                option="checkpoint",
            ) from None

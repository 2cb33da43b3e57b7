"""The rejects file: one record per line that was not delivered, with its reason."""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import threading

from cdpcli import files
from cdpcli.errors import FatalStop, UsageError
from cdpcli.importing.source import Source

DEFAULT_REJECTS = "cdp-rejects.ndjson"

# JSON leaves these raw inside strings, but Python's str.splitlines() and some editors break
# lines at them: escaped, each record stays one line for every reader.
_LINE_BREAKS_ESCAPED = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


class Rejects:
    """Appends `{"source","line","error","input"}` records (`input_base64` too when the line is
    not UTF-8); the file is created 0600 on first use.

    Each (source, line) is written at most once across resumed runs: records an earlier run
    wrote for lines this run reads again (ahead of the checkpoint) are not repeated. `sync()`
    puts everything written so far on disk; the checkpoint is saved only after it.
    """

    def __init__(
        self, path: str, *, explicit: bool, sources: list[Source], resuming: bool, shard: str | None = None
    ) -> None:
        self.shard = shard  # which shard wrote a record (shard=), or None
        self.path = path
        self.explicit = explicit  # named by the user: a symlink there is theirs to follow
        self.count = 0  # records this run wrote
        self._fd: int | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._earlier: set[tuple[str, int]] = self._read_earlier(sources) if resuming else set()

    def check(self) -> None:
        """Before the first request: the rejects file can be created or appended to."""
        path = self.path
        if os.path.islink(path) and not self.explicit:
            raise UsageError(
                f"the rejects file {path} is a symbolic link (to {os.readlink(path)}); cdp will not append customer data through it",
                hint="remove the link, or name the file explicitly with rejects=",
                option="rejects",
            )
        if os.path.isdir(path):
            raise UsageError(
                f"rejects={path!r} is a directory", hint="name a file, e.g. rejects=rejects.ndjson", option="rejects"
            )
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise UsageError(
                f"rejects={path!r}: directory {directory!r} does not exist",
                hint="create it, or pick another rejects=",
                option="rejects",
            )
        target = path if os.path.exists(path) else directory
        if not os.access(target, os.W_OK):
            raise UsageError(
                f"rejects={path!r}: {'file' if target == path else 'directory'} is not writable",
                hint="pick another rejects=",
                option="rejects",
            )
        if os.path.exists(path) and stat.S_ISFIFO(os.stat(path).st_mode):
            # a pipe: writing would block for good with no reader; try once without waiting
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                raise UsageError(
                    f"rejects={path!r} is a named pipe that nothing reads",
                    hint="start its reader first, or pick a regular file",
                    option="rejects",
                ) from None

    def _read_earlier(self, sources: list[Source]) -> set[tuple[str, int]]:
        """(source key, line) of records already in the rejects file for these sources."""
        keys = {s.label: s.key for s in sources} | {s.name: s.key for s in sources} | {s.key: s.key for s in sources}
        earlier: set[tuple[str, int]] = set()
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                return earlier  # a pipe or a device (/dev/null): nothing to read back
            handle = open(self.path, "rb")  # noqa: SIM115 (closed below, after the stat check)
        except OSError:
            return earlier
        with handle:
            for raw in handle:
                try:
                    record = json.loads(raw)
                    key = keys.get(record["source"]) or os.path.realpath(record["source"])
                    earlier.add((key, int(record["line"])))
                except (ValueError, KeyError, TypeError):
                    continue  # not a record of ours (edited by hand): nothing to match
        return earlier

    def add(self, source: Source, line_no: int, error: str, line: bytes) -> bool:
        """Write one record; False when an earlier run already wrote one for this line.
        Raises FatalStop when the file cannot be written."""
        if (source.key, line_no) in self._earlier:
            return False
        try:
            text = line.decode("utf-8")
            record = {"source": source.label, "line": line_no, "error": error, "input": text}
        except UnicodeDecodeError:
            # the original bytes stay recoverable; `input` is for reading only (U+FFFD marks
            # what was not UTF-8), and import refuses the record until it is fixed
            record = {
                "source": source.label,
                "line": line_no,
                "error": error,
                "input": line.decode("utf-8", "replace"),
                "input_base64": base64.b64encode(line).decode("ascii"),
            }
        if self.shard:
            record["shard"] = self.shard
        text = json.dumps(record, ensure_ascii=False)
        if not text.isascii():  # readable UTF-8, but no character a line splitter takes for a newline
            text = text.translate(_LINE_BREAKS_ESCAPED)
        data = (text + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            if self._closed:
                raise FatalStop(f"a reject for {source.label}:{line_no} came after the rejects file was closed")
            try:
                fd = self._fd if self._fd is not None else self._open()
                # one write(2) a record, unbuffered: a failure (disk full) is seen at the record
                # it hits, which is then not counted as written
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                # never cut the file back: other imports may append to it too; a torn record
                # gets its own line at the next open (see _open)
                raise _rejects_error(self.path, exc) from None
            self.count += 1
        return True

    def _open(self) -> int:
        fd = self._fd = files.open_append_private(self.path, follow_symlink=self.explicit)
        size = os.fstat(fd).st_size
        if size and self._last_byte(size) != b"\n":
            # a record torn by an older run (killed or out of space mid-write): it must not
            # swallow the next one; the line it was for is read again and rejected again
            os.write(fd, b"\n")
        return fd

    def _last_byte(self, size: int) -> bytes:
        """The file's last byte (the append descriptor cannot read); b"\n" when unreadable."""
        try:
            fd = os.open(self.path, os.O_RDONLY | (0 if self.explicit else getattr(os, "O_NOFOLLOW", 0)))
        except OSError:
            return b"\n"
        try:
            return os.pread(fd, 1, size - 1)
        except OSError:
            return b"\n"
        finally:
            os.close(fd)

    def sync(self) -> None:
        """Everything written so far is on disk (raises FatalStop when it cannot be)."""
        with self._lock:
            if self._fd is None:
                return
            try:
                os.fsync(self._fd)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: a pipe or device, which has no disk to sync
                    raise _rejects_error(self.path, exc) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # as in sync()
                    raise _rejects_error(self.path, exc) from None
            finally:
                os.close(fd)


def _rejects_error(path: str, exc: OSError) -> FatalStop:
    hint = (
        "free space on its disk, then run the same command again"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT)
        else "fix the path or its permissions (rejects=), then run the same command again"
    )
    return FatalStop(f"cannot write the rejects file {path}: {exc.strerror or exc}", hint=hint, option="rejects")

"""Files cdp writes that hold secrets or customer data: config, checkpoints, rejects.

- Replaced whole (config, checkpoint): written to a new temp file created exclusively
  (O_EXCL, unpredictable name, in the target's directory, so a planted `<file>.tmp` symlink
  is never followed), fsynced, then renamed over the target: a reader (or a kill -9) sees the
  old file or the new one, never half of one.
- Appended to (rejects): opened without following a symlink unless the user named the path
  explicitly (then it goes where they said).
- Created 0600 whatever the umask: they hold keys and customer data.
"""

from __future__ import annotations

import os
import tempfile

PRIVATE = 0o600


def write_atomic(path: str, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably, mode 0600. Raises OSError."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE)  # mkstemp makes 0600 already; say it, whatever the platform
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """The rename itself survives a power cut only once the directory is synced (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_append_private(path: str, *, follow_symlink: bool) -> int:
    """A file descriptor appending to `path`, created 0600 if new. Raises OSError
    (ELOOP when `path` is a symlink and `follow_symlink` is false)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlink:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | os.O_EXCL, PRIVATE)
        os.fchmod(fd, PRIVATE)  # the umask may have taken bits away; never added any
        return fd
    except FileExistsError:
        return os.open(path, flags, PRIVATE)

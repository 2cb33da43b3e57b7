"""The config file: where it is, its profiles read and written (mode 0600, directories 0700,
never through a symlink), and what its permissions deserve a word about.

Warnings (loose permissions) go into a list the caller hands in (`warnings=`); the module keeps
no state. Settings and their resolution (flag > environment > profile > default) are in
cdpcli.settings.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import sys
from pathlib import Path
from typing import Any

from cdpcli.errors import UsageError

CONFIG_DIR_ENV = "CDP_CONFIG_DIR"


def config_path() -> Path:
    """$CDP_CONFIG_DIR/config.toml, else the platform config dir (~/.config/cdp/config.toml)."""
    explicit = os.environ.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit) / "config.toml"
    if sys.platform == "win32":
        root = Path(os.environ.get("APPDATA") or Path.home())
    else:
        root = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return root / "cdp" / "config.toml"


class ConfigFileError(UsageError):
    """The config file is there but cannot be used (not TOML, not UTF-8, unreadable)."""

    def __init__(self, path: Path, problem: str, line: int | None = None) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        super().__init__(f"config file {path} {problem}", hint=repair_hint(path, line))


def repair_hint(path: Path, line: int | None = None) -> str:
    """How to get going again: fix the file, or move it aside (the exact `mv`)."""
    fix = f"fix line {line} of {path}" if line else f"fix {path}"
    return f"{fix}, or move it aside and start afresh: {move_aside_command(path)}"


def move_aside_command(path: Path) -> str:
    target = path.with_name(path.name + ".broken")
    number = 2
    while os.path.lexists(target):  # never let the suggested mv overwrite an earlier one
        target = path.with_name(f"{path.name}.broken-{number}")
        number += 1
    return f"mv {shlex.quote(str(path))} {shlex.quote(str(target))}"


def load_config(path: Path | None = None, *, warnings: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """All profiles in the config file ({} when there is none). Raises ConfigFileError. With a
    `warnings` list, the file's and its directory's permissions are checked into it."""
    data = load_document(path or config_path(), warnings=warnings)
    return {name: table for name, table in data.items() if isinstance(table, dict)}


def load_document(path: Path, *, warnings: list[str] | None = None) -> dict[str, Any]:
    """The whole TOML document, profiles and anything else a user wrote (kept on rewrite)."""
    raw = _read_config(path)
    if raw is None:
        return {}
    if warnings is not None and sys.platform != "win32":
        if readable_by_others(path):
            note(
                warnings,
                f"{path} can be read by other users of this machine and may hold API keys; run: chmod 600 {path}",
            )
        check_directory(path.parent, warnings)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigFileError(path, f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line})", line) from None
    if sys.version_info >= (3, 11):
        import tomllib  # lazy: start-up
    else:  # Python 3.10: the same module, as a package
        import tomli as tomllib  # lazy: start-up

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem, line = _toml_problem(str(exc), text)
        raise ConfigFileError(path, f"is not valid TOML: {problem}", line) from None
    return data


def _read_config(path: Path) -> bytes | None:
    """The file's bytes, None when there is none; only a regular file (a FIFO would hang us)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ConfigFileError(path, f"cannot be read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigFileError(path, "is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigFileError(path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _toml_problem(message: str, text: str) -> tuple[str, int]:
    """tomllib's message as `line N[, column M]: what`, and the line (it has no lineno before 3.14)."""
    match = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if match:
        line = int(match.group(1))
        return f"line {line}, column {match.group(2)}: {message[: match.start()]}", line
    what = message.removesuffix(" (at end of document)")
    line = text.count("\n") + (0 if text.endswith("\n") else 1) or 1
    return f"line {line} (end of file): {what}", line


def note(warnings: list[str] | None, text: str) -> None:
    """Add a warning to the caller's list, once (None: the caller asked for no checks)."""
    if warnings is not None and text not in warnings:
        warnings.append(text)


def profile_names() -> list[str]:
    """For shell completion of --profile: never fails, never warns."""
    try:
        return sorted(load_config())
    except Exception:  # noqa: BLE001 - completion must not break the shell
        return []


def unknown_profile_error(profile: str, profiles: dict[str, Any], path: Path | None = None) -> UsageError:
    known = ", ".join(sorted(profiles)) or "none yet"
    return UsageError(
        f"no profile {profile!r} in {path or config_path()} (profiles: {known})",
        hint=f"create it with: cdp config set region us --profile {profile}",
    )


def save_config(
    profiles: dict[str, dict[str, Any]], path: Path | None = None, *, warnings: list[str] | None = None
) -> Path:
    """Write the config file: mode 0600, new directories 0700 (it holds API keys).

    Replaced whole through an exclusive temp file (files.write_atomic), so a planted
    `config.toml.tmp` symlink is never followed; a symlinked config.toml is refused."""
    import tomli_w  # lazy: start-up

    from cdpcli.files import write_atomic  # lazy: start-up

    path = path or config_path()
    refuse_symlink(path)
    make_private_dirs(path.parent)
    check_directory(path.parent, warnings)
    # profiles left empty go; anything else in the document (comments aside) is kept
    text = tomli_w.dumps({name: table for name, table in profiles.items() if table or not isinstance(table, dict)})
    try:
        write_atomic(str(path), text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(
            f"cannot write config file {path}: {exc.strerror or exc}",
            hint=f"check that {path.parent} is a directory you can write to",
        ) from None
    return path


def refuse_symlink(path: Path) -> None:
    """cdp writes keys only into a regular file of its own, never through a link."""
    if path.is_symlink():
        raise UsageError(
            f"config file {path} is a symbolic link; cdp writes API keys only to a regular file",
            hint=f"remove the link (rm {shlex.quote(str(path))}) and run the command again, "
            "or edit the file it points to yourself",
        )


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and any missing parents with mode 0700, whatever the umask."""
    missing: list[Path] = []
    current = directory
    while not os.path.lexists(current) and current.parent != current:
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, 0o700)
        except FileExistsError:  # made meanwhile by someone else: not ours to chmod
            continue
        except OSError as exc:
            raise UsageError(
                f"cannot create config directory {new}: {exc.strerror or exc}",
                hint=f"set {CONFIG_DIR_ENV} to a directory you can write to",
            ) from None
        os.chmod(new, 0o700)  # the umask may have taken bits away; never added any


def check_directory(directory: Path, warnings: list[str] | None) -> None:
    """Others who can write the config directory can swap the config file (and the endpoint)."""
    if warnings is None or sys.platform == "win32":
        return
    try:
        mode = directory.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        note(
            warnings,
            f"config directory {directory} can be written by other users, who could replace "
            f"the config file; run: chmod go-w {directory} (or set {CONFIG_DIR_ENV} to a private directory)",
        )


def readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False

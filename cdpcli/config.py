"""Configuration: the config file's profiles and resolving every setting.

Precedence, for every setting: flag > environment variable > config profile > default.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdpcli.errors import UsageError

DEFAULT_PROFILE = "default"

# name in config.toml -> (environment variable, default)
SETTINGS: dict[str, tuple[str, Any]] = {
    "api-key": ("CDP_API_KEY", None),
    "region": ("CDP_REGION", "us"),
    "endpoint": ("CDP_ENDPOINT", None),
    "timeout": ("CDP_TIMEOUT", 10.0),
    "retries": ("CDP_RETRIES", 3),
    "strict": ("CDP_STRICT", True),
    "gzip": ("CDP_GZIP", False),
}
PROFILE_ENV = "CDP_PROFILE"
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
    import shlex

    target = path.with_name(path.name + ".broken")
    number = 2
    while os.path.lexists(target):  # never let the suggested mv overwrite an earlier one
        target = path.with_name(f"{path.name}.broken-{number}")
        number += 1
    return f"mv {shlex.quote(str(path))} {shlex.quote(str(target))}"


def load_config(path: Path | None = None, *, warn: bool = True) -> dict[str, dict[str, Any]]:
    """All profiles in the config file ({} when there is none). Raises ConfigFileError."""
    data = _load_document(path or config_path(), warn=warn)
    return {name: table for name, table in data.items() if isinstance(table, dict)}


def _load_document(path: Path, *, warn: bool = True) -> dict[str, Any]:
    """The whole TOML document, profiles and anything else a user wrote (kept on rewrite)."""
    raw = _read_config(path)
    if raw is None:
        return {}
    if warn and sys.platform != "win32":
        if readable_by_others(path):
            _warn_once(
                f"{path} can be read by other users of this machine and may hold API keys; run: chmod 600 {path}"
            )
        warn_if_directory_writable(path.parent)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigFileError(path, f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line})", line) from None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

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
    import re

    match = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if match:
        line = int(match.group(1))
        return f"line {line}, column {match.group(2)}: {message[: match.start()]}", line
    what = message.removesuffix(" (at end of document)")
    line = text.count("\n") + (0 if text.endswith("\n") else 1) or 1
    return f"line {line} (end of file): {what}", line


_warned: set[str] = set()


# Warnings about the config file (ignored, unknown settings, loose permissions). The core never
# prints: they wait here until taken (Target.resolve puts them in Target.warnings), unless a
# front end asked to see each at once (the CLI prints them as they happen, in order).
_pending: list[str] = []
_on_warning: Callable[[str], None] | None = None


def on_warning(callback: Callable[[str], None] | None) -> None:
    """Hand every later warning to `callback` as it happens (None: keep them for take_warnings)."""
    global _on_warning
    _on_warning = callback


def take_warnings() -> list[str]:
    """The warnings kept since the last call."""
    taken = list(_pending)
    _pending.clear()
    return taken


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        if _on_warning is not None:
            _on_warning(text)
        else:
            _pending.append(text)


def profile_names() -> list[str]:
    """For shell completion of --profile: never fails, never warns."""
    try:
        return sorted(load_config(warn=False))
    except Exception:  # noqa: BLE001 - completion must not break the shell
        return []


def check_key_name(name: str) -> str:
    if name not in SETTINGS:
        raise UsageError(f"unknown setting {name!r}", hint="settings: " + ", ".join(SETTINGS))
    return name


def unknown_profile_error(profile: str, profiles: dict[str, Any], path: Path | None = None) -> UsageError:
    known = ", ".join(sorted(profiles)) or "none yet"
    return UsageError(
        f"no profile {profile!r} in {path or config_path()} (profiles: {known})",
        hint=f"create it with: cdp config set region us --profile {profile}",
    )


def set_value(profile: str, name: str, value: Any) -> Path:
    """Store one setting in a profile (checked and converted first)."""
    check_key_name(name)
    checked = coerce_setting(name, value, "")
    if checked is None:
        raise UsageError(f"{name}: empty value", hint=f"to remove it: cdp config unset {name}")
    check_for_storing(name, checked)
    path = config_path()
    _refuse_symlink(path)
    document = _load_document(path)
    table = document.setdefault(profile, {})
    if not isinstance(table, dict):
        raise UsageError(
            f"{path}: {profile!r} is a plain value there, not a profile table",
            hint=f"rename or remove the line `{profile} = …` in {path}",
        )
    table[name] = checked
    return save_config(document, path)


def unset_value(profile: str, name: str) -> bool:
    check_key_name(name)
    path = config_path()
    document = _load_document(path)
    profiles = {key: table for key, table in document.items() if isinstance(table, dict)}
    if profile != DEFAULT_PROFILE and profile not in profiles:
        raise unknown_profile_error(profile, profiles, path)
    removed = profiles.get(profile, {}).pop(name, None) is not None
    if removed:
        save_config(document, path)
    return removed


def save_config(profiles: dict[str, dict[str, Any]], path: Path | None = None) -> Path:
    """Write the config file: mode 0600, new directories 0700 (it holds API keys).

    Replaced whole through an exclusive temp file (files.write_atomic), so a planted
    `config.toml.tmp` symlink is never followed; a symlinked config.toml is refused."""
    import tomli_w

    from cdpcli.files import write_atomic

    path = path or config_path()
    _refuse_symlink(path)
    make_private_dirs(path.parent)
    warn_if_directory_writable(path.parent)
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


def _refuse_symlink(path: Path) -> None:
    """cdp writes keys only into a regular file of its own, never through a link."""
    if path.is_symlink():
        import shlex

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


def warn_if_directory_writable(directory: Path) -> None:
    """Others who can write the config directory can swap the config file (and the endpoint)."""
    if sys.platform == "win32":
        return
    try:
        mode = directory.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        _warn_once(
            f"config directory {directory} can be written by other users, who could replace "
            f"the config file; run: chmod go-w {directory} (or set {CONFIG_DIR_ENV} to a private directory)"
        )


def readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def coerce_setting(name: str, value: Any, origin: str) -> Any:
    """Check and convert one setting's value; `origin` names where it came from for errors
    ("" for `config set`, whose error names the setting itself).

    The same conversion for every origin (flag, environment, config file, `config set`). The
    API key and the endpoint are checked where they are used (target.py, wire.base_url) and,
    before they are stored, by check_for_storing."""
    if value is None:
        return None
    _, default = SETTINGS[name]
    if isinstance(value, (dict, list)):
        raise UsageError(_at(origin) + f"{name} must be a single value, not a table or an array")
    text = str(value).strip()
    if name == "region":
        text = text.lower()
        if text not in ("us", "eu"):
            raise UsageError(_at(origin) + f"region must be us or eu, not {value!r}")
        return text
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UsageError(_at(origin) + f"{name} must be true or false, not {value!r}")
    if name == "timeout":
        import math

        # a day: beyond it clocks overflow (1e300 s crashed as OverflowError), and no request waits so long
        MAX_TIMEOUT = 86_400

        try:
            seconds = float(text) if text.isascii() and "_" not in text else -1.0
        except ValueError:
            seconds = -1.0
        if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
            raise UsageError(
                _at(origin) + f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:,}, not {value!r}"
            )
        return seconds
    if name == "retries":
        if isinstance(value, bool) or not (text.isascii() and text.isdigit()):
            raise UsageError(_at(origin) + f"retries must be a whole number ≥ 0, not {value!r}")
        return int(text)
    if not text:
        return None
    return text


def check_for_storing(name: str, value: Any) -> None:
    """What `config set` stores must work in every later command: the endpoint as
    wire.base_url reads it, the API key as something an HTTP header can carry."""
    if name == "endpoint":
        from cdpcli.wire import base_url  # the one place that decides what an endpoint is

        try:
            base_url(value, "us")
        except ValueError as exc:
            raise UsageError(
                f"endpoint {exc}",
                hint=getattr(exc, "hint", None)
                or "an endpoint is an http(s) base URL, e.g. https://cdp.customer.io/v1 or http://127.0.0.1:8787",
            ) from None
    elif name == "api-key":
        _check_key(value)


def _check_key(key: str) -> None:
    """A key goes into an HTTP header (wire.api_key_problem decides). Errors never quote it."""
    from cdpcli.wire import api_key_problem

    problem = api_key_problem(key)
    if problem:
        raise UsageError(
            f"the API key holds {problem} (the key is not shown); an API key is printable ASCII",
            hint="copy the key again from the HTTP source's settings in Customer.io; a key read "
            "from a file or pasted may carry a line break or a stray character",
        )


def _at(origin: str) -> str:
    return f"{origin}: " if origin else ""


@dataclass
class Resolved:
    value: Any
    source: str  # "flag", "env CDP_X", "profile NAME", "default"


def resolve(flags: dict[str, Any], profile_flag: str | None = None) -> tuple[str, dict[str, Resolved]]:
    """Resolve every setting: flag > environment > config profile > default.

    A config file that cannot be used is an error only when it is needed: when a profile is
    named (--profile, $CDP_PROFILE) or the API key does not come from a flag or the
    environment. Otherwise it is skipped with one warning, so a broken file never blocks a
    command whose settings are all given."""
    named = profile_flag or os.environ.get(PROFILE_ENV)
    profile = named or DEFAULT_PROFILE
    path = config_path()
    try:
        profiles = load_config(path)
    except ConfigFileError as exc:
        key_given = flags.get("api-key") is not None or os.environ.get(SETTINGS["api-key"][0], "") != ""
        if named or not key_given:
            hint = (
                exc.hint
                if named
                else (
                    f"{exc.hint}; or give the key with --api-key or CDP_API_KEY (and other settings by "
                    "flags or environment) to go on without the file"
                )
            )
            raise UsageError(exc.message, hint=hint) from None
        _warn_once(
            f"ignoring config file {exc.path}: it {exc.problem}; going on with flags, environment "
            f"and defaults ({repair_hint(exc.path, exc.line)})"
        )
        profiles = {}
    if profile != DEFAULT_PROFILE and profile not in profiles:  # named by --profile or $CDP_PROFILE
        raise unknown_profile_error(profile, profiles, path)
    table = profiles.get(profile, {})
    unknown = [key for key in table if key not in SETTINGS]
    if unknown:  # a hand-written `api_key = …` was read as no key at all, without a word
        import difflib

        shown = ", ".join(
            key
            + (
                f" (did you mean {close[0]}?)"
                if (close := difflib.get_close_matches(key.replace("_", "-"), SETTINGS, 1))
                else ""
            )
            for key in unknown
        )
        _warn_once(
            f"{path} [{profile}]: ignoring unknown setting{'s' if len(unknown) > 1 else ''} {shown}; "
            f"the settings are {', '.join(SETTINGS)}"
        )
    out: dict[str, Resolved] = {}
    for name, (env, default) in SETTINGS.items():
        if flags.get(name) is not None:
            flag = "--" + name
            out[name] = Resolved(coerce_setting(name, flags[name], flag), flag)
        elif os.environ.get(env, "") != "":
            out[name] = Resolved(coerce_setting(name, os.environ[env], env), f"env {env}")
        elif table.get(name) is not None:
            origin = f"profile {profile}"
            try:
                value = coerce_setting(name, table[name], f"{path} [{profile}] {name}")
            except UsageError as exc:
                raise UsageError(
                    exc.message,
                    hint=f"store a valid value: cdp config set {name}{'' if name == 'api-key' else ' VALUE'} --profile {profile}",
                ) from None
            out[name] = Resolved(value, origin)
        else:
            out[name] = Resolved(default, "default")
    return profile, out

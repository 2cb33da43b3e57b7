"""Configuration: the config file's profiles and resolving every setting.

Precedence, for every setting: flag > environment variable > config profile > default.
"""

from __future__ import annotations

import os
import stat
import sys
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


def load_config(path: Path | None = None, *, warn: bool = True) -> dict[str, dict[str, Any]]:
    """All profiles in the config file ({} when there is none)."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    if warn and sys.platform != "win32" and readable_by_others(path):
        _warn_once(
            f"{path} can be read by other users of this machine and may hold API keys; "
            f"run: chmod 600 {path}"
        )
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"config file {path} is not valid TOML ({exc})",
            hint=f"fix or remove {path}",
        ) from None
    return {name: table for name, table in data.items() if isinstance(table, dict)}


_warned: set[str] = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        sys.stderr.write(f"Warning: {text}\n")


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


def set_value(profile: str, name: str, value: Any) -> Path:
    """Store one setting in a profile (checked and converted first)."""
    check_key_name(name)
    checked = coerce_setting(name, value, f"{name}")
    if checked is None:
        raise UsageError(f"{name}: empty value", hint=f"to remove it: cdp config unset {name}")
    profiles = load_config()
    profiles.setdefault(profile, {})[name] = checked
    return save_config(profiles)


def unset_value(profile: str, name: str) -> bool:
    check_key_name(name)
    profiles = load_config()
    removed = profiles.get(profile, {}).pop(name, None) is not None
    if removed:
        save_config(profiles)
    return removed


def save_config(profiles: dict[str, dict[str, Any]], path: Path | None = None) -> Path:
    """Write the config file with mode 0600 (its directory 0700): it holds API keys."""
    import tomli_w

    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = tomli_w.dumps({name: table for name, table in profiles.items() if table})
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def coerce_setting(name: str, value: Any, origin: str) -> Any:
    """Check and convert one setting's value; `origin` names where it came from for errors."""
    if value is None:
        return None
    _, default = SETTINGS[name]
    text = str(value).strip()
    if name == "region":
        text = text.lower()
        if text not in ("us", "eu"):
            raise UsageError(f"{origin}: region must be us or eu, not {value!r}")
        return text
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{origin}: {name} must be true or false, not {value!r}")
    if name == "timeout":
        try:
            seconds = float(text)
        except ValueError:
            seconds = -1.0
        if seconds <= 0:
            raise UsageError(f"{origin}: timeout must be a positive number of seconds, not {value!r}")
        return seconds
    if name == "retries":
        try:
            count = int(text)
        except ValueError:
            count = -1
        if count < 0:
            raise UsageError(f"{origin}: retries must be a whole number ≥ 0, not {value!r}")
        return count
    if not text:
        return None
    return text


@dataclass
class Resolved:
    value: Any
    source: str  # "flag", "env CDP_X", "profile NAME", "default"


def resolve(flags: dict[str, Any], profile_flag: str | None = None) -> tuple[str, dict[str, Resolved]]:
    """Resolve every setting: flag > environment > config profile > default."""
    profile = profile_flag or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    profiles = load_config()
    if profile != DEFAULT_PROFILE and profile not in profiles:  # named by --profile or $CDP_PROFILE
        known = ", ".join(sorted(profiles)) or "none yet"
        raise UsageError(
            f"no profile {profile!r} in {config_path()} (profiles: {known})",
            hint=f"create it with: cdp config set region us --profile {profile}",
        )
    table = profiles.get(profile, {})
    out: dict[str, Resolved] = {}
    for name, (env, default) in SETTINGS.items():
        if flags.get(name) is not None:
            flag = "--" + name
            out[name] = Resolved(coerce_setting(name, flags[name], flag), flag)
        elif os.environ.get(env, "") != "":
            out[name] = Resolved(coerce_setting(name, os.environ[env], env), f"env {env}")
        elif table.get(name) is not None:
            origin = f"profile {profile}"
            out[name] = Resolved(coerce_setting(name, table[name], f"{config_path()} [{profile}] {name}"), origin)
        else:
            out[name] = Resolved(default, "default")
    return profile, out

"""The settings (api-key, region, endpoint, timeout, retries, strict, gzip): their names and
defaults, one conversion for every origin, storing one in a profile, and resolving all of them
(flag > environment variable > config profile > default).

Resolution returns its warnings (an ignored config file, an unknown setting, loose
permissions) with the values; nothing is kept between calls.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdpcli.config import (
    ConfigFileError,
    config_path,
    load_config,
    load_document,
    note,
    refuse_symlink,
    repair_hint,
    save_config,
    unknown_profile_error,
)
from cdpcli.errors import UsageError
from cdpcli.wire import api_key_problem, base_url  # base_url: the one place that decides what an endpoint is

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


def check_key_name(name: str) -> str:
    if name not in SETTINGS:
        raise UsageError(f"unknown setting {name!r}", hint="settings: " + ", ".join(SETTINGS))
    return name


def set_value(profile: str, name: str, value: Any, *, warnings: list[str] | None = None) -> Path:
    """Store one setting in a profile (checked and converted first); what the file's
    permissions deserve a word about goes into `warnings`."""
    check_key_name(name)
    checked = coerce_setting(name, value, "")
    if checked is None:
        raise UsageError(f"{name}: empty value", hint=f"to remove it: cdp config unset {name}")
    check_for_storing(name, checked)
    path = config_path()
    refuse_symlink(path)
    document = load_document(path, warnings=warnings)
    table = document.setdefault(profile, {})
    if not isinstance(table, dict):
        raise UsageError(
            f"{path}: {profile!r} is a plain value there, not a profile table",
            hint=f"rename or remove the line `{profile} = …` in {path}",
        )
    table[name] = checked
    return save_config(document, path, warnings=warnings)


def unset_value(profile: str, name: str, *, warnings: list[str] | None = None) -> bool:
    """Remove one setting from a profile; True when it was there."""
    check_key_name(name)
    path = config_path()
    document = load_document(path, warnings=warnings)
    profiles = {key: table for key, table in document.items() if isinstance(table, dict)}
    if profile != DEFAULT_PROFILE and profile not in profiles:
        raise unknown_profile_error(profile, profiles, path)
    removed = profiles.get(profile, {}).pop(name, None) is not None
    if removed:
        save_config(document, path, warnings=warnings)
    return removed


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
        try:
            base_url(value, "us")
        except ValueError as exc:
            hint = getattr(exc, "hint", None)
            raise UsageError(
                f"endpoint {exc}",
                hint=hint
                or "an endpoint is an http(s) base URL, e.g. https://cdp.customer.io/v1 or http://127.0.0.1:8787",
                option="api_key" if "api_key=" in (hint or "") else None,  # an endpoint holding user:password@
            ) from None
    elif name == "api-key":
        _check_key(value)


def _check_key(key: str) -> None:
    """A key goes into an HTTP header (wire.api_key_problem decides). Errors never quote it."""
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


def resolve(
    flags: dict[str, Any], profile_flag: str | None = None, *, warnings: list[str]
) -> tuple[str, dict[str, Resolved]]:
    """Resolve every setting: flag > environment > config profile > default. What deserves a
    word (an ignored config file, an unknown setting, loose permissions) goes into `warnings`,
    the caller's list, which keeps them even when resolving fails."""
    named = profile_flag or os.environ.get(PROFILE_ENV)
    profile = named or DEFAULT_PROFILE
    path = config_path()
    profiles = _usable_profiles(path, flags, named, warnings)
    if profile != DEFAULT_PROFILE and profile not in profiles:  # named by --profile or $CDP_PROFILE
        raise unknown_profile_error(profile, profiles, path)
    table = profiles.get(profile, {})
    _check_names(table, f"{path} [{profile}]", warnings)
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


def _usable_profiles(
    path: Path, flags: dict[str, Any], named: str | None, warnings: list[str]
) -> dict[str, dict[str, Any]]:
    """The file's profiles. A config file that cannot be used is an error only when it is
    needed: when a profile is named (--profile, $CDP_PROFILE) or the API key does not come from
    a flag or the environment. Otherwise it is skipped with one warning, so a broken file never
    blocks a command whose settings are all given."""
    try:
        return load_config(path, warnings=warnings)
    except ConfigFileError as exc:
        key_given = flags.get("api-key") is not None or os.environ.get(SETTINGS["api-key"][0], "") != ""
        if named or not key_given:
            hint = (
                exc.hint
                if named
                else (
                    f"{exc.hint}; or give the key with api_key= or CDP_API_KEY (and other settings as "
                    "arguments or environment) to go on without the file"
                )
            )
            raise UsageError(exc.message, hint=hint, option="api_key") from None
        note(
            warnings,
            f"ignoring config file {exc.path}: it {exc.problem}; going on with flags, environment "
            f"and defaults ({repair_hint(exc.path, exc.line)})",
        )
        return {}


def _check_names(table: dict[str, Any], where: str, warnings: list[str]) -> None:
    """A hand-written `api_key = …` would be read as no key at all, without a word."""
    unknown = [key for key in table if key not in SETTINGS]
    if not unknown:
        return
    import difflib  # lazy: start-up

    shown = ", ".join(
        key
        + (
            f" (did you mean {close[0]}?)"
            if (close := difflib.get_close_matches(key.replace("_", "-"), SETTINGS, 1))
            else ""
        )
        for key in unknown
    )
    note(
        warnings,
        f"{where}: ignoring unknown setting{'s' if len(unknown) > 1 else ''} {shown}; "
        f"the settings are {', '.join(SETTINGS)}",
    )

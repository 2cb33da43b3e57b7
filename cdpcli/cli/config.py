"""`cdp config set|get|unset|list`: the config file's profiles (cdpcli.config) from the shell."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from cdpcli.cli.base import CdpGroup, app
from cdpcli.cli.options import ProfileOpt, SendOptions, connection_command
from cdpcli.cli.output import Output, reporting, warn
from cdpcli.errors import UsageError
from cdpcli.settings import SETTINGS

config_app = typer.Typer(
    cls=CdpGroup, help="Read and write settings in the config file (per profile).", no_args_is_help=True
)
app.add_typer(config_app, name="config")

KeyArg = Annotated[
    str,
    typer.Argument(
        help="One of: api-key, region, endpoint, timeout, retries, strict, gzip.",
        metavar="KEY",
        show_default=False,
        autocompletion=lambda: list(SETTINGS),
    ),
]


def _profile(profile: str | None) -> str:
    return profile or os.environ.get("CDP_PROFILE") or "default"


@contextmanager
def _warnings_said(out: Output | None = None) -> Iterator[list[str]]:
    """A list for the config file's warnings, printed when the block ends, however it ends."""
    warnings: list[str] = []
    try:
        yield warnings
    finally:
        for text in warnings:
            if out is not None:
                out.warn(text)
            else:
                warn(text)


def _shown(name: str, value: object) -> str:
    from cdpcli.wire import mask_key, masked_url  # lazy: start-up

    if value is None:
        return ""
    if name == "api-key":
        return mask_key(str(value))  # never the whole key
    if name == "endpoint":
        return masked_url(str(value))  # a hand-edited user:password@ is never shown
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@config_app.command("set")
def config_set(
    key: KeyArg,
    value: Annotated[
        str | None,
        typer.Argument(
            help="The value; for api-key leave it out to type it hidden or pipe it on stdin.",
            metavar="VALUE",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOpt = None,
) -> None:
    """Store a setting in a profile of the config file (mode 0600).

    Example: cdp config set api-key --profile prod   (prompts for the key)

    Or piped: echo "$KEY" | cdp config set api-key
    """

    from cdpcli.settings import set_value  # lazy: start-up

    with reporting(), _warnings_said() as warnings:
        if value is None:
            if key != "api-key":
                raise UsageError(f"missing VALUE for {key}", hint=f"cdp config set {key} VALUE")
            if sys.stdin.isatty():
                import getpass  # lazy: start-up

                value = getpass.getpass("API key (input hidden): ")
            else:
                try:  # all of it (bounded): a stray line break inside the key must not cut it short silently
                    value = sys.stdin.read(65536)
                except UnicodeDecodeError:
                    raise UsageError(
                        "the API key on stdin is not text (the key is not shown)",
                        hint="an API key is plain ASCII: copy it again and pipe it in",
                    ) from None
            value = value.strip()
            if not value:
                raise UsageError(
                    "no API key given", hint='type it at the prompt, or pipe it: echo "$KEY" | cdp config set api-key'
                )
        elif key == "api-key":
            warn("a key given as an argument stays in your shell history; next time leave VALUE out to be prompted")
        name = _profile(profile)
        path = set_value(name, key, value, warnings=warnings)
        typer.echo(f"set {key} = {_shown(key, value)} in profile {name} ({path})", err=True)


@config_app.command("get")
def config_get(key: KeyArg, profile: ProfileOpt = None) -> None:
    """Print a setting stored in a profile (API keys masked).

    Example: cdp config get region --profile staging
    """
    from cdpcli.config import load_config, unknown_profile_error  # lazy: start-up
    from cdpcli.settings import DEFAULT_PROFILE, check_key_name  # lazy: start-up

    with reporting(), _warnings_said() as warnings:
        check_key_name(key)
        name = _profile(profile)
        profiles = load_config(warnings=warnings)
        if name != DEFAULT_PROFILE and name not in profiles:
            raise unknown_profile_error(name, profiles)
        value = profiles.get(name, {}).get(key)
        if value is None:
            raise UsageError(f"{key} is not set in profile {name}", hint=f"cdp config set {key} VALUE --profile {name}")
        typer.echo(_shown(key, value))


@config_app.command("unset")
def config_unset(key: KeyArg, profile: ProfileOpt = None) -> None:
    """Remove a setting from a profile.

    Example: cdp config unset endpoint --profile staging
    """
    from cdpcli.settings import unset_value  # lazy: start-up

    with reporting(), _warnings_said() as warnings:
        name = _profile(profile)
        removed = unset_value(name, key, warnings=warnings)
        typer.echo(f"{'removed' if removed else 'was not set:'} {key} in profile {name}", err=True)


@config_app.command("list")
@connection_command
def config_list(
    opts: SendOptions,
    resolved: Annotated[
        bool,
        typer.Option(
            "--resolved",
            help="Show the value each setting takes and where it comes from (flag > env > profile > default).",
            metavar="",
        ),
    ] = False,
) -> None:
    """List the settings of a profile, or with --resolved what a command would use and why.

    Example: cdp config list --resolved --profile prod
    """
    from cdpcli.config import config_path, load_config, unknown_profile_error  # lazy: start-up
    from cdpcli.settings import DEFAULT_PROFILE  # lazy: start-up

    out = opts.output()
    with reporting(out), _warnings_said(out) as warnings:
        if resolved:
            target = opts.target(need_key=False)
            rows = {name: (getattr(target, name.replace("-", "_")), target.sources[name]) for name in SETTINGS}
            rows["endpoint"] = (
                target.base,
                rows["endpoint"][1] if target.endpoint else f"region {target.region}",
            )
            if out.json_mode:
                out.json(
                    {
                        "profile": target.profile,
                        "config": str(config_path()),
                        "settings": {k: {"value": _shown(k, v), "source": src} for k, (v, src) in rows.items()},
                    }
                )
                return
            out.result(f"profile {target.profile} ({config_path()})")
            for name, (value, source) in rows.items():
                out.result(f"{name:<9} {_shown(name, value) or '-':<40} {source}")
            return
        profiles = load_config(warnings=warnings)
        if opts.profile and opts.profile != DEFAULT_PROFILE and opts.profile not in profiles:
            raise unknown_profile_error(opts.profile, profiles)
        names = [opts.profile] if opts.profile else sorted(profiles) or []
        if out.json_mode:
            out.json(
                {
                    "config": str(config_path()),
                    "profiles": {n: {k: _shown(k, v) for k, v in profiles.get(n, {}).items()} for n in names},
                }
            )
            return
        if not profiles:
            out.info(f"no settings yet in {config_path()}; try: cdp config set api-key")
        for name in names:
            out.result(f"[{name}]")
            for key, value in profiles.get(name, {}).items():
                out.result(f"{key} = {_shown(key, value)}")

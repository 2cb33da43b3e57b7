"""`cdp expect FILE --against URL`: the expectations of a file checked against a running
`cdp serve` (cdpcli.expect), reported as text, --json or --junit XML."""

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from cdpcli.cli.base import app
from cdpcli.cli.options import ApiKeyOpt
from cdpcli.cli.output import Output, reporting, stored_key
from cdpcli.errors import UsageError
from cdpcli.settings import SETTINGS


@app.command()
def expect(
    file: Annotated[str, typer.Argument(help="Expectations file, TOML or JSON (.json).", metavar="FILE")],
    against: Annotated[
        str, typer.Option("--against", help="The receiver's URL (what cdp serve prints).", metavar="URL")
    ] = "http://127.0.0.1:8787",
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds to wait for calls yet to arrive (default: the file's timeout, else 5).",
            show_default=False,
            metavar="SECONDS",
        ),
    ] = None,
    junit: Annotated[
        str | None,
        typer.Option(
            "--junit", help="Also write the results as JUnit XML to FILE.", show_default=False, metavar="FILE"
        ),
    ] = None,
    api_key: ApiKeyOpt = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the results as one JSON object.", metavar="")
    ] = False,
) -> None:
    """Check the calls a running cdp serve received against an expectations file.

    Example: cdp expect tracking.toml --against http://127.0.0.1:8787

    Each expect entry matches calls partially and deeply (count, min, max or
    absent); a sequence wants events in order for one user; plan.events is a
    tracking plan (required, properties = {name = "string"}, additional);
    no_rejects = true wants no refused request. README: Testing your tracking.

    The key (for a cdp serve started with --api-key): --api-key; for a receiver
    on this machine also $CDP_API_KEY, else the profile's (never sent to another
    host unless given as --api-key).

    Exit 0 when every check holds, 1 when one fails, 2 for a bad file or a key
    the receiver refuses, 6 when the receiver cannot be reached.
    """

    out = Output(json_mode=json_output, api_key=api_key)
    with reporting(out):
        from cdpcli import expect as core  # lazy: start-up

        if timeout is not None and not 0 <= timeout <= 3600:
            raise UsageError(f"--timeout must be between 0 and 3600 seconds, not {timeout}", hint="e.g. --timeout 10")
        spec = core.load(file)
        results = core.check_against(spec, against, api_key=_api_key(api_key, against), timeout=timeout)
        if junit:
            _write_junit(junit, core.junit(results))
        failed = sum(not r.ok for r in results)
        if json_output:
            out.json(_json_report(results, failed))
        else:
            out.result(core.report(results))
    raise typer.Exit(1 if failed else 0)


def _json_report(results: list[Any], failed: int) -> dict[str, Any]:
    return {
        "ok": not failed,
        "passed": sum(r.ok and r.kind != "warning" for r in results),
        "failed": failed,
        "results": [r.as_json() for r in results],
    }


def _write_junit(path: str, xml: str) -> None:
    try:
        Path(path).write_text(xml, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write --junit {path}: {exc.strerror or exc}", hint="pick a path you can write"
        ) from None


def _api_key(flag: str | None, against: str) -> str | None:
    """The key to show the receiver: --api-key; for a receiver on this machine (cdp serve, as
    tests run it) also $CDP_API_KEY, else the profile's. Not those for another host: they hold
    the production key, and --against may be any URL. Nothing else of the settings is read (a
    stray CDP_TIMEOUT must not stop a check that never uses it)."""
    if flag:
        return flag
    if not is_loopback_url(against):
        return None
    key = os.environ.get(SETTINGS["api-key"][0]) or stored_key()
    return key if isinstance(key, str) and key.strip() else None


def is_loopback_url(url: str) -> bool:
    """Whether `url` names this machine: localhost, or a loopback address."""
    from cdpcli.serve.hosts import LOOPBACK_NAMES, is_loopback  # lazy: start-up

    host = (urlsplit(url).hostname or "").lower()
    return host in LOOPBACK_NAMES or host.endswith(".localhost") or is_loopback(host)

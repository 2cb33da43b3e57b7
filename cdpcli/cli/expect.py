"""`cdp expect FILE --against URL`: the expectations of a file checked against a running
`cdp serve` (cdpcli.expect), reported as text, --json or --junit XML."""

from pathlib import Path
from typing import Annotated, Any

import typer

from cdpcli.cli.base import app
from cdpcli.cli.options import ApiKeyOpt
from cdpcli.cli.output import Output, reporting
from cdpcli.errors import UsageError
from cdpcli.settings import resolve


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

    The key (for a cdp serve started with --api-key) is found as every command
    finds it: --api-key, else $CDP_API_KEY, else the profile's.

    Exit 0 when every check holds, 1 when one fails, 2 for a bad file or a key
    the receiver refuses, 6 when the receiver cannot be reached.
    """

    out = Output(json_mode=json_output, api_key=api_key)
    with reporting(out):
        from cdpcli import expect as core  # lazy: start-up

        if timeout is not None and not 0 <= timeout <= 3600:
            raise UsageError(f"--timeout must be between 0 and 3600 seconds, not {timeout}", hint="e.g. --timeout 10")
        spec = core.load(file)
        results = core.check_against(spec, against, api_key=_api_key(api_key, out), timeout=timeout)
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


def _api_key(flag: str | None, out: Output) -> str | None:
    """The key to show the receiver: --api-key, else $CDP_API_KEY, else the profile's
    ($CDP_PROFILE, else default), as settings.resolve finds it for every sending command."""
    warnings: list[str] = []
    try:
        _, settings = resolve({"api-key": flag}, warnings=warnings)
    finally:
        for text in warnings:
            out.warn(text)
    value = settings["api-key"].value
    return str(value) if value else None

"""The Typer app: its root (--version), and every command module registered on it.

Each command module (calls, import_, connect, config, serve, completions) decorates this `app`;
heavy modules (pydantic models, httpx, Rich) are imported inside the commands that need them,
so `cdp --help`, completion and dry-run stay quick.
"""

from typing import Annotated

import typer

from cdpcli import __version__, config


def new_app() -> typer.Typer:
    return typer.Typer(
        name="cdp",
        help="Send Customer.io Data Pipelines calls (identify, track, page, screen, group, alias) and NDJSON backfills.",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=False,
    )


app = new_app()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cdp {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Send Customer.io Data Pipelines calls from the shell, CI or NDJSON backfills.

    Example: cdp track --user 42 --event Item_Purchased -p price:=9.5 --dry-run
    """
    from cdpcli.cli.output import warn

    # the config file's warnings (ignored file, unknown setting) as they happen, in order
    config.on_warning(warn)


# Registered in this order, which `cdp --help` lists.
from cdpcli.cli import calls, import_, connect, config as config_commands, completions, serve  # noqa: E402, F401, I001

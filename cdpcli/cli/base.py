"""The Typer app itself: its root (--version), its group class, and the usage-error style.

Each command module (calls, operations, import_, connect, config, serve, expect, completions)
decorates this `app` when it is imported: cdpcli.cli.app imports them all, and `cdp CMD` only
the one CMD needs (run.app_for);
heavy modules (pydantic models, httpx, Rich) are imported inside the commands that need them,
so `cdp --help`, completion and dry-run stay quick.
"""

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cdpcli import __version__
from cdpcli.cli.output import Output


class CdpGroup(TyperGroup):
    """cdp's command groups (the root, `config`, `connect`): Click's usage errors in cdp's one
    error style, help without a type on -h, and NO_COLOR honoured by help. Public Click/Typer
    methods only (main, get_help_option, get_command, format_help), each extended, not replaced."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        # standalone: run non-standalone and do the standalone part here, so that a usage error
        # reads `Error:`/`Hint:` (under --json also one JSON object), not Typer's Rich box
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # click's UsageError, BadParameter, …: public base class
            sys.exit(report_usage_error(exc, json_mode="--json" in argv, argv=argv))
        except typer.Abort:
            print("Aborted!", file=sys.stderr)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option(super().get_help_option(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _help_option(command.get_help_option(ctx))
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        plain_help_if_no_color()
        super().format_help(ctx, formatter)


def _help_option(option: Any) -> Any:
    """-h/--help of a command: a plain flag (no `<bool>` in help: an empty metavar, as cdp's
    other flags), whose help honours NO_COLOR."""
    if option is not None and option.metavar != "":
        option.metavar = ""
        show_help = option.callback

        def callback(ctx: Any, param: Any, value: Any) -> Any:
            if value:
                plain_help_if_no_color()
            return show_help(ctx, param, value)

        option.callback = callback
    return option


def plain_help_if_no_color() -> None:
    """NO_COLOR (no-color.org): help without any ANSI code. Rich drops colours for NO_COLOR but
    keeps bold and dim; typer.rich_utils.COLOR_SYSTEM = None ("set to None to disable colors",
    Typer's own comment there) makes its help console emit none. Not public API, so it is set
    here only, and tests/test_cli_surface.py checks the result."""
    if os.environ.get("NO_COLOR"):
        from typer import rich_utils  # lazy: start-up

        rich_utils.COLOR_SYSTEM = None


def report_usage_error(exc: Any, *, json_mode: bool, argv: Sequence[str] = ()) -> int:
    """A Click usage error (missing option, unknown flag, bad value) as `Error:`/`Hint:` lines on
    stderr like every other error, and under --json also one JSON object on stdout; the keys
    `argv` leads to are hidden in it (`cdp KEY`: "No such command '****'")."""

    exit_code = getattr(exc, "exit_code", 2)
    if type(exc).__name__ == "NoArgsIsHelpError":  # `cdp config`: help was printed already
        return exit_code
    context = getattr(exc, "ctx", None)
    where = context.command_path if context is not None else "cdp"
    out = Output(json_mode=json_mode, api_key=_value_of("--api-key", argv), profile=_value_of("--profile", argv))
    hint = f"see `{where} --help`"
    out.error(exc.format_message(), hint)
    if json_mode:
        out.json({"ok": False, "error": exc.format_message(), "hint": hint, "exit_code": exit_code})
    return exit_code


def _value_of(flag: str, argv: Sequence[str]) -> str | None:
    """The value `flag` is given in `argv` (`--flag VALUE` or `--flag=VALUE`), the last one."""
    value = None
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith(flag + "="):
            value = arg[len(flag) + 1 :]
    return value


def new_app() -> typer.Typer:
    return typer.Typer(
        name="cdp",
        cls=CdpGroup,
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
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.", metavar="")
    ] = False,
) -> None:
    """Send Customer.io Data Pipelines calls from the shell, CI or NDJSON backfills.

    Example: cdp track --user 42 --event Item_Purchased -p price:=9.5 --dry-run
    """

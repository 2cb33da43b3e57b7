"""Running the app on argv: only the command being run registered, and under --json usage
errors as one JSON object like every other outcome."""

import os
import sys

import typer

from cdpcli.cli.app import app, new_app


def app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command being run registered, when that is clear from argv.

    Typer builds the click parameters of every registered command on each start (~15 ms for
    all of ours); `cdp track …` needs one. Help, completion and anything unclear get the full app.
    """
    name = argv[0] if argv else ""
    if name.startswith("-") or "_CDP_COMPLETE" in os.environ:
        return app
    for info in app.registered_commands:
        if (info.name or info.callback.__name__) == name:
            lean = new_app()
            lean.registered_callback = app.registered_callback
            lean.registered_commands = [info]
            return lean
    return app


def run(argv: list[str]) -> int:
    """Run the app; under --json, usage errors that Typer catches before any command runs
    (a missing --event, --retries abc) are one JSON object on stdout like every other outcome."""
    app_to_run = app_for(argv)
    if "--json" not in argv:
        app_to_run(prog_name="cdp")  # standalone: Typer formats usage errors and exits
        return 0
    try:
        result = app_to_run(prog_name="cdp", standalone_mode=False)
    except typer.TyperException as exc:  # click's UsageError, BadParameter, …: public base class
        exc.show()
        from cdpcli.cli.output import Output

        exit_code = getattr(exc, "exit_code", 2)
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else "cdp"
        Output(json_mode=True).json(
            {"ok": False, "error": exc.format_message(), "hint": f"see `{where} --help`", "exit_code": exit_code}
        )
        return exit_code
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0

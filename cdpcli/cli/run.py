"""Running the app on argv, with only the command being run registered."""

import os

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
    """Run the app. Usage errors are reported by the app itself (app.CdpGroup.main): `Error:` and
    `Hint:` lines, and under --json one JSON object on stdout like every other outcome."""
    try:
        app_for(argv)(argv, prog_name="cdp")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        raise
    return 0

"""Running the app on argv, with only the command being run imported and registered."""

import importlib
import os

import typer

from cdpcli.cli.base import new_app

# The module that defines each command or group (tests/test_setup.py checks it against the app).
COMMAND_MODULES = {
    **dict.fromkeys(("identify", "track", "page", "screen", "group", "alias"), "calls"),
    **dict.fromkeys(("person", "device", "object", "relationship", "report"), "operations"),
    "import": "import_",
    "connect": "connect",
    "config": "config",
    "completions": "completions",
    "serve": "serve",
    "expect": "expect",
}


def app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command being run, when that is clear from argv.

    Importing every command module costs ~15 ms, and Typer builds the click parameters of every
    registered command on each start (~15 ms more); `cdp track …` needs one of each. Help,
    completion and anything unclear get the full app.
    """
    name = argv[0] if argv else ""
    module = COMMAND_MODULES.get(name)
    if module is None or "_CDP_COMPLETE" in os.environ:
        from cdpcli.cli.app import app as full

        return full
    importlib.import_module(f"cdpcli.cli.{module}")
    from cdpcli.cli.base import app

    for info in app.registered_commands:
        if (info.name or getattr(info.callback, "__name__", None)) == name:
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

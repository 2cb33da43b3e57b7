"""The `cdp` command: a thin layer over the core (cdpcli.calls, cdpcli.importing, cdpcli.connect,
cdpcli.serve). Modules: app (the Typer app), one module per command group (calls, import_,
connect, config, serve, completions), options (every shared option, defined once), output
(where text goes, and the one place errors become messages and exit codes), progress, and
startup (the process tricks, applied by main() only)."""

from __future__ import annotations

import os
import sys
from typing import Any


def main() -> None:
    from cdpcli.cli import startup

    startup.prepare_process()
    if "_CDP_COMPLETE" in os.environ:  # the shell asks for completions (see completions/)
        from cdpcli.cli.completions import register_completion_classes

        register_completion_classes()
    from cdpcli.cli.run import run

    try:
        code = run(sys.argv[1:])
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    startup.exit_now(code)


def __getattr__(name: str) -> Any:
    if name == "app":  # tests and completion scripts drive the app itself
        from cdpcli.cli.app import app

        return app
    raise AttributeError(name)

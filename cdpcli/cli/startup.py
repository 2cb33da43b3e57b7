"""Process start-up tricks of the `cdp` command, each with the time it saves. They change the
whole process, so they are applied by `cdp`'s main() only, never when cdpcli is imported as a
library (a program using pydantic plugins or httpx's CLI keeps them).

Measured with `python -X importtime` and benchmarks/startup.py on a 2-core machine.
"""

from __future__ import annotations

import os
import sys
import types


def prepare_process() -> None:
    """Before anything heavy is imported."""
    # Pydantic (used by Typer to coerce options, and by cdp's models) scans every installed
    # package's entry points for plugins when it builds its first validator (~20 ms); cdp uses
    # none, so skip the scan unless the user asked for plugins. Its loader reads that variable
    # only after importing importlib.metadata (and with it the email package: ~20 ms more), and
    # `get_plugins` is all pydantic asks of it: with plugins off, stand in for it.
    if "PYDANTIC_DISABLE_PLUGINS" not in os.environ:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
        no_plugins = types.ModuleType("pydantic.plugin._loader")
        no_plugins.get_plugins = lambda: ()  # type: ignore[attr-defined]
        sys.modules.setdefault("pydantic.plugin._loader", no_plugins)
    # `import httpx` also imports its own command-line module (click, rich, pygments) when the
    # click package is installed; marking it absent makes httpx skip it: ~30 ms.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown of pydantic, httpx and typer:
    ~30-40 ms on every run. Every command has closed its files by now; the streams are
    flushed here (a closed pipe is not an error worth a message)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)

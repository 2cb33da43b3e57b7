"""Process start-up tricks of the `cdp` command, each with the time it saves. They change the
whole process, so they are applied by `cdp`'s main() only, never when cdpcli is imported as a
library (a program using pydantic plugins or httpx's CLI keeps them).

Measured with `python -X importtime` and benchmarks/startup.py on a 2-core machine.
"""

from __future__ import annotations

import gc
import os
import sys
import types

# Start-up (Typer, pydantic, httpx, cdp's models and validators) leaves 45,000-66,000 objects
# the garbage collector tracks, nearly all alive until the process ends. At the default
# threshold, every 700 of them started a young collection: 81 young and 7 older ones, 12-14 ms
# of the ~215 ms of CPU `cdp import` spends before its first line (5-6 % of any command's
# start). A higher threshold alone does not help (one collection over 50,000 young objects
# cost 10-11 ms): none runs until this many allocations, more than any command's start makes.
# Memory stays bounded: a collection still comes every START_UP_GEN0 allocations.
START_UP_GEN0 = 100_000
_THRESHOLDS = gc.get_threshold()  # the interpreter's, as set before cdp's main() ran


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
    gc.set_threshold(START_UP_GEN0, *_THRESHOLDS[1:])


def started() -> None:
    """The command's set-up is done and its long work starts (an import's hot loop): what the
    start-up built is moved out of the collector's sight, and the interpreter's thresholds come
    back. Collections during an import then cost what they did (3-6 ms in 100,000 lines: its
    calls are bytes, which are not tracked); freezing those objects cut ~20 % of the hot loop's
    time when full collections scanned them again."""
    gc.freeze()
    gc.set_threshold(*_THRESHOLDS)


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

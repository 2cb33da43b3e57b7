"""cdp: a command-line client for the Customer.io Data Pipelines HTTP API."""

import os
import sys
import types

__version__ = "0.1.0"

# Pydantic (used by Typer to coerce options, and by cdp's models) scans every installed
# package's entry points for plugins when it builds its first validator (~20 ms at start-up);
# cdp uses none, so skip the scan unless the user asked for plugins. Its loader reads that
# variable only after importing importlib.metadata (and with it the email package: ~20 ms
# more), and `get_plugins` is all pydantic asks of it: with plugins off, stand in for it.
if "PYDANTIC_DISABLE_PLUGINS" not in os.environ:
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    _no_plugins = types.ModuleType("pydantic.plugin._loader")
    _no_plugins.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules.setdefault("pydantic.plugin._loader", _no_plugins)

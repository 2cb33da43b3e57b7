"""The whole app: every command module registered on base.app, in the order `cdp --help` lists
them. `cdp CMD` imports only CMD's module (run.app_for); help, completion, the CLI reference
and the tests use this."""

import importlib

from cdpcli.cli.base import CdpGroup, app, new_app

# Registered in this order, which `cdp --help` lists (run.COMMAND_MODULES maps each command).
COMMAND_ORDER = ("calls", "operations", "import_", "connect", "config", "completions", "serve", "expect")
for _module in COMMAND_ORDER:
    importlib.import_module(f"cdpcli.cli.{_module}")

__all__ = ["CdpGroup", "app", "new_app"]

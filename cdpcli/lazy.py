"""Names of a package loaded on first use: `import cdpcli` (and `cdpcli.importing`) stays cheap,
and the CLI's start-up pays only for the modules a command needs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, homes: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `homes[name]` (a module path) on first use of `name`
    and keeps the value in `namespace` (the package's globals), so the next lookup is direct."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__

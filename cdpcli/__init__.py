"""cdp: a client for the Customer.io Data Pipelines HTTP API, as a command (`cdp`) and a library.

    import cdpcli
    target = cdpcli.Target.resolve()                    # flags > env > profile > default, like cdp
    cdpcli.send("track", {"userId": "42", "event": "Item Purchased"}, target=target)
    result = cdpcli.import_lines(lines, target=target, source="orders-2024")
    result = cdpcli.import_paths(["s3://bucket/segment-logs/"], target=target, archive="segment")

Nothing here prints or exits; failures raise CdpError subclasses that carry a message, a hint
and `.exit_code`. Importing the package is cheap: each name loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdpcli.lazy import lazy_names

__version__ = "0.3.0"

__all__ = [
    "CdpError",
    "DeliveryError",
    "ExitCode",
    "ImportResult",
    "InvalidCall",
    "SendResult",
    "Target",
    "UsageError",
    "__version__",
    "import_lines",
    "import_paths",
    "send",
]

# public name -> the module that defines it
_HOMES = {
    "CdpError": "cdpcli.errors",
    "DeliveryError": "cdpcli.errors",
    "ExitCode": "cdpcli.errors",
    "UsageError": "cdpcli.errors",
    "Target": "cdpcli.target",
    "SendResult": "cdpcli.calls",
    "InvalidCall": "cdpcli.calls",
    "send": "cdpcli.calls",
    "ImportResult": "cdpcli.importing",
    "import_lines": "cdpcli.importing",
    "import_paths": "cdpcli.importing",
}

if TYPE_CHECKING:
    from cdpcli.calls import InvalidCall, SendResult, send
    from cdpcli.errors import CdpError, DeliveryError, ExitCode, UsageError
    from cdpcli.importing import ImportResult, import_lines, import_paths
    from cdpcli.target import Target


__getattr__ = lazy_names("cdpcli", _HOMES, globals())


def __dir__() -> list[str]:
    return sorted(__all__)

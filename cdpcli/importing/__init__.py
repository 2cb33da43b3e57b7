"""Imports: lines of calls from files, stdin or any iterable, validated, batched and delivered,
every line settled exactly once (delivered, or in the rejects file with its reason).

The way in, by step: options.py (the settings, built once from raw values) -> sources.py
(reading) -> prepare.py (a line becomes a call's bytes) -> batches.py -> delivery.py (sending,
splitting, stopping; it reports through settle.py) -> rejects.py and checkpoint.py (what is
settled); engine.py runs them together, stats.py counts, events.py is what it tells a front end
and returns. api.py: `import_lines` and `import_paths`, the Python API; `cdp import` builds the same Importer.

Names load their module on first use: `cdp track` imports events.py (for the CLI's types)
without paying for the engine (~14 ms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdpcli.lazy import lazy_names

_HOMES = {
    "DEFAULT_REJECTS": "cdpcli.importing.rejects",
    "ImportEvents": "cdpcli.importing.events",
    "ImportResult": "cdpcli.importing.events",
    "ImportOptions": "cdpcli.importing.options",
    "Importer": "cdpcli.importing.engine",
    "Source": "cdpcli.importing.source",
    "make_sources": "cdpcli.importing.sources",
    "check_options": "cdpcli.importing.options",
    "import_lines": "cdpcli.importing.api",
    "import_paths": "cdpcli.importing.api",
}
__all__ = [
    "DEFAULT_REJECTS",
    "ImportEvents",
    "ImportOptions",
    "ImportResult",
    "Importer",
    "Source",
    "check_options",
    "import_lines",
    "import_paths",
    "make_sources",
]

if TYPE_CHECKING:
    from cdpcli.importing.api import import_lines, import_paths
    from cdpcli.importing.engine import Importer
    from cdpcli.importing.events import ImportEvents, ImportResult
    from cdpcli.importing.options import ImportOptions, check_options
    from cdpcli.importing.rejects import DEFAULT_REJECTS
    from cdpcli.importing.source import Source
    from cdpcli.importing.sources import make_sources


__getattr__ = lazy_names("cdpcli.importing", _HOMES, globals())

"""The Python API of imports, with `cdp import`'s options under the same names
(ImportOptions.build): `import_lines` for lines from any iterable, `import_paths` for what
`cdp import` is given by name (files, directories, archives, s3:// URLs)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cdpcli.errors import UsageError
from cdpcli.importing.engine import Importer
from cdpcli.importing.events import ImportEvents, ImportResult
from cdpcli.importing.options import ImportOptions, check_options, renamed
from cdpcli.importing.shard import shard_sources
from cdpcli.importing.sources import Source, check_namespace, make_sources

if TYPE_CHECKING:
    from cdpcli.target import Target

__all__ = ["check_options", "import_lines", "import_paths"]


def import_lines(
    lines: Iterable[Any],
    *,
    target: Target,
    options: ImportOptions | None = None,
    source: str = "lines",
    id_namespace: str | None = None,
    observer: ImportEvents | None = None,
    **overrides: Any,
) -> ImportResult:
    """Import calls as `cdp import` does: the same validation, derived messageIds (from
    `source` and each line's position: the same lines under the same name get the same ids on
    a re-run), retries, splitting, rejects file and checkpoint.

    `lines`: bytes or str (one JSON call each) or dicts. Returns the counts; an import that
    stopped early says why in `.error` (call `.raise_for_failure()` to raise it). Invalid
    settings, a checkpoint in use by another import, or a missing key raise CdpError at once.
    Never prints, never installs signal handlers, never changes the process's state; each call
    has its own connections, so several may run at once in threads or processes (each with its
    own checkpoint).

    The settings are `cdp import`'s options under the same names (`--batch-bytes` is
    `batch_bytes=`): `options` (an ImportOptions, e.g. from ImportOptions.build), then
    `overrides` normalised by ImportOptions.build: `rejects`, `checkpoint`, `concurrency`,
    `type` (for lines without one), `rate` (requests per second, or "auto": adapt to 429s),
    `rate_budget` (shared among the shards), `shard="K/N"` with `shard_by` ("line" or "user"),
    so that N calls with K = 0…N-1 send every line exactly once between them, `max_invalid`,
    `dry_run`, `order="phased"` (identify and group first, then track/page/screen, then alias,
    then deletes, each phase once the one before is settled; `lines` is copied to a private
    temporary file first), and what to send (lines left out count as skipped, by reason):
    `archive` (segment/rudderstack envelopes, or vendors.VENDORS), `resolve_identities`, `types`, `events` (track
    events to keep), `exclude_events`, `since`/`until` (datetime, or ISO-8601 text; UTC when it
    names no zone), `sample` (a fraction, the same calls every run), `limit`; `recent`: what to
    do with calls timestamped in the 72 hours before `now` (default: when the import starts),
    which can trigger campaigns: "warn" (counted in `.recent`), "skip" or "fail" (rejected,
    reason "recent"). `observer`: the ImportEvents hooks (progress, rejects, dry-run requests).

    Old names, kept for one release with a DeprecationWarning: `only_events` (now `events`),
    `default_type` (now `type`), and `events=` given an ImportEvents (now `observer`).
    """
    observer = _hooks(overrides, observer)
    overrides = renamed(overrides)
    chosen = ImportOptions.build(options, **overrides) if overrides or options is None else options
    if chosen.shard is not None and chosen.shard.by == "file":
        raise UsageError(
            'shard_by="file" deals whole sources, and import_lines has one',
            hint='use shard_by="line" or "user", or give each shard its own lines (a partition per file)',
            option="shard_by",
        )
    if not chosen.dry_run:
        target.require_key()
    if not source:
        raise UsageError("source must be a non-empty name", hint='e.g. source="orders-2024"', option="source")
    check_namespace(id_namespace)
    sources = [Source.of_items(source, lines, id_namespace)]
    check_options(chosen, sources)
    return Importer(target, sources, chosen, observer).run()


def import_paths(
    paths: str | Iterable[str],
    *,
    target: Target,
    options: ImportOptions | None = None,
    id_namespace: str | None = None,
    format: str | None = None,  # the option id, as in cdp import
    s3_endpoint: str | None = None,
    observer: ImportEvents | None = None,
    **overrides: Any,
) -> ImportResult:
    """Import what `cdp import PATH…` imports, as it does: each name a file, a directory (its
    files, sorted), a zip or tar archive (its members, `ARCHIVE!MEMBER`), or an
    `s3://BUCKET/KEY-OR-PREFIX` URL (an object, or the objects under a prefix; the s3
    extra); the same derived messageIds, rejects and checkpoint entries as the command's.

    `format` ("ndjson", "csv", "parquet"; default: told by each name), `id_namespace` and
    `s3_endpoint` (an S3-compatible store's URL; default: the standard AWS chain) are the
    command's options of those names; `options` and `overrides` are import_lines's (including
    `shard="K/N"` with `shard_by="file"`: every Nth file or object, for N workers over one
    prefix). Warnings about the inputs (two sources deriving the same ids) go to
    `observer.note`. Returns the counts, as import_lines does.
    """
    observer = _hooks(overrides, observer)
    chosen = ImportOptions.build(options, **renamed(overrides)) if overrides or options is None else options
    names = [paths] if isinstance(paths, str) else list(paths)
    if not names or "-" in names:
        raise UsageError(
            "paths must name files, directories or s3:// URLs" + (" (not stdin)" if names else ""),
            hint='e.g. import_paths(["s3://bucket/segment-logs/"], target=target); for stdin: import_lines(sys.stdin.buffer, …)',
            option="paths",
        )
    if not chosen.dry_run:
        target.require_key()
    sources, warned = make_sources(names, id_namespace, format, s3_endpoint)
    sources = shard_sources(sources, chosen.shard)
    check_options(chosen, sources)
    observer = observer or ImportEvents()
    for text in warned:
        observer.note(text)
    return Importer(target, sources, chosen, observer).run()


def _hooks(overrides: dict[str, Any], observer: ImportEvents | None) -> ImportEvents | None:
    """The hooks, also from their old keyword `events=` (popped from `overrides`)."""
    if not isinstance(overrides.get("events"), ImportEvents):
        return observer
    warnings.warn("events= for the hooks is deprecated: use observer=", DeprecationWarning, stacklevel=3)
    if observer is not None:
        raise UsageError("events= (the hooks) and observer= are the same: give observer= only", option="observer")
    return overrides.pop("events")

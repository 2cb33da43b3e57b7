"""import_lines, the Python API of imports, and the checks every import's settings pass."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cdpcli.errors import UsageError
from cdpcli.importing.engine import Importer, ImportOptions, check_limits
from cdpcli.importing.events import ImportEvents, ImportResult
from cdpcli.importing.pacing import DEFAULT_RATE, resolve_rate
from cdpcli.importing.rejects import DEFAULT_REJECTS
from cdpcli.importing.select import ARCHIVES, RECENT_MODES, parse_time
from cdpcli.importing.shard import parse_shard
from cdpcli.importing.sources import Source, check_namespace
from cdpcli.wire import CALL_TYPES, DEFAULT_BATCH_BYTES, MAX_BATCH_CALLS

if TYPE_CHECKING:
    from cdpcli.target import Target


def check_options(options: ImportOptions, sources: list[Source]) -> None:
    """What an import's settings must hold before it starts (UsageError naming the option)."""
    if options.default_type is not None and options.default_type not in CALL_TYPES:
        raise UsageError(f"--type {options.default_type!r}: expected one of {', '.join(CALL_TYPES)}")
    check_limits(options.batch_bytes, options.batch_events, options.concurrency, options.rate)
    if options.max_invalid is not None and options.max_invalid < 1:
        raise UsageError(f"--max-invalid must be at least 1, not {options.max_invalid}")
    if options.archive is not None and options.archive not in ARCHIVES:
        raise UsageError(f"--from {options.archive!r}: expected one of {', '.join(ARCHIVES)}")
    for flag, names in (
        ("--types", options.types),
        ("--events", options.events),
        ("--exclude-events", options.exclude_events),
    ):
        if names is not None and not names:
            raise UsageError(f"{flag} needs at least one name")
    for name in options.types or ():
        if name not in CALL_TYPES:
            raise UsageError(f"--types {name!r}: expected types among {', '.join(CALL_TYPES)}")
    if options.limit is not None and options.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {options.limit}")
    if options.sample is not None and not 0 < options.sample <= 1:  # NaN fails too
        raise UsageError(
            f"--sample must be a fraction above 0 and at most 1, not {options.sample:g}",
            hint="e.g. --sample 0.01 for 1 %",
        )
    if options.recent is not None and options.recent not in RECENT_MODES:
        raise UsageError(f"--recent {options.recent!r}: expected one of {', '.join(RECENT_MODES)}")
    from cdpcli.importing.order import check_order

    check_order(options.order)
    if options.order == "phased" and options.limit is not None:
        raise UsageError("--limit cannot be combined with --order phased", hint="send a slice with --sample instead")
    if options.since and options.until and options.since >= options.until:
        raise UsageError("--since must be before --until")
    for path in (options.rejects, options.checkpoint):
        if path and any(s.is_file and os.path.realpath(s.name) == os.path.realpath(path) for s in sources):
            raise UsageError(
                f"{path} is both an input and an output",
                hint="write rejects/checkpoint to another file (--rejects, --checkpoint)",
            )


def import_lines(
    lines: Iterable[Any],
    *,
    target: Target,
    source: str = "lines",
    rejects: str = DEFAULT_REJECTS,
    checkpoint: str | None = None,
    concurrency: int = 16,
    default_type: str | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    batch_events: int = MAX_BATCH_CALLS,
    rate: float | str = DEFAULT_RATE,
    rate_budget: float | None = None,
    shard: str | None = None,
    shard_by: str = "line",
    max_invalid: int | None = None,
    id_namespace: str | None = None,
    dry_run: bool = False,
    order: str = "none",
    events: ImportEvents | None = None,
    archive: str | None = None,
    types: Iterable[str] | None = None,
    only_events: Iterable[str] | None = None,
    exclude_events: Iterable[str] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    sample: float | None = None,
    limit: int | None = None,
    recent: str = "warn",
    now: datetime | None = None,
) -> ImportResult:
    """Import calls as `cdp import` does: the same validation, derived messageIds (from
    `source` and each line's position: the same lines under the same name get the same ids on
    a re-run), retries, splitting, rejects file and checkpoint.

    `lines`: bytes or str (one JSON call each) or dicts. Returns the counts; an import that
    stopped early says why in `.error` (call `.raise_for_failure()` to raise it). Invalid
    settings, a checkpoint in use by another import, or a missing key raise CdpError at once.
    Never prints, never installs signal handlers; each call has its own connections, so
    several may run at once in threads or processes (each with its own checkpoint).

    `rate`: requests per second, or "auto" (adapt to 429s); `rate_budget` shares one rate
    among the shards; `shard="K/N"` sends only that share (`shard_by` line or user), so that
    N calls with K = 0…N-1 send every line exactly once between them.

    Choosing what to send, as `cdp import`'s options do (lines left out count as skipped, by
    reason): `archive` ("segment" or "rudderstack": drop its envelope keys), `types`,
    `only_events` (track events to keep; `events` is the front end's hooks), `exclude_events`,
    `since`/`until` (datetime, or ISO-8601 text; UTC when it names no zone), `sample` (a
    fraction, the same calls every run), `limit`. `recent`: what to do with calls timestamped in
    the 72 hours before `now` (default: when the import starts), which can trigger campaigns:
    "warn" (counted in `.recent`), "skip" (skipped) or "fail" (rejected, reason "recent").
    `order="phased"`: identify and group calls first, then track/page/screen, then alias, then
    deletes, each phase once the one before is settled (`lines` is copied to a private
    temporary file first).
    """
    if not dry_run:
        target.require_key()
    if not source:
        raise UsageError("source must be a non-empty name", hint='e.g. source="orders-2024"')
    check_namespace(id_namespace)
    sources = [Source.of_items(source, lines, id_namespace)]
    chosen_shard = parse_shard(shard, shard_by, "shard=") if shard is not None else None
    if chosen_shard is not None and chosen_shard.by == "file":
        raise UsageError(
            'shard_by="file" deals whole sources, and import_lines has one',
            hint='use shard_by="line" or "user", or give each shard its own lines (a partition per file)',
        )
    rate, rate_auto = resolve_rate(rate, rate_budget, chosen_shard)
    options = ImportOptions(
        default_type=default_type,
        concurrency=concurrency,
        batch_bytes=batch_bytes,
        batch_events=batch_events,
        rate=rate,
        rate_auto=rate_auto,
        shard=chosen_shard,
        rejects=rejects,
        rejects_explicit=rejects != DEFAULT_REJECTS,  # named by the program: a symlink there is its own
        checkpoint=checkpoint,
        max_invalid=max_invalid,
        dry_run=dry_run,
        archive=archive,
        types=list(types) if types is not None else None,
        events=list(only_events) if only_events is not None else None,
        exclude_events=list(exclude_events) if exclude_events is not None else None,
        since=_moment(since, "since="),
        until=_moment(until, "until="),
        sample=sample,
        limit=limit,
        recent=recent,
        now=now,
        order=order,
    )
    check_options(options, sources)
    return Importer(target, sources, options, events).run()


def _moment(value: datetime | str | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    return parse_time(value, name)

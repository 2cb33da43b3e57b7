"""`cdp import` as a command: options checked, the import run, the summary reported."""

from __future__ import annotations

import os
import sys

from cdpcli.errors import ExitCode, UsageError
from cdpcli.importer import ImportOptions, Importer, check_limits, make_sources
from cdpcli.session import SendOptions, open_session
from cdpcli.wire import CALL_TYPES


def run_import(
    opts: SendOptions,
    files: list[str],
    *,
    default_type: str | None,
    concurrency: int,
    batch_bytes: int,
    batch_events: int,
    rate: float,
    rejects: str,
    checkpoint: str | None,
    progress: bool | None,
) -> int:
    if default_type is not None and default_type not in CALL_TYPES:
        raise UsageError(f"--type {default_type!r}: expected one of {', '.join(CALL_TYPES)}")
    check_limits(batch_bytes, batch_events, concurrency, rate)
    session = open_session(opts, need_key=True)
    sources = make_sources(files)
    for path in (rejects, checkpoint):
        if path and any(s.name != "-" and os.path.abspath(s.name) == os.path.abspath(path) for s in sources):
            raise UsageError(f"{path} is both an input and an output", hint="write rejects/checkpoint to another file (--rejects, --checkpoint)")
    if progress is None:
        progress = sys.stderr.isatty() and not opts.quiet
    options = ImportOptions(
        default_type=default_type,
        concurrency=concurrency,
        batch_bytes=batch_bytes,
        batch_events=batch_events,
        rate=rate,
        rejects=rejects,
        checkpoint=checkpoint,
        progress=progress,
    )
    importer = Importer(session, sources, options)
    code = importer.run()
    report(importer, code)
    return code


def report(importer: Importer, code: int) -> None:
    out = importer.out
    stats = importer.stats.summary()
    if importer.fatal:
        _, message, hint = importer.fatal
        out.error(message, hint)
    dry = importer.session.dry_run
    rejected = stats["invalid"] + stats["failed"]
    line = (
        f"{'Checked' if dry else 'Imported'} {stats['read']:,} calls: "
        + (f"{stats['read'] - stats['invalid']:,} valid" if dry else f"{stats['sent']:,} sent")
        + f", {stats['invalid']:,} invalid, {stats['failed']:,} failed; "
        f"{stats['batches']:,} batches, {stats['requests']:,} requests, {stats['retries']:,} retries; "
        f"{stats['seconds']:.1f}s, {stats['events_per_second']:,.0f} calls/s"
    )
    if stats["skipped"]:
        line += f" ({stats['skipped']:,} lines skipped: settled by an earlier run)"
    if rejected:
        line += f". Rejects appended to {importer.rejects.path}"
    not_settled = stats["read"] - stats["sent"] - rejected if not dry else 0
    if code == ExitCode.INTERRUPTED or importer.fatal:
        resume = (
            f"run the same command again to resume from {importer.options.checkpoint}"
            if importer.options.checkpoint
            else "re-run with --checkpoint FILE next time to resume; re-sending is safe (same messageIds)"
        )
        line += f". Stopped early: {max(not_settled, 0):,} calls read but not sent; {resume}"
    out.info(line + ".")
    if out.json_mode:
        out.json({**stats, "rejected_file": importer.rejects.path if rejected else None, "exit_code": code})

"""`cdp import` as a command: options checked, the import run, the summary reported."""

from __future__ import annotations

import os
import sys

from cdpcli.errors import ExitCode, UsageError
from cdpcli.importer import DEFAULT_REJECTS, Importer, ImportOptions, check_limits, make_sources
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
    rejects: str | None,
    checkpoint: str | None,
    progress: bool | None,
    max_invalid: int | None = None,
    id_namespace: str | None = None,
) -> int:
    if default_type is not None and default_type not in CALL_TYPES:
        raise UsageError(f"--type {default_type!r}: expected one of {', '.join(CALL_TYPES)}")
    check_limits(batch_bytes, batch_events, concurrency, rate)
    if max_invalid is not None and max_invalid < 1:
        raise UsageError(f"--max-invalid must be at least 1, not {max_invalid}")
    if id_namespace is not None and not id_namespace.strip():
        raise UsageError("--id-namespace must not be empty", hint="leave it out to derive ids as before")
    session = open_session(opts, need_key=True)
    sources, warnings = make_sources(files, id_namespace)
    for text in warnings:
        session.out.warn(text)
    rejects_path = rejects if rejects is not None else DEFAULT_REJECTS
    for path in (rejects_path, checkpoint):
        if path and any(s.name != "-" and os.path.realpath(s.name) == os.path.realpath(path) for s in sources):
            raise UsageError(
                f"{path} is both an input and an output",
                hint="write rejects/checkpoint to another file (--rejects, --checkpoint)",
            )
    if progress is None:
        progress = sys.stderr.isatty() and not opts.quiet
    options = ImportOptions(
        default_type=default_type,
        concurrency=concurrency,
        batch_bytes=batch_bytes,
        batch_events=batch_events,
        rate=rate,
        rejects=rejects_path,
        rejects_explicit=rejects is not None,
        checkpoint=checkpoint,
        progress=progress,
        max_invalid=max_invalid,
    )
    importer = Importer(session, sources, options)
    code = importer.run()
    report(importer, code)
    return code


def report(importer: Importer, code: int) -> None:
    out = importer.out
    stats = importer.stats.summary()
    fatal = importer.fatal
    dry = importer.session.dry_run
    if dry:  # nothing is sent: the valid calls are checked, not left unsettled
        stats["valid"] = importer.stats.calls - stats["invalid"]
        stats["unsettled"] = 0
    if fatal:
        out.error(fatal.message, fatal.hint)
    invalid, failed = stats["invalid"], stats["failed"]
    rejected = invalid + failed
    calls = importer.stats.calls
    rejects = importer.rejects
    if importer.unechoed:
        out.problem(f"{importer.unechoed:,} more rejected lines not shown; all {rejected:,} are in {rejects.path}")
    line = (
        f"{'Checked' if dry else 'Imported'} {_count(calls, 'call')}: "
        + (f"{calls - invalid:,} valid" if dry else f"{stats['sent']:,} sent")
        + f", {invalid:,} invalid, {failed:,} failed; "
        f"{_count(stats['batches'], 'batch', 'batches')}, {_count(stats['requests'], 'request')}, "
        f"{_count(stats['retries'], 'retry', 'retries')}; "
        f"{stats['seconds']:.1f}s, {stats['events_per_second']:,.0f} calls/s"
    )
    extra = []
    if stats["blank"]:
        extra.append(f"{stats['blank']:,} blank")
    if stats["skipped"]:
        extra.append(f"{stats['skipped']:,} skipped: settled by an earlier run")
    if extra:
        line += f" ({_count(stats['read'], 'line')} read; " + ", ".join(extra) + ")"
    earlier = rejected - rejects.count  # records an earlier run wrote for lines read again
    if rejects.count:
        line += f". {_count(rejects.count, 'reject')} appended to {rejects.path}"
        if earlier > 0:
            line += f" ({earlier:,} more there already from an earlier run)"
    elif earlier > 0:
        line += f". {earlier:,} of the rejects are in {rejects.path} already, from an earlier run"
    not_settled = stats["unsettled"] if not dry else 0
    if code == ExitCode.INTERRUPTED or (fatal and fatal.exit_code != ExitCode.USAGE):
        resume = (
            f"run the same command again to resume from {importer.options.checkpoint}"
            if importer.options.checkpoint
            else "re-run with --checkpoint FILE next time to resume; re-sending is safe (same messageIds)"
        )
        line += f". Stopped early: {_count(max(not_settled, 0), 'call')} read but not settled; {resume}"
        if importer.abandoned:
            line += f". Did not wait for {_count(importer.abandoned, 'request')} in flight: their calls are left for the next run"
    out.info(line + ".")
    if out.json_mode:
        outcome: dict = {"ok": code == ExitCode.OK}
        if fatal:
            outcome.update(error=fatal.message, hint=fatal.hint)
        elif code == ExitCode.INTERRUPTED:
            outcome.update(error="interrupted", hint=None)
        elif code != ExitCode.OK:
            outcome.update(
                error=f"{rejected:,} of {calls:,} calls not delivered ({invalid:,} invalid, {failed:,} failed)",
                hint=f"see {rejects.path}; fix the records and feed the file back to cdp import",
            )
        out.json({**outcome, **stats, "rejected_file": rejects.path if rejected else None, "exit_code": code})


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"

"""`cdp import`'s summary, rendered from the core's ImportResult: one block on stderr, and one
JSON object on stdout under --json."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from cdpcli.cli.output import OPTION_IDS, Output, error_text, flag_of
from cdpcli.errors import ExitCode

if TYPE_CHECKING:
    from cdpcli.importing import ImportResult


def report(result: ImportResult, out: Output, unechoed: int = 0) -> None:
    """The summary on stderr, and the --json object; `unechoed`: reject lines not shown."""
    fatal = result.error
    message, hint = error_text(fatal) if fatal else ("", None)
    if fatal:
        out.error(message, hint)
    if unechoed:
        out.problem(f"{unechoed:,} more rejected lines not shown; all {result.rejected:,} are in {result.rejects_path}")
    out.info(summary_text(result))
    if result.recent and result.recent_mode == "warn":
        out.warn(
            f"{result.recent:,} of the calls were timestamped within the last 72 hours: they may trigger campaigns"
            " (--recent skip leaves them out)"
        )
    if out.json_mode:
        outcome: dict[str, Any] = {"ok": result.ok}
        if fatal:
            outcome.update(error=message, hint=hint)
        elif result.exit_code == ExitCode.INTERRUPTED:
            outcome.update(error="interrupted", hint=None)
        elif not result.ok:
            outcome.update(
                error=f"{result.rejected:,} of {result.calls:,} calls not delivered ({result.invalid:,} invalid, {result.failed:,} failed)",
                hint=f"see {result.rejects_path}; fix the records and feed the file back to cdp import",
            )
        out.json(
            {
                **outcome,
                **result.counts(),
                "rejected_file": result.rejects_path if result.rejected else None,
                "exit_code": result.exit_code,
            }
        )


def summary_text(result: ImportResult) -> str:
    """A short block of sentences, each line well under 80 columns but for a long file name:
    Read 10 lines: 10 sent, 0 invalid, 0 failed.
    1 batch, 1 request, 0 retries; 0.2 s, 50 calls/s."""
    dry = result.dry_run
    lines = [
        f"{'Checked' if dry else 'Read'} {_count(result.read, 'line')}"
        + (f" ({_count(result.calls, 'call')})" if result.calls != result.read else "")
        + ": "
        + (f"{result.valid:,} valid" if dry else f"{result.sent:,} sent")
        + f", {result.invalid:,} invalid, {result.failed:,} failed.",
        f"{_count(result.batches, 'batch', 'batches')}, {_count(result.requests, 'request')}, "
        f"{_count(result.retries, 'retry', 'retries')}; "
        f"{result.seconds:.1f} s, {result.events_per_second:,.0f} calls/s.",
    ]
    if result.shard:
        lines.insert(0, f"Shard {result.shard}:")
    if result.rate_reached is not None:
        lines.append(
            f"Rate auto: {result.rate_reached:,.1f} requests/s at the end; "
            f"{_count(result.throttled, '429 answer')} slowed it down."
        )
    extra = []
    if result.blank:
        extra.append(f"{_count(result.blank, 'blank line')}")
    if result.skipped:
        reasons = result.skipped_reasons or {"checkpoint": result.skipped}
        shown = ", ".join(
            f"{count:,} {reason_text(reason)}"
            for reason, count in sorted(reasons.items(), key=lambda item: -item[1])[:10]
        )
        extra.append(f"{result.skipped:,} skipped ({shown if len(reasons) > 1 else shown.split(' ', 1)[1]})")
    if extra:
        lines.append(_capital(", ".join(extra)) + ".")
    if result.by_type and (len(result.by_type) > 1 or result.invalid or result.skipped):
        lines += _breakdown("Calls by type", result.by_type)
    lines += _breakdown("Invalid lines by reason", result.invalid_reasons) if result.invalid_reasons else []
    lines += _identities(result.identities)
    written = result.rejects_written
    earlier = result.rejected - written  # records an earlier run wrote for lines read again
    if written:
        line = f"{_count(written, 'reject')} appended to {result.rejects_path}"
        if earlier > 0:
            line += f" ({earlier:,} more there already from an earlier run)"
        lines.append(line + ".")
    elif earlier > 0:
        were = "is" if earlier == 1 else "are"
        lines.append(f"{earlier:,} of the rejects {were} in {result.rejects_path} already, from an earlier run.")
    if result.exit_code == ExitCode.INTERRUPTED or (fatal := result.error) and fatal.exit_code != ExitCode.USAGE:
        resume = (
            f"run the same command again to resume from {result.checkpoint}"
            if result.checkpoint
            else "re-run with --checkpoint FILE next time to resume; re-sending is safe (same messageIds)"
        )
        lines.append(f"Stopped early: {_count(max(result.unsettled, 0), 'call')} read but not settled; {resume}.")
        if result.abandoned:
            lines.append(
                f"Did not wait for {_count(result.abandoned, 'request')} in flight: their calls are left for the next run."
            )
    return "\n".join(lines)


def _identities(found: dict[str, int] | None) -> list[str]:
    """--resolve-identities: what the first pass learned and the second did with it."""
    if found is None:
        return []
    return [
        f"Identities: {_count(found['links'], 'link')} learned; {_count(found['rewritten'], 'anonymous call')} "
        f"given a userId, {found['unresolved']:,} left anonymous."
    ]


TOP_REASONS = 10  # per breakdown in the summary; --json has them all
# skipped_reasons keys that are not option ids (--json shows the ids, the summary these words)
REASON_WORDS = {"checkpoint": "settled by an earlier run"}


def reason_text(reason: str) -> str:
    """A skipped reason as the summary says it: the flag that left the lines out, or words."""
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    return flag_of(reason) if reason in OPTION_IDS else reason


def _breakdown(title: str, counts: dict[str, int]) -> list[str]:
    """`Title: 5 a, 3 b, …` (the TOP_REASONS largest, then how many more), wrapped at 80 columns."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = [f"{count:,} {name}" for name, count in ranked[:TOP_REASONS]]
    if len(ranked) > TOP_REASONS:
        rest = sum(count for _, count in ranked[TOP_REASONS:])
        shown.append(f"{rest:,} more in {len(ranked) - TOP_REASONS:,} other kinds (see --json)")
    return textwrap.wrap(f"{title}: {', '.join(shown)}.", width=80, subsequent_indent="  ", break_on_hyphens=False)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"

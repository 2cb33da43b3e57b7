"""`cdp import --preflight`: the core's report (cdpcli.importing.preflight) as a few lines on
stderr, or one JSON object on stdout under --json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cdpcli.cli.import_summary import reason_text

if TYPE_CHECKING:
    from cdpcli.cli.output import Output

TOP = 10  # events, names and reasons shown by name in the text


def render(report: dict[str, Any], out: Output) -> None:
    if report["error"]:
        out.error(f"stopped reading early: {report['error']}", "the report covers the lines before it")
    if out.json_mode:
        out.json({"preflight": True, **report})
        return
    for line in preflight_text(report):
        out.problem(line)  # the report is what was asked for: shown even with --quiet


def preflight_text(report: dict[str, Any]) -> list[str]:
    lines = [
        f"Preflight (nothing sent): {_n(report['read'], 'line')} read, {_n(report['calls'], 'call')} to send, "
        f"{report['invalid']:,} invalid, {report['skipped']:,} skipped."
    ]
    if report["by_type"]:
        lines.append("Calls by type: " + _listed(report["by_type"]) + ".")
    if report["by_event"]:
        lines.append("Track events: " + _listed(report["by_event"]) + ".")
    users = report["users"]
    about = "about " if users["estimated"] else ""
    lines.append(
        f"Profiles: {about}{_n(users['distinct'], 'distinct userId')} (each may become a billed profile); "
        f"{about}{users['without_email']:,} never get an email trait."
        + (" (Estimated past 1,000,000 userIds.)" if users["estimated"] else "")
    )
    lines += _timestamp_lines(report["timestamps"], resolving="identities" in report)
    lines += _identities(report.get("identities"))
    lines += _findings(report)
    return lines


def _timestamp_lines(stamps: dict[str, Any], resolving: bool = False) -> list[str]:
    """What the calls' timestamps risk: recent, future or missing ones, old anonymous history
    (counted as the input has them: `resolving`, --resolve-identities gives some a userId),
    Unix times in doubtful units."""
    lines = []
    risks = []
    if stamps["recent"]:
        risks.append(f"{_n(stamps['recent'], 'call')} within the last 72 hours (may trigger campaigns; see --recent)")
    if stamps["future"]:
        risks.append(f"{_n(stamps['future'], 'call')} in the future")
    if stamps["missing"]:
        risks.append(f"{_n(stamps['missing'], 'call')} without one (sent with the time of import)")
    lines.append(
        f"Timestamps (now {stamps['now']}): " + ("; ".join(risks) if risks else "none recent or in the future") + "."
    )
    if stamps["anonymous_older_than_30_days"]:
        lines.append(
            f"Anonymous: {_n(stamps['anonymous_older_than_30_days'], 'call')} without a userId older than 30 days "
            + ("in the input " if resolving else "")
            + "(Customer.io merges anonymous history only within 30 days"
            + ("; --resolve-identities gives those it can resolve a userId: see Identities)." if resolving else ").")
        )
    if stamps["epoch"]:
        verdict = ""
        if stamps["epoch_mixed"]:
            verdict = ": mixed magnitudes, check the units"
        elif stamps["epoch_suspect"]:
            verdict = ": not seconds, check the units"
        lines.append("Unix-time timestamps: " + _listed(stamps["epoch"]) + verdict + ".")
    return lines


def _findings(report: dict[str, Any]) -> list[str]:
    """Name drift, people deleted then sent again, invalid and skipped lines."""
    lines: list[str] = []
    for scope, groups in report["name_drift"].items():
        if groups:
            shown = [" / ".join(group) for group in list(groups.values())[:TOP]]
            more = f" (+{len(groups) - TOP:,} more)" if len(groups) > TOP else ""
            lines.append(
                f"Name drift in {scope} (distinct attributes in Customer.io): " + "; ".join(shown) + more + "."
            )
    gone = report["deleted_then_sent"]
    if gone["users"]:
        lines.append(
            f"Deleted or suppressed, then sent again later: {_n(gone['users'], 'userId')} "
            f"(e.g. {', '.join(gone['examples'])}): the later calls re-create them."
        )
    if report["invalid_reasons"]:
        lines.append("Invalid lines: " + _listed(report["invalid_reasons"]) + ".")
        shown = report["invalid_lines"]
        lines += [f"  {line}" for line in shown]
        if report["invalid"] > len(shown):
            lines.append(
                f"  … and {report['invalid'] - len(shown):,} more invalid lines (an import writes each to its rejects file)."
            )
    if report["skipped_reasons"]:
        skipped = {reason_text(reason): count for reason, count in report["skipped_reasons"].items()}
        lines.append("Skipped lines: " + _listed(skipped) + ".")
    return lines


def _listed(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{name} {count:,}" for name, count in ordered[:TOP])
    return text + (f" (+{len(ordered) - TOP:,} more)" if len(ordered) > TOP else "")


def _n(number: int, singular: str) -> str:
    return f"{number:,} {singular if number == 1 else singular + 's'}"


def _identities(found: dict[str, int] | None) -> list[str]:
    """--resolve-identities: what the first pass learned and what the second would rewrite."""
    if found is None:
        return []
    return [
        f"Identities: {_n(found['links'], 'link')} learned; {_n(found['rewritten'], 'anonymous call')} "
        f"would be sent with a userId, {found['unresolved']:,} stay anonymous."
    ]

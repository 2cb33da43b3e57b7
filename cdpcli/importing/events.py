"""What an import tells its front end as it goes (ImportEvents), and what it returns
(ImportResult). The engine never prints: the CLI implements ImportEvents with Rich and stderr;
a program passes its own, or none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdpcli.errors import CdpError, DeliveryError, ExitCode

if TYPE_CHECKING:
    from cdpcli.importing.batches import BatchRequest
    from cdpcli.importing.stats import Stats
    from cdpcli.transport import Exchange


class ImportEvents:
    """Every method may be called from any of the import's threads; each does nothing here."""

    def started(self, stats: Stats, total_bytes: int | None) -> None:
        """The import begins; `stats` fills as it goes (a progress display reads it)."""

    def finished(self) -> None:
        """The import has ended (called before run() returns, also on errors)."""

    def phase(self, index: int, name: str) -> None:
        """order=phased: phase `index` (0-3, named `name`) starts; every call of the one
        before is settled."""

    def note(self, text: str) -> None:
        """Something worth telling the user (a front end prints it on stderr)."""

    def rejected(self, text: str) -> None:
        """A rejects record was written: `source:line: reason`."""

    def retrying(self, text: str) -> None:
        """A request is retried, and why."""

    def exchange(self, exchange: Exchange) -> None:
        """One HTTP attempt, as it went over the wire."""

    def dry_run(self, request: BatchRequest) -> None:
        """A dry run's request, instead of sending it."""


@dataclass
class ImportResult:
    """The counts of one import; `read = sent + invalid + failed + skipped + blank + unsettled`.
    `error` says why it stopped early (its exit code is `exit_code`); invalid and failed
    lines are in the rejects file, with their reasons."""

    read: int
    sent: int
    invalid: int
    failed: int
    skipped: int  # settled by an earlier run (checkpoint)
    blank: int
    unsettled: int  # read but neither delivered nor rejected (stopped early): the next run's
    batches: int
    requests: int
    retries: int
    seconds: float
    events_per_second: float
    by_type: dict[str, int] = field(default_factory=dict)
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    exit_code: int = ExitCode.OK
    error: CdpError | None = None
    interrupted: bool = False
    abandoned: int = 0  # requests in flight not waited for (a second Ctrl-C)
    dry_run: bool = False
    rejects_path: str = ""
    rejects_written: int = 0  # records this run appended (earlier runs' are not repeated)
    checkpoint: str | None = None
    shard: str | None = None  # "K/N" (and its mode) when this import sent one shard's share
    throttled: int = 0  # 429s answered by slowing down (rate=auto)
    rate_reached: float | None = None  # rate=auto: requests per second at the end
    recent: int = 0  # valid calls timestamped in the last 72 hours (skipped or rejected by the recent option)
    recent_mode: str | None = None  # what the recent option did with them: warn, skip or fail
    identities: dict[str, int] | None = None  # resolve_identities: links, rewritten, unresolved

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def calls(self) -> int:
        """Lines that were calls to judge (neither blank nor settled by an earlier run)."""
        return self.read - self.blank - self.skipped

    @property
    def valid(self) -> int:
        return self.calls - self.invalid

    @property
    def rejected(self) -> int:
        return self.invalid + self.failed

    def counts(self) -> dict[str, Any]:
        """The counts as the CLI's --json prints them."""
        names = [
            "read",
            "sent",
            "invalid",
            "failed",
            "skipped",
            "blank",
            "unsettled",
            "batches",
            "requests",
            "retries",
            "seconds",
            "events_per_second",
            "by_type",
            "invalid_reasons",
            "skipped_reasons",
        ]
        counts = {name: getattr(self, name) for name in names}
        if self.dry_run:
            counts["valid"] = self.valid
        if self.shard:
            counts["shard"] = self.shard
        if self.recent:
            counts.update(recent=self.recent, recent_mode=self.recent_mode)
        if self.identities is not None:
            counts["identities"] = self.identities
        if self.rate_reached is not None:
            counts.update(throttled=self.throttled, rate_reached=round(self.rate_reached, 1))
        return counts

    def raise_for_failure(self) -> ImportResult:
        """Raise why the import stopped early, or a DeliveryError when lines were rejected;
        returns self when every line was delivered."""
        if self.error is not None:
            raise self.error
        if not self.ok:
            raise DeliveryError(
                f"{self.rejected:,} of {self.calls:,} calls not delivered ({self.invalid:,} invalid, {self.failed:,} failed)",
                hint=f"see {self.rejects_path}; fix the records and feed the file back to cdp import",
                exit_code=ExitCode(self.exit_code),
            )
        return self

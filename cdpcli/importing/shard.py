"""Sharding (shard=K/N): N processes over the same inputs, with K = 0…N-1, send every call
exactly once between them. What a shard leaves out is skipped (reason "shard") and settled in
its checkpoint, so each shard resumes on its own.

Nothing here touches a messageId: a call's derived id depends on its source, line number and
bytes only, so re-running with another N (or another shard_by) resends the same ids and the
API keeps one of each.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdpcli.errors import UsageError

if TYPE_CHECKING:
    from cdpcli.importing.source import Source

SHARD_BY = ("line", "file", "user")
SHARD_ENV = "CDP_SHARD"
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # K
    count: int  # N
    by: str = "line"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def has_line(self, line_no: int) -> bool:
        """shard_by=line: a source's lines dealt round-robin by number (1-based)."""
        return (line_no - 1) % self.count == self.index

    def mask(self, lines: list[bytes], first_line: int) -> list[bytes]:
        """shard_by=line, a chunk at a time: the other shards' lines blanked in one slice
        assignment, so the packer passes them as it passes blank lines (a per-line test and
        a SkipLine each cost 2.5× the CPU per call of 4 shards over 1; see foreign())."""
        offset = (self.index - (first_line - 1)) % self.count
        masked = [b""] * len(lines)
        masked[offset :: self.count] = lines[offset :: self.count]
        return masked

    def foreign(self, first: int, last: int) -> int:
        """How many of lines first…last (1-based, inclusive) are other shards'."""
        if last < first:
            return 0
        mine = (last - 1 - self.index) // self.count - (first - 2 - self.index) // self.count
        return last - first + 1 - mine

    def has_user(self, call: dict[str, Any]) -> bool:
        """shard_by=user: all of a person's calls on one shard, in their order. The person is
        the userId, else the anonymousId (else an identify's traits.email); CRC-32, unlike
        hash(), is the same in every process."""
        who = call.get("userId")
        if who is None or who == "":  # a userId of 0 is sent as "0": a person
            who = call.get("anonymousId")
        if who is None or who == "":
            traits = call.get("traits")
            who = traits.get("email") if isinstance(traits, dict) else None
        if not isinstance(who, str):
            who = "" if who is None else str(who)
        return zlib.crc32(who.encode("utf-8", "surrogatepass")) % self.count == self.index


def shard_label(shard: Shard | None) -> str | None:
    """How checkpoints, rejects and summaries name a shard: "K/N", and the mode unless by line."""
    if shard is None:
        return None
    return str(shard) if shard.by == "line" else f"{shard} by {shard.by}"


def parse_shard(text: str, by: str, origin: str = "shard=") -> Shard:
    """`K/N` with 0 <= K < N, and the shard_by mode; `origin` names where the text came from
    (the option, or an environment variable)."""
    match = _SHARD.fullmatch(text)
    if not match:
        raise UsageError(
            f"{origin}{text!r}: expected K/N, e.g. 0/4 for the first of four shards",
            hint="K counts from 0: an Indexed Job passes shard=$JOB_COMPLETION_INDEX/N",
            option="shard",
        )
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise UsageError(f"{origin}{text!r}: N, the number of shards, must be at least 1", option="shard")
    if not 0 <= index < count:
        raise UsageError(
            f"{origin}{text!r}: K must be at least 0 and less than N (the shards are 0/{count} to {count - 1}/{count})",
            option="shard",
        )
    if by not in SHARD_BY:
        raise UsageError(f"shard_by={by!r}: expected one of {', '.join(SHARD_BY)}", option="shard_by")
    return Shard(index, count, by)


def shard_sources(sources: list[Source], shard: Shard | None) -> list[Source]:
    """shard_by=file: whole sources dealt round-robin in the order given (a directory's files
    are sorted, so every shard sees the same order). Other modes keep every source."""
    if shard is None or shard.by != "file":
        return sources
    return [source for number, source in enumerate(sources) if number % shard.count == shard.index]

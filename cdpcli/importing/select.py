"""Choosing what to send: an archive's envelope keys dropped (archive=segment|rudderstack), and
lines left out by the user's filters (types, events, exclude_events, since, until,
sample, limit). A left-out line raises SkipLine with the option's name as its reason: it is
counted as skipped, settled in the checkpoint, and never reaches the rejects file.

The Selector wraps Preparer.prepare only when one of these is given: an import without them
runs the fast path untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from pydantic_core import from_json, to_json

from cdpcli import jsontext
from cdpcli.errors import UsageError
from cdpcli.importing.prepare import (
    InvalidLine,
    LimitReached,
    Preparer,
    SkipLine,
    read_refusing_duplicates,
    unwrap_reject_line,
)
from cdpcli.importing.shard import Shard
from cdpcli.jsontext import may_overflow
from cdpcli.wire import dumps, format_timestamp, parse_timestamp

# Keys the archives add around a call that are not part of it (the Segment spec's and the
# Data Pipelines API's call fields are kept, sentAt and originalTimestamp included). writeKey is
# the other system's secret: it is never forwarded. Segment's S3 archive key set is not
# documented; these are the keys seen in its "full call" records and its envelope.
ENVELOPE_KEYS = {
    "segment": ("writeKey", "projectId", "receivedAt", "_metadata", "version"),
    # RudderStack's server adds these to what its SDKs send (rudderId, request_ip; channel is
    # RudderStack's own common field, not a Segment-spec or Customer.io one)
    "rudderstack": ("writeKey", "receivedAt", "rudderId", "request_ip", "channel", "_metadata", "version"),
}
ARCHIVES = tuple(ENVELOPE_KEYS)

# Customer.io: "Backfilled events that occurred in the past 72 hours can trigger campaigns or
# messages" (docs.customer.io/journeys/importing-old-data). The recent option decides what an import does
# with calls timestamped in [now - 72 h, now]; future timestamps are not in it (preflight
# counts them).
RECENT_WINDOW = timedelta(hours=72)
RECENT_MODES = ("warn", "skip", "fail")
# a call's top-level-looking "timestamp" value: a JSON string, or a number
STAMP = re.compile(rb'"timestamp"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*)')


class Choices(Protocol):
    """What an import chooses to send: the fields of options.ImportOptions read here (that
    module builds them, and checks them against this one's tables)."""

    default_type: str | None
    archive: str | None
    types: list[str] | None
    events: list[str] | None
    exclude_events: list[str] | None
    since: datetime | None
    until: datetime | None
    sample: float | None
    limit: int | None
    recent: str | None
    now: datetime | None
    shard: Shard | None


def utc_now() -> datetime:
    """The clock of recent and preflight when ImportOptions.now is not set."""
    return datetime.now(timezone.utc)


def stamp_value(line: bytes) -> Any:
    """A line's top-level timestamp value (str or number), None when it has none; parses the
    line only when "timestamp" appears more than once (a nested key)."""
    found = STAMP.findall(line)
    if not found:
        return None
    if len(found) == 1:
        try:
            return json.loads(found[0])
        except ValueError:
            return None
    call = _object(line)
    return call.get("timestamp") if call is not None else None


def moment_of(value: Any) -> datetime | None:
    """A timestamp value as cdp sends it (ISO-8601, or Unix seconds), as an aware datetime."""
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        text = parse_timestamp(value)
    except ValueError:
        return None
    return call_time(text[:-1] + "+00:00" if text.endswith("Z") else text)


def parse_time(text: str, option: str) -> datetime:
    """An ISO-8601 date or date-time (UTC when it names no zone), for `option` (since, until)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise UsageError(
            f"{option}={text!r}: expected an ISO-8601 date or time",
            hint=f"e.g. {option}=2024-01-31 or {option}=2024-01-31T12:00:00Z",
            option=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def call_time(value: Any) -> datetime | None:
    """A call's timestamp as a datetime (UTC when it names no zone); None if it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not read Z
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def wanted(options: Choices) -> bool:
    """Whether this import chooses anything (else the Selector is not used at all). The recent option
    always is (its default, warn, counts): the preparer checks each timestamp (one comparison),
    and without other filters its fast path is used as it is (Selector.prepare_for)."""
    return bool(
        options.recent
        or options.archive
        or options.types
        or options.events
        or options.exclude_events
        or options.since
        or options.until
        or options.sample is not None
        or options.limit is not None
        or (options.shard is not None and options.shard.by == "user")  # line: engine; file: sources
    )


def selection_of(options: Choices) -> dict[str, Any]:
    """What decides which lines an import leaves out (skipped, and settled in its checkpoint),
    by option id, as JSON values; the options left at their defaults are not named. A
    checkpoint keeps it: a run under another selection would take lines the first one left out
    for settled (checkpoint.bind_selection)."""
    chosen: dict[str, Any] = {
        "types": sorted(options.types) if options.types else None,
        "events": sorted(options.events) if options.events else None,
        "exclude_events": sorted(options.exclude_events) if options.exclude_events else None,
        "since": format_timestamp(options.since) if options.since else None,
        "until": format_timestamp(options.until) if options.until else None,
        "sample": options.sample,
        "archive": options.archive,
        "recent": options.recent if options.recent == "skip" else None,
    }
    return {name: value for name, value in chosen.items() if value is not None}


class Selector:
    """Preparer.prepare with the archive's envelope dropped and the filters applied first."""

    def __init__(self, options: Choices, preparer: Preparer, on_limit: Callable[[], None]) -> None:
        self.inner = preparer.prepare
        self.preparer = preparer
        self.envelope = ENVELOPE_KEYS.get(options.archive or "", ())  # a vendor's calls have none
        self.default_type = options.default_type
        self.types = frozenset(options.types or ())
        self.events = frozenset(options.events or ())
        self.exclude = frozenset(options.exclude_events or ())
        self.since, self.until = options.since, options.until
        self.sample = options.sample
        self.limit = options.limit
        self.on_limit = on_limit
        self.taken = 0  # calls that passed every filter and were valid (for limit)
        self.filtering = bool(self.types or self.events or self.exclude or self.since or self.until)
        self.filtering = self.filtering or self.sample is not None
        self.shard = options.shard if options.shard is not None and options.shard.by == "user" else None
        self.per_line = bool(self.limit is not None or self.envelope or self.filtering or self.shard)
        # resolve_identities: the userId a call is sent with (IdentityMap.user_of) decides its
        # shard, as the person it will be sent as
        self.user_of: Callable[[dict[str, Any]], str | None] | None = None
        # recent: calls timestamped in [now - 72 h, now]; `recent` counts them (every mode)
        self.recent_mode = options.recent
        self.recent = 0
        self.now = options.now or utc_now()
        self.window_start = self.now - RECENT_WINDOW
        if self.recent_mode:
            # the preparer compares each call's canonical timestamp with the window's start
            preparer.recent_from = format_timestamp(self.window_start)
            preparer.on_recent = self._recent
            preparer.recent_when_missing = self.recent_mode in ("skip", "fail")
        self.recent_to = format_timestamp(self.now)

    def prepare_for(self, data: bytes) -> Callable[[int, bytes], bytes]:
        """What prepares the lines of a chunk: the preparer itself (the fast path untouched)
        unless a filter applies to each line."""
        return self.prepare if self.per_line else self.inner

    def _person(self, call: dict[str, Any]) -> dict[str, Any]:
        """The call as the shard sees its person: with the userId it is sent with (resolve_identities
        may give it one, or name its userId's user: IdentityMap.user_of)."""
        if self.user_of is None:
            return call
        # the ids as they are sent: a number is sent as its text (models.lax), and the identity
        # map learned the text
        sent = {**call, **{k: str(call[k]) for k in ("userId", "anonymousId") if _is_integer(call.get(k))}}
        user = self.user_of(sent)
        return call if user is None else {**call, "userId": user}

    def prepare(self, line_no: int, line: bytes) -> bytes:
        if self.limit is not None and self.taken >= self.limit:
            # a call past the limit, in the chunk being packed: it and the lines after it are
            # not read, so that a re-run with the checkpoint starts with it
            raise LimitReached
        shard = self.shard
        distinct = False  # the line was written again from `call`: no key twice in it
        if self.envelope or self.filtering or shard is not None:
            call = _read_once(line)
            once = call is not None  # read refusing a key named twice: none is
            if call is None:
                # None: the preparer rejects the line (a key named twice, too deep, not an object),
                # which no filter may skip first; a shard deals it by line number
                call = _exact_object(line)
            if call is not None and "type" not in call and "input" in call:
                # a rejects record fed back: every choice applies to the call in it, exactly as
                # to the original line (its wrapper has no type, event or timestamp)
                call, line = unwrap_reject_line(call, line)
            if shard is not None:
                # a line that is not a JSON object has no person: dealt by line number, so that
                # exactly one shard rejects it
                mine = shard.has_user(self._person(call)) if call is not None else shard.has_line(line_no)
                if not mine:
                    raise SkipLine("shard")
            if call is not None:
                if self.envelope:  # (a line without one is given back as it is)
                    line, distinct = without_envelope(
                        line, call, self.envelope, careful=self.preparer.careful, once=once
                    )
                if self.filtering:
                    self._filter(line_no, line, call)
        if distinct:
            self.preparer.parsed = call  # the line was written from it: the preparer reads no more
            try:
                ready = self.inner(line_no, line)
            finally:
                self.preparer.parsed = None
        else:
            ready = self.inner(line_no, line)
        if self.limit is not None:
            self.taken += 1
            if self.taken >= self.limit:
                self.on_limit()
        return ready

    def _recent(self, stamp: str) -> None:
        """A valid call timestamped at or after the window's start (canonical, from the
        preparer; "" for one with no timestamp, which goes out stamped now): counted when not
        in the future, then skipped or rejected by mode."""
        if stamp > self.recent_to:
            return
        self.recent += 1
        if self.recent_mode == "skip":
            raise SkipLine("recent")
        if self.recent_mode == "fail":
            when = f"timestamp {stamp} is" if stamp else "no timestamp: it would be sent stamped now,"
            raise InvalidLine(f"{when} within the last 72 hours: it may trigger campaigns (recent mode fail)", "recent")

    def _filter(self, line_no: int, line: bytes, call: dict[str, Any]) -> None:
        kind = call.get("type", self.default_type)
        if self.types and kind not in self.types:
            raise SkipLine("types")
        event = call.get("event") if kind == "track" else None
        if self.events and kind == "track" and event not in self.events:
            raise SkipLine("events")
        if self.exclude and event in self.exclude:
            raise SkipLine("exclude_events")
        if self.since or self.until:
            stamp = call.get("timestamp")
            # the moment it is sent with (Unix seconds too), or the time of import
            moment = moment_of(stamp) if stamp is not None else datetime.now(timezone.utc)
            if moment is None:
                if not isinstance(stamp, str):
                    return  # not a timestamp at all: the preparer rejects the line
                raise InvalidLine(
                    f"timestamp {stamp!r} cannot be compared with the since/until bounds (not ISO-8601)", "timestamp"
                )
            if self.since and moment < self.since:
                raise SkipLine("since")
            if self.until and moment >= self.until:
                raise SkipLine("until")
        if self.sample is not None:
            message_id = call.get("messageId")
            if not isinstance(message_id, str) or not message_id:
                message_id = self.preparer.message_id(line_no, line).decode()
            digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()
            if int.from_bytes(digest[:8], "big") >= self.sample * 2**64:
                raise SkipLine("sample")


def without_envelope(
    line: bytes, call: dict[str, Any], envelope: tuple[str, ...], *, careful: bool, once: bool = False
) -> tuple[bytes, bool]:
    """The line without the archive's envelope keys (removed from `call`, the line as read,
    too), and whether it was written from `call` by pydantic-core (~1 µs for a Segment line;
    Python's json took ~3 µs; no key can be named twice in it), which the fast path then takes
    as any line. `once`: `call` was read by prepare's reader, which refuses a key named twice
    and nesting past jsontext.MAX_DEPTH; else (a line it refused) the exact reader decides. A
    line naming a key twice is given back as it is: the preparer rejects it (duplicate key)
    rather than the last value going out."""
    dropped = {key: call.pop(key) for key in envelope if key in call}
    if not dropped:
        return line, False
    # else the derived messageId: from the bytes as cdp has always written them; 1e400 (read
    # as inf; NaN and Infinity the reader refused): the plain path says which
    if once and call.get("messageId") and not (careful and may_overflow(line)):
        try:
            return to_json(call), True
        except ValueError:  # (a lone surrogate, which the plain path names)
            pass
    try:
        jsontext.loads(line)
    except jsontext.JSONTextError:
        return line, False  # the preparer says why
    return dumps(call).encode("utf-8", "surrogatepass"), True


def _read_once(line: bytes) -> dict[str, Any] | None:
    """The line as a JSON object read refusing a key named twice (the fast path's reader), or
    None (it names one twice, or it is not an object, or the reader refuses it for another reason)."""
    try:
        value = read_refusing_duplicates(line)
    except ValueError:  # jiter's errors and RepeatedKey are ValueErrors
        return None
    return value if isinstance(value, dict) else None


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exact_object(line: bytes) -> dict[str, Any] | None:
    """The line as a JSON object as the plain path reads it, or None when it refuses it."""
    try:
        value = jsontext.loads(line)
    except jsontext.JSONTextError:
        return None
    return value if isinstance(value, dict) else None


def _object(line: bytes) -> dict[str, Any] | None:
    """The line as a JSON object, or None (then the preparer judges it, and rejects it).
    pydantic-core's reader first (a third of the CPU of Python's); Python's for what it refuses
    (lone surrogates, deep nesting), as before."""
    try:
        value = from_json(line, cache_strings="keys")
    except ValueError:
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None

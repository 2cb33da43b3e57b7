"""What every vendor mapping shares: the verdict on one export record (calls, a skip, or an
invalid line), timestamps in the canonical form, and small helpers to fill `context`.

A mapping is a pure function from one parsed export record (a dict) to a `Verdict`; it never
reads files, prints or raises for bad input (an unmappable record is `invalid(...)`).
Reasons are stable ids (snake case), as the summary's `skipped_reasons`/`invalid_reasons`
keys must be.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cdpcli.jsontext import RepeatedKey, duplicate_key_message, each_key_once, first_repeated_key

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# a Unix time under this is seconds, at or over it milliseconds: 1e11 s is the year 5138, and
# 1e11 ms is 1973-03-03 (exports hold no earlier events)
MILLISECONDS_FROM = 100_000_000_000


@dataclass
class Verdict:
    """What one export record becomes: `call` (to send), or `skip` (a reason id: left out by
    default, counted), or `invalid` (a reason id and an error for the rejects file)."""

    call: dict[str, Any] | None = None
    skip: str | None = None
    invalid: str | None = None
    error: str = ""


def send(call: dict[str, Any]) -> Verdict:
    return Verdict(call=call)


def skip(reason: str) -> Verdict:
    return Verdict(skip=reason)


def invalid(reason: str, error: str) -> Verdict:
    return Verdict(invalid=reason, error=error)


def event_time(value: Any, read: Callable[[Any], str], needs: str) -> str | Verdict:
    """An event's time as the canonical timestamp (`read` converts the export's shape), or the
    verdict on its record: `missing_time` (`needs` says which field) when absent or null, since
    sent without one the API would stamp it now, a backfilled event as a new one; `bad_time`
    when `read` cannot read it."""
    if value is None:
        return invalid("missing_time", needs)
    try:
        return read(value)
    except BadValue as exc:
        return invalid("bad_time", str(exc))


Mapping = Callable[[dict[str, Any]], Verdict]


@dataclass(frozen=True)
class RowShape:
    """Where a vendor's flat export row keeps the event's name and the two ids, and which event
    names it leaves out by default (counted under `skip_reason`)."""

    row: str  # in errors: 'an Amplitude row'
    event_key: str
    user_key: str
    anonymous_key: str
    skipped: frozenset[str]
    skip_reason: str


def event_and_ids(record: dict[str, Any], shape: RowShape) -> tuple[str, str | None, str | None] | Verdict:
    """A row's event name and its userId and anonymousId, or the Verdict that ends it there
    (no name, an event left out, no id at all)."""
    name = record.get(shape.event_key)
    if not isinstance(name, str) or not name:
        return invalid("missing_event", f'{shape.row} needs "{shape.event_key}"')
    if name in shape.skipped:
        return skip(shape.skip_reason)
    user_id, anonymous_id = text_id(record.get(shape.user_key)), text_id(record.get(shape.anonymous_key))
    if user_id is None and anonymous_id is None:
        return invalid(
            "missing_id", f"no {shape.user_key} or {shape.anonymous_key}: the call needs a userId or anonymousId"
        )
    return name, user_id, anonymous_id


class BadValue(ValueError):
    """A field a mapping needs has a value it cannot read; str() is the error."""


def shown(value: Any, limit: int = 40) -> str:
    """A value as the export wrote it (JSON: true, not True), cut to `limit` characters (a
    number of 300 digits is not worth reading in full)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def timestamp_from_ms(milliseconds: int) -> str:
    """Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (integer arithmetic: no float
    rounding moves a millisecond)."""
    try:
        moment = EPOCH + timedelta(milliseconds=milliseconds)
    except OverflowError:
        raise BadValue(f"time {shown(milliseconds)} ms is out of range") from None
    return canonical(moment)


def canonical(moment: datetime) -> str:
    """A UTC (or zone-less) datetime in the canonical form, milliseconds truncated. isoformat
    writes it in a tenth of strftime's time (0.4 against 4 µs, a fifth of a mapping's cost);
    it pads years under 1000 to four digits where strftime's %Y does not, so those (which no
    export holds) keep strftime's text."""
    if moment.year < 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def timestamp_from_unix(value: Any) -> str:
    """Unix seconds, or milliseconds when the value says so (see MILLISECONDS_FROM); an
    integer or float, or a string of digits."""
    number = value if type(value) is int else _number(value)
    if abs(number) >= MILLISECONDS_FROM:
        return timestamp_from_ms(int(number))
    return timestamp_from_ms(round(number * 1000))


def timestamp_from_micros(value: Any) -> str:
    """Microseconds since the epoch (an integer, or a string of digits as BigQuery writes
    INT64 in JSON)."""
    number = value if type(value) is int else _number(value)
    if not isinstance(number, int):
        raise BadValue(f"time {shown(value)} is not a whole number of microseconds")
    return timestamp_from_ms(number // 1000)


def timestamp_from_text(value: Any) -> str:
    """An ISO-8601 date-time, `T` or space between date and time; no zone means UTC."""
    return canonical(_moment(value))


def unix_seconds_from_text(value: Any) -> int:
    """A date-time (zone-less is UTC) as whole Unix seconds, as Customer.io reads created_at."""
    moment = _moment(value)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=timezone.utc)
    return int((moment - EPOCH).total_seconds())


def _moment(value: Any) -> datetime:
    """The UTC time an ISO-8601 date-time names: zone-less (taken as UTC) or UTC-aware."""
    if not isinstance(value, str):
        raise BadValue(f"time {shown(value)} is not a date-time string")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None and moment.utcoffset():
            moment = moment.astimezone(timezone.utc)
    except ValueError:
        raise BadValue(f"time {shown(value)} is not an ISO-8601 date-time") from None
    except OverflowError:  # an offset that moves it past year 1 or 9999
        raise BadValue(f"time {shown(value)} is out of range") from None
    return moment


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise BadValue(f"time {shown(value)} is not a number")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadValue(f"time {shown(value)} is not a number")
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise BadValue(f"time {shown(value)} is not a number") from None
            return _number(number)
    raise BadValue(f"time {shown(value)} is not a number")


def text_id(value: Any) -> str | None:
    """An id as the API takes it: a non-empty string (numbers become their text); else None."""
    if type(value) is str:  # the usual case, first
        return value if value.strip() else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def repeated_key(text: bytes) -> str | None:
    """What is wrong when an object of `text` names a key twice (the first such key), else None.
    Python's reader, told to keep each object's pairs: it also reads what jsontext refuses
    for other reasons (NaN, a huge number), which the preparer refuses in the call."""
    key = first_repeated_key(text)
    return None if key is None else duplicate_key_message(key)


def json_object(value: Any, what: str) -> dict[str, Any]:
    """An object, or a string holding one (PostHog's Parquet columns); absent/null is {}."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value, object_pairs_hook=each_key_once) if value.strip() else {}
        except RepeatedKey as exc:
            raise BadValue(f"{what}: {duplicate_key_message(exc.key)}") from None
        except ValueError:
            raise BadValue(f"{what} is a string that is not JSON") from None
    if not isinstance(value, dict):
        raise BadValue(f"{what} is not an object")
    return value


def put(target: dict[str, Any], path: str, value: Any) -> None:
    """Set target[a][b]… for the dotted `path`, creating objects on the way; None is left out."""
    if value is None or value == "":
        return
    parts = _PATHS.get(path)
    if parts is None:
        parts = _PATHS[path] = tuple(path.split("."))
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


_PATHS: dict[str, tuple[str, ...]] = {}  # put's paths, split once (a few dozen distinct ones)


# Segment's common `context.campaign` fields, from the UTM parameters of the same names
# [docs.customer.io/integrations/data-in/source-spec/common-fields]
UTM_FIELDS = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_KEEP = (0, "")  # what a PropertyPlan does with a key: keep it, drop it, or (rank, context path)
_DROP = (-1, "")
_PLANS_KEPT = 50_000  # distinct property names remembered, a few MB; past it the memo restarts


class PropertyPlan:
    """What a vendor's mapping does with each event property: drop it (export plumbing), move
    it into `context` (CONTEXT_FIELDS, then the UTM fields into context.campaign, each group in
    key order), or keep it. Decided once per distinct property name: one dict lookup a key in
    place of a prefix test, a set intersection and a sort per group (a fifth of a mapping's
    time)."""

    def __init__(self, dropped: Callable[[str], bool], context_fields: dict[str, str]) -> None:
        self._dropped = dropped
        self._context_fields = context_fields
        self._plans: dict[str, tuple[int, str]] = {}

    def _plan(self, key: str) -> tuple[int, str]:
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()
        if self._dropped(key):
            plan = _DROP
        elif key in self._context_fields:
            plan = (1, self._context_fields[key])
        elif key in UTM_FIELDS:
            plan = (2, "campaign." + UTM_FIELDS[key])
        else:
            plan = _KEEP
        self._plans[key] = plan
        return plan

    def apply(self, properties: dict[str, Any], context: dict[str, Any]) -> None:
        """Drop `properties`' plumbing and move its context fields into `context`."""
        plans = self._plans
        moves = []
        for key in properties:
            plan = plans.get(key) or self._plan(key)
            if plan is not _KEEP:
                moves.append((plan[0], key, plan[1]))
        if moves:
            moves.sort()  # by rank, then key
            for rank, key, path in moves:
                value = properties.pop(key)
                if rank > 0:
                    put_context(context, path, value)


def with_ids(call: dict[str, Any], user_id: str | None, anonymous_id: str | None) -> dict[str, Any]:
    if user_id is not None:
        call["userId"] = user_id
    if anonymous_id is not None and anonymous_id != user_id:
        call["anonymousId"] = anonymous_id
    return call


# context fields the API types as strings (the Data Pipelines OpenAPI document, models.py):
# a number there becomes its text, anything else is left out
_TEXT_FIELDS = {
    "": ("ip", "locale", "userAgent", "timezone"),
    "page": ("name", "title", "path", "referrer", "search", "url"),
    "app": ("name", "version", "build", "namespace"),
    "device": ("id", "advertisingId", "manufacturer", "model", "name", "version"),
    "network": ("carrier",),
    "os": ("name", "version"),
}
_TEXT_NAMES = {group: frozenset(names) for group, names in _TEXT_FIELDS.items()}
DEVICE_TYPES = ("android", "ios")  # the only context.device.type values the API takes


# how put_context writes a value at a context path (besides leaving out None and "")
_AS_IS, _TEXT, _DEVICE_TYPE, _CAMPAIGN = range(4)
_CONTEXT_PATHS: dict[str, tuple[tuple[str, ...], int]] = {}  # split once (a few dozen paths)


def _context_path(path: str) -> tuple[tuple[str, ...], int]:
    parts = tuple(path.split("."))
    group, name = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    if len(parts) <= 2 and name in _TEXT_NAMES.get(group, ()):
        kind = _TEXT
    elif parts == ("device", "type"):
        kind = _DEVICE_TYPE
    elif group == "campaign":
        kind = _CAMPAIGN
    else:
        kind = _AS_IS
    _CONTEXT_PATHS[path] = parts, kind
    return parts, kind


def put_context(context: dict[str, Any], path: str, value: Any) -> None:
    """`put` into `context`, as the API types it: typed string fields as strings (a number
    becomes its text, anything else is left out), `device.type` only when android or ios
    (lower case), campaign values as strings. Objects on the way are made even when the value
    is left out (their place in the call stays where it was): finish_context removes the
    empty ones."""
    if value is None or value == "":
        return
    parts, kind = _CONTEXT_PATHS.get(path) or _context_path(path)
    target = context
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    if kind == _TEXT:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            return
    elif kind == _DEVICE_TYPE:
        if not (isinstance(value, str) and value.lower() in DEVICE_TYPES):
            return
        value = value.lower()
    elif kind == _CAMPAIGN and not isinstance(value, str):
        value = dumps_text(value)
    target[parts[-1]] = value


def finish_context(context: dict[str, Any]) -> dict[str, Any]:
    """`context` without the objects put_context left empty."""
    for group in [key for key, value in context.items() if not value and isinstance(value, dict)]:
        del context[group]
    return context


def dumps_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

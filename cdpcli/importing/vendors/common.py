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


Mapping = Callable[[dict[str, Any]], Verdict]


class BadValue(ValueError):
    """A field a mapping needs has a value it cannot read; str() is the error."""


def timestamp_from_ms(milliseconds: int) -> str:
    """Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (integer arithmetic: no float
    rounding moves a millisecond)."""
    try:
        moment = EPOCH + timedelta(milliseconds=milliseconds)
    except OverflowError:
        raise BadValue(f"time {milliseconds} ms is out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def timestamp_from_unix(value: Any) -> str:
    """Unix seconds, or milliseconds when the value says so (see MILLISECONDS_FROM); an
    integer or float, or a string of digits."""
    number = _number(value)
    if abs(number) >= MILLISECONDS_FROM:
        return timestamp_from_ms(int(number))
    return timestamp_from_ms(round(number * 1000))


def timestamp_from_micros(value: Any) -> str:
    """Microseconds since the epoch (an integer, or a string of digits as BigQuery writes
    INT64 in JSON)."""
    number = _number(value)
    if not isinstance(number, int):
        raise BadValue(f"time {value!r} is not a whole number of microseconds")
    return timestamp_from_ms(number // 1000)


def timestamp_from_text(value: Any) -> str:
    """An ISO-8601 date-time, `T` or space between date and time; no zone means UTC."""
    if not isinstance(value, str):
        raise BadValue(f"time {value!r} is not a date-time string")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(f"time {value!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def unix_seconds_from_text(value: Any) -> int:
    """A date-time (zone-less is UTC) as whole Unix seconds, as Customer.io reads created_at."""
    stamp = timestamp_from_text(value)
    moment = datetime.fromisoformat(stamp[:-1] + "+00:00")
    return int((moment - EPOCH).total_seconds())


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise BadValue(f"time {value!r} is not a number")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadValue(f"time {value!r} is not a number")
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise BadValue(f"time {value!r} is not a number") from None
            return _number(number)
    raise BadValue(f"time {value!r} is not a number")


def text_id(value: Any) -> str | None:
    """An id as the API takes it: a non-empty string (numbers become their text); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def json_object(value: Any, what: str) -> dict[str, Any]:
    """An object, or a string holding one (PostHog's Parquet columns); absent/null is {}."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
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


def move(source: dict[str, Any], key: str, target: dict[str, Any], path: str) -> None:
    """Take `key` out of `source` (if there) and put it at `path` in `target`."""
    if key in source:
        put(target, path, source.pop(key))


def move_all(source: dict[str, Any], fields: dict[str, str], target: dict[str, Any]) -> None:
    """`move` each of `fields` (key → path) that `source` has; looks only at those it has (a
    set intersection: 14 lookups a record cost a fifth of a mapping's time)."""
    for key in sorted(source.keys() & fields.keys()):  # sorted: set order varies by process
        put(target, fields[key], source.pop(key))


# Segment's common `context.campaign` fields, from the UTM parameters of the same names
# [docs.customer.io/integrations/data-in/source-spec/common-fields]
UTM_FIELDS = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}


def move_campaign(properties: dict[str, Any], context: dict[str, Any]) -> None:
    for key in sorted(properties.keys() & UTM_FIELDS.keys()):
        put(context, "campaign." + UTM_FIELDS[key], properties.pop(key))


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


def clean_context(context: dict[str, Any]) -> dict[str, Any]:
    """`context` as the API types it: typed string fields as strings, `device.type` only when
    android or ios (lower case), campaign values as strings; empty objects left out."""
    for group in ("", *(context.keys() & _TEXT_FIELDS.keys())):
        target = context.get(group) if group else context
        if not isinstance(target, dict):
            continue
        for name in target.keys() & _TEXT_NAMES[group]:
            value = target[name]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                target[name] = str(value)
            elif not isinstance(value, str):
                del target[name]
    device = context.get("device")
    if isinstance(device, dict) and "type" in device:
        kind = device.pop("type")
        if isinstance(kind, str) and kind.lower() in DEVICE_TYPES:
            device["type"] = kind.lower()
    campaign = context.get("campaign")
    if isinstance(campaign, dict):
        for name, value in list(campaign.items()):
            if not isinstance(value, str):
                campaign[name] = dumps_text(value)
    for group in [key for key, value in context.items() if isinstance(value, dict) and not value]:
        del context[group]
    return context


def dumps_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

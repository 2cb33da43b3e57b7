"""Amplitude's Export API rows → Data Pipelines calls.

Sources:
- The Export API returns a zip of gzipped JSON-lines files; the date range is by
  `server_upload_time`; times are UTC [https://amplitude.com/docs/apis/analytics/export].
  Field names (`event_type`, `user_id`, `device_id`, `event_time`, `event_properties`,
  `user_properties`, `groups`, `group_properties`, `$insert_id`, `uuid`, `ip_address`, …) are
  the export schema's [same page; the S3 export:
  https://amplitude.com/docs/data/destinations/amazon-s3]. Exported times read
  `2024-06-01 12:05:12.345000`: a space, microseconds, no zone (UTC).
- Session events: the current SDKs send `[Amplitude] Start Session`/`[Amplitude] End Session`
  (reserved names in Amplitude's Go SDK, `amplitude/analytics-go` event.go), the TypeScript
  SDKs `session_start`/`session_end` (`DEFAULT_SESSION_START_EVENT` in
  `amplitude/Amplitude-TypeScript` constants.ts).
- `$identify` carries user property operations (`$set`, `$setOnce`, …) and `$groupidentify`
  group ones [https://amplitude.com/docs/apis/analytics/identify,
  https://amplitude.com/docs/apis/analytics/group-identify].

Mapping:
- messageId: `$insert_id`, else `insert_id`, else `uuid`, unchanged; timestamp: `event_time`
  (else `client_event_time`).
- `user_id` → userId, `device_id` → anonymousId.
- `$identify` → identify, traits from `$set` and `$setOnce` (`$set` wins), or the row's
  `user_properties` when they are plain values; `$groupidentify` → group (one group type and
  name); session events are skipped (`session_event`), as are the rows of the S3 export's
  merged-IDs files (`merged_ids`: amplitude_id → merged_amplitude_id, numbers no call carries); `[Amplitude] Page Viewed` → page,
  `[Amplitude] Screen Viewed` → screen; every other event → track with `event_properties`.
- One call per row: an event's `groups` go with it as `properties.groups` (group calls come
  from `$groupidentify` rows), its `user_properties` as `context.traits`.
- Device, OS, ip, locale, location and app version go to `context`.
"""

from __future__ import annotations

from typing import Any

from cdpcli.importing.vendors.common import (
    BadValue,
    RowShape,
    Verdict,
    event_and_ids,
    finish_context,
    invalid,
    put,
    put_context,
    send,
    skip,
    text_id,
    timestamp_from_text,
    with_ids,
)

SESSION_EVENTS = frozenset({"session_start", "session_end", "[Amplitude] Start Session", "[Amplitude] End Session"})
PAGE_VIEWED = "[Amplitude] Page Viewed"
SCREEN_VIEWED = "[Amplitude] Screen Viewed"
# the Browser SDK's page view properties → the page call's
PAGE_PROPERTIES = {
    "[Amplitude] Page URL": "url",
    "[Amplitude] Page Path": "path",
    "[Amplitude] Page Title": "title",
    "referrer": "referrer",
}
CONTEXT_FIELDS = {
    "ip_address": "ip",
    "language": "locale",
    "os_name": "os.name",
    "os_version": "os.version",
    "device_model": "device.model",
    "device_manufacturer": "device.manufacturer",
    "device_carrier": "network.carrier",
    "city": "location.city",
    "region": "location.region",
    "country": "location.country",
    "location_lat": "location.latitude",
    "location_lng": "location.longitude",
    "version_name": "app.version",
}


# a row of the S3 export's merged Amplitude IDs files ({scope, merge_time, merge_server_time,
# amplitude_id, merged_amplitude_id} a line [https://amplitude.com/docs/data/destinations/amazon-s3,
# "Merged Amplitude IDs"]): two of Amplitude's internal user numbers, which no call carries
MERGED_ID_KEYS = frozenset({"amplitude_id", "merged_amplitude_id"})
ROW = RowShape("an Amplitude row", "event_type", "user_id", "device_id", frozenset(SESSION_EVENTS), "session_event")


def map_event(record: dict[str, Any]) -> Verdict:
    if "event_type" not in record and record.keys() >= MERGED_ID_KEYS:
        return skip("merged_ids")  # a merged-IDs file's row: Amplitude's own user numbers, no event
    head = event_and_ids(record, ROW)
    if isinstance(head, Verdict):
        return head
    name, user_id, anonymous_id = head
    try:
        stamp = _time(record)
    except BadValue as exc:
        return invalid("bad_time", str(exc))
    try:
        call = _call(name, record)
    except BadValue as exc:
        return invalid("bad_value", str(exc))
    if call is None:
        return invalid("ambiguous_group", "$groupidentify names no single group type and name")
    if stamp is None:  # sent without one, the API would stamp it now: a backfilled event as new
        return invalid("missing_time", f'{ROW.row} needs "event_time" (or "client_event_time")')
    with_ids(call, user_id, anonymous_id)
    message_id = text_id(record.get("$insert_id")) or text_id(record.get("insert_id")) or text_id(record.get("uuid"))
    if message_id is not None:
        call["messageId"] = message_id
    call["timestamp"] = stamp
    context: dict[str, Any] = {}
    for key, path in CONTEXT_FIELDS.items():
        value = record.get(key)
        if value is not None:  # exports write most of these as null
            put_context(context, path, value)
    if call["type"] not in ("identify", "group"):
        traits = _object(record.get("user_properties"), "user_properties")
        if traits:
            context["traits"] = traits
    if finish_context(context):
        call["context"] = context
    return send(call)


def _time(record: dict[str, Any]) -> str | None:
    for key in ("event_time", "client_event_time"):
        if record.get(key) is not None:
            return timestamp_from_text(record[key])
    return None


def _call(name: str, record: dict[str, Any]) -> dict[str, Any] | None:
    properties = _object(record.get("event_properties"), "event_properties")
    if name == "$identify":
        traits = _traits(_object(record.get("user_properties"), "user_properties"))
        return {"type": "identify", "traits": traits} if traits else {"type": "identify"}
    if name == "$groupidentify":
        return _group(record)
    call: dict[str, Any]
    if name == PAGE_VIEWED:
        call = {"type": "page"}
        for key, field in PAGE_PROPERTIES.items():
            if key in properties:
                properties[field] = properties.pop(key)
    elif name == SCREEN_VIEWED:
        call = {"type": "screen"}
        put(call, "name", properties.pop("[Amplitude] Screen Name", None))
    else:
        call = {"type": "track", "event": name}
    groups = _object(record.get("groups"), "groups")
    if groups:
        properties["groups"] = groups
    call["properties"] = properties
    return call


def _traits(user_properties: dict[str, Any]) -> dict[str, Any]:
    """Traits of an identify: `$setOnce` then `$set` (later wins) when the row holds the
    operations; else its plain values (operations with no Segment equivalent left out)."""
    if any(key.startswith("$") for key in user_properties):
        traits: dict[str, Any] = {}
        for operation in ("$setOnce", "$set"):
            values = user_properties.get(operation)
            if isinstance(values, dict):
                traits.update(values)
        return traits
    return dict(user_properties)


def _group(record: dict[str, Any]) -> dict[str, Any] | None:
    groups = _object(record.get("groups"), "groups")
    pairs = []
    for kind, names in groups.items():
        for value in names if isinstance(names, list) else [names]:
            if text_id(value) is not None:
                pairs.append((kind, text_id(value)))
    if len(pairs) != 1:
        return None
    kind, group_id = pairs[0]
    traits = _traits(_object(record.get("group_properties"), "group_properties"))
    traits["group_type"] = kind
    return {"type": "group", "groupId": group_id, "traits": traits}


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadValue(f"{what} is not an object")
    return dict(value)

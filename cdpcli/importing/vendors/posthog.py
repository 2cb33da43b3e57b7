"""PostHog's batch/file export (events model) rows → Data Pipelines calls.

Sources:
- Events model: `uuid` (the event's unique id), `event`, `distinct_id`, `person_id`,
  `properties` (a JSON-encoded string in Parquet, an object in JSON lines),
  `person_properties`, `elements_chain`, `timestamp` (when the event occurred), `created_at`,
  `_inserted_at` [https://posthog.com/docs/data-pipelines/batch-exports/s3]; file download
  exports write the same files [https://posthog.com/docs/data-pipelines/file-download-exports].
- `$identify` links the anonymous id (`properties.$anon_distinct_id`) to the identified
  `distinct_id` (posthog-js and posthog-android send it so), `$create_alias` connects two ids,
  `$groupidentify` sets group properties (`$group_type`, `$group_key`, `$group_set`), `$set`
  and `$set_once` update person properties [https://posthog.com/docs/data/events.md,
  https://posthog.com/docs/product-analytics/identify.md].
- Automatic events: autocapture (`$autocapture`), page leaves, rage and dead clicks, web
  vitals, exceptions [https://posthog.com/docs/product-analytics/autocapture.md]; feature
  flag, survey-less plumbing events named below.

Mapping:
- `uuid` → messageId, unchanged; `timestamp` → timestamp.
- ids: `$identify`: userId `distinct_id`, anonymousId `$anon_distinct_id`. Other events: a
  `distinct_id` equal to `properties.$device_id` (posthog-js before identify) or to
  `properties.$anon_distinct_id` is anonymous, as is one on an event with
  `$is_identified: false`; else it is the userId, and `$device_id` its anonymousId. An event
  that says none of this (a server-side SDK's: posthog-python sets no `$device_id`) goes out
  with its `distinct_id` as userId; under resolve_identities, one that an `$identify` names
  as its `$anon_distinct_id` goes out as that anonymousId with the user's id
  (identities.py): "all past and future events made with that anonymous ID are now
  associated with the distinct ID" [https://posthog.com/docs/product-analytics/identify.md].
- `$pageview` → page (url, path, referrer, title), `$screen` → screen (`$screen_name`),
  `$identify` and `$set` → identify (traits `$set_once` then `$set`), `$groupidentify` → group,
  `$create_alias` → alias; the automatic events below are skipped (`automatic_event`); others
  → track.
- Context: ip, page, OS, device type, geo, timezone, UTM campaign; `$set`/`$set_once` on an
  event that is not an identify → `context.traits` (one call per record).
"""

from __future__ import annotations

from typing import Any

from cdpcli.importing.vendors.common import (
    BadValue,
    PropertyPlan,
    Verdict,
    event_time,
    finish_context,
    invalid,
    json_object,
    put,
    send,
    skip,
    text_id,
    timestamp_from_text,
    with_ids,
)

AUTOMATIC_EVENTS = frozenset(
    {
        "$autocapture",
        "$pageleave",
        "$rageclick",
        "$dead_click",
        "$web_vitals",
        "$exception",
        "$feature_flag_called",
        "$feature_view",
        "$feature_interaction",
        "$opt_in",
        "$snapshot",
        "$merge_dangerously",
    }
)
# person/identity plumbing that becomes traits or ids, never a property
IDENTITY_KEYS = ("$set", "$set_once", "$anon_distinct_id", "$device_id", "$is_identified", "$user_id", "token")
CONTEXT_FIELDS = {
    "$ip": "ip",
    "$current_url": "page.url",
    "$pathname": "page.path",
    "$referrer": "page.referrer",
    "$title": "page.title",
    "$os": "os.name",
    "$os_version": "os.version",
    "$geoip_city_name": "location.city",
    "$geoip_subdivision_1_name": "location.region",
    "$geoip_country_name": "location.country",
    "$geoip_latitude": "location.latitude",
    "$geoip_longitude": "location.longitude",
    "$timezone": "timezone",
    "$browser_language": "locale",
    "$raw_user_agent": "userAgent",
}
PROPERTY_PLAN = PropertyPlan(frozenset(IDENTITY_KEYS).__contains__, CONTEXT_FIELDS)
PAGE_FIELDS = {"$current_url": "url", "$pathname": "path", "$referrer": "referrer", "$title": "title"}


def map_event(record: dict[str, Any]) -> Verdict:
    name = record.get("event")
    if not isinstance(name, str) or not name:
        return invalid("missing_event", 'a PostHog event needs "event"')
    if name in AUTOMATIC_EVENTS:
        return skip("automatic_event")
    stamp = event_time(
        record.get("timestamp"), timestamp_from_text, 'a PostHog event needs "timestamp" (when it happened)'
    )
    if isinstance(stamp, Verdict):
        return stamp
    try:
        properties = dict(json_object(record.get("properties"), "properties"))
        traits = {**_object(properties.get("$set_once")), **_object(properties.get("$set"))}
    except BadValue as exc:
        return invalid("bad_value", str(exc))
    distinct = text_id(record.get("distinct_id"))
    if distinct is None:
        return invalid("missing_id", 'a PostHog event needs "distinct_id"')
    call = _call(name, distinct, properties, traits)
    if call is None:
        return invalid("missing_id", f"{name} lacks the id it links ($anon_distinct_id, alias or $group_key)")
    message_id = text_id(record.get("uuid"))
    if message_id is not None:
        call["messageId"] = message_id
    call["timestamp"] = stamp
    if call["type"] == "page":
        for key, field in PAGE_FIELDS.items():
            put(properties, field, properties.get(key))
    context: dict[str, Any] = {}
    PROPERTY_PLAN.apply(properties, context)
    if call["type"] in ("track", "page", "screen"):
        call["properties"] = properties
        if traits:  # $set/$set_once ride on any event: the person's traits, kept with the call
            context["traits"] = traits
    if finish_context(context):
        call["context"] = context
    return send(call)


def _call(name: str, distinct: str, properties: dict[str, Any], traits: dict[str, Any]) -> dict[str, Any] | None:
    if name == "$identify":
        anonymous = text_id(properties.get("$anon_distinct_id"))
        call: dict[str, Any] = with_ids({"type": "identify"}, distinct, anonymous)
        if traits:
            call["traits"] = traits
        return call
    if name == "$create_alias":
        alias = text_id(properties.pop("alias", None))
        return {"type": "alias", "userId": alias, "previousId": distinct} if alias else None
    if name == "$groupidentify":
        key = text_id(properties.get("$group_key"))
        if key is None:
            return None
        group_traits = dict(_object(properties.get("$group_set")))
        put(group_traits, "group_type", properties.get("$group_type"))
        return {"type": "group", **_ids(distinct, properties), "groupId": key, "traits": group_traits}
    if name == "$set":
        return {"type": "identify", **_ids(distinct, properties), "traits": traits}
    if name == "$pageview":
        return {"type": "page", **_ids(distinct, properties)}
    if name == "$screen":
        call = {"type": "screen", **_ids(distinct, properties)}
        put(call, "name", properties.pop("$screen_name", None))
        return call
    return {"type": "track", **_ids(distinct, properties), "event": name}


def _ids(distinct: str, properties: dict[str, Any]) -> dict[str, Any]:
    device = text_id(properties.get("$device_id"))
    if distinct in (device, properties.get("$anon_distinct_id")) or properties.get("$is_identified") is False:
        return {"anonymousId": distinct}
    return with_ids({}, distinct, device)


def _object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadValue("$set/$set_once/$group_set is not an object")
    return value

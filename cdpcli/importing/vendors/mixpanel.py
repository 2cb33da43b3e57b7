"""Mixpanel's Raw Event Export (JSONL) and Engage profile records → Data Pipelines calls.

Sources (each fact below is from these pages):
- Raw export: one JSON object a line, `{"event": NAME, "properties": {"time", "distinct_id",
  "$insert_id", …}}`, `time` in Unix seconds
  [https://docs.mixpanel.com/reference/raw-event-export.md,
  https://developer.mixpanel.com/reference-link/export]. The Import API takes milliseconds in
  `time` [https://docs.mixpanel.com/reference/import-events.md]: a value ≥ 1e11 is read as
  milliseconds.
- Identity (Simplified ID Merge): `$user_id` is the identified id, `$device_id` the SDK's
  anonymous id, and an anonymous user's `distinct_id` is `$device:<device id>`
  [https://docs.mixpanel.com/docs/tracking-methods/id-management/identifying-users-simplified.md;
  the prefix: https://github.com/mixpanel/mixpanel-iphone/releases/tag/v5.0.2]. Original ID
  Merge's `$identify` carries `$identified_id` and `$anon_id`, `$create_alias` an `alias`
  [https://docs.mixpanel.com/docs/tracking-methods/id-management/identifying-users-original.md,
  https://docs.mixpanel.com/reference/create-identity].
- `$mp_web_page_view` is the JS SDK's `track_pageview` event (mixpanel-js's typings:
  "default: '$mp_web_page_view'").
- Engage profiles: `{"$distinct_id", "$properties": {"$email", "$created", …}}`, dates such
  as `$created` without a zone [https://docs.mixpanel.com/docs/export-methods].

Mapping:
- event → track (`$mp_web_page_view` → page; `$identify` → identify; `$create_alias` →
  alias); `$merge` (API-only, no direction) is skipped as `merge_event`.
- `$insert_id` → messageId, unchanged; `time` → timestamp.
- `$user_id`, else a `distinct_id` that is not a device id → userId; `$device_id`, else a
  `$device:` distinct id without its prefix → anonymousId.
- Export plumbing leaves properties (`time`, `distinct_id`, `$insert_id`, `$user_id`,
  `$device_id`, `token`, `mp_*`, `$mp_*`, `$lib_version`, `$import`); what Customer.io reads
  from `context` goes there (URL, referrer, OS, screen, city/region/country, UTM campaign, ip);
  every other property stays a property.
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
    put,
    send,
    skip,
    text_id,
    timestamp_from_unix,
    unix_seconds_from_text,
    with_ids,
)

DEVICE_PREFIX = "$device:"
PLUMBING = ("time", "distinct_id", "$insert_id", "$user_id", "$device_id", "token", "$lib_version", "$import")
# Mixpanel default properties → where the Segment spec's context keeps them
CONTEXT_FIELDS = {
    "$current_url": "page.url",
    "$referrer": "page.referrer",
    "$os": "os.name",
    "$os_version": "os.version",
    "$model": "device.model",
    "$manufacturer": "device.manufacturer",
    "$carrier": "network.carrier",
    "$app_version_string": "app.version",
    "$screen_height": "screen.height",
    "$screen_width": "screen.width",
    "$city": "location.city",
    "$region": "location.region",
    "mp_country_code": "location.country",
    "ip": "ip",
}


def _plumbing(key: str) -> bool:
    return key in PLUMBING or (key.startswith(("mp_", "$mp_")) and key != "mp_country_code")


PROPERTY_PLAN = PropertyPlan(_plumbing, CONTEXT_FIELDS)
# Engage's reserved profile properties → Customer.io's attribute names
PROFILE_TRAITS = {
    "$email": "email",
    "$name": "name",
    "$first_name": "first_name",
    "$last_name": "last_name",
    "$phone": "phone",
}


def map_event(record: dict[str, Any]) -> Verdict:
    name = record.get("event")
    props = record.get("properties")
    if not isinstance(name, str) or not name:
        return invalid("missing_event", 'a Mixpanel event needs "event" (its name)')
    if not isinstance(props, dict):
        return invalid("missing_properties", 'a Mixpanel event needs "properties" (an object)')
    if name == "$merge":
        return skip("merge_event")
    properties = dict(props)
    stamp = event_time(
        properties.get("time"), timestamp_from_unix, 'a Mixpanel event needs "properties.time" (when it happened)'
    )
    if isinstance(stamp, Verdict):
        return stamp
    message_id = text_id(properties.get("$insert_id"))
    shaped = _shape(name, properties)
    if shaped is None:
        return invalid("missing_id", '$create_alias needs "alias" and "distinct_id"')
    call, user_id, anonymous_id = shaped
    if user_id is None and anonymous_id is None and call["type"] != "alias":
        return invalid("missing_id", "no $user_id, $device_id or distinct_id: the call needs a userId or anonymousId")
    with_ids(call, user_id, anonymous_id)
    if message_id is not None:
        call["messageId"] = message_id
    call["timestamp"] = stamp
    context: dict[str, Any] = {}
    if call["type"] == "page":
        put(properties, "url", properties.get("$current_url"))
        put(properties, "title", properties.pop("current_page_title", None))
    PROPERTY_PLAN.apply(properties, context)
    if call["type"] == "identify":
        if properties:
            call["traits"] = properties
    elif call["type"] != "alias":
        call["properties"] = properties
    if finish_context(context):
        call["context"] = context
    return send(call)


def _shape(name: str, properties: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None] | None:
    """The call an event name makes, and its user and anonymous ids (None: an alias without
    its ids)."""
    user_id, anonymous_id = _ids(properties)
    if name == "$identify":
        user_id = text_id(properties.pop("$identified_id", None)) or user_id
        anonymous_id = _device(text_id(properties.pop("$anon_id", None))) or anonymous_id
        return {"type": "identify"}, user_id, anonymous_id
    if name == "$create_alias":
        alias = text_id(properties.pop("alias", None))
        previous = text_id(properties.get("distinct_id"))
        if alias is None or previous is None:
            return None
        return {"type": "alias", "userId": alias, "previousId": previous}, None, None
    if name == "$mp_web_page_view":
        return {"type": "page"}, user_id, anonymous_id
    return {"type": "track", "event": name}, user_id, anonymous_id


def _ids(properties: dict[str, Any]) -> tuple[str | None, str | None]:
    distinct = text_id(properties.get("distinct_id"))
    device = text_id(properties.get("$device_id"))
    user = text_id(properties.get("$user_id"))
    if user is None and distinct is not None and not distinct.startswith(DEVICE_PREFIX) and distinct != device:
        user = distinct
    if device is None and distinct is not None and distinct.startswith(DEVICE_PREFIX):
        device = _device(distinct)
    return user, device


def _device(value: str | None) -> str | None:
    if value is not None and value.startswith(DEVICE_PREFIX):
        return value[len(DEVICE_PREFIX) :] or None
    return value


def _unix_seconds(value: Any) -> int:
    """A number of Unix seconds (or milliseconds, as timestamp_from_unix reads them)."""
    stamp = timestamp_from_unix(value)
    return unix_seconds_from_text(stamp)


def map_profile(record: dict[str, Any]) -> Verdict:
    """An Engage profile (`$distinct_id`, `$properties`) → identify with its traits."""
    if "results" in record and "$distinct_id" not in record:
        return invalid(
            "engage_page",
            "a whole Engage API response: one profile a line is needed (jq -c '.results[]' FILE)",
        )
    distinct = text_id(record.get("$distinct_id"))
    props = record.get("$properties", {})
    if distinct is None:
        return invalid("missing_id", 'a Mixpanel profile needs "$distinct_id"')
    if not isinstance(props, dict):
        return invalid("missing_properties", '"$properties" is not an object')
    traits = dict(props)
    for key, name in PROFILE_TRAITS.items():
        if key in traits:
            traits[name] = traits.pop(key)
    created = traits.pop("$created", None)
    if created is not None:
        try:
            traits["created_at"] = (
                unix_seconds_from_text(created) if isinstance(created, str) else _unix_seconds(created)
            )
        except BadValue as exc:
            return invalid("bad_time", f"$created: {exc}")
    call: dict[str, Any] = {"type": "identify"}
    if distinct.startswith(DEVICE_PREFIX):
        with_ids(call, None, _device(distinct))
    else:
        with_ids(call, distinct, None)
    if traits:
        call["traits"] = traits
    return send(call)

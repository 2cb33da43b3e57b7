"""Google Analytics 4's BigQuery export rows (NDJSON or Parquet extracts) → Data Pipelines calls.

Sources:
- Event schema: `event_name`, `event_timestamp` (microseconds, UTC), `event_params`
  (`{key, value: {string_value | int_value | float_value | double_value}}`), `user_id`,
  `user_pseudo_id`, `user_properties`, `device.*`, `geo.*`, `app_info.*`
  [https://developers.google.com/analytics/bigquery/event-schema,
  https://support.google.com/analytics/answer/7029846].
- JSON extracts write INT64 values as JSON strings
  [https://cloud.google.com/bigquery/docs/exporting-data].
- Automatically collected events (`first_visit`, `first_open`, `session_start`,
  `user_engagement`) [https://support.google.com/analytics/answer/9234069].

Mapping:
- `page_view` → page (`page_location` → url, `page_title` → title, `page_referrer` →
  referrer), `screen_view` → screen (`firebase_screen` → name), the automatic events above are
  skipped (`automatic_event`), every other event → track.
- `event_params` flattened into properties (the first non-null of string/int/float/double;
  INT64 strings become integers); `user_properties` likewise into `context.traits`.
- `items` (a repeated record beside event_params) → `properties.products`, each with the
  Segment ecommerce spec's names (item_id → product_id, item_name → name, item_brand →
  brand, item_variant → variant, item_category → category; price, quantity, coupon as they
  are), its other fields under their GA4 names and its `item_params` flattened into it;
  `ecommerce` → `order_id` (transaction_id), `revenue` (purchase_revenue), `shipping`
  (shipping_value), `tax` (tax_value) and its other fields under their names (a name an
  event parameter holds: `ecommerce.NAME`) [segment.com/docs/connections/spec/ecommerce/v2;
  the export schema above].
- `user_id` → userId, `user_pseudo_id` → anonymousId; timestamp from `event_timestamp`.
- GA4 has no event id: messageId is `ga4-` and a hash of the event's key fields and parameters
  (EVENT_KEY_FIELDS), so re-extracting the same table (other file splits, other line numbers,
  NDJSON or Parquet) sends the same ids.
- device → context.device/os/locale (`platform` IOS/ANDROID → device.type; the API takes
  no other device type), geo → context.location, app_info → context.app.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cdpcli.importing.vendors.common import (
    BadValue,
    RowShape,
    Verdict,
    event_and_ids,
    event_time,
    finish_context,
    invalid,
    put,
    put_context,
    send,
    timestamp_from_micros,
    with_ids,
)

AUTOMATIC_EVENTS = frozenset({"first_visit", "first_open", "session_start", "user_engagement"})
VALUE_FIELDS = ("string_value", "int_value", "float_value", "double_value")
CONTEXT_FIELDS = {
    "device.mobile_brand_name": "device.manufacturer",
    "device.mobile_model_name": "device.model",
    "device.operating_system": "os.name",
    "device.operating_system_version": "os.version",
    "device.language": "locale",
    "geo.city": "location.city",
    "geo.region": "location.region",
    "geo.country": "location.country",
    "app_info.id": "app.namespace",
    "app_info.version": "app.version",
}


# CONTEXT_FIELDS by the record's object they are in: {"device": {"category": …}, …}
_CONTEXT_GROUPS: dict[str, dict[str, str]] = {}
for _source, _path in CONTEXT_FIELDS.items():
    _outer, _inner = _source.split(".")
    _CONTEXT_GROUPS.setdefault(_outer, {})[_inner] = _path


ROW = RowShape("a GA4 row", "event_name", "user_id", "user_pseudo_id", frozenset(AUTOMATIC_EVENTS), "automatic_event")


def map_event(record: dict[str, Any]) -> Verdict:
    head = event_and_ids(record, ROW)
    if isinstance(head, Verdict):
        return head
    name, user_id, anonymous_id = head
    stamp = event_time(
        record.get("event_timestamp"), timestamp_from_micros, f'{ROW.row} needs "event_timestamp" (when it happened)'
    )
    if isinstance(stamp, Verdict):
        return stamp
    try:
        properties = flatten(record.get("event_params"), "event_params")
        ecommerce = ecommerce_fields(record)
        traits = flatten(record.get("user_properties"), "user_properties")
    except BadValue as exc:
        return invalid("bad_value", str(exc))
    call: dict[str, Any]
    if name == "page_view":
        call = {"type": "page"}
        for key, field in (("page_location", "url"), ("page_title", "title"), ("page_referrer", "referrer")):
            if key in properties:
                properties[field] = properties.pop(key)
    elif name == "screen_view":
        call = {"type": "screen"}
        put(call, "name", properties.pop("firebase_screen", None))
    else:
        call = {"type": "track", "event": name}
    with_ids(call, user_id, anonymous_id)
    call["messageId"] = "ga4-" + event_hash(record, properties)  # of event_params only, as before items were read
    merge(properties, ecommerce, "ecommerce")
    call["timestamp"] = stamp
    call["properties"] = properties
    context: dict[str, Any] = {}
    if call["type"] == "page":
        put_context(context, "page.url", properties.get("url"))
        put_context(context, "page.title", properties.get("title"))
        put_context(context, "page.referrer", properties.get("referrer"))
    for outer, fields in _CONTEXT_GROUPS.items():
        group = record.get(outer)
        if isinstance(group, dict):
            for inner, path in fields.items():  # CONTEXT_FIELDS' order, the same in every process
                value = group.get(inner)
                if value is not None:  # the export writes most of these as null
                    put_context(context, path, value)
    put_context(context, "device.type", record.get("platform"))  # IOS / ANDROID (WEB is left out)
    if traits:
        context["traits"] = traits
    if finish_context(context):
        call["context"] = context
    return send(call)


# the Segment ecommerce spec's names for GA4's [segment.com/docs/connections/spec/ecommerce/v2:
# "Order Completed" (order_id, revenue, shipping, tax, products) and its product fields
# (product_id, name, brand, variant, category, price, quantity, coupon)]; every other field
# of `ecommerce` and of an item keeps its GA4 name
ORDER_FIELDS = {
    "transaction_id": "order_id",
    "purchase_revenue": "revenue",
    "shipping_value": "shipping",
    "tax_value": "tax",
}
PRODUCT_FIELDS = {
    "item_id": "product_id",
    "item_name": "name",
    "item_brand": "brand",
    "item_variant": "variant",
    "item_category": "category",
}
# INTEGER columns of `items` and `ecommerce` (JSON extracts write INT64 as strings)
INTEGER_FIELDS = frozenset({"quantity", "total_item_quantity", "unique_items"})


def ecommerce_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The row's `items` as `products` and its `ecommerce` record's fields (both in the export
    schema beside event_params), null fields left out; `merge` puts them into properties (one
    whose name an event parameter holds with another value as `ecommerce.NAME`), so that
    nothing is dropped."""
    fields: dict[str, Any] = {}
    items = record.get("items")
    if items:  # the export writes [] on events without items
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise BadValue("items is not a list of objects")
        fields["products"] = [_product(item) for item in items]
    ecommerce = record.get("ecommerce")
    if ecommerce is not None:
        if not isinstance(ecommerce, dict):
            raise BadValue("ecommerce is not an object")
        merge(fields, _renamed(ecommerce, ORDER_FIELDS), "ecommerce")
    return fields


def _product(item: dict[str, Any]) -> dict[str, Any]:
    product = _renamed({key: value for key, value in item.items() if key != "item_params"}, PRODUCT_FIELDS)
    params = flatten(item.get("item_params"), "items.item_params")
    merge(product, {key: value for key, value in params.items() if value is not None}, "item_params")
    return product


def _renamed(fields: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    renamed = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key in INTEGER_FIELDS and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise BadValue(f"{key} {value!r} is not an integer") from None
        renamed[names.get(key, key)] = value
    return renamed


def merge(target: dict[str, Any], values: dict[str, Any], overflow: str) -> None:
    """`values` into `target`; one whose name `target` holds with another value goes in as
    `OVERFLOW.NAME` instead (GA4's names are letters, digits and underscores
    [support.google.com/analytics/answer/13316687], so no parameter holds a dotted one; the
    loop makes a longer name until a free one, for any input)."""
    for key, value in values.items():
        while True:
            held = target.setdefault(key, value)
            if held is value or held == value:
                break
            key = f"{overflow}.{key}"


def flatten(params: Any, what: str) -> dict[str, Any]:
    """GA4's repeated `{key, value: {…_value}}` as a flat object; null or absent is {}."""
    if params is None:
        return {}
    if not isinstance(params, list):
        raise BadValue(f"{what} is not a list")
    flat: dict[str, Any] = {}
    for param in params:
        key = param.get("key") if isinstance(param, dict) else None
        if not isinstance(key, str):
            raise BadValue(f"{what} holds an entry without a key")
        value = param.get("value")
        if isinstance(value, dict):
            found = value.get("string_value")  # the first of VALUE_FIELDS, the usual one
            flat[key] = found if found is not None else _value(value)
        else:
            flat[key] = None
    return flat


def _value(value: dict[str, Any]) -> Any:
    for field in VALUE_FIELDS:
        found = value.get(field)
        if found is None:
            continue
        if field == "int_value" and isinstance(found, str):
            try:
                return int(found)
            except ValueError:
                raise BadValue(f"int_value {found!r} is not an integer") from None
        return found
    return None


# what tells two GA4 events apart, besides their parameters [the event schema; the bundle and
# batch counters order events within one upload]
EVENT_KEY_FIELDS = (
    "stream_id",
    "user_pseudo_id",
    "user_id",
    "event_timestamp",
    "event_name",
    "event_bundle_sequence_id",
    "batch_event_index",
    "batch_page_id",
    "batch_ordering_id",
)


def event_hash(record: dict[str, Any], params: dict[str, Any]) -> str:
    """A stable id for a GA4 event: its key fields and parameters, the same whether the row was
    extracted as NDJSON (INT64 as strings) or Parquet (integers)."""
    key = list(map(str, map(record.get, EVENT_KEY_FIELDS)))
    key += [f"{name}={params[name]!r}" for name in sorted(params)]
    return hashlib.sha1("\0".join(key).encode("utf-8", "surrogatepass")).hexdigest()[:32]

"""GA4's `items` and `ecommerce` records reach the call (they were dropped): items as
`properties.products` with the Segment ecommerce spec's names, the ecommerce record's order
fields as order_id/revenue/shipping/tax, every other field under its GA4 name; the same call
from an NDJSON extract (INT64 as strings) and from Parquet; nothing non-null is dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdpcli.importing.vendors import map_record, vendor_lines

# A purchase row of the BigQuery export [developers.google.com/analytics/bigquery/event-schema,
# support.google.com/analytics/answer/7029846]: `items` a repeated RECORD (item_id, item_name,
# item_brand, item_variant, item_category…, price, quantity INTEGER, coupon, item_params…),
# `ecommerce` a RECORD (transaction_id, purchase_revenue, shipping_value, tax_value,
# total_item_quantity and unique_items INTEGER…); a JSON extract writes INT64 as strings
# [cloud.google.com/bigquery/docs/exporting-data]
ITEM = {
    "item_id": "SKU-1",
    "item_name": "Widget",
    "item_brand": "Acme",
    "item_variant": "blue",
    "item_category": "Tools",
    "item_category2": "Hand tools",
    "price_in_usd": 21.5,
    "price": 19.99,
    "quantity": "2",
    "item_revenue": 39.98,
    "coupon": "SUMMER",
    "affiliation": None,
    "item_list_index": "1",
    "item_params": [{"key": "size", "value": {"string_value": "L", "int_value": None}}],
}
ECOMMERCE = {
    "total_item_quantity": "2",
    "purchase_revenue_in_usd": 45.1,
    "purchase_revenue": 41.97,
    "refund_value": None,
    "shipping_value": 1.99,
    "tax_value": 0.0,
    "unique_items": "1",
    "transaction_id": "T-1001",
}
ROW = {
    "event_date": "20240601",
    "event_timestamp": "1717243513000000",
    "event_name": "purchase",
    "event_params": [
        {"key": "currency", "value": {"string_value": "EUR"}},
        {"key": "value", "value": {"double_value": 41.97}},
    ],
    "user_pseudo_id": "1234567890.1717000000",
    "stream_id": "4567890123",
    "platform": "WEB",
    "items": [ITEM],
    "ecommerce": ECOMMERCE,
}


def properties(row: dict) -> dict:
    verdict = map_record("ga4", row)
    assert verdict.call is not None, verdict
    return verdict.call["properties"]


def test_items_and_ecommerce_become_products_and_order_fields() -> None:
    got = properties(ROW)
    assert got["products"] == [
        {
            "product_id": "SKU-1",
            "name": "Widget",
            "brand": "Acme",
            "variant": "blue",
            "category": "Tools",
            "item_category2": "Hand tools",
            "price_in_usd": 21.5,
            "price": 19.99,
            "quantity": 2,
            "item_revenue": 39.98,
            "coupon": "SUMMER",
            "item_list_index": "1",
            "size": "L",
        }
    ]
    assert {key: got[key] for key in ("order_id", "revenue", "shipping", "tax", "total_item_quantity")} == {
        "order_id": "T-1001",
        "revenue": 41.97,
        "shipping": 1.99,
        "tax": 0.0,
        "total_item_quantity": 2,
    }
    assert got["currency"] == "EUR" and got["value"] == 41.97 and "refund_value" not in got  # null: left out


def test_the_message_id_is_the_one_without_items() -> None:
    """Re-imports of exports read before items were mapped send the same ids."""
    bare = {key: value for key, value in ROW.items() if key not in ("items", "ecommerce")}
    assert map_record("ga4", ROW).call["messageId"] == map_record("ga4", bare).call["messageId"]  # type: ignore[index]


def test_a_field_an_event_parameter_holds_is_kept_as_ecommerce_dot_name() -> None:
    row = {**ROW, "event_params": [*ROW["event_params"], {"key": "tax", "value": {"double_value": 3.5}}]}
    got = properties(row)
    assert got["tax"] == 3.5 and got["ecommerce.tax"] == 0.0


def test_a_bad_items_value_is_a_reject_naming_it() -> None:
    verdict = map_record("ga4", {**ROW, "items": "SKU-1"})
    assert verdict.invalid == "bad_value" and "items" in verdict.error
    verdict = map_record("ga4", {**ROW, "ecommerce": {**ECOMMERCE, "unique_items": "one"}})
    assert verdict.invalid == "bad_value" and "unique_items" in verdict.error


def test_parquet_gives_the_same_call(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from cdpcli.importing.parquet import parquet_lines
    from cdpcli.importing.sources import make_sources

    value = pa.struct([("string_value", pa.string()), ("int_value", pa.int64()), ("double_value", pa.float64())])
    params = pa.list_(pa.struct([("key", pa.string()), ("value", value)]))
    item = pa.struct(
        [(key, pa.string()) for key in ("item_id", "item_name", "item_brand", "item_variant", "item_category")]
        + [("item_category2", pa.string()), ("price_in_usd", pa.float64()), ("price", pa.float64())]
        + [("quantity", pa.int64()), ("item_revenue", pa.float64()), ("coupon", pa.string())]
        + [("affiliation", pa.string()), ("item_list_index", pa.string()), ("item_params", params)]
    )
    ecommerce = pa.struct(
        [("total_item_quantity", pa.int64()), ("purchase_revenue_in_usd", pa.float64())]
        + [("purchase_revenue", pa.float64()), ("refund_value", pa.float64()), ("shipping_value", pa.float64())]
        + [("tax_value", pa.float64()), ("unique_items", pa.int64()), ("transaction_id", pa.string())]
    )
    as_ints = {"quantity": 2, "total_item_quantity": 2, "unique_items": 1}
    table = pa.table(
        {
            "event_date": [ROW["event_date"]],
            "event_timestamp": pa.array([int(ROW["event_timestamp"])], pa.int64()),
            "event_name": [ROW["event_name"]],
            "event_params": pa.array([ROW["event_params"]], params),
            "user_pseudo_id": [ROW["user_pseudo_id"]],
            "stream_id": [ROW["stream_id"]],
            "platform": [ROW["platform"]],
            "items": pa.array([[{**ITEM, "quantity": as_ints["quantity"]}]], pa.list_(item)),
            "ecommerce": pa.array([{**ECOMMERCE, "total_item_quantity": 2, "unique_items": 1}], ecommerce),
        }
    )
    path = tmp_path / "events_20240601.parquet"
    pq.write_table(table, path)
    (source,), _ = make_sources([str(path)])
    (from_parquet,) = vendor_lines("ga4", parquet_lines(source, lambda count: None))
    (from_ndjson,) = vendor_lines("ga4", [json.dumps(ROW).encode()])
    assert json.loads(from_parquet) == json.loads(from_ndjson)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for inner in value.values() for leaf in _leaves(inner)]
    if isinstance(value, list):
        return [leaf for inner in value for leaf in _leaves(inner)]
    return [value]


_names = st.sampled_from(["item_id", "item_name", "price", "coupon", "tax", "value", "products", "ecommerce", "x"])
_values = st.one_of(st.none(), st.text(max_size=4), st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=200, deadline=None)
@example([{}], {"products": ""}, {"item_id": None, "ecommerce": "0"})  # overflow name taken by a param
@example([{}], {"products": "0"}, {"item_id": None, "ecommerce": ""})
@example([{"price": float("nan")}], {}, {})
@given(
    st.lists(st.dictionaries(_names, _values, max_size=5), max_size=3),
    st.dictionaries(_names, _values, max_size=5),
    st.dictionaries(_names, _values, max_size=3),
)
def test_no_non_null_value_is_dropped(items: list[dict], ecommerce: dict, params: dict) -> None:
    row = {
        **ROW,
        "event_params": [{"key": key, "value": {"string_value": value}} for key, value in params.items()],
        "items": items,
        "ecommerce": ecommerce,
    }
    got = _leaves(properties(row))
    for value in _leaves([items, ecommerce, params]):
        if value is not None:
            assert value in got

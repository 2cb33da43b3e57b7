"""Parquet inputs: a row group at a time, each row one JSON line of its columns (nested as
JSON, timestamps as ISO strings), call-shaped tables and vendor exports alike; without the
extra, the error names it."""

from __future__ import annotations

import datetime
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cdpcli.errors import UsageError
from cdpcli.importing.parquet import parquet_lines, parquet_module
from cdpcli.importing.sources import make_sources
from cdpcli.importing.vendors import vendor_lines

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

UTC = datetime.timezone.utc


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def call_table(count: int) -> Any:
    return pa.table(
        {
            "type": ["track"] * count,
            "userId": [f"u-{i}" if i % 3 else None for i in range(count)],
            "anonymousId": [None if i % 3 else f"a-{i}" for i in range(count)],
            "event": ["Order Completed"] * count,
            "properties": [{"n": i, "tags": ["a", "b"], "price": 9.5} for i in range(count)],
            "timestamp": pa.array(
                [datetime.datetime(2024, 6, 1, 12, 0, i % 60, 345000, tzinfo=UTC) for i in range(count)],
                type=pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def lines_of(path: Path) -> list[dict]:
    (source,), _ = make_sources([str(path)])
    assert source.format == "parquet"  # the name says so
    return [json.loads(line) for line in parquet_lines(source, lambda count: None)]


def test_rows_become_json_lines_a_row_group_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    pq.write_table(call_table(35), path, row_group_size=10)
    assert pq.ParquetFile(path).num_row_groups == 4
    (source,), _ = make_sources([str(path)])
    groups: list[int] = []
    rows = [json.loads(line) for line in parquet_lines(source, groups.append)]
    assert len(groups) == 4  # progress once per row group read
    assert [row["properties"]["n"] for row in rows] == list(range(35))
    assert rows[1] == {
        "type": "track",
        "userId": "u-1",  # the null anonymousId column is left out
        "event": "Order Completed",
        "properties": {"n": 1, "tags": ["a", "b"], "price": 9.5},
        "timestamp": "2024-06-01T12:00:01.345000+00:00",
    }
    assert "userId" not in rows[0] and rows[0]["anonymousId"] == "a-0"


# PostHog's Parquet export: `properties` is a JSON-encoded STRING column, `timestamp` a
# TIMESTAMP [posthog.com/docs/data-pipelines/batch-exports/s3]
def test_a_posthog_parquet_export_maps_like_its_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "uuid": ["018fd3a2-5b1c-7d3e-9a4f-2c6b8e1d0f77"],
            "event": ["report exported"],
            "distinct_id": ["u_8812"],
            "person_id": ["018f9b11-0c2d-7a88-b2e4-5d6f7a8b9c01"],
            "properties": [json.dumps({"format": "csv", "$ip": "203.0.113.7"})],
            "person_properties": [json.dumps({"email": "ana@example.com"})],
            "elements_chain": [""],
            "timestamp": pa.array(
                [datetime.datetime(2024, 6, 1, 12, 5, 12, 345000, tzinfo=UTC)], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    pq.write_table(table, path)
    (source,), _ = make_sources([str(path)])
    (line,) = vendor_lines("posthog", parquet_lines(source, lambda count: None))
    assert json.loads(line) == {
        "type": "track",
        "userId": "u_8812",
        "event": "report exported",
        "messageId": "018fd3a2-5b1c-7d3e-9a4f-2c6b8e1d0f77",
        "timestamp": "2024-06-01T12:05:12.345Z",
        "properties": {"format": "csv"},
        "context": {"ip": "203.0.113.7"},
    }


def test_a_parquet_member_of_a_zip_is_spooled_and_read(tmp_path: Path) -> None:
    inner = tmp_path / "inner.parquet"
    pq.write_table(call_table(3), inner)
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(inner, "data/part-0.parquet")
    (source,), _ = make_sources([str(zipped)])
    assert source.format == "parquet" and source.opener is not None
    assert [json.loads(line)["properties"]["n"] for line in parquet_lines(source, lambda count: None)] == [0, 1, 2]


def test_without_pyarrow_the_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UsageError) as caught:
        parquet_module()
    assert "cdp-pipelines-cli[parquet]" in (caught.value.hint or "")


def test_parquet_imports_and_resumes_from_its_checkpoint(send, receiver, tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    pq.write_table(call_table(25), path, row_group_size=10)
    run = send("import", str(path), "--json", "--checkpoint", "ck.json", "--limit", "12")
    assert run.exit_code == 0, run.stderr
    first = summary(run)["sent"]
    assert first == 12
    run = send("import", str(path), "--json", "--checkpoint", "ck.json")
    assert run.exit_code == 0, run.stderr
    numbers = sorted(call["properties"]["n"] for call in receiver.calls)
    assert numbers == list(range(25))  # each row once, across the two runs
    assert all(call["timestamp"] == call["timestamp"][:23] + "Z" for call in receiver.calls)


def test_format_parquet_without_the_extra_exits_2_naming_it(send, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "calls.parquet"
    pq.write_table(call_table(2), path)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    run = send("import", str(path))
    assert run.exit_code == 2
    assert "cdp-pipelines-cli[parquet]" in run.stderr


# GA4's BigQuery export extracted as Parquet: event_params a repeated struct of key and
# value{string_value,int_value,float_value,double_value}; INT64 stays an integer here
# [developers.google.com/analytics/bigquery/event-schema, cloud.google.com/bigquery/docs/exporting-data]
def test_a_ga4_parquet_extract_maps_like_its_ndjson(tmp_path: Path) -> None:
    value = pa.struct(
        [
            ("string_value", pa.string()),
            ("int_value", pa.int64()),
            ("float_value", pa.float64()),
            ("double_value", pa.float64()),
        ]
    )
    params = pa.list_(pa.struct([("key", pa.string()), ("value", value)]))
    table = pa.table(
        {
            "event_date": ["20240601"],
            "event_timestamp": pa.array([1717243600000001], pa.int64()),
            "event_name": ["add_to_cart"],
            "event_params": pa.array(
                [
                    [
                        {"key": "currency", "value": {"string_value": "EUR"}},
                        {"key": "value", "value": {"double_value": 19.99}},
                        {"key": "quantity", "value": {"int_value": 2}},
                    ]
                ],
                params,
            ),
            "user_id": pa.array([None], pa.string()),
            "user_pseudo_id": ["1234567890.1717000000"],
            "stream_id": ["4567890123"],
            "platform": ["WEB"],
        }
    )
    path = tmp_path / "events_20240601.parquet"
    pq.write_table(table, path)
    (source,), _ = make_sources([str(path)])
    (line,) = vendor_lines("ga4", parquet_lines(source, lambda count: None))
    ndjson = (Path(__file__).parent / "data" / "vendors" / "ga4" / "input.jsonl").read_bytes().split(b"\n")[2]
    (from_ndjson,) = vendor_lines("ga4", [ndjson])
    # the same event from either extract: the same call, messageId included
    assert json.loads(line) == json.loads(from_ndjson)


def posthog_table() -> Any:
    """PostHog's events model as its S3 batch export writes it in Parquet: properties a JSON string
    [posthog.com/docs/cdp/batch-exports/s3.md; vendor-exports 3.2, 3.8]."""
    return pa.table(
        {
            "uuid": ["018fd3a2-5b1c-7d3e-9a4f-2c6b8e1d0f77", "018fd3a2-5b1c-7d3e-9a4f-2c6b8e1d0f78"],
            "event": ["report exported", "Order Placed"],
            "distinct_id": ["u_8812", "u_8812"],
            "properties": [json.dumps({"format": "csv"}), json.dumps({"total": 12})],
            "timestamp": pa.array(
                [datetime.datetime(2024, 6, 1, 12, 5, second, tzinfo=UTC) for second in (12, 13)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def test_posthogs_parquet_zst_names_are_read_as_parquet(send, receiver, tmp_path: Path) -> None:
    """PostHog names zstd Parquet `*.parquet.zst`, the compression inside the file (vendor-exports
    3.8 trap 2): read as Parquet, not decompressed, not as text."""
    path = tmp_path / "2024-06-01T12:00:00_events.parquet.zst"
    pq.write_table(posthog_table(), path, compression="zstd")
    assert path.read_bytes()[:4] == b"PAR1"
    (source,), _ = make_sources([str(path)])
    assert source.format == "parquet"
    run = send("import", str(path), "--from", "posthog", "--json")
    assert run.exit_code == 0, run.stderr
    assert summary(run)["sent"] == 2
    assert sorted(call["event"] for call in receiver.calls) == ["Order Placed", "report exported"]


def test_parquet_under_a_name_that_does_not_say_so_is_read_as_parquet(tmp_path: Path) -> None:
    path = tmp_path / "export-part-0"
    pq.write_table(call_table(3), path)
    assert [line["properties"]["n"] for line in lines_of(path)] == [0, 1, 2]


def test_parquet_compressed_around_is_inflated_then_read(tmp_path: Path) -> None:
    import gzip

    inner = tmp_path / "inner.parquet"
    pq.write_table(call_table(3), inner)
    path = tmp_path / "calls.parquet.gz"  # gzip calls.parquet: the whole file compressed
    path.write_bytes(gzip.compress(inner.read_bytes()))
    assert [line["properties"]["n"] for line in lines_of(path)] == [0, 1, 2]


def test_parquet_read_as_ndjson_names_the_flag_that_reads_it(send, tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    pq.write_table(call_table(2), path)
    run = send("import", str(path), "--format", "ndjson")
    assert run.exit_code == 1
    assert "a Parquet file read as text: read it as Parquet (--format parquet), not as NDJSON" in run.stderr

"""CSV rows whose cells do not match the header, and CSV files that are not UTF-8 text or are
named `.tsv`.

- A row with fewer cells than the header has columns is an invalid row naming its line and
  both counts (`u3;pro;c@x` under `userId,plan,email` was sent as userId "u3;pro;c@x"), as a
  row with more already was: which column a cell belongs to is never guessed.
- A UTF-16 CSV (what Excel saves as "Unicode text": a byte-order mark FF FE, or FE FF) is one
  rejects record naming UTF-16 and iconv, not a hundred "not UTF-8" lines and exit 2.
- `.tsv` (compressed or not) is CSV with a tab delimiter, as `.csv` is CSV."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cdpcli.importing.csvrows import CsvMapping, csv_lines, marker
from cdpcli.importing.source import Source


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def rejects(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]


def lines_of(data: bytes, name: str = "t.csv") -> list[bytes]:
    source = Source(name, name, name.encode(), opener=lambda: io.BytesIO(data))
    return list(csv_lines(source, lambda count: None, CsvMapping("identify")))


def test_a_row_with_fewer_cells_than_the_header_is_invalid(send, receiver, tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        "userId,plan,email\nu1,free,a@x\nu2,pro\nu3;pro;c@x\nu4,pro,d@x,extra\nu5,pro,\n"
    )
    run = send("import", "people.csv", "--type", "identify", "--json")
    assert run.exit_code == 1, run.stderr
    # u5's last cell is there, empty (left out of the call); u2's is missing
    assert [(c["userId"], c["traits"]) for c in receiver.calls] == [
        ("u1", {"plan": "free", "email": "a@x"}),
        ("u5", {"plan": "pro"}),
    ]
    records = {r["line"]: r for r in rejects(tmp_path)}
    assert sorted(records) == [3, 4, 5]
    assert records[3]["error"].startswith("row has 2 cells, the header names 3")
    assert records[3]["input"] == "u2,pro"
    assert (
        records[4]["error"]
        == "row has 1 cell, the header names 3; its cells may be separated by ';', the header's by ','"
    )
    assert records[5]["error"].startswith("row has 4 cells, the header names 3")
    assert "people.csv:4: row has 1 cell" in run.stderr
    assert (summary(run)["sent"], summary(run)["invalid"]) == (2, 3)


@settings(max_examples=60, deadline=None)
@given(
    columns=st.integers(min_value=1, max_value=5),
    widths=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=8),
)
def test_a_row_is_a_call_exactly_when_it_has_a_cell_for_every_column(columns: int, widths: list[int]) -> None:
    """Every cell non-empty, so no row is blank: a row of `columns` cells is a call carrying
    each cell under its column's name; any other width is one invalid row; one line each."""
    header = ["userId"] + [f"c{n}" for n in range(1, columns)]
    rows = [[f"r{row}v{cell}" for cell in range(width)] for row, width in enumerate(widths)]
    text = "\n".join(",".join(cells) for cells in [header, *rows]) + "\n"
    out = lines_of(text.encode())
    assert len(out) == len(rows) + 1
    for cells, line in zip(rows, out[1:], strict=True):
        if len(cells) == columns:
            call = json.loads(line)
            assert call["userId"] == cells[0]
            assert call.get("traits", {}) == dict(zip(header[1:], cells[1:], strict=True))
        else:
            kind, reason, error, text_kept = marker(line)
            assert (kind, reason) == ("invalid", "csv row")
            assert error is not None and error.startswith(f"row has {len(cells)} cell")
            assert text_kept == ",".join(cells).encode()


def test_a_utf16_csv_is_one_record_naming_utf16_and_the_next_file_is_read(send, receiver, tmp_path: Path) -> None:
    text = "userId,plan\r\n" + "".join(f"u{n},pro\r\n" for n in range(150))
    (tmp_path / "excel-le.csv").write_bytes(text.encode("utf-16"))  # BOM FF FE, as Excel writes it
    (tmp_path / "excel-be.csv").write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    (tmp_path / "good.csv").write_text("userId,plan\nok1,free\n")
    run = send("import", "excel-le.csv", "excel-be.csv", "good.csv", "--type", "identify", "--json")
    assert run.exit_code == 1, run.stderr
    assert [c["userId"] for c in receiver.calls] == ["ok1"]
    records = rejects(tmp_path)
    assert [(r["source"], r["line"]) for r in records] == [("excel-le.csv", 1), ("excel-be.csv", 1)]
    assert all("UTF-16" in r["error"] and "iconv -f UTF-16 -t UTF-8" in r["error"] for r in records)
    assert summary(run)["invalid"] == 2


def test_a_tsv_name_is_csv_split_by_tabs(send, receiver, tmp_path: Path) -> None:
    # more commas than tabs in the header: detection would split it by commas
    text = "userId\tcity, state, country\tnote\nu1\tLyon, ARA, FR\ta,b\n"
    (tmp_path / "people.tsv").write_text(text)
    (tmp_path / "more.TSV.gz").write_bytes(gzip.compress(text.replace("u1", "u2").encode()))
    run = send("import", "people.tsv", "more.TSV.gz", "--type", "identify", "--json")
    assert run.exit_code == 0, run.stderr
    assert [(c["userId"], c["traits"]) for c in receiver.calls] == [
        (user, {"city, state, country": "Lyon, ARA, FR", "note": "a,b"}) for user in ("u1", "u2")
    ]


def test_an_unsubscribed_column_is_read_as_the_boolean_the_api_takes(send, receiver, tmp_path: Path) -> None:
    """The API reads any casing of "true", and 1, as unsubscribed (pipelines-openapi.json); a CSV
    cell is text, so without --infer-types `true` was refused as "not a valid boolean". Other
    columns keep their text, and a value that is no boolean is still refused."""
    text = "userId,unsubscribed,plan\nu1,TRUE,true\nu2,false,1\nu3,1,x\nu4,0,x\nu5,yes,x\n"
    (tmp_path / "people.csv").write_text(text)
    run = send("import", "people.csv", "--type", "identify", "--json")
    assert run.exit_code == 1, run.stderr
    assert [(c["userId"], c["traits"]) for c in receiver.calls] == [
        ("u1", {"unsubscribed": True, "plan": "true"}),
        ("u2", {"unsubscribed": False, "plan": "1"}),
        ("u3", {"unsubscribed": True, "plan": "x"}),
        ("u4", {"unsubscribed": False, "plan": "x"}),
    ]
    [reject] = rejects(tmp_path)
    assert reject["line"] == 6 and "unsubscribed" in reject["error"]


def test_a_whole_object_column_holds_a_json_object_or_says_how_to_write_it(send, receiver, tmp_path: Path) -> None:
    """A `properties` (or traits, context) column is an object: a cell with a JSON object is it,
    as exporters write it; any other text is a row the rejects file explains (it was pydantic's
    "Input should be a valid dictionary"), and dotted columns still fill keys one by one."""
    text = (
        "userId,event,properties\n"
        'u1,E,"{""plan"":""pro"",""seats"":2}"\n'
        "u2,E,plain text\n"
        'u3,E,"{""plan"":""a"",""plan"":""b""}"\n'  # a key named twice is no object to send
    )
    (tmp_path / "events.csv").write_text(text)
    run = send("import", "events.csv", "--type", "track", "--json")
    assert run.exit_code == 1, run.stderr
    assert [(c["userId"], c["properties"]) for c in receiver.calls] == [("u1", {"plan": "pro", "seats": 2})]
    errors = {r["line"]: r["error"] for r in rejects(tmp_path)}
    assert set(errors) == {3, 4}
    assert "write the cell as one" in errors[3] and "name a column for each key (properties.plan)" in errors[3]

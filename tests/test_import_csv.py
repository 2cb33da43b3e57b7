"""CSV inputs at their edges: a quote left open, columns that are not fields of the call type,
unnamed columns, delimiters other than the comma. Rows follow RFC 4180's shape (quoted cells
may hold line breaks, quotes doubled inside them); `;`-separated files are what spreadsheet
programs write in locales whose decimal mark is the comma."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdpcli.errors import UsageError
from cdpcli.importing.csvrows import (
    MAX_ROW_BYTES,
    MAX_ROW_LINES,
    CsvMapping,
    csv_lines,
    marker,
    parse_columns,
)
from cdpcli.importing.source import Source


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def rejects(tmp_path) -> dict[int, dict]:
    path = tmp_path / "cdp-rejects.ndjson"
    return {r["line"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


def balanced(result: dict) -> bool:
    return result["read"] == result["sent"] + result["invalid"] + result["skipped"] + result["blank"]


def lines_of(data: bytes, mapping: CsvMapping) -> list[bytes]:
    source = Source("t.csv", "t.csv", b"t.csv", opener=lambda: io.BytesIO(data))
    return list(csv_lines(source, lambda count: None, mapping))


# -- a quote left open -------------------------------------------------------------------------


def test_a_quote_never_closed_is_one_invalid_row_and_the_rows_after_it_are_read(send, receiver, tmp_path):
    (tmp_path / "plans.csv").write_text('userId,plan\n1,a\n2,b\n3,"c\n4,d\n5,e\n')
    run = send("import", "plans.csv", "--type", "identify", "--json")
    assert run.exit_code == 1, run.stderr
    assert [(c["userId"], c["traits"]) for c in receiver.calls] == [
        ("1", {"plan": "a"}),
        ("2", {"plan": "b"}),
        ("4", {"plan": "d"}),
        ("5", {"plan": "e"}),
    ]
    (record,) = rejects(tmp_path).values()
    assert record["line"] == 4 and record["input"] == '3,"c'
    assert "quoted cell is not closed" in record["error"]
    result = summary(run)
    assert result["invalid_reasons"] == {"csv quote not closed": 1}
    assert (result["read"], result["sent"], result["invalid"]) == (6, 4, 1) and balanced(result)


def test_a_quote_open_past_the_line_bound_ends_there(send, receiver, tmp_path):
    rows = [f"u{n},p{n}" for n in range(1, MAX_ROW_LINES + 50)]
    rows.insert(3, 'bad,"never closed')  # line 5
    rows.append('late,"x"')  # a well-formed quoted cell after the bound
    (tmp_path / "p.csv").write_text("userId,plan\n" + "\n".join(rows) + "\n")
    run = send("import", "p.csv", "--type", "identify", "--json")
    assert run.exit_code == 1, run.stderr
    assert list(rejects(tmp_path)) == [5]
    sent = [c["userId"] for c in receiver.calls]
    assert sent == [row.split(",")[0] for row in rows if not row.startswith("bad")]
    assert balanced(summary(run))


def test_a_quote_open_past_the_byte_bound_ends_there(send, receiver, tmp_path):
    filler = "x" * 1000
    rows = [f"u{n},{filler}" for n in range(1, 41)]  # 40 KB: past MAX_ROW_BYTES in fewer than 100 lines
    assert len(rows) < MAX_ROW_LINES and len("".join(rows)) > MAX_ROW_BYTES
    (tmp_path / "p.csv").write_text('userId,note\nbad,"open\n' + "\n".join(rows) + "\n")
    run = send("import", "p.csv", "--type", "identify", "--json")
    assert run.exit_code == 1, run.stderr
    assert list(rejects(tmp_path)) == [2]
    assert [c["userId"] for c in receiver.calls] == [f"u{n}" for n in range(1, 41)]


def test_a_closed_multi_line_cell_at_the_end_of_the_file_is_a_row(send, receiver, tmp_path):
    (tmp_path / "p.csv").write_text('userId,note\nu1,"two\nlines"')  # no newline at the end
    run = send("import", "p.csv", "--type", "identify", "--json")
    assert run.exit_code == 0, run.stderr
    assert receiver.calls[0]["traits"] == {"note": "two\nlines"}


CELLS = st.text(alphabet='ab",\n ', max_size=6)


@given(st.lists(st.lists(CELLS, min_size=1, max_size=3), min_size=1, max_size=30))
def test_every_line_of_a_csv_file_makes_exactly_one_line_and_quotes_never_swallow_rows(rows):
    """Whatever the quotes do, each physical line of the file is one output line (a row, a
    marker or a blank), so line numbers hold; and rows after a stray quote are read as rows:
    the quote-free rows at the end always come out as their own calls."""
    tail = [f"z{n},end" for n in range(3)]
    text = "userId,note\n" + "\n".join([",".join(row) for row in rows] + tail) + "\n"
    out = lines_of(text.encode(), CsvMapping("identify"))
    assert len(out) == text.count("\n")
    assert out[0].startswith(b"\0skip:")
    for line in out[1:]:
        if line.startswith(b"\0"):
            assert marker(line)[0] == "invalid"
        elif line:
            assert isinstance(json.loads(line), dict)
    assert [json.loads(line) for line in out[-3:]] == [{"userId": f"z{n}", "traits": {"note": "end"}} for n in range(3)]


# -- columns by the call type's own fields -----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("identify", {"userId": "u1", "traits": {"name": "Ada Lovelace", "category": "c"}}),
        ("group", {"userId": "u1", "traits": {"name": "Ada Lovelace", "category": "c"}}),
        ("track", {"userId": "u1", "event": "E", "properties": {"name": "Ada Lovelace", "category": "c"}}),
        ("page", {"userId": "u1", "name": "Ada Lovelace", "properties": {"category": "c"}}),
        ("screen", {"userId": "u1", "name": "Ada Lovelace", "properties": {"category": "c"}}),
    ],
)
def test_a_column_that_is_not_a_field_of_the_type_goes_into_traits_or_properties(kind, expected):
    header, row = "userId,name,category", "u1,Ada Lovelace,c"
    if kind == "track":
        header, row = header + ",event", row + ",E"
    if kind == "group":
        header, row = header + ",groupId", row + ",g1"
        expected = {**expected, "groupId": "g1"}
    (_, line) = lines_of(f"{header}\n{row}\n".encode(), CsvMapping(kind))
    assert json.loads(line) == expected


def test_the_type_column_picks_each_rows_fields(send, receiver, tmp_path):
    (tmp_path / "mixed.csv").write_text(
        "type,userId,name,event,groupId\nidentify,u1,Ada,,\npage,u1,Home,,\ntrack,u1,Ada,Signed Up,g1\n"
    )
    run = send("import", "mixed.csv", "--json")
    assert run.exit_code == 0, run.stderr
    identify, page, track = receiver.calls
    assert identify["traits"] == {"name": "Ada"} and "name" not in identify
    assert page["name"] == "Home" and "properties" not in page
    assert track["properties"] == {"name": "Ada"} and track["groupId"] == "g1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--column", "id=foo.bar"], "--column id=foo.bar: a call has no top-level field 'foo'"),
        (["--column", "email=name"], "--column email=name: identify calls have no top-level field 'name'"),
        (["--column", "email=userId.x"], "--column email=userId.x: a call has no object 'userId'"),
    ],
)
def test_a_column_to_a_field_the_type_does_not_have_is_a_usage_error(send, receiver, tmp_path, args, message):
    (tmp_path / "p.csv").write_text("id,email\n1,a@example.com\n")
    run = send("import", "p.csv", "--type", "identify", *args)
    assert run.exit_code == 2, run.stderr
    assert message in run.stderr and "Hint:" in run.stderr and receiver.requests == []


def test_a_column_to_a_field_no_type_has_is_refused_before_reading():
    with pytest.raises(UsageError, match="a call has no top-level field 'foo'"):
        parse_columns(["id=foo.bar"])
    assert parse_columns(["n=name", "e=traits.email"]) == {"n": "name", "e": "traits.email"}  # page has name


def test_an_unnamed_column_is_an_error_naming_its_number(send, receiver, tmp_path):
    (tmp_path / "p.csv").write_text("userId,,plan\nu1,lost?,pro\n")
    run = send("import", "p.csv", "--type", "identify")
    assert run.exit_code == 2
    assert "p.csv:1: the CSV header's column 2 has no name" in run.stderr and receiver.requests == []


# -- delimiters --------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_detected_from_the_header(send, receiver, tmp_path, delimiter):
    rows = [["userId", "plan", "price"], ["u1", "pro", "9,50"], ["u2", "free", "0"]]
    text = "\n".join(delimiter.join(f'"{c}"' if "," in c and delimiter == "," else c for c in r) for r in rows)
    (tmp_path / "p.csv").write_text(text + "\n")
    run = send("import", "p.csv", "--type", "identify", "--json")
    assert run.exit_code == 0, run.stderr
    assert [c["traits"] for c in receiver.calls] == [{"plan": "pro", "price": "9,50"}, {"plan": "free", "price": "0"}]


def test_a_given_delimiter_wins_over_detection():
    data = b"userId;note\nu1;a,b\n"
    (_, detected) = lines_of(data, CsvMapping("identify"))
    (_, given) = lines_of(b"userId,note;x\nu1,a;b\n", CsvMapping("identify", delimiter=","))
    assert json.loads(detected)["traits"] == {"note": "a,b"}
    assert json.loads(given)["traits"] == {"note;x": "a;b"}


def test_the_delimiter_flag_wins_over_detection(send, receiver, tmp_path):
    (tmp_path / "p.csv").write_text("userId,note;x;y\nu1,a;b;c\n")  # detected, it would be ";"
    run = send("import", "p.csv", "--type", "identify", "--delimiter", ",")
    assert run.exit_code == 0, run.stderr
    assert receiver.calls[0]["userId"] == "u1" and receiver.calls[0]["traits"] == {"note;x;y": "a;b;c"}
    bad = send("import", "p.csv", "--type", "identify", "--delimiter", "ab")
    assert bad.exit_code == 2 and "--delimiter 'ab': expected one character" in bad.stderr

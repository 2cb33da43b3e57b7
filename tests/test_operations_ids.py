"""What a `--from FILE` of ids holds beyond ids, and what cdp makes of it before anything
irreversible is sent: export headers under the names exports give them, CSV exports given as
ids, byte order marks and CRLF line ends (Windows exports), duplicate keys in JSON lines. The
confirmation and the dry-run list exactly the distinct ids the send sends."""

from __future__ import annotations

import codecs
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpcli import operations
from cdpcli.importing import make_sources


def ids_in(op: operations.Operation, name: str) -> operations.IdList:
    return operations.read_sources(op, make_sources([name], fmt="ndjson")[0])


# -- headers as exports name them -----------------------------------------------------------------

# Column names seen on exports of people: Customer.io's own people export ("customer id",
# "email"), spreadsheets ("E-Mail Address", "e-mail", "user id") and warehouses' snake case.
PEOPLE_HEADERS = ["customer id", "e-mail", "E-Mail Address", "user id", "person_id", "external_id", "cio_id"]
OBJECT_HEADERS = ["object_id", "objectId", "group_id", "name", "Company ID"]


@pytest.mark.parametrize("header", PEOPLE_HEADERS)
def test_a_people_export_header_is_refused_before_anything_is_sent(send, receiver, tmp_path, header):
    (tmp_path / "ids.txt").write_text(f"{header}\na@example.com\nb@example.com\n")
    run = send("person", "delete", "--from", "ids.txt", "--yes")
    assert run.exit_code == 2, run.stderr
    assert "ids.txt:1" in run.stderr and "looks like a header" in run.stderr and "--header" in run.stderr
    assert receiver.requests == []


@pytest.mark.parametrize("header", OBJECT_HEADERS)
def test_an_object_export_header_is_refused_before_anything_is_sent(send, receiver, tmp_path, header):
    (tmp_path / "objects.txt").write_text(f"{header}\nacme\nglobex\n")
    run = send("object", "delete", "--from", "objects.txt", "--anonymous-id", "ops-1", "--yes")
    assert run.exit_code == 2, run.stderr
    assert "looks like a header" in run.stderr and receiver.requests == []


def test_name_heads_objects_only_a_person_may_be_called_name(send, receiver, tmp_path):
    (tmp_path / "ids.txt").write_text("name\nu1\n")
    run = send("person", "unsuppress", "--from", "ids.txt")
    assert run.exit_code == 0, run.stderr
    assert sorted(call["userId"] for call in receiver.calls) == ["name", "u1"]


# -- CSV exports given as ids -------------------------------------------------------------------------

CSV_EXPORTS = [
    ("export.csv", "email,name\na@x.com,Ada\nb@x.com,Grace\n", "cut -d, -f1"),
    ("export.csv", "email;name\na@x.com;Ada\n", "cut -d';' -f1"),
    ("export.tsv", "email\tname\na@x.com\tAda\n", "cut -f1"),
    ("export.csv", '"email","name"\n"a@x.com","Ada"\n', "cut -d, -f1"),
]


@pytest.mark.parametrize(("name", "text", "fix"), CSV_EXPORTS, ids=["comma", "semicolon", "tab", "quoted"])
def test_a_csv_export_is_refused_before_anything_is_sent(send, receiver, tmp_path, name, text, fix):
    (tmp_path / name).write_text(text)
    run = send("person", "delete", "--from", name, "--yes")
    assert run.exit_code == 2, run.stderr
    assert f"{name}:1" in run.stderr and "a row of a CSV export" in run.stderr and fix in run.stderr
    assert receiver.requests == []


def test_a_csv_row_after_a_header_is_refused_naming_its_line(send, receiver, tmp_path):
    (tmp_path / "ids.txt").write_text("email\na@x.com\n# the rest\nb@x.com,Ada\n")
    run = send("person", "suppress", "--from", "ids.txt", "--header", "--yes")
    assert run.exit_code == 2, run.stderr
    assert "ids.txt:4" in run.stderr and "'b@x.com,Ada'" in run.stderr and receiver.requests == []


def test_no_header_does_not_let_a_csv_row_through(send, receiver, tmp_path):
    (tmp_path / "ids.txt").write_text("a@x.com,Ada\n")
    run = send("person", "delete", "--from", "ids.txt", "--no-header", "--yes")
    assert run.exit_code == 2 and receiver.requests == []


def test_an_id_holding_a_comma_goes_as_a_json_string(send, receiver, tmp_path):
    (tmp_path / "ids.txt").write_text('"a,b"\n{"user": "c;d"}\n')
    run = send("person", "delete", "--from", "ids.txt", "--yes")
    assert run.exit_code == 0, run.stderr
    assert sorted(call["userId"] for call in receiver.calls) == ["a,b", "c;d"]


def test_a_csv_export_on_stdin_is_refused_at_its_first_line(send, receiver):
    run = send("person", "delete", "--from", "-", "--yes", input="email,name\na@x.com,Ada\n")
    assert run.exit_code == 2, run.stderr
    assert "<stdin>:1" in run.stderr and receiver.requests == []


def test_a_csv_row_later_on_stdin_is_rejected_not_sent(send, receiver, tmp_path):
    run = send("person", "delete", "--from", "-", "--yes", "--json", "--rejects", "r.ndjson", input="u1\nu2,Ada\nu3\n")
    assert run.exit_code == 1, run.stderr
    assert sorted(call["userId"] for call in receiver.calls) == ["u1", "u3"]
    (reject,) = [json.loads(line) for line in (tmp_path / "r.ndjson").read_text().splitlines()]
    assert reject["line"] == 2 and "a row of a CSV export" in reject["error"]
    assert json.loads(run.stdout)["invalid_reasons"] == {"CSV row": 1}


def test_device_lines_are_json_objects_with_commas(send, receiver, tmp_path):
    (tmp_path / "devices.ndjson").write_text('{"user": "1", "token": "t1"}\n')
    run = send("device", "add", "--from", "devices.ndjson", "--platform", "ios")
    assert run.exit_code == 0, run.stderr
    assert len(receiver.calls) == 1


# -- byte order marks and CRLF: the confirmation lists what is sent --------------------------------------


def test_a_bom_and_crlf_are_not_part_of_the_ids_shown_or_sent(send, receiver, tmp_path):
    # the audit's file: a Windows export (BOM, CRLF) with a comment, a blank line, a repeat
    (tmp_path / "ids.txt").write_bytes(codecs.BOM_UTF8 + b"u1\r\nu2\r\nu1\r\n# c\r\n\r\nu2 \r\n")
    run = send("person", "delete", "--from", "ids.txt", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "2 people: u1, u2 (dropped: 2 repeated ids, 1 comment line)" in run.stderr
    run = send("person", "delete", "--from", "ids.txt", "--yes")
    assert run.exit_code == 0, run.stderr
    assert sorted(call["userId"] for call in receiver.calls) == ["u1", "u2"]


def test_a_bom_before_a_header_is_refused_as_the_header(send, receiver, tmp_path):
    (tmp_path / "ids.txt").write_bytes(codecs.BOM_UTF8 + b"email\r\na@x.com\r\n")
    run = send("person", "delete", "--from", "ids.txt", "--dry-run")
    assert run.exit_code == 2, run.stderr
    assert "looks like a header" in run.stderr and "\ufeff" not in run.stderr
    assert "1 person" not in run.stderr and "2 people" not in run.stderr  # no summary before the refusal
    run = send("person", "delete", "--from", "ids.txt", "--dry-run", "--header")
    assert run.exit_code == 0, run.stderr
    assert "1 person: a@x.com (dropped: the header 'email')" in run.stderr


def test_each_file_of_a_directory_has_its_own_header(send, receiver, tmp_path):
    (tmp_path / "ids").mkdir()
    (tmp_path / "ids" / "a.txt").write_text("email\na@x.com\n")
    (tmp_path / "ids" / "b.txt").write_bytes(codecs.BOM_UTF8 + b"email\nb@x.com\n")
    op = operations.operation("person delete")
    op.header = True
    ids = ids_in(op, "ids")
    assert (ids.distinct, ids.first) == (2, ["a@x.com", "b@x.com"])
    run = send("person", "delete", "--from", "ids", "--header", "--yes")
    assert run.exit_code == 0, run.stderr
    assert sorted(call["userId"] for call in receiver.calls) == ["a@x.com", "b@x.com"]


# lines a hand-made or exported file of ids holds: ids (some repeated, some as JSON), comments,
# blank lines, stray spaces, CRLF
ID_LINES = st.lists(
    st.one_of(
        st.sampled_from(["u1", "u2", "u3", "ada@example.com", "42"]),
        st.sampled_from(['"u1"', '{"user": "u2"}', '{"user": 42}', "# a comment", "", "  ", "\t#x"]),
        st.text("abcdefé-_.@+", min_size=1, max_size=6),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=ID_LINES, bom=st.booleans(), crlf=st.booleans())
def test_the_confirmation_lists_exactly_the_distinct_ids_sent(receiver, tmp_path, lines, bom, crlf):
    from cdpcli.target import Target
    from tests.conftest import API_KEY

    path = tmp_path / "ids.txt"
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + ("\r\n" if crlf else "\n").join(lines).encode())
    op = operations.operation("person unsuppress")
    op.header = False
    shown = ids_in(op, str(path))
    receiver.calls.clear()
    result = operations.bulk(op, [str(path)], Target.resolve(endpoint=receiver.url, api_key=API_KEY))
    sent = [call["userId"] for call in receiver.calls]
    assert len(sent) == len(set(sent)) == shown.distinct == result.sent
    assert shown.first == sent[:10]  # twelve lines or fewer are one batch: received in file order
    assert shown.duplicates + shown.comments == result.skipped


# -- duplicate keys in JSON lines ----------------------------------------------------------------------------


def test_a_json_line_naming_a_key_twice_is_invalid_not_sent(send, receiver, tmp_path):
    (tmp_path / "ids.ndjson").write_text('{"user":"a","user":"b"}\n{"user":"c"}\n')
    run = send("person", "delete", "--from", "ids.ndjson", "--yes", "--json", "--rejects", "r.ndjson")
    assert run.exit_code == 1, run.stderr
    assert [call["userId"] for call in receiver.calls] == ["c"]
    (reject,) = [json.loads(line) for line in (tmp_path / "r.ndjson").read_text().splitlines()]
    assert reject["line"] == 1 and 'duplicate key "user"' in reject["error"]
    assert json.loads(run.stdout)["invalid_reasons"] == {"duplicate key": 1}


def test_a_device_line_naming_a_key_twice_at_any_depth_is_invalid(send, receiver, tmp_path):
    (tmp_path / "devices.ndjson").write_text('{"user":"1","token":"t","attributes":{"a":1,"a":2}}\n')
    run = send("device", "add", "--from", "devices.ndjson", "--rejects", "r.ndjson")
    assert run.exit_code == 1 and receiver.calls == []
    (reject,) = [json.loads(line) for line in (tmp_path / "r.ndjson").read_text().splitlines()]
    assert reject["error"].startswith('duplicate key "a"')

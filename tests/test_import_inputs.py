"""Issue #14: the inputs real backfills arrive as (compressed files and stdin, directory trees,
Segment/RudderStack archives, CSV) and choosing what to send (filters), against the loopback
receiver."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import sys
from pathlib import Path

import pytest

from cdpcli.importing.decode import compression_of
from tests.conftest import API_KEY

WRITE_KEY = "segment-write-key-0a1b2c3d4e5f"  # another system's secret: must never be forwarded


def ndjson(calls: list) -> bytes:
    return b"".join((c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n" for c in calls)


def tracks(count: int, start: int = 1, **extra) -> list[dict]:
    return [
        {"type": "track", "userId": f"u-{i}", "event": "E", "properties": {"n": i}, **extra}
        for i in range(start, start + count)
    ]


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {
    "gzip": gzip.compress,
    "gzip-members": lambda data: gzip.compress(data[:333]) + gzip.compress(data[333:]),  # cut mid-line
    "bzip2": bz2.compress,
    "bzip2-streams": lambda data: bz2.compress(data[:500]) + bz2.compress(data[500:]),
    "xz": lzma.compress,
    "zstd": zstd,
}


# -- compressed inputs -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(COMPRESSORS))
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_each_compression_is_read_natively_with_decompressed_line_numbers(send, receiver, tmp_path, kind, via):
    lines = tracks(40)
    lines[29] = b'{"type":"track","userId":"u-30"}'  # no event: rejected, at its line in the text
    data = COMPRESSORS[kind](ndjson(lines))
    # the name says nothing: the bytes do
    source = tmp_path / "events.data"
    source.write_bytes(data)
    if via == "file":
        run = send("import", str(source), "--json")
        label = str(source)
    else:
        run = send("import", "--json", input=data)
        label = "<stdin>"
    assert run.exit_code == 1, run.stderr
    result = summary(run)
    assert (result["read"], result["sent"], result["invalid"]) == (40, 39, 1)
    assert sorted(c["properties"]["n"] for c in receiver.calls) == [n for n in range(1, 41) if n != 30]
    assert f"{label}:30:" in run.stderr
    (reject,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert reject["line"] == 30 and reject["source"] == label


def test_compressed_and_plain_files_derive_the_same_ids(send, receiver, tmp_path):
    """An archive decompressed by hand, or read as it is: the same lines, the same ids (the seed
    is the file name, and the line numbers those of the text)."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "packed").mkdir()
    (tmp_path / "plain" / "day.ndjson").write_bytes(ndjson(tracks(5)))
    (tmp_path / "packed" / "day.ndjson").write_bytes(gzip.compress(ndjson(tracks(5))))
    assert send("import", "plain/day.ndjson").exit_code == 0
    first = [c["messageId"] for c in receiver.calls]
    receiver.calls.clear()
    assert send("import", "packed/day.ndjson").exit_code == 0
    assert [c["messageId"] for c in receiver.calls] == first


def test_zstd_without_the_extra_names_it(send, receiver, tmp_path, monkeypatch):
    source = tmp_path / "events.ndjson.zst"
    source.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if not installed
    run = send("import", str(source))
    assert run.exit_code == 2
    assert "Error: reading zstd-compressed input needs the optional zstd extra" in run.stderr
    assert "Hint: pip install 'cdp-pipelines-cli[zstd]'" in run.stderr
    assert run.stdout == "" and receiver.requests == []


def test_a_truncated_stream_on_stdin_delivers_what_came_before_and_says_so(send, receiver, tmp_path):
    data = gzip.compress(ndjson(tracks(2000)))
    run = send("import", "--json", input=data[: len(data) // 2])
    assert run.exit_code == 1, run.stderr
    assert "<stdin>:" in run.stderr and "the gzip data ends early (truncated?)" in run.stderr
    result = summary(run)
    assert len(receiver.calls) == result["sent"] > 0 and result["invalid_reasons"] == {"damaged": 1}
    (record,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert (record["source"], record["line"]) == ("<stdin>", result["sent"] + 1)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_a_cut_off_file_is_one_reject_and_the_next_file_is_read(send, receiver, tmp_path, kind):
    data = COMPRESSORS[kind](ndjson(tracks(300)))
    (tmp_path / "cut").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "good.ndjson").write_bytes(ndjson(tracks(5, start=1001)))
    run = send("import", "cut", "good.ndjson", "--json", "--checkpoint", "ck.json")
    assert run.exit_code == 1, run.stderr
    result = summary(run)
    delivered = sorted(c["properties"]["n"] for c in receiver.calls)
    cut_lines = [n for n in delivered if n <= 300]
    assert cut_lines == list(range(1, len(cut_lines) + 1))  # everything before the damage
    assert delivered[len(cut_lines) :] == list(range(1001, 1006))  # and the next file, whole
    (record,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert (record["source"], record["line"]) == ("cut", len(cut_lines) + 1)
    assert f"the {kind} data ends early (truncated?)" in record["error"] or f"corrupt {kind} data" in record["error"]
    if cut_lines:
        assert f"read up to line {len(cut_lines)}, the last whole one before the damage" in record["error"]
    else:  # bzip2 decompresses whole blocks of 900 KB: nothing before a cut in the first one
        assert "no whole line before the damage" in record["error"]
    assert result["invalid_reasons"] == {"damaged": 1}
    assert result["read"] == result["sent"] + result["invalid"] + result["blank"] + result["skipped"]
    # a resume reads the cut line again (still damaged: exit 1): nothing sent twice, no second record
    receiver.calls.clear()
    again = send("import", "cut", "good.ndjson", "--json", "--checkpoint", "ck.json")
    assert again.exit_code == 1, again.stderr
    assert receiver.calls == [] and summary(again)["sent"] == 0
    assert len((tmp_path / "cdp-rejects.ndjson").read_text().splitlines()) == 1


def test_corrupt_bytes_in_the_middle_of_a_gzip_file_are_one_reject(send, receiver, tmp_path):
    data = bytearray(gzip.compress(ndjson(tracks(3000)), compresslevel=1))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zeroed: the deflate stream breaks there
    (tmp_path / "broken.gz").write_bytes(bytes(data))
    (tmp_path / "good.ndjson").write_bytes(ndjson(tracks(2, start=5001)))
    run = send("import", "broken.gz", "good.ndjson", "--json")
    assert run.exit_code == 1, run.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert record["source"] == "broken.gz" and record["error"].startswith(("corrupt gzip data", "the gzip data"))
    assert {5001, 5002} <= {c["properties"]["n"] for c in receiver.calls}


def test_magic_bytes_decide_not_names():
    assert compression_of(b"\x1f\x8b\x08\x00") == "gzip"
    assert compression_of(b"BZh91AY") == "bzip2"
    assert compression_of(b"BZh is a word") is None  # a text line starting with BZh
    assert compression_of(b"\xfd7zXZ\x00") == "xz"
    assert compression_of(b"\x28\xb5\x2f\xfd\x00") == "zstd"
    assert compression_of(b'{"type":"track"}') is None


def test_a_decompression_bomb_is_read_in_bounded_blocks():
    from cdpcli.importing.decode import decompressed

    data = gzip.compress(b"\n" * (50 << 20))  # 50 MB of newlines in ~50 KB
    chunks = iter([data[i : i + 4096] for i in range(0, len(data), 4096)])
    sizes = [
        len(block) for block in decompressed("gzip", "x", lambda n: next(chunks, b""), b"", lambda n: None, 1 << 20)
    ]
    assert sum(sizes) == 50 << 20 and max(sizes) <= 1 << 20


# -- directories -------------------------------------------------------------------------------


def test_a_directory_is_read_recursively_in_sorted_order_each_file_its_own_source(send, receiver, tmp_path):
    tree = tmp_path / "logs"
    for day in ("2024-01-02", "2024-01-01"):
        (tree / day).mkdir(parents=True)
        for part in ("part-1.gz", "part-0.gz"):
            (tree / day / part).write_bytes(gzip.compress(ndjson([{"type": "track", "userId": "u", "event": "E"}])))
    (tree / ".hidden").mkdir()
    (tree / ".hidden" / "x.ndjson").write_bytes(b"bad\n")
    (tree / "2024-01-01" / ".DS_Store").write_bytes(b"\x00\x01junk")
    run = send("import", str(tree), "--concurrency", "1", "--batch-events", "1", "--json", "--checkpoint", "ck.json")
    assert run.exit_code == 0, run.stderr
    assert summary(run)["read"] == 4
    ids = [c["messageId"] for c in receiver.calls]
    # identical lines at line 1 of same-named files: four different ids (seeded by the path
    # under the directory argument)
    assert len(set(ids)) == 4
    sources = json.loads((tmp_path / "ck.json").read_text())["sources"]
    assert sorted(Path(key).relative_to(tree.resolve()).as_posix() for key in sources) == [
        "2024-01-01/part-0.gz",
        "2024-01-01/part-1.gz",
        "2024-01-02/part-0.gz",
        "2024-01-02/part-1.gz",
    ]
    receiver.calls.clear()
    # the same tree by another path: the same ids
    assert (
        send(
            "import", str(tmp_path / ".." / tmp_path.name / "logs"), "--concurrency", "1", "--batch-events", "1"
        ).exit_code
        == 0
    )
    assert [c["messageId"] for c in receiver.calls] == ids


def test_a_reject_in_a_tree_names_its_file_and_line(send, receiver, tmp_path):
    (tmp_path / "t" / "b").mkdir(parents=True)
    (tmp_path / "t" / "a.ndjson").write_bytes(ndjson(tracks(2)))
    (tmp_path / "t" / "b" / "c.ndjson.gz").write_bytes(gzip.compress(ndjson(tracks(1) + [b"oops"])))
    run = send("import", "t")
    assert run.exit_code == 1
    assert "t/b/c.ndjson.gz:2: " in run.stderr
    (reject,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert (reject["source"], reject["line"]) == ("t/b/c.ndjson.gz", 2)


def test_symlinks_are_not_followed_and_each_kind_skipped_is_one_warning(send, receiver, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ndjson").write_bytes(ndjson(tracks(1, start=900)))  # stands for /etc/passwd
    tree = tmp_path / "t"
    (tree / "real").mkdir(parents=True)
    (tree / "real" / "a.ndjson").write_bytes(ndjson(tracks(2)))
    (tree / "file-link.ndjson").symlink_to(outside / "secret.ndjson")
    (tree / "folder-link").symlink_to(outside)
    (tree / "dangling.ndjson").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tree / "pipe.ndjson")  # opened, it would block the import for good
    run = send("import", "t", "--json")
    assert run.exit_code == 0, run.stderr
    assert sorted(c["properties"]["n"] for c in receiver.calls) == [1, 2]
    warnings = [line for line in run.stderr.splitlines() if line.startswith("Warning:")]
    links, special = warnings
    assert links.startswith("Warning: skipped 3 symbolic links under t (links are not followed by default): ")
    assert links.endswith(": t/dangling.ndjson, t/file-link.ndjson, t/folder-link")
    assert special.startswith("Warning: skipped 1 special file under t") and special.endswith(": t/pipe.ndjson")


def test_follow_symlinks_reads_what_links_point_at(send, receiver, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "b.ndjson").write_bytes(ndjson(tracks(1, start=2)))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.ndjson").write_bytes(ndjson(tracks(1)))
    (tmp_path / "t" / "more").symlink_to(tmp_path / "outside")
    run = send("import", "t", "--follow-symlinks")
    assert run.exit_code == 0, run.stderr
    assert sorted(c["properties"]["n"] for c in receiver.calls) == [1, 2] and "Warning" not in run.stderr


def test_followed_symlinks_read_each_file_once_and_end_at_loops(tmp_path):
    from cdpcli.importing.sources import make_sources

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.ndjson").write_bytes(ndjson(tracks(1)))
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.ndjson").write_bytes(ndjson(tracks(1)))
    (tree / "again.ndjson").symlink_to(tree / "a.ndjson")  # the same file twice: read once
    (tree / "more").symlink_to(outside)
    (tree / "more-again").symlink_to(outside)
    (outside / "up").symlink_to(tree)  # a loop: t/more/up is t
    sources, warnings = make_sources([str(tree)], follow_symlinks=True)
    assert sorted(os.path.relpath(s.name, tree) for s in sources) == ["a.ndjson", "more/b.ndjson"]
    again, loops = sorted(warnings)
    assert loops.startswith("skipped 2 repeated folders under") and loops.endswith(
        "t/more/up, " + str(tree / "more-again")
    )
    assert again.startswith("skipped 1 second name under") and again.endswith("t/again.ndjson")


def test_a_binary_file_is_one_reject_not_one_per_line(send, receiver, tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    # a PNG's signature and IHDR chunk (PNG spec, 5.2 and 11.2.2), then bytes with newlines in them
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 40
    (tree / "photo.ndjson").write_bytes(png)
    (tree / "z.ndjson").write_bytes(ndjson(tracks(2)))
    run = send("import", "t", "--json")
    assert run.exit_code == 1, run.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert (record["source"], record["line"]) == ("t/photo.ndjson", 1)
    assert record["error"].startswith("not text (NUL bytes in its first block)")
    assert len(receiver.calls) == 2 and summary(run)["invalid_reasons"] == {"not text": 1}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ("\ufeff".encode("utf-16-le") + b'{\x00"\x00t\x00', "UTF-16 text"),
        (bytes([0x80 + n % 60 for n in range(3000)]), "not text (its first block is mostly control bytes"),
    ],
)
def test_text_that_is_not_utf8_is_one_reject(send, receiver, tmp_path, data, error):
    (tmp_path / "x.ndjson").write_bytes(data)
    run = send("import", "x.ndjson")
    assert run.exit_code == 1
    (record,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert record["line"] == 1 and record["error"].startswith(error)


def test_a_tar_on_stdin_never_reaches_the_ndjson_reader_as_one_stream(send, receiver, tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = ndjson(tracks(3))
        info = tarfile.TarInfo("day-1.ndjson")
        info.size = len(member)
        archive.addfile(info, io.BytesIO(member))
    run = send("import", "--json", input=buffer.getvalue())
    assert run.exit_code == 1
    assert receiver.calls == []
    (record,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert record["error"].startswith("a tar archive read as one stream")


def test_a_line_over_the_limit_is_a_reject_and_the_import_goes_on(send, receiver, tmp_path, monkeypatch):
    from cdpcli.importing import sources

    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1 << 20)  # 64 MB in the product: the same code
    long = b'{"type":"track","userId":"u","event":"E","properties":{"x":"' + b"y" * (3 << 20) + b'"}}'
    (tmp_path / "big.ndjson").write_bytes(ndjson(tracks(1)) + long + b"\n" + ndjson(tracks(2, start=2)))
    run = send("import", "big.ndjson", "--json")
    assert run.exit_code == 1, run.stderr
    assert sorted(c["properties"]["n"] for c in receiver.calls) == [1, 2, 3]
    (record,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert record["line"] == 2 and record["error"].startswith("line longer than 1 MB")
    assert len(record["input"]) == 1024
    result = summary(run)
    assert (result["read"], result["invalid_reasons"]) == (4, {"line too long": 1})


def test_a_line_of_the_input_that_starts_with_nul_is_not_taken_for_a_marker(send, receiver, tmp_path):
    forged = b'\x00invalid:{"error":"forged","reason":"forged","input":"x"}'
    (tmp_path / "n.ndjson").write_bytes(ndjson(tracks(200)) + forged + b"\n")  # past the first 8 KB
    run = send("import", "n.ndjson", "--json")
    assert run.exit_code == 1
    result = summary(run)
    assert result["sent"] == 200 and result["invalid_reasons"] == {"invalid JSON": 1}


# -- Segment and RudderStack archives ------------------------------------------------------------


def segment_call(n: int, day: str, **extra) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n}",
        "messageId": f"ajs-{day}-{n}",
        "timestamp": f"{day}T10:00:{n % 60:02d}.000Z",
        "originalTimestamp": f"{day}T10:00:{n % 60:02d}.000Z",
        "sentAt": f"{day}T10:00:{n % 60:02d}.100Z",
        "receivedAt": f"{day}T10:00:{n % 60:02d}.200Z",
        "properties": {"total": n, "version": 2},  # a nested "version" is the call's own
        "context": {"library": {"name": "analytics.js", "version": "4.1.0"}, "ip": "1.2.3.4"},
        "projectId": "proj_123",
        "version": 2,
        "_metadata": {"bundled": ["Segment.io"], "unbundled": []},
        **extra,
    }


def test_a_segment_archive_is_replayed_with_its_ids_and_no_write_key(send, receiver, tmp_path):
    root = tmp_path / "segment-logs" / "src_abc"
    expected = []
    for day_no, day in enumerate(("2024-03-01", "2024-03-02", "2024-03-03")):
        (root / day).mkdir(parents=True)
        for part in range(2):
            calls = [segment_call(day_no * 100 + part * 10 + i, day) for i in range(5)]
            if day_no == 1 and part == 0:
                calls = [dict(c, writeKey=WRITE_KEY) for c in calls]
            expected += [c["messageId"] for c in calls]
            (root / day / f"1709251200000.{part}.gz").write_bytes(gzip.compress(ndjson(calls)))
    run = send("import", str(tmp_path / "segment-logs"), "--from", "segment", "--json")
    assert run.exit_code == 0, run.stderr
    assert summary(run)["sent"] == 30
    assert [c["messageId"] for c in receiver.calls] == expected  # every id kept, in path order
    sent = [call for request in receiver.requests for call in request.body["batch"]]  # as on the wire
    assert len(sent) == 30
    for call in sent:
        assert not {"writeKey", "projectId", "receivedAt", "_metadata", "version"} & call.keys()
        assert call["context"]["library"] == {"name": "analytics.js", "version": "4.1.0"}  # the SDK's own
        assert call["timestamp"].startswith("2024-03-0") and call["sentAt"] and call["originalTimestamp"]
        assert call["properties"]["version"] == 2
    for request in receiver.requests:
        assert WRITE_KEY not in json.dumps(request.body) and "writeKey" not in json.dumps(request.body)
    assert WRITE_KEY not in run.stdout + run.stderr


def test_a_fixed_rejects_file_fed_back_is_chosen_by_the_calls_in_it(send, receiver, tmp_path):
    """Rejects records as cdp writes them ({"source","line","error","input"}), their inputs
    fixed: --types, --since and --from apply to the call inside, as to the original line."""
    calls = [
        segment_call(1, "2024-03-01"),  # track, kept
        segment_call(2, "2023-03-01"),  # before --since: skipped
        dict(segment_call(3, "2024-03-02"), type="identify", traits={"plan": "pro"}),  # not a track
    ]
    records = [
        {"source": "events.ndjson", "line": n, "error": "call is 40,000 bytes", "input": json.dumps(call)}
        for n, call in enumerate(calls, 1)
    ]
    (tmp_path / "fixed.ndjson").write_bytes(ndjson(records))
    run = send("import", "fixed.ndjson", "--types", "track", "--since", "2024-01-01", "--from", "segment", "--json")
    assert run.exit_code == 0, run.stderr
    (sent,) = [call for request in receiver.requests for call in request.body["batch"]]
    assert sent["messageId"] == calls[0]["messageId"]
    assert not {"receivedAt", "projectId", "_metadata"} & sent.keys()  # the archive's envelope, dropped
    assert summary(run)["skipped_reasons"] == {"since": 1, "types": 1}


def test_rudderstack_envelope_keys_are_dropped(send, receiver, tmp_path):
    call = {
        "type": "identify",
        "userId": "u1",
        "messageId": "rs-1",
        "timestamp": "2024-03-01T00:00:00.000Z",
        "traits": {"email": "a@example.com"},
        "channel": "web",
        "rudderId": "f1e2",
        "request_ip": "10.0.0.1",
        "receivedAt": "2024-03-01T00:00:01.000Z",
        "writeKey": WRITE_KEY,
    }
    source = tmp_path / "rs.gz"
    source.write_bytes(gzip.compress(ndjson([call])))
    assert send("import", str(source), "--from", "rudderstack").exit_code == 0
    (sent,) = receiver.requests[0].body["batch"]
    assert sent["messageId"] == "rs-1" and sent["traits"] == {"email": "a@example.com"}
    assert not {"channel", "rudderId", "request_ip", "receivedAt", "writeKey"} & sent.keys()


def test_from_needs_a_known_archive(send, tmp_path):
    (tmp_path / "a.ndjson").write_bytes(ndjson(tracks(1)))
    run = send("import", "a.ndjson", "--from", "heap")
    assert run.exit_code == 2 and "--from 'heap': expected one of segment, rudderstack, mixpanel" in run.stderr


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_maps_columns_to_traits_and_call_fields(send, receiver, tmp_path):
    (tmp_path / "people.csv").write_text(
        "id,E-mail,plan,age,vip,score,zip,timestamp\n"
        "1,a@example.com,pro,31,true,4.5,02134,2024-01-01T00:00:00Z\n"
        "2,,free,,FALSE,,,\n"
    )
    run = send(
        "import",
        "people.csv",
        "--type",
        "identify",
        "--column",
        "id=userId",
        "--column",
        "E-mail=traits.email",
        "--infer-types",
        "--json",
    )
    assert run.exit_code == 0, run.stderr
    first, second = receiver.calls
    assert first["userId"] == "1" and first["timestamp"] == "2024-01-01T00:00:00.000Z"
    assert first["traits"] == {
        "email": "a@example.com",
        "plan": "pro",
        "age": 31,
        "vip": True,
        "score": 4.5,
        "zip": "02134",
    }
    assert second["traits"] == {"plan": "free", "vip": False}  # empty cells left out
    result = summary(run)
    assert (result["read"], result["sent"], result["skipped"]) == (3, 2, 1)
    assert result["skipped_reasons"] == {"csv header": 1}


def test_csv_values_stay_strings_without_infer_and_track_columns_go_to_properties(send, receiver, tmp_path):
    (tmp_path / "orders.csv.gz").write_bytes(
        gzip.compress(b"userId,event,total,context.ip\nu1,Order Completed,12,1.2.3.4\n")
    )
    run = send("import", "orders.csv.gz", "--type", "track")
    assert run.exit_code == 0, run.stderr
    (call,) = receiver.calls
    assert call["event"] == "Order Completed" and call["properties"] == {"total": "12"}
    assert call["context"]["ip"] == "1.2.3.4"


def test_csv_rejects_carry_their_line_in_the_file(send, receiver, tmp_path):
    (tmp_path / "rows.txt").write_text(
        "userId,note\n"
        'u1,"two\nlines"\n'  # lines 2-3
        ",no id\n"  # line 4: no userId
        "u3,x,extra\n"  # line 5: too many cells
        "u4,ok\n"
    )
    run = send("import", "rows.txt", "--format", "csv", "--type", "identify", "--json")
    assert run.exit_code == 1
    assert [c["userId"] for c in receiver.calls] == ["u1", "u4"]
    assert receiver.calls[0]["traits"] == {"note": "two\nlines"}
    rejects = {r["line"]: r for r in map(json.loads, (tmp_path / "cdp-rejects.ndjson").read_text().splitlines())}
    assert sorted(rejects) == [4, 5]
    assert rejects[5]["input"] == "u3,x,extra" and "row has 3 cells" in rejects[5]["error"]
    assert "rows.txt:4:" in run.stderr and "rows.txt:5:" in run.stderr
    result = summary(run)
    assert result["read"] == 6 and result["blank"] == 1  # the quoted cell's second line
    assert result["read"] == result["sent"] + result["invalid"] + result["skipped"] + result["blank"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "a CSV row needs a call type"),
        (["--type", "identify", "--column", "nope=userId"], "has no column 'nope'"),
        (["--type", "identify", "--column", "id"], "--column 'id': expected SRC=DEST"),
        (["--type", "identify", "--column", "id=traits..x"], "DEST 'traits..x' has an empty name between dots"),
    ],
)
def test_csv_usage_errors(send, receiver, tmp_path, args, message):
    (tmp_path / "p.csv").write_text("id,email\n1,a@b.c\n")
    run = send("import", "p.csv", *args)
    assert run.exit_code == 2 and message in run.stderr and receiver.requests == []


# -- choosing what to send -----------------------------------------------------------------------


def stamped(times: list[str]) -> list[dict]:
    return [
        {"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}", "timestamp": t}
        for i, t in enumerate(times)
    ]


def test_since_is_inclusive_and_until_exclusive(send, receiver, tmp_path):
    times = [
        "2024-01-01T23:59:59.999Z",
        "2024-01-02T00:00:00.000Z",
        "2024-01-02T23:59:59Z",
        "2024-01-03T00:00:00Z",
        "2024-01-02T01:00:00+01:00",
    ]
    (tmp_path / "t.ndjson").write_bytes(ndjson(stamped(times)))
    run = send("import", "t.ndjson", "--since", "2024-01-02", "--until", "2024-01-03T00:00:00Z", "--json")
    assert run.exit_code == 0, run.stderr
    assert [c["messageId"] for c in receiver.calls] == ["m1", "m2", "m4"]  # m4 is 00:00Z
    result = summary(run)
    assert result["skipped_reasons"] == {"since": 1, "until": 1}
    assert not (tmp_path / "cdp-rejects.ndjson").exists()
    assert "2 skipped (1 --since, 1 --until)." in run.stderr or "2 skipped (1 --until, 1 --since)." in run.stderr


def test_types_events_and_exclude_events(send, receiver, tmp_path):
    calls = [
        {"type": "identify", "userId": "a"},
        {"type": "track", "userId": "a", "event": "Keep"},
        {"type": "track", "userId": "a", "event": "Drop"},
        {"type": "page", "userId": "a", "name": "Home"},
        {"type": "track", "userId": "a", "event": "Other"},
    ]
    (tmp_path / "c.ndjson").write_bytes(ndjson(calls))
    run = send(
        "import", "c.ndjson", "--types", "identify,track", "--events", "Keep,Drop", "--exclude-events", "Drop", "--json"
    )
    assert run.exit_code == 0
    assert [(c["type"], c.get("event")) for c in receiver.calls] == [("identify", None), ("track", "Keep")]
    assert summary(run)["skipped_reasons"] == {"events": 1, "exclude_events": 1, "types": 1}


def test_limit_stops_after_n_calls_and_a_rerun_continues(send, receiver, tmp_path):
    (tmp_path / "l.ndjson").write_bytes(ndjson(tracks(10)))
    run = send("import", "l.ndjson", "--limit", "3", "--checkpoint", "ck.json", "--json")
    assert run.exit_code == 0
    assert [c["properties"]["n"] for c in receiver.calls] == [1, 2, 3]
    result = summary(run)
    assert result["sent"] == result["read"] == 3 and result["skipped"] == 0
    receiver.calls.clear()
    run = send("import", "l.ndjson", "--limit", "3", "--checkpoint", "ck.json", "--json")
    assert [c["properties"]["n"] for c in receiver.calls] == [4, 5, 6]  # nothing skipped in between


def test_limit_in_a_compressed_chunk_leaves_the_rest_for_the_next_run(send, receiver, tmp_path):
    (tmp_path / "l.gz").write_bytes(gzip.compress(ndjson(tracks(500))))
    for first in (1, 8, 15):
        receiver.calls.clear()
        assert send("import", "l.gz", "--limit", "7", "--checkpoint", "ck.json").exit_code == 0
        assert [c["properties"]["n"] for c in receiver.calls] == list(range(first, first + 7))


def test_sample_is_reproducible_and_near_the_fraction(send, receiver, tmp_path):
    (tmp_path / "s.ndjson").write_bytes(ndjson(tracks(2000)))
    assert send("import", "s.ndjson", "--sample", "0.1").exit_code == 0
    first = [c["messageId"] for c in receiver.calls]
    receiver.calls.clear()
    assert send("import", "s.ndjson", "--sample", "0.1").exit_code == 0
    assert [c["messageId"] for c in receiver.calls] == first
    assert 140 < len(first) < 260
    receiver.calls.clear()
    assert send("import", "s.ndjson", "--sample", "1").exit_code == 0 and len(receiver.calls) == 2000


def test_skipped_lines_are_settled_in_the_checkpoint(send, receiver, tmp_path):
    (tmp_path / "k.ndjson").write_bytes(ndjson(stamped(["2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"])))
    run = send("import", "k.ndjson", "--until", "2025-01-01", "--checkpoint", "ck.json")
    assert run.exit_code == 0 and len(receiver.calls) == 1
    (entry,) = json.loads((tmp_path / "ck.json").read_text())["sources"].values()
    assert entry["settled"] == 2
    receiver.calls.clear()
    run = send("import", "k.ndjson", "--until", "2025-01-01", "--checkpoint", "ck.json", "--json")
    assert receiver.calls == [] and summary(run)["skipped_reasons"] == {"checkpoint": 2}


@pytest.mark.parametrize(
    ("first", "then", "differs"),
    [
        (["--sample", "0.3"], [], "--sample 0.3 then, (not given) now"),
        (["--types", "track"], ["--types", "identify,track"], "--types track then, identify,track now"),
        ([], ["--until", "2025-01-01"], "--until (not given) then, 2025-01-01T00:00:00.000Z now"),
        (["--from", "segment"], [], "--from segment then"),
    ],
)
def test_a_checkpoint_refuses_a_run_under_another_selection(send, receiver, tmp_path, first, then, differs):
    (tmp_path / "c.ndjson").write_bytes(ndjson(tracks(100)))
    run = send("import", "c.ndjson", "--checkpoint", "ck.json", *first)
    assert run.exit_code == 0, run.stderr
    sent = len(receiver.calls)
    again = send("import", "c.ndjson", "--checkpoint", "ck.json", *then)
    assert again.exit_code == 2, again.stderr
    assert "--checkpoint 'ck.json' was written under another selection of lines: " in again.stderr
    assert differs in again.stderr and "remove it to import from the start" in again.stderr
    assert len(receiver.calls) == sent  # nothing more sent
    same = send("import", "c.ndjson", "--checkpoint", "ck.json", "--json", *first)  # the same choices resume
    assert same.exit_code == 0 and summary(same)["skipped_reasons"].get("checkpoint") == 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "0"], "--sample must be a fraction above 0 and at most 1"),
        (["--sample", "1.5"], "--sample must be a fraction above 0 and at most 1"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--types", "identify,bogus"], "--types 'bogus'"),
        (["--since", "yesterday"], "--since 'yesterday': expected an ISO-8601 date or time"),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "--since must be before --until"),
        (["--format", "xml"], "--format 'xml': expected one of ndjson, csv"),
    ],
)
def test_filter_usage_errors(send, receiver, tmp_path, args, message):
    (tmp_path / "a.ndjson").write_bytes(ndjson(tracks(1)))
    run = send("import", "a.ndjson", *args)
    assert run.exit_code == 2, run.stderr
    assert message in run.stderr and receiver.requests == []
    assert API_KEY not in run.stderr


@pytest.mark.parametrize("mode", ["skip", "fail"])
def test_recent_takes_a_call_with_no_timestamp_as_recent(send, receiver, tmp_path, mode):
    """It goes out stamped now, so it is as recent as a call can be (both preparer paths: a
    numeric userId takes the plain one)."""
    lines = [
        {"type": "track", "userId": "u1", "event": "E"},
        {"type": "track", "userId": 42, "event": "E"},
        {"type": "track", "userId": "u3", "event": "E", "timestamp": "2020-01-01T00:00:00.000Z"},
    ]
    (tmp_path / "r.ndjson").write_bytes(ndjson(lines))
    run = send("import", "r.ndjson", "--recent", mode, "--json")
    assert [c["userId"] for c in receiver.calls] == ["u3"]
    result = summary(run)
    assert result["recent"] == 2
    if mode == "skip":
        assert run.exit_code == 0 and result["skipped_reasons"] == {"recent": 2}
    else:
        assert run.exit_code == 1 and result["invalid_reasons"] == {"recent": 2}
        assert "no timestamp: it would be sent stamped now, within the last 72 hours" in run.stderr


def test_a_rejects_file_of_a_vendor_export_fed_back_is_mapped_like_the_export(send, receiver, tmp_path):
    """Records of a Mixpanel export (tests/data/vendors/mixpanel: the export API's shape) as cdp
    writes rejects: a raw record is mapped as the original line was; a call the mapping made
    (rejected later, fixed since) is sent as it is, not mapped twice."""
    raw = (Path(__file__).parent / "data" / "vendors" / "mixpanel" / "input.jsonl").read_text().splitlines()[0]
    mapped = {"type": "track", "event": "Fixed", "userId": "u_1", "messageId": "m-fixed-1"}
    records = [
        {"source": "export.ndjson", "line": 1, "error": "mixpanel: bad_value", "input": raw},
        {"source": "export.ndjson", "line": 2, "error": "call is 40,000 bytes", "input": json.dumps(mapped)},
    ]
    (tmp_path / "fixed.ndjson").write_bytes(ndjson(records))
    run = send("import", "fixed.ndjson", "--from", "mixpanel", "--json")
    assert run.exit_code == 0, run.stderr
    sent = {call["messageId"]: call for call in receiver.calls}
    assert sent["a1f3c9e2d4b54b7f9e0a6c2d1b3e5f70"]["userId"] == "u_8812"  # $insert_id, $user_id
    assert sent["m-fixed-1"]["event"] == "Fixed"

"""Archives that hold files: a zip or a tar (plain, gz, bz2, xz) read member by member, each
member its own source named ARCHIVE!MEMBER (own line numbers, rejects, checkpoint entry, id
seed), compressed members decoded as files are."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from cdpcli.errors import UsageError
from cdpcli.importing import archives
from cdpcli.importing.decode import DamagedInput
from cdpcli.importing.sources import make_sources, source_lines


def ndjson(calls: list[dict]) -> bytes:
    return b"".join(json.dumps(call).encode() + b"\n" for call in calls)


def tracks(count: int, start: int = 1) -> list[dict]:
    return [
        {"type": "track", "userId": f"u-{i}", "event": "E", "properties": {"n": i}} for i in range(start, start + count)
    ]


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


# Amplitude's Export API answers a zip of gzipped JSON-lines files, one or more per hour,
# named PROJECT_yyyy-MM-dd_H#PARTITION.json.gz [amplitude.com/docs/apis/analytics/export,
# amplitude.com/docs/data/destinations/amazon-s3]; the folder inside is the project id.
AMPLITUDE_MEMBERS = ("123/123_2024-03-01_1#0.json.gz", "123/123_2024-03-01_2#0.json.gz")


def make_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("123/", b"")  # a directory entry
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("__MACOSX/123/._123_2024-03-01_1#0.json.gz", b"\x00\x05\x16\x07junk")
        archive.writestr(".DS_Store", b"\x00\x00\x00\x01Bud1")


def make_tar(path: Path, members: dict[str, bytes], mode: str) -> None:
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        directory = tarfile.TarInfo("export")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1717243512
            archive.addfile(info, io.BytesIO(data))
        hidden = tarfile.TarInfo("export/.hidden.ndjson")
        hidden.size = 4
        archive.addfile(hidden, io.BytesIO(b"bad\n"))


def test_zip_members_are_sources_named_archive_bang_member(tmp_path: Path) -> None:
    zipped = tmp_path / "export.zip"
    make_zip(zipped, {name: gzip.compress(ndjson(tracks(3, start=i * 10))) for i, name in enumerate(AMPLITUDE_MEMBERS)})
    sources, warnings = make_sources([str(zipped)])
    assert warnings == []
    assert [s.label for s in sources] == [f"{zipped}!{name}" for name in AMPLITUDE_MEMBERS]
    assert [s.key for s in sources] == [f"{zipped.resolve()}!{name}" for name in AMPLITUDE_MEMBERS]
    assert len({s.id_seed for s in sources}) == 2
    assert all(s.is_file and s.version for s in sources)
    # the gzipped member is decoded as a gzipped file is
    assert [json.loads(line)["properties"]["n"] for line in source_lines(sources[1])] == [10, 11, 12]


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_members_in_every_compression(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "export.tar"
    members = {f"export/part-{i}.ndjson": ndjson(tracks(5, start=i * 100)) for i in range(3)}
    members["export/part-3.ndjson.gz"] = gzip.compress(ndjson(tracks(2, start=300)))
    make_tar(path, members, mode)
    sources, _ = make_sources([str(path)])
    assert [s.label.split("!", 1)[1] for s in sources] == list(members)
    # out of order too: back to an earlier member starts the shared stream over
    for source in [sources[2], sources[0], sources[3], sources[1]]:
        numbers = [json.loads(line)["properties"]["n"] for line in source_lines(source)]
        start = int(source.label.rsplit("-", 1)[1].split(".")[0]) * 100
        assert numbers == list(range(start, start + (2 if start == 300 else 5)))


def test_a_compressed_tar_is_decompressed_once_for_members_read_in_order(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "many.tar.gz"
    make_tar(path, {f"export/{i:03d}.ndjson": ndjson(tracks(20, start=i * 1000)) for i in range(60)}, "w:gz")
    opened = []
    real_open = archives._SharedStream._open

    def counting(self):
        opened.append(self.path)
        return real_open(self)

    monkeypatch.setattr(archives._SharedStream, "_open", counting)
    sources, _ = make_sources([str(path)])
    total = sum(len(list(source_lines(source))) for source in sources)
    assert total == 60 * 20
    # one decompressing stream for all 60 members (not one per member read from the start)
    assert len(opened) == 1


def test_an_archive_with_no_files_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    make_zip(path, {})
    with pytest.raises(UsageError, match="no files"):
        make_sources([str(path)])


def test_plain_and_gzip_files_are_not_archives(tmp_path: Path) -> None:
    plain = tmp_path / "a.ndjson"
    plain.write_bytes(ndjson(tracks(1)))
    packed = tmp_path / "a.ndjson.gz"
    packed.write_bytes(gzip.compress(ndjson(tracks(1))))
    assert archives.archive_kind(str(plain)) is None
    assert archives.archive_kind(str(packed)) is None
    tar_gz = tmp_path / "named-wrong.ndjson"  # the bytes decide, not the name
    make_tar(tar_gz, {"x.ndjson": ndjson(tracks(1))}, "w:gz")
    assert archives.archive_kind(str(tar_gz)) == "tar"


def test_a_zip_imports_with_rejects_naming_the_member_and_resumes(send, receiver, tmp_path: Path) -> None:
    zipped = tmp_path / "export.zip"
    second = tracks(3, start=20)
    make_zip(
        zipped,
        {
            AMPLITUDE_MEMBERS[0]: gzip.compress(ndjson(tracks(3))),
            AMPLITUDE_MEMBERS[1]: gzip.compress(ndjson(second[:1]) + b"oops\n" + ndjson(second[1:])),
        },
    )
    run = send("import", str(zipped), "--json", "--checkpoint", "ck.json", "--batch-events", "1")
    assert run.exit_code == 1, run.stderr
    assert (summary(run)["sent"], summary(run)["invalid"]) == (6, 1)
    assert f"{zipped}!{AMPLITUDE_MEMBERS[1]}:2:" in run.stderr
    (reject,) = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert (reject["source"], reject["line"]) == (f"{zipped}!{AMPLITUDE_MEMBERS[1]}", 2)
    entries = json.loads((tmp_path / "ck.json").read_text())["sources"]
    assert sorted(entries) == [f"{zipped.resolve()}!{name}" for name in AMPLITUDE_MEMBERS]
    ids = sorted(call["messageId"] for call in receiver.calls)
    receiver.calls.clear()
    again = send("import", str(zipped), "--json", "--checkpoint", "ck.json")
    assert again.exit_code in (0, 1), again.stderr
    assert receiver.calls == []  # every line was settled: nothing sent twice
    # without the checkpoint: the same ids (seeded by archive and member names)
    send("import", str(zipped), "--json", "--batch-events", "1")
    assert sorted(call["messageId"] for call in receiver.calls) == ids


def test_a_damaged_member_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    zipped = tmp_path / "export.zip"
    data = ndjson(tracks(200))
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.ndjson", data)
    raw = bytearray(zipped.read_bytes())
    at = raw.index(b"a.ndjson") + len(b"a.ndjson") + 40  # inside the deflated bytes
    raw[at] ^= 0xFF
    zipped.write_bytes(bytes(raw))
    (source,), _ = make_sources([str(zipped)])
    with pytest.raises(DamagedInput, match="damaged"):
        list(source_lines(source))


def test_a_cut_off_tar_gz_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "export.tar.gz"
    make_tar(path, {f"part-{i}.ndjson": ndjson(tracks(300, start=i * 1000)) for i in range(3)}, "w:gz")
    sources, _ = make_sources([str(path)])
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # the download broke after listing
    with pytest.raises(DamagedInput, match="damaged|cut off"):
        for source in sources:
            list(source_lines(source))


@pytest.mark.parametrize(
    "data", [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage!" * 40, b"BZh9garbage" * 40, b"\xfd7zXZ\x00junk" * 40]
)
def test_a_damaged_compressed_file_is_not_taken_for_an_archive(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "events.gz"
    path.write_bytes(data)
    assert archives.archive_kind(str(path)) is None  # read as a compressed file: its error names it


def test_a_damaged_member_is_one_reject_and_the_import_goes_on(send, receiver, tmp_path: Path) -> None:
    """As SPEC has it for a damaged compressed file: the members before and after it are
    imported, the damaged one is one rejects record (exit 1)."""
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.ndjson", ndjson(tracks(3)))
        archive.writestr("b.ndjson", ndjson(tracks(200, start=100)))
        archive.writestr("c.ndjson", ndjson(tracks(3, start=1000)))
    raw = bytearray(zipped.read_bytes())
    at = raw.index(b"b.ndjson") + len(b"b.ndjson") + 40  # inside b's deflated bytes
    raw[at] ^= 0xFF
    zipped.write_bytes(bytes(raw))
    run = send("import", str(zipped), "--json")
    assert run.exit_code == 1, run.stderr
    numbers = {call["properties"]["n"] for call in receiver.calls}
    assert {1, 2, 3, 1000, 1001, 1002} <= numbers  # the members around it
    rejects = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert [r["source"] for r in rejects] == [f"{zipped}!b.ndjson"]
    assert "damaged" in rejects[0]["error"]

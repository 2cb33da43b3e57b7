"""Resuming from a checkpoint never settles a line that was not delivered or rejected: not the
fragment before a damaged file's cut, not the lines an older checkpoint's unrecorded selection
left out."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib

from tests.test_import_inputs import COMPRESSORS, ndjson, summary, tracks


def rejects(tmp_path) -> list[dict]:
    path = tmp_path / "cdp-rejects.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sent_numbers(receiver) -> list[int]:
    return sorted(c["properties"]["n"] for c in receiver.calls)


# -- a damaged file, repaired between runs ---------------------------------------------------


def cut_inside_a_line(data: bytes) -> tuple[bytes, int]:
    """`data` (gzip) cut so that what decompresses of it ends inside a line: the cut bytes, and
    how many whole lines come before the cut."""
    for end in range(len(data) // 2, len(data)):
        readable = zlib.decompressobj(wbits=31).decompress(data[:end])
        if readable and not readable.endswith(b"\n"):
            return data[:end], readable.count(b"\n")
    raise AssertionError("no cut inside a line")


def test_a_repaired_file_resumes_from_the_line_the_damage_cut(send, receiver, tmp_path):
    whole = ndjson(tracks(3000))
    full = gzip.compress(whole)
    cut, before = cut_inside_a_line(full)
    (tmp_path / "part.ndjson.gz").write_bytes(cut)
    (tmp_path / "good.ndjson").write_bytes(ndjson(tracks(3, start=5001)))
    args = ("import", "part.ndjson.gz", "good.ndjson", "--json", "--checkpoint", "ck.json")
    run = send(*args)
    assert run.exit_code == 1, run.stderr
    assert sent_numbers(receiver) == [*range(1, before + 1), 5001, 5002, 5003]
    (record,) = rejects(tmp_path)
    assert record["line"] == before + 1 and "the gzip data ends early" in record["error"]
    assert record["input"]  # the fragment of that line
    saved = json.loads((tmp_path / "ck.json").read_text())["sources"]
    assert saved[os.path.realpath("part.ndjson.gz")]["settled"] == before  # not the fragment

    # still cut: the cut line is read again and is still damaged (exit 1), but its record is
    # not written twice, and nothing is sent again
    receiver.calls.clear()
    again = send(*args)
    assert again.exit_code == 1, again.stderr
    assert receiver.calls == [] and summary(again)["sent"] == 0
    assert summary(again)["invalid_reasons"] == {"damaged": 1} and summary(again)["skipped"] == before + 3
    assert len(rejects(tmp_path)) == 1

    # re-downloaded whole: the rest is sent, from the line the cut went through
    (tmp_path / "part.ndjson.gz").write_bytes(full)
    repaired = send(*args)
    assert repaired.exit_code == 0, repaired.stderr
    assert sent_numbers(receiver) == list(range(before + 1, 3001))
    assert summary(repaired)["skipped"] == before + 3
    saved = json.loads((tmp_path / "ck.json").read_text())["sources"]
    assert saved[os.path.realpath("part.ndjson.gz")]["settled"] == 3000


def test_each_compression_keeps_the_fragment_unsettled(send, receiver, tmp_path):
    for kind, compress in COMPRESSORS.items():  # bzip2: whole 900 KB blocks, no line before the cut
        data = compress(ndjson(tracks(400)))
        (tmp_path / f"cut.{kind}").write_bytes(data[: len(data) * 2 // 3])
        run = send("import", f"cut.{kind}", "--json", "--checkpoint", f"{kind}.ckpt")
        assert run.exit_code == 1, run.stderr
        delivered = summary(run)["sent"]
        saved = json.loads((tmp_path / f"{kind}.ckpt").read_text())["sources"]
        assert saved[os.path.realpath(f"cut.{kind}")]["settled"] == delivered
        (tmp_path / f"cut.{kind}").write_bytes(data)
        receiver.calls.clear()
        assert send("import", f"cut.{kind}", "--json", "--checkpoint", f"{kind}.ckpt").exit_code == 0
        assert sent_numbers(receiver) == list(range(delivered + 1, 401))


# -- a checkpoint written before selections were recorded -----------------------------------


def old_checkpoint(tmp_path, name: str, settled: int, first_line: bytes) -> None:
    """A checkpoint as cdp 0.2 wrote it (checkpoint.py before selections were recorded:
    version 1, per source its resolved path, settled count and first line's sha256)."""
    entry = {"settled": settled, "first_line_sha256": hashlib.sha256(first_line).hexdigest()}
    data = {"version": 1, "sources": {os.path.realpath(tmp_path / name): entry}}
    (tmp_path / "old.ckpt").write_text(json.dumps(data))


def test_an_old_checkpoint_that_settled_lines_is_refused(send, receiver, tmp_path):
    lines = ndjson(tracks(100))
    (tmp_path / "c.ndjson").write_bytes(lines)
    # 0.2 under --sample 0.3 settled all 100 lines, having sent 30: which ones, it did not say
    old_checkpoint(tmp_path, "c.ndjson", 100, lines.split(b"\n")[0])
    run = send("import", "c.ndjson", "--json", "--checkpoint", "old.ckpt")
    assert run.exit_code == 2, run.stderr
    assert receiver.calls == []
    assert "written by an older cdp, which did not record the selection" in run.stderr
    assert "remove it and run the import again from the start" in run.stderr
    assert '"ok": true' not in run.stdout


def test_an_old_checkpoint_that_settled_nothing_is_taken(send, receiver, tmp_path):
    lines = ndjson(tracks(5))
    (tmp_path / "c.ndjson").write_bytes(lines)
    old_checkpoint(tmp_path, "c.ndjson", 0, lines.split(b"\n")[0])
    run = send("import", "c.ndjson", "--json", "--checkpoint", "old.ckpt")
    assert run.exit_code == 0, run.stderr
    assert sent_numbers(receiver) == [1, 2, 3, 4, 5]
    saved = json.loads((tmp_path / "old.ckpt").read_text())
    assert (saved["version"], saved["selection"]) == (3, {})


def test_a_checkpoint_with_no_selection_resumes_without_one(send, receiver, tmp_path):
    (tmp_path / "c.ndjson").write_bytes(ndjson(tracks(5)))
    assert send("import", "c.ndjson", "--checkpoint", "ck.json", "--limit", "2").exit_code == 0
    receiver.calls.clear()
    run = send("import", "c.ndjson", "--checkpoint", "ck.json", "--json")
    assert run.exit_code == 0, run.stderr
    assert sent_numbers(receiver) == [3, 4, 5]


def test_a_sampled_checkpoint_is_refused_without_the_sample(send, receiver, tmp_path):
    (tmp_path / "c.ndjson").write_bytes(ndjson(tracks(100)))
    assert send("import", "c.ndjson", "--checkpoint", "ck.json", "--sample", "0.3").exit_code == 0
    run = send("import", "c.ndjson", "--checkpoint", "ck.json", "--json")
    assert run.exit_code == 2 and "another selection of lines" in run.stderr


def test_a_phased_import_does_not_resume_a_repaired_file_past_its_phases(send, receiver, tmp_path):
    calls = [
        {"type": "identify", "userId": f"u{n}", "traits": {"n": n}}
        if n % 2
        else {"type": "track", "userId": f"u{n}", "event": "E", "properties": {"n": n}}
        for n in range(1, 3001)
    ]
    full = gzip.compress(ndjson(calls))
    cut, before = cut_inside_a_line(full)
    (tmp_path / "part.ndjson.gz").write_bytes(cut)
    args = ("import", "part.ndjson.gz", "--order", "phased", "--json", "--checkpoint", "ck.json")
    assert send(*args).exit_code == 1
    assert len(receiver.calls) == before
    saved = json.loads((tmp_path / "ck.json").read_text())
    assert saved["phase"] == 3 and saved["sources"][os.path.realpath("part.ndjson.gz")]["damaged"] == before + 1
    # still cut: finished as it was, nothing sent, the damage still recorded
    receiver.calls.clear()
    assert send(*args).exit_code == 0 and receiver.calls == []
    saved = json.loads((tmp_path / "ck.json").read_text())
    assert saved["sources"][os.path.realpath("part.ndjson.gz")]["damaged"] == before + 1
    # whole again: its identifies and tracks after the cut belong to phases that are over;
    # skipping them would lose them without a word
    (tmp_path / "part.ndjson.gz").write_bytes(full)
    run = send(*args)
    assert run.exit_code == 2, run.stderr
    assert f"part.ndjson.gz reads past line {before:,} now, where it was cut or corrupt" in run.stderr
    assert "import part.ndjson.gz again on its own, in all phases, without this checkpoint" in run.stderr
    assert receiver.calls == []

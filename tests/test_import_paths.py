"""import_paths: what `cdp import PATH…` imports (files, directories, archives; s3:// URLs in
tests/test_import_s3.py), from Python, with the command's ids, rejects and checkpoint; and
scale_out.import_share, a share of a tree's files per task."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest

import cdpcli
from cdpcli.errors import UsageError
from cdpcli.importing.events import ImportEvents
from cdpcli.scale_out import import_share, total
from tests.conftest import API_KEY
from tests.test_import_inputs import ndjson, tracks


@pytest.fixture
def target(receiver):
    return cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)


def write_tree(root: Path) -> Path:
    """Names repeated in every folder (Segment's day/part layout) and a zip of two files."""
    for day in ("2024-01-01", "2024-01-02"):
        (root / day).mkdir(parents=True)
        (root / day / "part-0.gz").write_bytes(gzip.compress(ndjson(tracks(3))))  # the same lines
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("a.ndjson", ndjson(tracks(2, start=10) + [b"{not json"]))
        archive.writestr("b.ndjson", ndjson(tracks(2, start=20)))
    (root / "more.zip").write_bytes(packed.getvalue())
    return root


def test_import_paths_imports_a_tree_as_cdp_import_does(send, target, receiver, tmp_path):
    tree = write_tree(tmp_path / "tree")
    run = send("import", str(tree), "--rejects", str(tmp_path / "cli.rejects"), "-q")
    assert run.exit_code == 1  # the line that is not JSON
    from_cli = [c["messageId"] for c in receiver.calls]
    receiver.calls.clear()
    result = cdpcli.import_paths([str(tree)], target=target, rejects=str(tmp_path / "api.rejects"))
    assert (result.sent, result.invalid, result.exit_code) == (10, 1, 1)
    assert [c["messageId"] for c in receiver.calls] == from_cli and len(set(from_cli)) == 10
    (reject,) = [json.loads(line) for line in (tmp_path / "api.rejects").read_text().splitlines()]
    assert reject["source"] == f"{tree}/more.zip!a.ndjson" and reject["line"] == 3


def test_import_paths_takes_the_commands_options_and_resumes(target, receiver, tmp_path):
    tree = write_tree(tmp_path / "tree")
    checkpoint = str(tmp_path / "ck.json")
    first = cdpcli.import_paths(str(tree), target=target, checkpoint=checkpoint, limit=4, id_namespace="run-1")
    assert first.sent == 4
    again = cdpcli.import_paths(str(tree), target=target, checkpoint=checkpoint, id_namespace="run-1")
    assert again.sent == 6 and len({c["messageId"] for c in receiver.calls}) == 10
    assert cdpcli.import_paths(str(tree), target=target, types=["identify"], dry_run=True).skipped == 10


def test_import_paths_warns_through_the_observer(target, receiver, tmp_path):
    for day in ("a", "b"):
        (tmp_path / day).mkdir()
        (tmp_path / day / "x.ndjson").write_bytes(ndjson(tracks(1)))
    notes: list[str] = []

    class Notes(ImportEvents):
        def note(self, text: str) -> None:
            notes.append(text)

    cdpcli.import_paths(
        [str(tmp_path / "a" / "x.ndjson"), str(tmp_path / "b" / "x.ndjson")], target=target, observer=Notes()
    )
    assert any("derive messageIds from the same name" in note for note in notes)


@pytest.mark.parametrize("paths", [[], ["-"], ["a.ndjson", "-"]])
def test_import_paths_needs_names_not_stdin(target, paths):
    with pytest.raises(UsageError) as caught:
        cdpcli.import_paths(paths, target=target)
    assert caught.value.option == "paths" and "import_lines" in (caught.value.hint or "")


def test_import_paths_checks_its_options_before_reading(target, receiver, tmp_path):
    with pytest.raises(UsageError, match="format"):
        cdpcli.import_paths(str(tmp_path), target=target, format="xml")
    with pytest.raises(UsageError):
        cdpcli.import_paths(str(tmp_path / "missing.ndjson"), target=target)
    assert receiver.calls == []


def test_shares_of_a_tree_send_the_commands_ids_once(send, target, receiver, tmp_path):
    tree = write_tree(tmp_path / "tree")
    send("import", str(tree), "--rejects", str(tmp_path / "cli.rejects"), "-q")
    from_cli = sorted(c["messageId"] for c in receiver.calls)
    receiver.calls.clear()
    summaries = [
        import_share(str(tree), number=k, of=3, name="t", target=target, rejects_dir=str(tmp_path)) for k in range(3)
    ]
    assert sorted(c["messageId"] for c in receiver.calls) == from_cli  # each once, the CLI's ids
    added = total(summaries)
    assert added["sent"] == 10 and added["invalid"] == 1 and added["partitions"] == 3 and added["exit_code"] == 1
    assert [s["source"] for s in summaries] == ["t-0", "t-1", "t-2"]
    assert sum(1 for path in tmp_path.glob("t-*.rejects.ndjson") if path.read_text()) == 1

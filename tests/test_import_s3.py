"""`cdp import s3://BUCKET/KEY-OR-PREFIX` against a real S3 protocol server on loopback (moto's
standalone server, tests/s3server.py), through a loopback proxy that records each request and
can break a response off mid-object or answer with an S3 error."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("botocore")
pytest.importorskip("moto.server")
# every test here talks to moto's server, started in a process of its own (~2 s per worker):
# the edit loop has tests/test_objectstore.py
pytestmark = pytest.mark.slow

import boto3  # noqa: E402

from cdpcli.importing.objectstore import object_sources, open_seekable  # noqa: E402
from cdpcli.importing.sources import files_under  # noqa: E402
from tests.conftest import API_KEY  # noqa: E402
from tests.s3server import ACCESS_KEY, SECRET_KEY, Fault, MotoServer, Proxy, aws_env  # noqa: E402
from tests.test_import_inputs import WRITE_KEY, ndjson, segment_call, summary, tracks  # noqa: E402

_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    yield server
    server.stop()


class Bucket:
    def __init__(self, name: str, client) -> None:
        self.name, self.client = name, client

    def url(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    def put(self, key: str, data: bytes) -> str:
        return self.client.put_object(Bucket=self.name, Key=key, Body=data)["ETag"]

    def put_tree(self, root: Path, files: dict[str, bytes]) -> None:
        """Each file into the bucket under its path, and into a local copy under `root`."""
        for relative, data in files.items():
            self.put(relative, data)
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@pytest.fixture
def bucket(moto, monkeypatch):
    for name, value in aws_env(moto.url).items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
    name = f"cdp-test-{next(_bucket_numbers)}"
    client.create_bucket(Bucket=name)
    return Bucket(name, client)


@pytest.fixture
def proxy(moto, bucket, monkeypatch):
    """cdp talks to moto through the proxy (the test's own uploads go straight to moto)."""
    server = Proxy(moto.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    yield server
    server.close()


@pytest.fixture
def s3_import(send, tmp_path):
    """`cdp import` with the checks every object-storage run must pass: no credential in its
    output, its rejects or its checkpoint."""

    def run(*args: str):
        result = send("import", *args)
        written = "".join(p.read_text() for p in tmp_path.glob("*") if p.is_file() and p.suffix in (".ndjson", ".json"))
        for secret in (SECRET_KEY, ACCESS_KEY):
            assert secret not in result.stdout + result.stderr + written, "an AWS credential leaked"
        return result

    return run


def rejects(tmp_path: Path) -> list[dict]:
    path = tmp_path / "cdp-rejects.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def noisy_tracks(count: int, seed: int, start: int = 1) -> list[dict]:
    """Calls with random text, so that a gzip of them stays large (a cut lands mid-object)."""
    rng = random.Random(seed)
    return [
        {"type": "track", "userId": f"u-{i}", "event": "E", "properties": {"n": i, "note": rng.randbytes(60).hex()}}
        for i in range(start, start + count)
    ]


# -- a prefix is a directory -------------------------------------------------------------------


def segment_tree() -> tuple[dict[str, bytes], list[str]]:
    """Segment's S3 destination layout, `segment-logs/{source-id}/{received-day}/filename.gz`
    (Segment docs, "AWS S3 destination: Data format": gzipped NDJSON of full calls; received-day
    is the UTC day's Unix timestamp in milliseconds; the file name is not specified there)."""
    files, expected = {}, []
    for day_no, (day, millis) in enumerate((("2024-03-01", 1709251200000), ("2024-03-02", 1709337600000))):
        for part in range(2):
            calls = [segment_call(day_no * 100 + part * 10 + i, day) for i in range(5)]
            if part == 1:
                calls = [dict(c, writeKey=WRITE_KEY) for c in calls]
            expected += [c["messageId"] for c in calls]
            files[f"segment-logs/src_abc/{millis}/{millis}.{part}.gz"] = gzip.compress(ndjson(calls))
    return files, expected


def test_a_segment_archive_in_a_bucket_imports_like_its_local_copy(s3_import, bucket, receiver, tmp_path):
    files, expected = segment_tree()
    bucket.put_tree(tmp_path / "copy", files)
    run = s3_import(bucket.url("segment-logs/"), "--from", "segment", "--json")
    assert run.exit_code == 0, run.stderr
    assert summary(run)["sent"] == 20
    from_bucket = [c["messageId"] for c in receiver.calls]
    assert from_bucket == expected  # every call once, in path order, its own id kept
    for request in receiver.requests:  # as on the wire
        for call in request.body["batch"]:
            assert not {"writeKey", "projectId", "receivedAt", "_metadata"} & call.keys()
    assert WRITE_KEY not in run.stdout + run.stderr
    local = s3_import(str(tmp_path / "copy" / "segment-logs"), "--from", "segment", "--json")
    assert local.exit_code == 0 and [c["messageId"] for c in receiver.calls[20:]] == from_bucket


def test_a_segment_archive_without_from_is_noted_once_and_each_object_read_once(
    s3_import, bucket, proxy, receiver, tmp_path
):
    files, expected = segment_tree()
    bucket.put_tree(tmp_path / "copy", files)
    run = s3_import(bucket.url("segment-logs/"), "--json")
    assert run.exit_code == 0, run.stderr
    assert [c["messageId"] for c in receiver.calls] == expected  # imported as it is
    # the note comes from the first line as the import reads it: no second read of an object
    assert run.stderr.count("looks like a Segment archive") == 1 and "--from segment drops" in run.stderr
    assert {key: len(proxy.gets(key)) for key in files} == dict.fromkeys(files, 1)


def test_objects_derive_the_ids_a_local_copy_of_the_tree_derives(s3_import, bucket, receiver, tmp_path):
    same = gzip.compress(ndjson(tracks(3)))  # no messageIds: derived from the key under the prefix
    files = {
        "exports/2024-01-01/part-0.gz": same,
        "exports/2024-01-02/part-0.gz": same,  # the same name and lines in another folder: other ids
        "exports/2024-01-01-late/part-0.ndjson": ndjson(tracks(2, start=10)),  # "-" sorts before "/"
        "exports/top.ndjson": ndjson(tracks(1, start=20)),
    }
    hidden = {
        "exports/.staging/part-0.gz": same,  # a hidden folder
        "exports/2024-01-01/.part-1.gz.tmp": same,  # a hidden file
    }
    bucket.put_tree(tmp_path / "copy", {**files, **hidden})
    bucket.put("exports/2024-01-03/", b"")  # a console's "folder" marker: no file in a local copy
    run = s3_import(bucket.url("exports/"), "--json")
    assert run.exit_code == 0, run.stderr
    assert summary(run)["sent"] == 9
    local = s3_import(str(tmp_path / "copy" / "exports"), "--json")
    assert local.exit_code == 0
    from_bucket, from_disk = receiver.calls[:9], receiver.calls[9:]
    assert [c["messageId"] for c in from_bucket] == [c["messageId"] for c in from_disk]  # ids and order
    assert len({c["messageId"] for c in from_bucket}) == 9
    assert [c["userId"] for c in from_bucket] == [c["userId"] for c in from_disk]
    assert files_under(str(tmp_path / "copy" / "exports"))[0] == "2024-01-01/part-0.gz"
    # a URL without the trailing slash that names no object is the same prefix
    again = s3_import(bucket.url("exports"), "--json")
    assert again.exit_code == 0 and [c["messageId"] for c in receiver.calls[18:]] == [
        c["messageId"] for c in from_bucket
    ]


def test_one_object_is_seeded_by_its_name_like_a_file(s3_import, bucket, receiver, tmp_path):
    data = ndjson(tracks(3))
    bucket.put("deep/down/a.ndjson", data)
    (tmp_path / "a.ndjson").write_bytes(data)
    assert s3_import(bucket.url("deep/down/a.ndjson")).exit_code == 0
    assert s3_import("a.ndjson").exit_code == 0
    ids = [c["messageId"] for c in receiver.calls]
    assert ids[:3] == ids[3:] and len(set(ids)) == 3


def test_a_csv_object_is_read_as_csv(s3_import, bucket, proxy, receiver):
    bucket.put("people.csv.gz", gzip.compress(b"userId,email,plan\nu1,a@example.com,pro\n,,free\n"))
    args = (bucket.url("people.csv.gz"), "--type", "identify", "--checkpoint", "ck.json", "--json")
    run = s3_import(*args)
    assert run.exit_code == 1  # the second row has no id
    (call,) = receiver.calls
    assert call["userId"] == "u1" and call["traits"] == {"email": "a@example.com", "plan": "pro"}
    again = s3_import(*args)  # every line settled (delivered, skipped or rejected): not read again
    assert again.exit_code == 0 and summary(again)["read"] == 0 and len(proxy.gets("/people.csv.gz")) == 1


def test_objects_take_filters_and_dry_run(s3_import, bucket, receiver):
    bucket.put("a.ndjson", ndjson(tracks(4) + [{"type": "identify", "userId": "u-9"}]))
    run = s3_import(bucket.url("a.ndjson"), "--types", "identify", "--json")
    assert run.exit_code == 0, run.stderr
    assert [c["type"] for c in receiver.calls] == ["identify"] and summary(run)["skipped"] == 4
    assert s3_import(bucket.url("a.ndjson"), "--dry-run").exit_code == 0
    assert len(receiver.calls) == 1


def test_preflight_and_phased_order_read_objects_as_files(s3_import, bucket, proxy, receiver):
    bucket.put(
        "p/a.ndjson", ndjson([{"type": "track", "userId": "u1", "event": "E"}, {"type": "identify", "userId": "u1"}])
    )
    run = s3_import(bucket.url("p/"), "--preflight")
    assert run.exit_code == 0, run.stderr
    assert receiver.calls == []
    run = s3_import(bucket.url("p/"), "--order", "phased")
    assert run.exit_code == 0, run.stderr
    assert [c["type"] for c in receiver.calls] == ["identify", "track"]  # identify's phase first
    assert len(proxy.gets("/p/a.ndjson")) >= 2  # read again for each phase, as a file is


def test_a_zip_object_is_read_by_seeking_with_ranged_gets(bucket, proxy):
    """A zip's directory is at its end: an archive reader opens objects with open_seekable,
    which reads the ranges it seeks to, never the whole object."""
    packed = io.BytesIO()
    members = {"day-1/events.ndjson": ndjson(noisy_tracks(12000, seed=6)), "day-2/events.ndjson": ndjson(tracks(5))}
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    size = len(packed.getvalue())
    assert size > 2 << 20  # more than two of the reader's 1 MB buffers
    bucket.put("export.zip", packed.getvalue())
    (source,) = object_sources(bucket.url("export.zip"), lambda key: "ndjson")
    handle = open_seekable(source)
    assert handle is not None
    with zipfile.ZipFile(handle) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == members
    ranges = [re.fullmatch(r"bytes=(\d+)-\d*", r.headers["range"]) for r in proxy.gets("/export.zip")]
    starts = [int(found[1]) for found in ranges if found is not None]
    assert len(starts) == len(ranges)  # every GET a range
    assert starts[0] == size - (1 << 20)  # the directory first: the last buffer's worth
    assert 3 <= len(starts) <= 8  # then the members in buffer-sized ranges, not byte by byte


@pytest.mark.parametrize("by", ["file", "line", "user"])
def test_shards_split_a_prefix_between_them(s3_import, bucket, receiver, by):
    calls = tracks(40)
    for n in range(4):
        bucket.put(f"s/{n}.ndjson", ndjson(calls[n * 10 : n * 10 + 10]))
    for index in range(2):
        run = s3_import(bucket.url("s/"), "--shard", f"{index}/2", "--shard-by", by, "--rejects", f"r{index}.ndjson")
        assert run.exit_code == 0, run.stderr
        if index == 0:
            first = len(receiver.calls)
    ids = [c["userId"] for c in receiver.calls]
    assert sorted(ids) == sorted(c["userId"] for c in calls) and 0 < first < 40  # each once, split


def test_a_url_naming_nothing_is_a_usage_error(s3_import, bucket, receiver):
    run = s3_import(bucket.url("nothing/here"))
    assert run.exit_code == 2 and "names no object, and no objects are under it" in run.stderr
    run = s3_import("s3://cdp-no-such-bucket/x/")
    assert run.exit_code == 2 and "NoSuchBucket" in run.stderr
    run = s3_import("s3:///key")
    assert run.exit_code == 2 and "no bucket in the URL" in run.stderr
    assert receiver.requests == []


def test_an_error_answer_never_shows_credentials(s3_import, bucket, proxy, receiver):
    """S3's SignatureDoesNotMatch error echoes the access key id and the string signed (S3 API
    reference, "Error responses"); cdp shows the code and message only."""
    bucket.put("p/a.ndjson", ndjson(tracks(1)))
    echoed = (
        "<Message>The request signature we calculated does not match the signature you provided.</Message>"
        f"<AWSAccessKeyId>{ACCESS_KEY}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 {SECRET_KEY}</StringToSign>"
        "<SignatureProvided>0f3a</SignatureProvided>"
    )
    proxy.faults.append(Fault("list-type=2", status=403, code="SignatureDoesNotMatch", body=echoed, times=99))
    run = s3_import(bucket.url("p/"))
    assert run.exit_code == 2
    assert "SignatureDoesNotMatch: The request signature we calculated does not match" in run.stderr
    assert "AWS_ACCESS_KEY_ID" in run.stderr  # the hint says where credentials come from


def test_the_endpoint_flag_points_at_an_s3_compatible_store(s3_import, bucket, proxy, receiver, monkeypatch):
    bucket.put("a.ndjson", ndjson(tracks(2)))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there: the flag wins
    run = s3_import(bucket.url("a.ndjson"), "--s3-endpoint", proxy.url)
    assert run.exit_code == 0, run.stderr
    assert len(receiver.calls) == 2 and proxy.gets("/a.ndjson")
    run = s3_import(bucket.url("a.ndjson"), "--s3-endpoint", "not a url")
    assert run.exit_code == 2 and "the S3 endpoint must be a URL" in run.stderr


def test_an_object_hidden_by_permissions_is_not_taken_for_an_empty_prefix(s3_import, bucket, proxy, receiver):
    bucket.put("secret.ndjson", ndjson(tracks(1)))
    proxy.faults.append(Fault("/secret.ndjson", method="HEAD", status=403, code="AccessDenied"))
    run = s3_import(bucket.url("secret.ndjson"))
    assert run.exit_code == 2
    assert f"cannot read {bucket.url('secret.ndjson')}: 403" in run.stderr and "s3:GetObject" in run.stderr


# -- streaming, resumable ------------------------------------------------------------------------


def test_a_connection_cut_mid_object_resumes_with_a_range_request(s3_import, bucket, proxy, receiver, capsys):
    calls = noisy_tracks(1500, seed=1)
    data = gzip.compress(ndjson(calls))
    etag = bucket.put("big.ndjson.gz", data)
    bucket.put("small.ndjson", ndjson(tracks(2, start=5000)))
    proxy.faults.append(Fault("/big.ndjson.gz", cut_after=60_000))
    run = s3_import(bucket.url(), "--json")
    assert run.exit_code == 0, run.stderr
    first, resumed = proxy.gets("/big.ndjson.gz")  # one GET, and the one that resumes it: no other read
    assert "range" not in first.headers and first.headers["if-match"] == etag
    offset = int(resumed.headers["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < offset < 60_000 < len(data)  # from the last byte received, not from the start
    assert resumed.headers["if-match"] == etag
    ids = [c["userId"] for c in receiver.calls]  # batches may arrive in any order (16 senders)
    assert sorted(ids) == sorted([c["userId"] for c in calls] + ["u-5000", "u-5001"])  # nothing lost or twice
    assert summary(run)["sent"] == 1502
    with capsys.disabled():
        print(f"\n[range resume] {len(data):,}-byte object cut after 60,000 bytes; resumed with Range: bytes={offset}-")


def test_an_unreadable_object_is_one_reject_and_the_import_goes_on(s3_import, bucket, proxy, receiver, tmp_path):
    bucket.put("day/a.ndjson", ndjson(tracks(2)))
    bucket.put("day/b.ndjson", ndjson(tracks(2, start=10)))
    bucket.put("day/c.ndjson", ndjson(tracks(2, start=20)))
    proxy.faults.append(
        Fault("/day/b.ndjson", status=403, code="AccessDenied", body="<Message>Access Denied</Message>")
    )
    run = s3_import(bucket.url("day/"), "--checkpoint", "ck.json", "--json")
    assert run.exit_code == 1
    assert sorted(c["userId"] for c in receiver.calls) == ["u-1", "u-2", "u-20", "u-21"]
    (reject,) = rejects(tmp_path)
    assert reject["source"] == bucket.url("day/b.ndjson") and reject["line"] == 1
    assert "AccessDenied: Access Denied (HTTP 403)" in reject["error"]
    assert summary(run)["invalid_reasons"] == {"unreadable": 1} and summary(run)["unsettled"] == 0
    # the next run reads it (the checkpoint did not count it as settled) and nothing else
    again = s3_import(bucket.url("day/"), "--checkpoint", "ck.json", "--json")
    assert again.exit_code == 0, again.stderr
    assert [c["userId"] for c in receiver.calls[4:]] == ["u-10", "u-11"]
    assert len(proxy.gets("/day/a.ndjson")) == 1  # settled whole: not read again


def test_an_object_changed_while_read_is_refused_not_spliced(s3_import, bucket, proxy, receiver, tmp_path):
    calls = noisy_tracks(1500, seed=2)
    bucket.put("big.ndjson.gz", gzip.compress(ndjson(calls)))

    def overwrite() -> None:
        bucket.put("big.ndjson.gz", gzip.compress(ndjson(noisy_tracks(1500, seed=3))))

    proxy.faults.append(Fault("/big.ndjson.gz", cut_after=60_000, on_cut=overwrite))
    run = s3_import(bucket.url("big.ndjson.gz"), "--json")
    assert run.exit_code == 1
    (reject,) = rejects(tmp_path)
    assert "changed while it was read" in reject["error"]
    delivered = sorted(c["properties"]["n"] for c in receiver.calls)
    assert 0 < len(delivered) < 1500 and delivered == list(range(1, len(delivered) + 1))
    assert all(c["properties"]["note"] == calls[c["properties"]["n"] - 1]["properties"]["note"] for c in receiver.calls)
    assert reject["line"] == len(delivered) + 1  # the lines before it are the old version's, whole
    assert proxy.gets("/big.ndjson.gz")[1].headers["range"].startswith("bytes=")


def test_slow_down_answers_are_retried_with_backoff(s3_import, bucket, proxy, receiver):
    bucket.put("a.ndjson", ndjson(tracks(3)))
    proxy.faults.append(
        Fault(
            "/a.ndjson",
            status=503,
            code="SlowDown",
            body="<Message>Please reduce your request rate.</Message>",
            times=2,
        )
    )
    run = s3_import(bucket.url("a.ndjson"))
    assert run.exit_code == 0, run.stderr
    assert len(receiver.calls) == 3 and len(proxy.gets("/a.ndjson")) == 3  # 2 × 503, the read


# -- checkpoint ------------------------------------------------------------------------------------


def four_objects(bucket: Bucket) -> list[dict]:
    calls = tracks(200)
    for n in range(4):
        bucket.put(f"in/{n}.ndjson.gz", gzip.compress(ndjson(calls[n * 50 : n * 50 + 50])))
    return calls


def test_a_resumed_import_skips_settled_objects_unread_and_continues_the_rest(
    s3_import, bucket, proxy, receiver, tmp_path
):
    calls = four_objects(bucket)
    first = s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--limit", "120", "--batch-events", "10", "--json")
    assert first.exit_code == 0, first.stderr
    saved = json.loads((tmp_path / "ck.json").read_text())["sources"]
    entry = saved[bucket.url("in/0.ndjson.gz")]
    assert entry["settled"] == 50 and entry["lines"] == 50 and entry["version"].endswith(":" + str(entry_size(bucket)))
    assert saved[bucket.url("in/2.ndjson.gz")]["settled"] == 20
    reads_before = len(proxy.gets("/in/"))
    second = s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--json")
    assert second.exit_code == 0, second.stderr
    assert {r.path.split("?")[0] for r in proxy.gets("/in/")[reads_before:]} == {
        f"/{bucket.name}/in/2.ndjson.gz",
        f"/{bucket.name}/in/3.ndjson.gz",
    }  # the objects settled whole are not read again
    assert summary(second)["sent"] == 80 and summary(second)["skipped_reasons"] == {"checkpoint": 20}
    sent = [c["userId"] for c in receiver.calls]
    assert sorted(sent) == sorted(c["userId"] for c in calls)  # every line once, across both runs
    third = s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--json")
    assert third.exit_code == 0 and summary(third)["read"] == 0 and len(receiver.calls) == 200


def test_a_partly_sent_object_deleted_since_the_checkpoint_is_named(s3_import, bucket, receiver, tmp_path):
    """Its lines not yet sent are not sent by the resumed run: it says so, naming the object
    (it passed the object over without a word); objects finished earlier are not named."""
    four_objects(bucket)
    assert s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--limit", "120").exit_code == 0
    bucket.client.delete_object(Bucket=bucket.name, Key="in/2.ndjson.gz")  # 20 of its 50 lines sent
    bucket.client.delete_object(Bucket=bucket.name, Key="in/0.ndjson.gz")  # sent whole
    run = s3_import(bucket.url("in/"), "--checkpoint", "ck.json")
    assert run.exit_code == 0, run.stderr
    assert (
        f"checkpoint: {bucket.url('in/2.ndjson.gz')}, which an earlier run began, is not among this run's inputs"
        in run.stderr
    )
    assert "in/0.ndjson.gz" not in run.stderr


def entry_size(bucket: Bucket) -> int:
    return bucket.client.head_object(Bucket=bucket.name, Key="in/0.ndjson.gz")["ContentLength"]


def test_an_object_changed_since_the_checkpoint_is_refused(s3_import, bucket, receiver, tmp_path):
    four_objects(bucket)
    assert s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--limit", "120").exit_code == 0
    bucket.put("in/2.ndjson.gz", gzip.compress(ndjson(tracks(50, start=900))))
    sent = len(receiver.calls)
    run = s3_import(bucket.url("in/"), "--checkpoint", "ck.json")
    assert run.exit_code == 2
    assert f"{bucket.url('in/2.ndjson.gz')} changed since --checkpoint 'ck.json' was written" in run.stderr
    assert len(receiver.calls) == sent


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_segment_archive_interrupted_and_resumed_delivers_every_call_once(bucket, proxy, receiver, tmp_path, sig):
    """The issue's end-to-end case: `--from segment`, a checkpoint, a real interruption (cdp
    in a process of its own, signalled mid-import), the same command again."""
    expected = []
    for day in range(4):
        millis = 1709251200000 + day * 86_400_000
        for part in range(2):
            calls = [segment_call(day * 1000 + part * 500 + i, f"2024-03-0{day + 1}") for i in range(250)]
            expected += [c["messageId"] for c in calls]
            bucket.put(f"segment-logs/src_abc/{millis}/{millis}.{part}.gz", gzip.compress(ndjson(calls)))
    args = [bucket.url("segment-logs/"), "--from", "segment", "--checkpoint", "ck.json", "--json"]
    # paced so that the signal comes mid-import whatever the machine's speed: 40 requests of
    # 50 calls at 4 a second (~10 s); without --batch-events the 2,000 calls fit in 2 requests,
    # which a fast run sent in 0.1 s, before the signal
    proc = spawn_import(receiver, proxy, tmp_path, *args, "--batch-events", "50", "--rate", "4")
    wait_for(lambda: len(receiver.calls) >= 700, 30)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    settled = json.loads((tmp_path / "ck.json").read_text())["sources"]
    whole = [url for url, entry in settled.items() if entry.get("lines") and entry["settled"] >= entry["lines"]]
    assert len(whole) >= 2
    reads_before = len(proxy.gets("/segment-logs/"))
    proc = spawn_import(receiver, proxy, tmp_path, *args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert {c["messageId"] for c in receiver.calls} == set(expected)  # every call, with its own id
    resent = len(receiver.calls) - len(expected)  # only calls in flight at the signal, same ids
    assert 0 <= resent <= 16 * 100
    reread = {
        r.path.split("?")[0].removeprefix(f"/{bucket.name}/") for r in proxy.gets("/segment-logs/")[reads_before:]
    }
    assert not reread & {url.removeprefix(bucket.url()) for url in whole}  # settled objects: not read again
    for secret in (SECRET_KEY, ACCESS_KEY):
        assert secret not in out.decode() + err.decode()


def spawn_import(receiver, proxy: Proxy, tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CDP_API_KEY": API_KEY,
        "CDP_ENDPOINT": receiver.url,
        "CDP_CONFIG_DIR": str(tmp_path / "cfg"),
        **{name: os.environ[name] for name in os.environ if name.startswith("AWS_")},
        "AWS_ENDPOINT_URL": proxy.url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "import", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )


def wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_malformed_object_entry_in_a_checkpoint_is_refused(s3_import, bucket, receiver, tmp_path):
    bucket.put("a.ndjson", ndjson(tracks(1)))
    entry = {"settled": 1, "first_line_sha256": None, "version": "e:1", "lines": "many"}
    (tmp_path / "ck.json").write_text(json.dumps({"version": 1, "sources": {bucket.url("a.ndjson"): entry}}))
    run = s3_import(bucket.url("a.ndjson"), "--checkpoint", "ck.json")
    assert run.exit_code == 2 and "has a malformed version or lines" in run.stderr and receiver.calls == []


# -- many objects --------------------------------------------------------------------------------


def test_1200_objects_under_a_prefix_over_several_listing_pages(s3_import, bucket, proxy, receiver):
    with ThreadPoolExecutor(4) as uploads:  # moto's server takes requests in parallel
        list(
            uploads.map(
                lambda n: bucket.put(f"many/{n // 100:02d}/{n:04d}.ndjson", ndjson(tracks(1, start=n))), range(1200)
            )
        )
    run = s3_import(bucket.url("many/"), "--json")
    assert run.exit_code == 0, run.stderr
    assert sorted(c["userId"] for c in receiver.calls) == sorted(f"u-{n}" for n in range(1200))
    pages = [r for r in proxy.requests if "list-type=2" in r.path]
    assert len(pages) == 2 and "continuation-token=" in pages[1].path  # 1,000 keys a page


# -- the retry loop, unit by unit ------------------------------------------------------------------


def test_no_credentials_is_a_usage_error_saying_where_they_come_from(s3_import, bucket, monkeypatch, receiver):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    run = s3_import(bucket.url("p/"))
    assert run.exit_code == 2 and "Unable to locate credentials" in run.stderr
    assert "AWS_PROFILE" in run.stderr and receiver.requests == []


# -- archives and Parquet in a bucket --------------------------------------------------------------


def archive_tree(tmp_path: Path) -> dict[str, bytes]:
    """A zip (Amplitude's export is a zip of gzipped NDJSON files, vendor-exports.md), a tar.gz
    of NDJSON days, and a Parquet file of calls (one column per field, as PostHog's batch
    export writes), each with lines that derive their ids."""
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/2024-01-01_0.json.gz", gzip.compress(ndjson(tracks(3))))
        archive.writestr("export/2024-01-01_1.json", ndjson(tracks(2, start=10) + [b"{not json"]))
        archive.writestr("__MACOSX/._x", b"\0\0")  # not data: skipped as locally
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as archive:
        for day, data in (("day-1.ndjson", ndjson(tracks(3, start=20))), ("day-2.ndjson", ndjson(tracks(3, start=30)))):
            info = tarfile.TarInfo(f"logs/{day}")
            info.size, info.mtime = len(data), 1709251200
            archive.addfile(info, io.BytesIO(data))
    table = io.BytesIO()
    rows = tracks(5, start=40)
    pq.write_table(
        pa.table({"type": [r["type"] for r in rows], "userId": [r["userId"] for r in rows], "event": ["E"] * 5}),
        table,
        row_group_size=2,
    )
    return {
        "in/a/amplitude.zip": zipped.getvalue(),
        "in/b/logs.tar.gz": tarred.getvalue(),
        "in/c/calls.parquet": table.getvalue(),
    }


def test_zip_tar_and_parquet_objects_import_as_their_local_copies(s3_import, bucket, proxy, receiver, tmp_path):
    files = archive_tree(tmp_path)
    bucket.put_tree(tmp_path / "copy", files)
    run = s3_import(bucket.url("in/"), "--json")
    assert run.exit_code == 1, run.stderr  # the one line that is not JSON
    assert summary(run)["sent"] == 16
    from_bucket_rejects = rejects(tmp_path)
    (tmp_path / "cdp-rejects.ndjson").unlink()
    local = s3_import(str(tmp_path / "copy" / "in"), "--json")
    assert local.exit_code == 1, local.stderr
    from_bucket, from_disk = receiver.calls[:16], receiver.calls[16:]
    assert len(from_disk) == 16
    assert [c["messageId"] for c in from_bucket] == [c["messageId"] for c in from_disk]  # ids and order
    assert len({c["messageId"] for c in from_bucket}) == 16
    (reject,) = from_bucket_rejects
    assert reject["source"] == bucket.url("in/a/amplitude.zip!export/2024-01-01_1.json") and reject["line"] == 3
    (local_reject,) = rejects(tmp_path)
    assert local_reject["source"] == str(tmp_path / "copy" / "in" / "a" / "amplitude.zip") + "!export/2024-01-01_1.json"
    # the zip and the Parquet file were read where their readers seek, through the 1 MB
    # buffer of open_seekable: objects this small are one GET each time (a big one:
    # test_a_zip_object_is_read_by_seeking_with_ranged_gets), never spooled to a file
    assert len(files["in/a/amplitude.zip"]) < 1 << 20 and len(files["in/c/calls.parquet"]) < 1 << 20
    assert 1 <= len(proxy.gets("/in/a/amplitude.zip")) <= 6
    assert 1 <= len(proxy.gets("/in/c/calls.parquet")) <= 4


def test_archive_members_in_a_bucket_resume_from_a_checkpoint(s3_import, bucket, receiver, tmp_path):
    files = archive_tree(tmp_path)
    for key, data in files.items():
        bucket.put(key, data)
    first = s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--limit", "7", "--batch-events", "1", "--json")
    assert first.exit_code == 1, first.stderr  # the line that is not JSON is among the first 7
    saved = json.loads((tmp_path / "ck.json").read_text())["sources"]
    member = bucket.url("in/a/amplitude.zip!export/2024-01-01_0.json.gz")
    assert saved[member]["settled"] == 3 and saved[member]["version"].startswith("crc32:")
    second = s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--json")
    assert second.exit_code == 0, second.stderr
    assert sorted(c["userId"] for c in receiver.calls) == sorted(
        f"u-{n}" for n in [*range(1, 4), 10, 11, *range(20, 23), *range(30, 33), *range(40, 45)]
    )  # every line once across both runs
    assert len({c["messageId"] for c in receiver.calls}) == 16
    bucket.put("in/b/logs.tar.gz", files["in/b/logs.tar.gz"][:-40] + b"\0" * 40)  # changed since
    third = s3_import(bucket.url("in/"), "--checkpoint", "ck.json", "--json")
    assert third.exit_code in (0, 2)  # never resent: settled members are skipped unread, or refused
    assert len(receiver.calls) == 16


def test_a_zip_object_cut_short_is_one_record_naming_it(s3_import, bucket, receiver):
    bucket.put("bad.zip", b"PK\x03\x04" + b"\0" * 200)  # a local header and no directory
    run = s3_import(bucket.url("bad.zip"))
    assert run.exit_code == 1 and f"{bucket.url('bad.zip')}:1: the zip archive is damaged" in run.stderr
    assert receiver.calls == []


# -- from Python: import_paths, and the Dask recipe over a bucket ---------------------------------


def test_import_paths_reads_a_bucket_as_the_command_does(bucket, proxy, receiver, tmp_path, monkeypatch):
    import cdpcli

    files, expected = segment_tree()
    for key, data in files.items():
        bucket.put(key, data)
    target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)
    result = cdpcli.import_paths(
        [bucket.url("segment-logs/")], target=target, archive="segment", rejects=str(tmp_path / "r.ndjson")
    )
    assert result.ok and result.sent == 20
    assert [c["messageId"] for c in receiver.calls] == expected
    # an endpoint given by argument, as --s3-endpoint: the proxy sees the requests
    proxy.requests.clear()
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    again = cdpcli.import_paths(bucket.url("segment-logs/"), target=target, s3_endpoint=proxy.url, dry_run=True)
    assert again.sent == 0 and again.read == 20 and proxy.gets("/segment-logs/")


def test_the_dask_recipe_over_a_bucket_sends_the_commands_ids_once(s3_import, bucket, receiver, tmp_path):
    """docs/scale-out.md's recipe: a share of the prefix's objects per task (dask.delayed,
    here on the synchronous scheduler: the recipe's shape, not a cluster's)."""
    dask = pytest.importorskip("dask")
    import cdpcli
    from cdpcli.scale_out import import_share, total

    noise = gzip.compress(ndjson(tracks(3)))
    for day in range(5):
        bucket.put(f"logs/2024-01-0{day + 1}/part-0.gz", noise)  # one name, one content in every folder
    assert s3_import(bucket.url("logs/")).exit_code == 0
    from_cli = sorted(c["messageId"] for c in receiver.calls)
    receiver.calls.clear()
    target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)
    tasks = [
        dask.delayed(import_share)(
            bucket.url("logs/"), number=k, of=5, name="backfill", target=target, rejects_dir=str(tmp_path)
        )
        for k in range(5)  # as many shares as objects: one object each
    ]
    summaries = dask.compute(*tasks, scheduler="synchronous")
    assert [s["sent"] for s in summaries] == [3] * 5
    assert sorted(c["messageId"] for c in receiver.calls) == from_cli and len(set(from_cli)) == 15
    assert total(summaries)["sent"] == 15


@pytest.mark.parametrize("name", ["logs.tar.gz", "export.zip"])
def test_an_archive_object_replaced_after_listing_is_unreadable_not_mixed(bucket, name):
    """Members are read with If-Match the listed ETag: an archive replaced between the listing
    and the reading of a member makes that member unreadable (one rejects record in an
    import), never bytes of the new archive read at the old one's offsets."""
    from cdpcli.importing.objectstore import UnreadableSource
    from cdpcli.importing.sources import make_sources, source_lines

    members = {"big.ndjson": ndjson(noisy_tracks(20000, seed=8)), "small.ndjson": ndjson(tracks(2))}
    packed = io.BytesIO()  # more than the reader's 1 MB buffer: a re-read is a new GET
    if name.endswith(".zip"):
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, content in members.items():
                archive.writestr(member, content)
    else:
        with tarfile.open(fileobj=packed, mode="w:gz") as archive:
            for member, content in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    data = packed.getvalue()
    assert len(data) > 1 << 20
    bucket.put(name, data)
    sources, _ = make_sources([bucket.url(name)])
    assert [s.name.split("!")[0] for s in sources] == [bucket.url(name)] * len(sources) and len(sources) >= 2
    first = list(source_lines(sources[0]))  # read as listed
    second = list(source_lines(sources[1]))
    bucket.put(name, data + b"\0" * 1024)  # replaced: another ETag
    try:  # a tar's stream still open on the old version reads on in it
        assert list(source_lines(sources[1])) == second
    except UnreadableSource as exc:
        assert "changed while it was read" in exc.message
    with pytest.raises(UnreadableSource, match="changed while it was read"):
        list(source_lines(sources[0]))  # a new GET (a zip member's, a tar's rewind): refused
    assert first

"""objectstore.py without a server: the listing's filter and order against a local copy of the
tree (property), the retry loop of a body that breaks off, messages without credentials, and
the error that names the extra. The same against a real S3 server: tests/test_import_s3.py."""

from __future__ import annotations

import io
import random
import socket
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpcli.importing.objectstore import (
    ForwardObject,
    ObjectStream,
    RetryPolicy,
    SeekableObject,
    UnreadableSource,
    describe,
    tree_of,
)
from cdpcli.importing.source import CHUNK_BYTES
from cdpcli.importing.sources import files_under

_NAME = st.text(alphabet="ab.-_0", min_size=1, max_size=4).filter(lambda n: n not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_NAME, min_size=1, max_size=3), min_size=1, max_size=8))
def test_a_listing_is_ordered_and_filtered_as_a_local_copy_of_the_tree(paths):
    """Whatever the names (dots, dashes and underscores sort around "/"), the objects under a
    prefix are the files a local copy of them holds, in the order a directory is read."""
    keys = sorted({"/".join(parts) for parts in paths})
    # a local tree cannot hold "a" as a file and as a folder: such listings have no local copy
    keys = [k for k in keys if not any(other.startswith(k + "/") for other in keys)]
    with tempfile.TemporaryDirectory() as root:
        for key in keys:
            path = Path(root, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"{}\n")
        listed = [(f"pre/{key}", '"e"', 3) for key in keys] + [("pre/folder/", '"e"', 0)]
        random.Random(len(keys)).shuffle(listed)
        assert [relative for relative, _, _ in tree_of("pre/", listed)] == files_under(root)


def test_without_the_extra_the_error_names_it(send, monkeypatch, receiver):
    monkeypatch.setitem(sys.modules, "botocore", None)  # import botocore fails, as when absent
    monkeypatch.setitem(sys.modules, "botocore.session", None)
    run = send("import", "s3://bucket/prefix/")
    assert run.exit_code == 2
    assert "needs the optional s3 extra" in run.stderr and "pip install 'cdp-pipelines-cli[s3]'" in run.stderr


def test_messages_mask_a_password_in_an_endpoint_url():
    EndpointConnectionError = pytest.importorskip("botocore.exceptions").EndpointConnectionError

    error = EndpointConnectionError(endpoint_url="http://minio:s3cr3t-pass@127.0.0.1:9/bucket?list-type=2")
    assert describe(error) == 'Could not connect to the endpoint URL: "http://****@127.0.0.1:9/bucket?list-type=2"'


class _BrokenBody:
    def __init__(self, data: bytes, fail_after: int) -> None:
        self.stream, self.fail_after = io.BytesIO(data), fail_after

    def read(self, size: int) -> bytes:
        if self.stream.tell() >= self.fail_after:
            raise OSError("connection reset by peer")
        return self.stream.read(min(size, self.fail_after - self.stream.tell()))

    def close(self) -> None:
        pass


class _Store:
    """An ObjectStore's surface as ObjectStream uses it, over bytes whose every response breaks
    off after `fail_after` bytes of it."""

    def __init__(self, data: bytes, fail_after: int, policy: RetryPolicy) -> None:
        exceptions = pytest.importorskip("botocore.exceptions")

        self.errors, self.policy, self.data, self.fail_after = exceptions, policy, data, fail_after
        self.ranges: list[str | None] = []
        self.client = self

    def get_object(self, **request):
        self.ranges.append(request.get("Range"))
        start = int(request.get("Range", "bytes=0-")[6:-1])
        return {"Body": _BrokenBody(self.data[start:], self.fail_after)}


def test_a_link_that_keeps_breaking_but_moving_finishes():
    data = zlib.compress(random.Random(4).randbytes(10_000))
    store = _Store(data, fail_after=1000, policy=RetryPolicy(stalls=2, first_delay=0))
    stream = ObjectStream(store, "b", "k", '"e"', len(data))  # type: ignore[arg-type]
    got = b"".join(iter(lambda: stream.read(4096), b""))
    assert got == data and store.ranges[1:] == [f"bytes={n}-" for n in range(1000, len(data), 1000)]


class _TimingOutBody(_BrokenBody):
    def read(self, size: int) -> bytes:
        if self.stream.tell() >= self.fail_after:
            from botocore.exceptions import ReadTimeoutError  # present: _Store needed it

            raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9/b/k")
        return super().read(size)


def test_a_read_timeout_mid_object_resumes_from_the_byte_reached(monkeypatch):
    data = random.Random(5).randbytes(3000)
    store = _Store(data, fail_after=2000, policy=RetryPolicy(first_delay=0))
    monkeypatch.setattr("tests.test_objectstore._BrokenBody", _TimingOutBody)
    stream = ObjectStream(store, "b", "k", '"e"', len(data))  # type: ignore[arg-type]
    assert b"".join(iter(lambda: stream.read(4096), b"")) == data
    assert store.ranges == [None, "bytes=2000-"]


def test_a_link_that_breaks_without_progress_gives_up_after_the_stalls():
    store = _Store(b"x" * 5000, fail_after=0, policy=RetryPolicy(stalls=3, first_delay=0))
    stream = ObjectStream(store, "b", "k", '"e"', 5000)  # type: ignore[arg-type]
    with pytest.raises(UnreadableSource, match=r"could not be read past byte 0 of 5,000 \(3 attempts"):
        stream.read(100)
    assert len(store.ranges) == 3


class _RangedStore:
    """An ObjectStore's surface over bytes that never break: GETs with or without a Range
    (`bytes=A-` or `bytes=A-B`, as S3 reads them), recorded."""

    def __init__(self, data: bytes) -> None:
        self.errors = pytest.importorskip("botocore.exceptions")
        self.policy, self.data, self.client = RetryPolicy(first_delay=0), data, self
        self.ranges: list[str | None] = []

    def get_object(self, **request):
        self.ranges.append(request.get("Range"))
        first, _, last = request.get("Range", "bytes=0-")[6:].partition("-")
        return {"Body": io.BytesIO(self.data[int(first) : int(last) + 1 if last else None])}


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 3 * CHUNK_BYTES),
    st.lists(st.tuples(st.integers(0, 4 * CHUNK_BYTES), st.integers(0, 2 * CHUNK_BYTES)), max_size=6),
    st.sampled_from([SeekableObject, ForwardObject]),
)
def test_seekable_readers_give_the_bytes_at_any_offset(size, reads, kind):
    """Wherever a reader seeks (past the end too) and however much it asks for, the bytes are
    the object's: a zip's or Parquet's reader (SeekableObject) and a tar's (ForwardObject)."""
    data = random.Random(size).randbytes(size)
    store = _RangedStore(data)
    handle = io.BufferedReader(kind(store, "b", "k", '"e"', size), buffer_size=CHUNK_BYTES)
    for offset, count in reads:
        handle.seek(offset)
        assert handle.read(count) == data[offset : offset + count]
    handle.close()


def test_a_zip_directory_read_from_the_end_is_one_get_for_a_small_object():
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        for n in range(20):
            archive.writestr(f"m-{n}.ndjson", b'{"type":"track"}\n' * 50)
    store = _RangedStore(packed.getvalue())
    handle = io.BufferedReader(SeekableObject(store, "b", "k", '"e"', len(store.data)), buffer_size=CHUNK_BYTES)  # type: ignore[arg-type]
    with zipfile.ZipFile(handle) as archive:
        assert [archive.read(name) for name in archive.namelist()] == [b'{"type":"track"}\n' * 50] * 20
    assert store.ranges == [None]  # the directory, then every member, from the one GET


def test_a_tar_stepping_over_members_reads_on_in_one_get():
    data = random.Random(7).randbytes(3 * CHUNK_BYTES)
    store = _RangedStore(data)
    handle = ForwardObject(store, "b", "k", '"e"', len(data))  # type: ignore[arg-type]
    position = 0
    for step in (512, 100_000, 512, CHUNK_BYTES - 10):  # each a header read, then a member skipped
        handle.seek(position)
        assert handle.read(512) == data[position : position + 512]
        position += 512 + step
    assert store.ranges == [None]  # skips within 1 MB read on: no new request
    handle.seek(0)  # back to the start (gzip's rewind): a new GET from there
    assert handle.read(10) == data[:10] and store.ranges == [None, None]
    handle.close()


@pytest.mark.slow  # botocore's retries of a refused connection (~3 s)
def test_an_s3_endpoint_that_does_not_answer_exits_6(send, monkeypatch):
    """No answer from the store is the network's exit code (SPEC: 6), not a usage error."""
    pytest.importorskip("botocore")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    run = send("import", "s3://exp/p", "--dry-run")  # a listing; a HEAD fails the same way
    assert run.exit_code == 6, run.stderr
    assert f'Could not connect to the endpoint URL: "http://127.0.0.1:{port}/exp' in run.stderr
    assert "Hint: no answer from the S3 endpoint" in run.stderr

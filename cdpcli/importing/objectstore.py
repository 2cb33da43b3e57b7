"""Inputs in object storage: `s3://BUCKET/KEY-OR-PREFIX`, on AWS S3 or any S3-compatible store
(MinIO, Cloudflare R2, Google Cloud Storage's interoperable endpoint with HMAC keys).

A URL names one object, or a prefix read as a directory tree: its objects in the order a local
copy's files are read (path components sorted), hidden names (a component starting with ".")
skipped, each object its own Source named by its URL. An object's messageIds are seeded by its
key relative to the prefix, as a file of a directory is by its path under it, so importing
`s3://b/segment-logs/` and a local copy (`aws s3 sync s3://b/segment-logs/ segment-logs/`)
derive the same ids; a single object is seeded by its last key component, as a file is by its
name. Credentials, region and endpoint come from the standard AWS chain (environment, shared
config and profiles, instance and container roles; AWS_ENDPOINT_URL), or `endpoint_url`.

An object is read as one GET streamed, never copied whole to disk. A connection dropped in the
middle is resumed with `Range: bytes=N-` from the last byte received, always with `If-Match`
the ETag the listing gave, so bytes of a changed object are never spliced onto the old one's.
An object that still cannot be read is an UnreadableSource: one rejects record, the import goes
on (sources.read_sources). Its `version` (ETag and size) is what a checkpoint keeps.

Why botocore directly, not s3fs/fsspec: an import reads each object once, front to back, and
must resume a dropped stream from the byte it reached only if the object is still the one that
was listed. botocore says each of those with one request parameter (Range, IfMatch) and has
one retry layer we configure (standard mode: 503 SlowDown, 500s, throttling and connection
errors while a request is made, with capped exponential backoff and jitter); this module adds
only the resume of a body cut short. s3fs runs the same botocore through aiobotocore's
async event loop in a thread, adds its own retry loop on top of botocore's (attempts multiply)
and reads through its own block cache, none of which a front-to-back stream needs.
"""

from __future__ import annotations

import functools
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from cdpcli.errors import CdpError, DeliveryError, ExitCode, UsageError
from cdpcli.importing.source import CHUNK_BYTES, Source

SCHEME = "s3://"
S3_EXTRA = "pip install 'cdp-pipelines-cli[s3]'"
CREDENTIALS_HINT = (
    "credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE (shared config), or an instance or container role"
)


class UnreadableSource(CdpError):
    """A source that could not be read to its end after its retries: the lines before the
    failure are imported, the failure is one rejects record (which names the source: the
    message does not), and the import goes on."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of an object's bytes. `requests`: botocore's attempts per request (standard
    mode), which covers 503 SlowDown and timeouts while a GET or a listing page is made;
    `stalls`: how many times in a row a body may break off with no byte received since the last
    break before the object is given up (a break after progress starts the count again, so a
    flaky link that keeps moving finishes); the waits between them double from `first_delay`
    up to `max_delay` seconds."""

    requests: int = 8
    stalls: int = 5
    first_delay: float = 0.25
    max_delay: float = 8.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


def is_object_url(name: str) -> bool:
    return name.startswith(SCHEME)


def split_url(url: str) -> tuple[str, str]:
    """(bucket, key or prefix) of an s3:// URL."""
    bucket, _, key = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise UsageError(f"{url}: no bucket in the URL", hint="name it as s3://BUCKET/KEY or s3://BUCKET/PREFIX/")
    return bucket, key


def object_sources(
    url: str, format_of: Callable[[str], str], endpoint_url: str | None = None, policy: RetryPolicy | None = None
) -> list[Source]:
    """The sources an s3:// URL stands for: one object, or every object under a prefix (a URL
    ending in "/", or naming no object). `format_of(key)` is an object's format."""
    bucket, key = split_url(url)
    store = ObjectStore(endpoint_url, policy or RetryPolicy())
    denied = None
    if key and not key.endswith("/"):
        found, denied = store.head(bucket, key)
        if found is not None:
            etag, size = found
            return [store.source(bucket, key, key.rsplit("/", 1)[-1], etag, size, format_of(key))]
        key += "/"
    sources = [
        store.source(bucket, key + relative, relative, etag, size, format_of(relative))
        for relative, etag, size in store.objects_under(bucket, key)
    ]
    if not sources and denied is not None:  # the object may be there, hidden from this identity
        raise store.usage_error(url, denied)
    if not sources:
        raise UsageError(
            f"{url} names no object, and no objects are under it (hidden ones are skipped)",
            hint="check the bucket and key; a prefix is read as a directory, e.g. s3://BUCKET/segment-logs/",
        )
    return sources


def _botocore() -> Any:
    try:
        import botocore.session  # lazy: start-up (~150 ms to import)
    except ImportError:
        raise UsageError("reading s3:// URLs needs the optional s3 extra", hint=S3_EXTRA) from None
    return botocore


def s3_client(endpoint_url: str | None, policy: RetryPolicy) -> Any:
    """A botocore S3 client; credentials, region and (unless `endpoint_url`) the endpoint from
    the standard AWS chain as it is now (one client per URL given: ~100 ms of CPU to load
    botocore's service model, nothing next to reading a prefix)."""
    botocore = _botocore()
    from botocore.config import Config  # lazy: start-up

    config = Config(
        retries={"mode": "standard", "max_attempts": policy.requests},
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
        # the bytes of a compressed object are checked by its own CRC, and a resumed range
        # cannot be checked against a whole object's checksum anyway
        response_checksum_validation="when_required",
    )
    try:
        return botocore.session.get_session().create_client("s3", endpoint_url=endpoint_url or None, config=config)
    except ValueError as exc:  # botocore: "Invalid endpoint: …" (a URL given or from the environment)
        raise UsageError(
            f"cannot read s3:// inputs: {_USERINFO.sub('****@', str(exc))}",
            hint="the S3 endpoint must be a URL such as https://minio.example:9000",
        ) from None


class ObjectStore:
    """Listing and reading objects through one S3 client; errors become CdpErrors whose text
    says what failed without any credential (see `describe`)."""

    def __init__(self, endpoint_url: str | None, policy: RetryPolicy) -> None:
        self.policy = policy
        self.client = s3_client(endpoint_url, policy)
        self.errors = _botocore().exceptions

    def source(self, bucket: str, key: str, seed: str, etag: str, size: int, fmt: str) -> Source:
        url = f"{SCHEME}{bucket}/{key}"
        # one string for name, label and key: a prefix may hold millions of objects
        return Source(
            url,
            url,
            seed.encode("utf-8", "surrogateescape"),
            size=size,
            key=url,
            format=fmt,
            # read(n) and close() are all a source's stream is asked for (source_blocks)
            opener=cast(Callable[[], BinaryIO], functools.partial(ObjectStream, self, bucket, key, etag, size)),
            version=f"{etag.strip(chr(34))}:{size}",
        )

    def head(self, bucket: str, key: str) -> tuple[tuple[str, int] | None, Exception | None]:
        """(ETag, size) of the object `key`, or None when there is none by that name (and the
        403 that said so: without s3:ListBucket, S3 answers 403 for a missing key too)."""
        try:
            answer = self.client.head_object(Bucket=bucket, Key=key)
        except self.errors.ClientError as exc:
            if _status(exc) in (403, 404):
                return None, exc if _status(exc) == 403 else None
            raise self.usage_error(f"{SCHEME}{bucket}/{key}", exc) from None
        except self.errors.BotoCoreError as exc:
            raise self.usage_error(f"{SCHEME}{bucket}/{key}", exc) from None
        return (answer["ETag"], int(answer["ContentLength"])), None

    def objects_under(self, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
        """(key relative to `prefix`, ETag, size) of the objects under it, page after page of
        ListObjectsV2, as tree_of orders them."""
        listed = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                listed += [(item["Key"], item["ETag"], int(item["Size"])) for item in page.get("Contents", ())]
        except (self.errors.ClientError, self.errors.BotoCoreError) as exc:
            raise self.usage_error(f"{SCHEME}{bucket}/{prefix}", exc) from None
        return tree_of(prefix, listed)

    def usage_error(self, url: str, exc: Exception) -> CdpError:
        """What a failed listing or HEAD says: SPEC's network exit code when no answer came
        (after botocore's retries), else a usage error (credentials, bucket, region)."""
        if isinstance(exc, self.errors.NoCredentialsError | self.errors.PartialCredentialsError):
            return UsageError(f"{url}: {describe(exc)}", hint=CREDENTIALS_HINT)
        # ConnectionError: refused, DNS, connect timeout, proxy; HTTPClientError: read timeout, reset
        if isinstance(exc, self.errors.ConnectionError | self.errors.HTTPClientError):
            return DeliveryError(
                f"cannot read {url}: {describe(exc)}",
                hint="no answer from the S3 endpoint: check it (AWS_ENDPOINT_URL, or the region) and your network",
                exit_code=ExitCode.NETWORK,
            )
        status = _status(exc)
        hint = (
            CREDENTIALS_HINT + "; the identity needs s3:ListBucket and s3:GetObject"
            if status in (401, 403)
            else "check the bucket name and its region (AWS_REGION), or the endpoint (AWS_ENDPOINT_URL)"
        )
        return UsageError(f"cannot read {url}: {describe(exc)}", hint=hint)


class ObjectStream:
    """One object's bytes, read front to back as a stream (`read(n)`), resuming a connection
    that breaks off with a ranged GET from the byte reached. Each GET is sent with If-Match the
    listed ETag: a changed object is refused (412) instead of read in two halves."""

    def __init__(
        self, store: ObjectStore, bucket: str, key: str, etag: str, size: int, start: int = 0, end: int | None = None
    ) -> None:
        self.store, self.bucket, self.key, self.etag, self.size = store, bucket, key, etag, size
        self.position = start  # the next byte to receive
        self.end = size if end is None else end  # the bytes from `start` up to `end` (exclusive)
        self._body: Any = None

    def read(self, size: int = -1) -> bytes:
        errors = self.store.errors
        broken = (errors.HTTPClientError, errors.ResponseStreamingError, errors.IncompleteReadError, OSError)
        stalls = 0
        while True:
            if self._body is None:
                if self.position >= self.end:  # an empty object or range: nothing to ask for
                    return b""
                self._body = self._get()
            try:
                data = self._body.read(size if size > 0 else CHUNK_BYTES)
                reason = "the connection closed before the object's end"
            except broken as exc:
                data, reason = b"", describe(exc)
            if data:
                self.position += len(data)
                return data
            if self.position >= self.end:  # read to the end (botocore checked the length)
                return b""
            self.close()
            stalls += 1
            policy = self.store.policy
            if stalls >= policy.stalls:
                raise UnreadableSource(
                    f"could not be read past byte {self.position:,} of {self.size:,} "
                    f"({stalls} attempts without progress; last: {reason})",
                    hint="the lines before it were imported; run the import again to retry this object",
                )
            time.sleep(min(policy.first_delay * 2 ** (stalls - 1), policy.max_delay))

    def _get(self) -> Any:
        """The body from `position` on (botocore retries the request itself)."""
        request = {"Bucket": self.bucket, "Key": self.key, "IfMatch": self.etag}
        if self.position or self.end < self.size:
            request["Range"] = f"bytes={self.position}-" + (str(self.end - 1) if self.end < self.size else "")
        errors = self.store.errors
        try:
            return self.store.client.get_object(**request)["Body"]
        except errors.ClientError as exc:
            if _status(exc) == 412:
                raise UnreadableSource(
                    f"changed while it was read (its ETag is no longer {self.etag}); "
                    f"{self.position:,} bytes of the version listed were read",
                    hint="run the import again to read the object as it is now",
                ) from None
            raise UnreadableSource(describe(exc), hint=_hint(exc)) from None
        except errors.BotoCoreError as exc:
            raise UnreadableSource(describe(exc), hint=_hint(exc)) from None

    def close(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            try:
                body.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped either way
                pass


class _PositionedObject(io.RawIOBase):
    """An object (as listed: its ETag and size) as a raw stream with a position; subclasses
    say how bytes from the position on are fetched (readinto)."""

    def __init__(self, store: ObjectStore, bucket: str, key: str, etag: str, size: int) -> None:
        super().__init__()
        self.store, self.bucket, self.key, self.etag, self.size = store, bucket, key, etag, size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self.position = base + offset
        return self.position


class SeekableObject(_PositionedObject):
    """An object read at any offset, for readers that seek (a zip's directory is at its end):
    each read is one ranged GET of the bytes asked for, retried as ObjectStream's are; wrapped
    in a BufferedReader (open_seekable), each GET fetches at least CHUNK_BYTES."""

    def __init__(self, store: ObjectStore, bucket: str, key: str, etag: str, size: int) -> None:
        super().__init__(store, bucket, key, etag, size)
        self._last: tuple[int, bytes] = (0, b"")  # the last range fetched: where, and its bytes

    def readinto(self, buffer: Any) -> int:
        end = min(self.position + len(buffer), self.size)
        if end <= self.position:
            return 0
        # a read near the end fetches the buffer's worth before it too: a zip's directory (at
        # the end) points back at members close before it, and a small object is one GET
        first = max(0, min(self.position, self.size - CHUNK_BYTES)) if end == self.size else self.position
        if first < self.position and not self._cached(end):
            self._last = (first, self._fetch(first, end))
        start, block = self._last
        if self._cached(end):
            # inside the last range fetched: a zip's reader seeks from its end (the directory)
            # back to the members, and a BufferedReader drops its buffer on such seeks
            count = end - self.position
            memoryview(buffer).cast("B")[:count] = block[self.position - start : end - start]
            self.position = end
            return count
        part = ObjectStream(self.store, self.bucket, self.key, self.etag, self.size, self.position, end)
        view, filled = memoryview(buffer).cast("B"), 0
        try:
            while self.position + filled < end:
                data = part.read(end - self.position - filled)
                if not data:
                    break
                view[filled : filled + len(data)] = data
                filled += len(data)
        finally:
            part.close()
        if filled <= CHUNK_BYTES:  # kept: one buffer's worth
            self._last = (self.position, bytes(view[:filled]))
        self.position += filled
        return filled

    def _cached(self, end: int) -> bool:
        start, block = self._last
        return start <= self.position and end <= start + len(block)

    def _fetch(self, start: int, end: int) -> bytes:
        part = ObjectStream(self.store, self.bucket, self.key, self.etag, self.size, start, end)
        pieces = []
        try:
            while start < end:
                data = part.read(end - start)
                if not data:
                    break
                pieces.append(data)
                start += len(data)
        finally:
            part.close()
        return b"".join(pieces)


class ForwardObject(_PositionedObject):
    """An object read mostly front to back by a reader that seeks now and then (tarfile over a
    plain tar steps over each member's data; gzip rewinds to start over): one streamed GET from
    the position reached, kept open while reads follow on; a seek up to SKIP_BYTES ahead reads
    on and drops the bytes, further (or back) is a new ranged GET from there."""

    SKIP_BYTES = CHUNK_BYTES  # dropping up to 1 MB costs less than a new request's round trip

    def __init__(self, store: ObjectStore, bucket: str, key: str, etag: str, size: int) -> None:
        super().__init__(store, bucket, key, etag, size)
        self._stream: ObjectStream | None = None

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.size:
            return 0
        stream = self._stream_at(self.position)
        data = stream.read(len(buffer))
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        self.position += len(data)
        return len(data)

    def _stream_at(self, position: int) -> ObjectStream:
        stream = self._stream
        if stream is not None and 0 < position - stream.position <= self.SKIP_BYTES:
            while stream.position < position and stream.read(position - stream.position):
                pass
        if stream is None or stream.position != position:
            if stream is not None:
                stream.close()
            stream = self._stream = ObjectStream(self.store, self.bucket, self.key, self.etag, self.size, position)
        return stream

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        super().close()


def open_seekable(source: Source) -> BinaryIO | None:
    """A seekable reader of an object's bytes (None when `source` is no object): what an
    archive reader that must seek (zip) or a Parquet reader opens instead of the source's
    stream; each read is a ranged GET of the bytes asked for (at least CHUNK_BYTES)."""
    opener = source.opener
    if isinstance(opener, functools.partial) and opener.func is ObjectStream:
        return cast(BinaryIO, io.BufferedReader(SeekableObject(*opener.args), buffer_size=CHUNK_BYTES))
    return None


def open_forward(source: Source) -> BinaryIO | None:
    """A seekable reader of an object's bytes for reading front to back (ForwardObject), or
    None when `source` is no object: what a tar reader (and a decompressor under it) opens."""
    opener = source.opener
    if isinstance(opener, functools.partial) and opener.func is ObjectStream:
        return cast(BinaryIO, io.BufferedReader(ForwardObject(*opener.args), buffer_size=CHUNK_BYTES))
    return None


def tree_of(prefix: str, listed: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The listed (key, ETag, size) as a local copy's files: keys relative to `prefix`, hidden
    ones (a component starting with ".") and "folder/" markers (consoles make them) left out,
    in the order sources.files_under reads a tree: component by component. S3 lists in UTF-8
    byte order, where "day-2/x" comes before "day/x"."""
    found = []
    for key, etag, size in listed:
        relative = key[len(prefix) :]
        if relative and not relative.endswith("/") and not _hidden(relative):
            found.append((relative, etag, size))
    found.sort(key=lambda item: item[0].split("/"))
    return found


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


# user:password@ in an endpoint URL that botocore's messages repeat
_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def describe(exc: Exception) -> str:
    """What an S3 error says, without credentials: a server's error code and message (never
    the request it echoes: a SignatureDoesNotMatch body carries the string signed), or
    botocore's own text with any user:password@ in a URL masked."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        code = error.get("Code") or "error"
        message = str(error.get("Message") or "")[:300]
        status = _status(exc)
        return f"{code}{': ' + message if message else ''}" + (f" (HTTP {status})" if status else "")
    return _USERINFO.sub("****@", str(exc) or type(exc).__name__)


def _hint(exc: Exception) -> str:
    if _status(exc) in (401, 403):
        return CREDENTIALS_HINT + "; the identity needs s3:GetObject on the object"
    return "the lines before it were imported; run the import again to retry this object"

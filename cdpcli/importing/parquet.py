"""Parquet inputs (`format` "parquet"; the optional extra `parquet`, pyarrow): each row
becomes one compact JSON line of its columns, on its own line number (row 1 is line 1).

Read a row group at a time (pyarrow reads no more than that into memory), handed on in
record batches. Values: nested structs and lists become JSON objects and arrays, timestamps
and dates ISO-8601 strings (a zone-aware timestamp keeps its offset: `+00:00` for UTC),
decimals their exact text, binary a UTF-8 string when it is one (else base64). A top-level
column that is null in a row is left out of its line, as an empty CSV cell is.

Parquet needs random access (its footer comes last): an object in a bucket is read where
pyarrow seeks, by ranged GETs (the footer, then each row group's column chunks); a source
whose bytes are neither a local file nor an object (stdin, an archive member) is copied to a
private temporary file first.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Generator
from typing import Any

from cdpcli.errors import UsageError
from cdpcli.importing.decode import MAGIC_BYTES, compression_of
from cdpcli.importing.objectstore import open_seekable
from cdpcli.importing.source import Source, source_blocks

PARQUET_EXTRA = "pip install 'cdp-pipelines-cli[parquet]'"
PARQUET_MAGIC = b"PAR1"
# `.parquet`, or with the codec a writer names after it: PostHog's batch exports name Parquet
# compressed with zstd `*.parquet.zst`, the compression inside the file (vendor-exports 3.8 trap
# 2); its other codecs are gzip, brotli, lz4 and snappy. A file compressed around the Parquet
# instead (`gzip x.parquet`) is inflated first (`_spool`)
PARQUET_NAME = re.compile(r"\.parquet(\.(zst|zstd|gz|gzip|br|lz4|snappy|sz))?$", re.IGNORECASE)
BATCH_ROWS = 4096  # rows converted at once: ITERABLE_CHUNK_LINES' worth


def parquet_module() -> Any:
    """pyarrow.parquet, or a UsageError naming the extra."""
    try:
        import pyarrow.parquet  # lazy: start-up, and an optional extra
    except ImportError:
        raise UsageError("reading Parquet needs the optional parquet extra", hint=PARQUET_EXTRA) from None
    return pyarrow.parquet


def parquet_lines(source: Source, progress: Callable[[int], None]) -> Generator[bytes, None, None]:
    """One compact JSON line for each row of the Parquet source (see the module docstring)."""
    pq = parquet_module()
    # a local file is read where it is, unless compressed around the Parquet: then inflated to a spool
    local = source.opener is None and source.is_file and compression_of(file_head(source.name)) is None
    seekable = None if local else open_seekable(source)  # an object: read by ranged GETs
    spool_dir = None if local or seekable is not None else tempfile.mkdtemp(prefix="cdp-parquet-")
    try:
        path = source.name if local else seekable or _spool(source, spool_dir or "")
        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow's ArrowInvalid and OSError alike
            raise UsageError(f"{source.label}: not a Parquet file pyarrow can read ({exc})") from None
        with parquet:
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                for batch in table.to_batches(BATCH_ROWS):
                    for row in batch.to_pylist():
                        yield row_line(row)
                progress(parquet.metadata.row_group(group).total_byte_size)
    finally:
        if seekable is not None:
            seekable.close()
        if spool_dir is not None:
            shutil.rmtree(spool_dir, ignore_errors=True)


def file_head(path: str) -> bytes:
    """A local file's first bytes: enough to tell Parquet and every compression (b"" when unreadable)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAGIC_BYTES)
    except OSError:
        return b""


def _spool(source: Source, directory: str) -> str:
    """The source's bytes in a private file, inflated when compressed (source_blocks)."""
    path = os.path.join(directory, "input.parquet")  # the directory is private (0700)
    with open(path, "wb") as out:
        for block in source_blocks(source, lambda count: None):
            out.write(block)
    return path


def row_line(row: dict[str, Any]) -> bytes:
    columns = {name: value for name, value in row.items() if value is not None}
    return json.dumps(columns, ensure_ascii=False, separators=(",", ":"), default=_json_value).encode(
        "utf-8", "surrogatepass"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "isoformat"):  # pandas' Timestamp, for nanosecond columns
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")

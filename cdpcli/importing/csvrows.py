"""CSV inputs: each row becomes one JSON call, on the row's own line number.

The converter runs in the reader thread and makes exactly one output line for each line of the
file, so line numbers (rejects, checkpoint) are the file's: a row is its call on its first line,
and blank lines after it for the lines its quoted cells span. The header line, and a row that
cannot be made a call, become marker lines (starting with a NUL byte, which no JSON line or
CSV text starts with) that the preparer turns into a skip or a reject (prepare.py, `marker`).

Mapping: with a type (--type, or a `type` column), columns named like call fields go to the
top level, the others into traits (identify, group) or properties (the rest); `--column
SRC=DEST` names the destination (dotted: traits.email, context.ip); empty cells are left out;
values stay strings unless infer (--infer-types): integers, decimals, true/false.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from cdpcli.errors import UsageError
from cdpcli.importing.source import Source, source_blocks
from cdpcli.wire import dumps

CALL_FIELDS = frozenset(
    {"type", "userId", "anonymousId", "event", "timestamp", "messageId", "groupId", "name", "previousId"}
)
OBJECT_FIELDS = frozenset({"traits", "properties", "context", "integrations"})
TRAIT_TYPES = frozenset({"identify", "group"})
MARK = b"\0"
SKIP_MARK = MARK + b"skip:"
INVALID_MARK = MARK + b"invalid:"
HEADER_REASON = "csv header"
INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")  # leading zeros (zip codes, ids) stay text
DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?")


@dataclass
class CsvMapping:
    default_type: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # --column SRC=DEST
    infer: bool = False


def parse_columns(specs: list[str]) -> dict[str, str]:
    """--column SRC=DEST options as a mapping (UsageError naming a malformed one)."""
    columns: dict[str, str] = {}
    for spec in specs:
        src, eq, dest = spec.partition("=")
        if not eq or not src or not dest or any(not part for part in dest.split(".")):
            raise UsageError(
                f"--column {spec!r}: expected SRC=DEST", hint='e.g. --column id=userId --column "E-mail=traits.email"'
            )
        if src in columns:
            raise UsageError(f"--column {src!r} is given twice")
        columns[src] = dest
    return columns


class _BlocksIO(io.RawIOBase):
    """Blocks of bytes (source_blocks) as a raw stream, for TextIOWrapper."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self.blocks = blocks
        self.block = memoryview(b"")  # read from `offset` on: re-slicing the rest copied it each time
        self.offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.offset >= len(self.block):
            self.block, self.offset = memoryview(next(self.blocks, b"")), 0
        count = min(len(buffer), len(self.block) - self.offset)
        buffer[:count] = self.block[self.offset : self.offset + count]
        self.offset += count
        return count


def csv_lines(source: Source, progress: Callable[[int], None], mapping: CsvMapping) -> Generator[bytes, None, None]:
    """One output line for each line of the CSV source (see the module docstring)."""
    blocks = source_blocks(source, progress)
    try:
        text = io.TextIOWrapper(
            io.BufferedReader(_BlocksIO(blocks)), encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        physical: list[str] = []  # the file's lines of the row being read

        def lines() -> Iterator[str]:
            for line in text:
                physical.append(line)
                yield line

        csv.field_size_limit(64 << 20)  # a huge cell is a call too large (rejected), not a crash
        reader = csv.reader(lines())
        header: list[str] | None = None
        for row in _rows(reader, source):
            raw = "".join(physical)
            spanned = len(physical)
            physical.clear()
            if header is None:
                if not any(cell.strip() for cell in row):
                    yield b""  # blank lines before the header
                    continue
                header = [cell.strip() for cell in row]
                _check_header(source, header, mapping)
                yield SKIP_MARK + HEADER_REASON.encode() + MARK + _encode(raw.strip())
            elif not any(row):
                yield b""
            else:
                yield _row_line(header, row, raw, mapping)
            for _ in range(spanned - 1):
                yield b""
    finally:
        blocks.close()


def _rows(reader: Any, source: Source) -> Iterator[list[str]]:
    """The reader's rows; what the csv module cannot read (a cell over its size limit, which an
    unbalanced quote makes of the rest of the file) is a usage error naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UsageError(
                f"{source.label}:{reader.line_num}: CSV that cannot be read ({exc})",
                hint="a quote left open runs to the end of the file: check the quotes on that line",
            ) from None


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _check_header(source: Source, header: list[str], mapping: CsvMapping) -> None:
    named = [name for name in header if name]
    for name in named:
        if named.count(name) > 1:
            raise UsageError(f"{source.label}: the CSV header names the column {name!r} twice")
    for src in mapping.columns:
        if src not in header:
            raise UsageError(
                f"--column {src}={mapping.columns[src]}: {source.label} has no column {src!r}",
                hint="its header names: " + ", ".join(named[:20]),
            )
    has_type = "type" in named or "type" in mapping.columns.values()
    if mapping.default_type is None and not has_type:
        raise UsageError(
            f"{source.label}: a CSV row needs a call type",
            hint="give --type identify (or track, group, page, screen), or a 'type' column",
        )


def _row_line(header: list[str], row: list[str], raw: str, mapping: CsvMapping) -> bytes:
    if len(row) > len(header):
        return _invalid(f"row has {len(row)} cells, the header names {len(header)}", "csv row", raw)
    kind = mapping.default_type
    if "type" in header or "type" in mapping.columns.values():
        for name, value in zip(header, row, strict=False):
            if value and mapping.columns.get(name, name) == "type":
                kind = value
    bag = "traits" if kind in TRAIT_TYPES else "properties"
    call: dict[str, Any] = {}
    for name, value in zip(header, row, strict=False):
        if not value or not name:  # empty cells (and unnamed columns) are left out
            continue
        dest = mapping.columns.get(name)
        if dest is None:
            if name in CALL_FIELDS or "." in name and name.split(".", 1)[0] in OBJECT_FIELDS:
                dest = name
            else:
                call.setdefault(bag, {})[name] = _value(value, mapping.infer)
                continue
        path = dest.split(".")
        typed = _value(value, mapping.infer) if not (len(path) == 1 and dest in CALL_FIELDS) else value
        if kind is None and dest == "type":
            kind = value
        target = call
        for part in path[:-1]:
            inner = target.setdefault(part, {})
            if not isinstance(inner, dict):
                return _invalid(
                    f"column {name!r} goes into {dest}, which another column set to a value", "csv row", raw
                )
            target = inner
        if isinstance(target.get(path[-1]), dict):
            return _invalid(f"column {name!r} sets {dest}, which other columns fill", "csv row", raw)
        target[path[-1]] = typed
    return _encode(dumps(call))


def _value(text: str, infer: bool) -> Any:
    if not infer:
        return text
    if INTEGER.fullmatch(text):
        return int(text)
    if DECIMAL.fullmatch(text):
        number = float(text)
        if number not in (float("inf"), float("-inf")):
            return number
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def _invalid(error: str, reason: str, raw: str) -> bytes:
    record = {"error": error, "reason": reason, "input": raw.rstrip("\r\n")}
    return INVALID_MARK + _encode(dumps(record))


def marker(line: bytes) -> tuple[str, str, str | None, bytes]:
    """What a marker line says: ("skip", reason, None, the line's text) or ("invalid", reason,
    error, the row's text)."""
    if line.startswith(SKIP_MARK):
        reason, _, text = line[len(SKIP_MARK) :].partition(MARK)
        return "skip", reason.decode(), None, text
    record = json.loads(line[len(INVALID_MARK) :].decode("utf-8", "surrogateescape"))
    return "invalid", record["reason"], record["error"], _encode(record["input"])

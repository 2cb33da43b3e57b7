"""CSV inputs: each row becomes one JSON call, on the row's own line number.

The converter runs in the reader thread and makes exactly one output line for each line of the
file, so line numbers (rejects, checkpoint) are the file's: a row is its call on its first line,
and blank lines after it for the lines its quoted cells span. The header line, and a row that
cannot be made a call, become marker lines (starting with a NUL byte, which no JSON line or
CSV text starts with) that the preparer turns into a skip or a reject (prepare.py, `marker`).

A quoted cell that is never closed would otherwise swallow every row after it: a row may span
at most MAX_ROW_LINES lines and MAX_ROW_BYTES bytes (a call holds at most 32,000 bytes, so a
longer row can never be sent), and a quote still open at the end of the file or past those
bounds makes the row's first line an invalid row; the lines after it are read again as rows.

Delimiter: given (`delimiter`), else a tab for a `.tsv` name, else the one of `,` `;` tab `|`
the header line holds most of. A row must have one cell per column: one with fewer or more is
an invalid row (a cell's column is never guessed). A file whose first block is not text (UTF-16,
binary) is one invalid line for the whole file, as an NDJSON file is.

Mapping: with a type (--type, or a `type` column), a column named like one of that type's own
top-level API fields goes to the top level, the others into traits (identify, group) or
properties (the rest); `--column SRC=DEST` names the destination (dotted: traits.email,
context.ip), which must be a top-level field of the type or lie inside one of its objects;
empty cells are left out; values stay strings unless infer (--infer-types): integers,
decimals, true/false.
"""

from __future__ import annotations

import collections
import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from cdpcli.errors import UsageError
from cdpcli.importing.source import INPUT_KEPT, Source, not_text, source_blocks
from cdpcli.wire import dumps

# Each call type's own top-level fields, as the API document lists them (pipelines-openapi.json:
# components.schemas.<type>, without the read-only receivedAt and version); everything else in a
# row belongs in the type's traits or properties.
COMMON_FIELDS = frozenset(
    {
        "type",
        "userId",
        "anonymousId",
        "messageId",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "context",
        "integrations",
    }
)
TYPE_FIELDS = {
    "identify": COMMON_FIELDS | {"traits"},
    "group": COMMON_FIELDS | {"groupId", "traits"},
    "track": COMMON_FIELDS | {"event", "groupId", "properties"},
    "page": COMMON_FIELDS | {"name", "properties"},
    "screen": COMMON_FIELDS | {"name", "properties"},
    "alias": COMMON_FIELDS | {"previousId"},
}
ANY_TYPE_FIELDS = frozenset().union(*TYPE_FIELDS.values())
OBJECT_FIELDS = frozenset({"traits", "properties", "context", "integrations"})
TRAIT_TYPES = frozenset({"identify", "group"})
DELIMITERS = ",;\t|"  # what is detected; --delimiter may name another single character
DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tabs", "|": "'|'"}
# a name that says tab-separated (compressed or not): its delimiter is a tab, not detected
TSV_NAME = re.compile(r"\.tsv(\.(gz|gzip|bz2|xz|zst|zstd))?$", re.IGNORECASE)
# bounds of one row (see the module docstring): a call holds at most 32,000 bytes
MAX_ROW_LINES = 100
MAX_ROW_BYTES = 32 << 10
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
    delimiter: str | None = None  # None: detected from the header line


def parse_columns(specs: list[str]) -> dict[str, str]:
    """--column SRC=DEST options as a mapping (UsageError naming a malformed one, or one whose
    DEST no call type has)."""
    columns: dict[str, str] = {}
    for spec in specs:
        src, eq, dest = spec.partition("=")
        if eq and src and dest and any(not part for part in dest.split(".")):
            raise UsageError(
                f"column={spec!r}: DEST {dest!r} has an empty name between dots",
                hint='e.g. column=id=userId column="E-mail=traits.email"',
                option="column",
            )
        if not eq or not src or not dest:
            raise UsageError(
                f"column={spec!r}: expected SRC=DEST",
                hint='e.g. column=id=userId column="E-mail=traits.email"',
                option="column",
            )
        if src in columns:
            raise UsageError(f"column={src!r} is given twice", option="column")
        check_destination(src, dest, None)
        columns[src] = dest
    return columns


def check_destination(src: str, dest: str, kind: str | None) -> None:
    """A --column destination must be a top-level field of the call type (of any type when the
    type comes from a column) or lie inside one of its objects: anything else would be a field
    the API does not have, and the value would be lost there."""
    fields = TYPE_FIELDS.get(kind or "", ANY_TYPE_FIELDS)
    top, dotted, _ = dest.partition(".")
    if top in fields and (not dotted or top in OBJECT_FIELDS):
        return
    what = f"{kind} calls have" if kind in TYPE_FIELDS else "a call has"
    problem = f"{what} no object {top!r}" if dotted and top in fields else f"{what} no top-level field {top!r}"
    if kind in TYPE_FIELDS:
        inside = f"{'traits' if kind in TRAIT_TYPES else 'properties'}.{dest}"
    else:
        inside = f"traits.{dest} (identify, group) or properties.{dest} (the others)"
    raise UsageError(
        f"column={src}={dest}: {problem}",
        hint=f"name a top-level field of the call, or a place inside one: column={src}={inside}",
        option="column",
    )


def check_delimiter(delimiter: str | None) -> None:
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise UsageError(
            f"delimiter={delimiter!r}: expected one character (not a quote or a line break)",
            hint="e.g. delimiter=';' or delimiter=$'\\t'",
            option="delimiter",
        )


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


class RowRunsAway(Exception):  # noqa: N818 - a signal to the row loop, not an error
    """A row past MAX_ROW_LINES or MAX_ROW_BYTES: a quote left open."""


# Given to csv.reader after the file's last line: a lone high surrogate, which no decoded text
# holds (surrogateescape makes only low ones). A reader still inside a quoted cell takes it into
# the cell; otherwise it is a row of its own, and the end.
END_OF_FILE = "\ud800"


class _PhysicalLines:
    """The file's lines for csv.reader, remembering those of the row being read (`row`), with
    lines to read again first (`again`: what followed the first line of a row that ran away).
    An iterator object, not a generator: it can be asked again after it said StopIteration."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text = text
        self.again: collections.deque[str] = collections.deque()
        self.row: list[str] = []
        self.row_chars = 0
        self.finished = False  # END_OF_FILE was given

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        if self.row and (len(self.row) >= MAX_ROW_LINES or self.row_chars >= MAX_ROW_BYTES):
            raise RowRunsAway
        line = self.again.popleft() if self.again else self.text.readline()
        if not line:
            if self.finished:
                raise StopIteration
            self.finished = True
            line = END_OF_FILE
        self.row.append(line)
        self.row_chars += len(line)
        return line

    def peek(self) -> str:
        """The first line that is not blank (the header), to be read again."""
        while line := self.text.readline():
            self.again.append(line)
            if line.strip():
                return line
        return ""

    def next_row(self) -> None:
        self.row, self.row_chars = [], 0


def csv_lines(source: Source, progress: Callable[[int], None], mapping: CsvMapping) -> Generator[bytes, None, None]:
    """One output line for each line of the CSV source (see the module docstring)."""
    check_delimiter(mapping.delimiter)
    blocks = source_blocks(source, progress)
    try:
        head = next(blocks, b"")
        problem = not_text(head, "CSV")
        if problem:  # UTF-16 (Excel's "Unicode text"), binary: one record, not one per line
            yield _invalid(problem, "not text", head[:INPUT_KEPT].decode("utf-8", "surrogateescape"))
            return
        text = io.TextIOWrapper(
            io.BufferedReader(_BlocksIO(itertools.chain([head], blocks))),
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
        physical = _PhysicalLines(text)
        delimiter = mapping.delimiter or ("\t" if TSV_NAME.search(source.name) else detect_delimiter(physical.peek()))
        csv.field_size_limit(64 << 20)  # a huge cell on one line is a call too large (rejected)
        reader = csv.reader(physical, delimiter=delimiter)
        header: list[str] | None = None
        line_no = 0  # lines made so far
        for row in _rows(reader, physical):
            raw = "".join(physical.row)
            spanned = len(physical.row)
            if row is None:  # ran away: its first line is the invalid row, the rest is read again
                if header is None:
                    raise UsageError(
                        f"{source.label}:{line_no + 1}: the CSV header has a quote that is never closed",
                        hint="check the quotes on that line",
                    )
                physical.again.extendleft(reversed(physical.row[1:]))
                spanned = 1
                first = physical.row[0]
                kept = (
                    f" (the record keeps its first {MAX_ROW_BYTES:,} characters)" if len(first) > MAX_ROW_BYTES else ""
                )
                yield _invalid(
                    f"a quoted cell is not closed within {MAX_ROW_LINES} lines or {MAX_ROW_BYTES:,} bytes, "
                    f"or by the end of the file, or is over the csv module's limit{kept}; "
                    "the lines after it are read as rows",
                    "csv quote not closed",
                    first[:MAX_ROW_BYTES],
                )
            elif header is None and not any(cell.strip() for cell in row):
                yield b""  # blank lines before the header
            elif header is None:
                header = [cell.strip() for cell in row]
                _check_header(source, header, mapping, line_no + 1)
                yield SKIP_MARK + HEADER_REASON.encode() + MARK + _encode(raw.strip())
            elif not any(row):
                yield b""
            else:
                yield _row_line(header, row, raw, mapping, delimiter)
            line_no += spanned
            for _ in range(spanned - 1):
                yield b""
    finally:
        blocks.close()


def detect_delimiter(header: str) -> str:
    """The one of DELIMITERS the header line holds most of, outside quotes (`,` when none)."""
    outside = "".join(header.split('"')[::2])
    counts = [(outside.count(delimiter), -rank) for rank, delimiter in enumerate(DELIMITERS)]
    best = max(counts)
    return DELIMITERS[-best[1]] if best[0] else ","


def _rows(reader: Any, physical: _PhysicalLines) -> Iterator[list[str] | None]:
    """The reader's rows, None for one that runs away (see the module docstring): past the
    bounds, still quoted at the end of the file, or more than the csv module can hold."""
    while True:
        physical.next_row()
        try:
            row = next(reader)
        except StopIteration:
            return
        except (RowRunsAway, csv.Error):
            yield None
            continue
        if physical.row[-1] is END_OF_FILE:
            if len(physical.row) == 1:
                return
            yield None  # taken into a cell: a quote open at the end of the file
            continue
        yield row


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _check_header(source: Source, header: list[str], mapping: CsvMapping, line_no: int) -> None:
    for number, name in enumerate(header, 1):
        if not name:
            raise UsageError(
                f"{source.label}:{line_no}: the CSV header's column {number} has no name",
                hint="name it in the header line (its cells would have nowhere to go), or remove the column",
            )
        if header.count(name) > 1:
            raise UsageError(f"{source.label}: the CSV header names the column {name!r} twice")
    for src, dest in mapping.columns.items():
        if src not in header:
            raise UsageError(
                f"column={src}={dest}: {source.label} has no column {src!r}",
                hint="its header names: " + ", ".join(header[:20]),
                option="column",
            )
        check_destination(src, dest, mapping.default_type)
    has_type = "type" in header or "type" in mapping.columns.values()
    if mapping.default_type is None and not has_type:
        raise UsageError(
            f"{source.label}: a CSV row needs a call type",
            hint="give type=identify (or track, group, page, screen), or a 'type' column",
            option="type",
        )


def _row_line(header: list[str], row: list[str], raw: str, mapping: CsvMapping, delimiter: str) -> bytes:
    if len(row) != len(header):
        return _invalid(_cell_count_error(len(row), len(header), raw, delimiter), "csv row", raw)
    kind = mapping.default_type
    if "type" in header or "type" in mapping.columns.values():
        for name, value in zip(header, row, strict=False):
            if value and mapping.columns.get(name, name) == "type":
                kind = value
    fields = TYPE_FIELDS.get(kind or "", COMMON_FIELDS)
    bag = "traits" if kind in TRAIT_TYPES else "properties"
    call: dict[str, Any] = {}
    for name, value in zip(header, row, strict=False):
        if not value:  # empty cells are left out
            continue
        dest = mapping.columns.get(name)
        if dest is None:
            top, dotted, _ = name.partition(".")
            if top in fields and (not dotted or top in OBJECT_FIELDS):
                dest = name
            else:  # not a field of this type's call: the API would drop it there
                call.setdefault(bag, {})[name] = _value(value, mapping.infer, f"{bag}.{name}")
                continue
        path = dest.split(".")
        typed: Any
        if dest in OBJECT_FIELDS:  # a whole object in one cell: JSON, as exporters write it
            typed = _object_cell(value)
            if typed is None:
                return _invalid(
                    f"column {name!r} goes into {dest}, an object, and holds no JSON object: write the cell "
                    f'as one ({{"plan":"pro"}}), or name a column for each key ({dest}.plan)',
                    "csv row",
                    raw,
                )
        else:
            typed = value if len(path) == 1 and dest in ANY_TYPE_FIELDS else _value(value, mapping.infer, dest)
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


def _object_cell(text: str) -> dict[str, Any] | None:
    """A cell holding a JSON object (strict JSON: no key twice, no NaN), else None."""
    if not text.lstrip().startswith("{"):
        return None
    from cdpcli import jsontext  # lazy: start-up (only CSVs with whole-object columns)

    try:
        value = jsontext.loads(text)
    except jsontext.JSONTextError:
        return None
    return value if isinstance(value, dict) else None


def _cell_count_error(cells: int, columns: int, raw: str, delimiter: str) -> str:
    """A row with more or fewer cells than the header has columns: which column would a cell
    go to? Never guessed (`u3;pro;c@x` under `userId,plan,email` was sent as userId
    "u3;pro;c@x"); a missing cell is written empty (`a,,c`, or `a,b,` for the last)."""
    error = f"row has {cells} cell{'s' if cells != 1 else ''}, the header names {columns}"
    others = [shown for other, shown in DELIMITER_NAMES.items() if other != delimiter and other in raw]
    if others:
        error += f"; its cells may be separated by {others[0]}, the header's by {DELIMITER_NAMES.get(delimiter, repr(delimiter))}"
    elif cells < columns:
        error += "; write an empty cell for each missing value (a,,c)"
    return error


# fields the API takes as a boolean (pipelines-openapi.json, identify's traits.unsubscribed: "any
# casing of "true", 1, or "1" means the person is unsubscribed"): a CSV cell is text, and
# without --infer-types `true` was refused as "not a valid boolean"; read as the API reads it
BOOLEAN_FIELDS = frozenset({"traits.unsubscribed"})
_BOOLEAN_CELLS = {"true": True, "1": True, "false": False, "0": False}


def _value(text: str, infer: bool, path: str = "") -> Any:
    if not infer:
        if path in BOOLEAN_FIELDS and text.lower() in _BOOLEAN_CELLS:
            return _BOOLEAN_CELLS[text.lower()]
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

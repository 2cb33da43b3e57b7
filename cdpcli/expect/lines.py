"""Where each key of an expectations file is written: a map from a key's path (`("expect", 0,
"count")`) to its line, so an error names the line of the value at fault, not the file's top.

TOML and JSON parsers keep no positions, so the lines are found beside them, in text that has
already parsed: TOML by its headers (`[table]`, `[[array]]`) and `key =` lines, JSON by walking
the document with the standard decoder (raw_decode for each key and scalar). A key written
where this scan does not look (in an inline table spanning lines) is named by the line of the
nearest key that holds it.
"""

from __future__ import annotations

import json
import re

Path = tuple[str | int, ...]

_KEY_PART = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_-]+"
_DOTTED = rf"(?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]")
_ASSIGNMENT = re.compile(rf"\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY_PART)


def toml_lines(text: str) -> dict[Path, int]:
    """The line of each table header and `key =` line of a TOML document that parses."""
    lines: dict[Path, int] = {}
    arrays: dict[Path, int] = {}  # an array of tables -> the index of its last table so far
    table: Path = ()
    open_string = ""  # the quotes of a multi-line string being read: its lines hold no keys
    for number, line in enumerate(text.splitlines(), 1):
        if open_string:
            open_string = "" if open_string in line else open_string
        elif header := _ARRAY_HEADER.match(line):
            parts = _split(header[1])
            array = (*_within(parts[:-1], arrays), parts[-1])
            arrays[array] = arrays.get(array, -1) + 1
            table = (*array, arrays[array])
            lines[table] = number
        elif header := _TABLE_HEADER.match(line):
            table = _within(_split(header[1]), arrays)
            lines.setdefault(table, number)
        elif assignment := _ASSIGNMENT.match(line):
            lines.setdefault((*table, *_split(assignment[1])), number)
            rest = line[assignment.end() :]
            open_string = next((quotes for quotes in ('"""', "'''") if rest.count(quotes) == 1), "")
    return lines


def _split(dotted: str) -> list[str]:
    """`plan.events."Signed Up"` -> ["plan", "events", "Signed Up"]."""
    parts = []
    for part in _PART.findall(dotted):
        if part.startswith('"'):
            part = json.loads(part) if "\\" in part else part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return parts


def _within(parts: list[str], arrays: dict[Path, int]) -> Path:
    """A header's path with the index of the last table of each array of tables it passes
    through (`[expect.match]` after the second `[[expect]]` -> ("expect", 1, "match"))."""
    path: Path = ()
    for part in parts:
        path = (*path, part)
        if path in arrays:
            path = (*path, arrays[path])
    return path


def json_lines(text: str, repeats: list[tuple[Path, int]] | None = None) -> dict[Path, int]:
    """The line of each member's key and each array item of a JSON document that parses;
    `repeats`, when given, gets each key an object names again, with the line of the repeat."""
    lines: dict[Path, int] = {}
    decoder = json.JSONDecoder()
    whitespace = re.compile(r"[ \t\n\r]*")

    def line_at(index: int) -> int:
        return text.count("\n", 0, index) + 1

    def skip(index: int) -> int:
        return whitespace.match(text, index).end()  # type: ignore[union-attr]  # `*` always matches

    def value(index: int, path: Path) -> int:
        """Record what `path` holds from `index` on; the index after it."""
        index = skip(index)
        opening = text[index]
        if opening not in "{[":
            return decoder.raw_decode(text, index)[1]
        closing, position = "}" if opening == "{" else "]", 0
        index = skip(index + 1)
        while text[index] != closing:
            if opening == "{":
                key, after = decoder.raw_decode(text, index)
                if repeats is not None and (*path, key) in lines:
                    repeats.append(((*path, key), line_at(index)))
                lines[(*path, key)] = line_at(index)  # the last of a repeated key counts, as in json.loads
                index = value(skip(after) + 1, (*path, key))
            else:
                lines[(*path, position)] = line_at(skip(index))
                index = value(index, (*path, position))
                position += 1
            index = skip(index)
            index = skip(index + 1) if text[index] == "," else index
        return index + 1

    value(0, ())
    return lines

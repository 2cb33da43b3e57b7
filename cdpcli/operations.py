"""Customer.io's own operations as calls: deleting or suppressing a person,
registering or removing a push device, deleting an object or a relationship, reporting message
metrics. Each is a track call with a reserved event name (a "semantic event"); the builders
here take plain values and return the call, shaped as the official SDKs send it
(tests/data/golden/). `send` and `prepare_call` (cdpcli.calls) validate and send one; `bulk`
sends one per line of a file through the import engine. Never prints.

    from cdpcli import operations
    call = operations.device_add("42", "fcm-token", platform="android", token_type="fid")
    cdpcli.send("track", call, target=target)
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdpcli import jsontext
from cdpcli.errors import ExitCode, FatalStop, UsageError

if TYPE_CHECKING:
    from cdpcli.importing import Importer, ImportEvents, ImportResult
    from cdpcli.target import Target

PERSON_EVENTS = {"delete": "User Deleted", "suppress": "User Suppressed", "unsuppress": "User Unsuppressed"}
PLATFORMS = ("ios", "android", "web")
# The Android SDK's DeviceTokenType (FID, TOKEN), sent as this device attribute
# (customerio-android DeviceTokenTypeTests.kt: TOKEN_TYPE = "_cio_token_type")
TOKEN_TYPES = ("fid", "token")
TOKEN_TYPE_PROPERTY = "_cio_token_type"
CONTENT_ACTIONS = ("viewed", "clicked")
# what the browser SDK's in-app plugin sends as contentType (in-app-plugin/events.ts)
CONTENT_TYPE = "in_app_content"
_WHOLE_NUMBER = re.compile(r"[0-9]+")


def _need(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _one_of(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise UsageError(f"{what} {value!r}: expected one of {', '.join(allowed)}")
    return value


def whole_number(value: Any, what: str) -> int | None:
    """An id the API takes as an integer: an int, or a string of digits."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value)
    raise UsageError(f"{what} {value!r}: expected a whole number, e.g. 1")


def _who(user_id: str | None, anonymous_id: str | None) -> dict[str, str]:
    return {k: v for k, v in (("userId", user_id), ("anonymousId", anonymous_id)) if v is not None}


def person(action: str, user_id: str) -> dict[str, Any]:
    """`User Deleted`, `User Suppressed` or `User Unsuppressed` (action delete, suppress,
    unsuppress) for one person. Deleting and suppressing cannot be undone."""
    _one_of(action, tuple(PERSON_EVENTS), "action")
    return {"type": "track", "event": PERSON_EVENTS[action], "userId": _need(user_id, "user id")}


def device_add(
    user_id: str,
    token: str,
    *,
    platform: str | None = None,
    token_type: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`Device Created or Updated`: the token and platform in context.device, the device's
    attributes in properties (as the SDKs send them; a token on identify is ignored)."""
    _one_of(platform, PLATFORMS, "platform")
    _one_of(token_type, TOKEN_TYPES, "token type")
    properties = dict(attributes or {})
    if token_type is not None:
        properties[TOKEN_TYPE_PROPERTY] = token_type
    device = _device(token, platform)
    return {
        "type": "track",
        "event": "Device Created or Updated",
        "userId": _need(user_id, "user id"),
        "properties": properties,
        "context": {"device": device},
    }


def _device(token: str, platform: str | None) -> dict[str, Any]:
    """context.device as the SDKs send it: the token, and the platform as `type` when known."""
    device = {"token": _need(token, "token")}
    if platform is not None:
        device["type"] = platform
    return device


def device_remove(user_id: str, token: str, *, platform: str | None = None) -> dict[str, Any]:
    """`Device Deleted`: empty properties, the token and platform in context.device."""
    _one_of(platform, PLATFORMS, "platform")
    device = _device(token, platform)
    return {
        "type": "track",
        "event": "Device Deleted",
        "userId": _need(user_id, "user id"),
        "properties": {},
        "context": {"device": device},
    }


def object_delete(
    object_id: str,
    *,
    object_type_id: int | str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> dict[str, Any]:
    """`Object Deleted`: properties {objectId, objectTypeId (an integer)}. The API document asks
    for an anonymousId; a userId alone is sent with a warning (calls.call_warnings)."""
    if user_id is None and anonymous_id is None:
        raise UsageError(
            "deleting an object needs a user id or an anonymous id",
            hint="give user_id= or anonymous_id=",
            option="user_id",
        )
    properties: dict[str, Any] = {"objectId": _need(object_id, "object id")}
    type_id = whole_number(object_type_id, "object type id")
    if type_id is not None:
        properties["objectTypeId"] = type_id
    return {"type": "track", "event": "Object Deleted", **_who(user_id, anonymous_id), "properties": properties}


def relationship_delete(user_id: str, object_id: str, *, object_type_id: int | str | None = None) -> dict[str, Any]:
    """`Relationship Deleted`: the person's relationship to one object."""
    properties: dict[str, Any] = {"objectId": _need(object_id, "object id")}
    type_id = whole_number(object_type_id, "object type id")
    if type_id is not None:
        properties["objectTypeId"] = type_id
    return {
        "type": "track",
        "event": "Relationship Deleted",
        "userId": _need(user_id, "user id"),
        "properties": properties,
    }


def report_delivery(
    delivery_id: str,
    metric: str,
    *,
    recipient: str | None = None,
    href: str | None = None,
    action_name: str | None = None,
    action_value: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> dict[str, Any]:
    """`Report Delivery Event`: a message's metric (delivered, opened, clicked, converted; others
    are sent with a warning). `recipient` is the device token of a push (the Android SDK)."""
    properties: dict[str, Any] = {"deliveryId": _need(delivery_id, "delivery id"), "metric": _need(metric, "metric")}
    optional = {"recipient": recipient, "href": href, "actionName": action_name, "actionValue": action_value}
    properties.update((k, v) for k, v in optional.items() if v is not None)
    return {"type": "track", "event": "Report Delivery Event", **_who(user_id, anonymous_id), "properties": properties}


def report_content(
    content_id: int | str,
    template_id: int | str,
    action: str,
    *,
    action_name: str | None = None,
    action_value: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> dict[str, Any]:
    """`Report Content Event` (action viewed or clicked): integer contentId and templateId, as
    the pipeline requires (a string id is dropped silently)."""
    _one_of(action, CONTENT_ACTIONS, "action")
    properties: dict[str, Any] = {
        "actionType": f"{action}_content",
        "contentId": whole_number(content_id, "content id"),
        "templateId": whole_number(template_id, "template id"),
        "contentType": CONTENT_TYPE,
    }
    optional = {"actionName": action_name, "actionValue": action_value}
    properties.update((k, v) for k, v in optional.items() if v is not None)
    return {"type": "track", "event": "Report Content Event", **_who(user_id, anonymous_id), "properties": properties}


# -- bulk: one call per line, through the import engine ---------------------------------------


class BadLine(ValueError):
    """A line that names no call; the message goes to the rejects file with the line number."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# A first line that names a column rather than holds an id (an export's header), compared as
# `header_key` spells it: any case, without spaces, "-", "_" and quotes ("E-Mail Address",
# "customer id" and "person_id" are emailaddress, customerid and personid). People and objects
# each have their own list: `name` heads a list of objects, and is no person's id column.
PERSON_HEADER_NAMES = frozenset(
    {
        *("id", "ids", "user", "users", "userid", "userids", "uid", "identifier"),
        *("person", "people", "personid", "customer", "customers", "customerid", "cioid"),
        *("email", "emails", "emailaddress", "mail", "externalid", "anonymousid", "distinctid"),
        *("profileid", "contactid", "memberid"),
    }
)
OBJECT_HEADER_NAMES = frozenset(
    {
        *("id", "ids", "identifier", "name", "object", "objects", "objectid", "objectids"),
        *("group", "groups", "groupid", "company", "companyid", "account", "accountid", "objecttypeid"),
    }
)
# What separates a CSV export's cells (","; ";" in spreadsheets of comma-decimal locales; a tab
# in TSV): a bare id line holding one is a row of an export, never sent as an id (a CSV export
# given as ids deleted a person called "email,name"). Customer.io's ids and emails hold none in
# practice; an id that does goes as a JSON string line, "a,b", which is sent as written.
CELL_SEPARATORS = {",": "a comma", ";": "a semicolon", "\t": "a tab"}
_TAKE_FIRST_COLUMN = {",": "cut -d, -f1", ";": "cut -d';' -f1", "\t": "cut -f1"}
BOM = "\ufeff"  # a UTF-8 byte order mark (Windows exports start with one): never part of an id
_BOM_BYTES = BOM.encode()
_HEADER_NOISE = re.compile(r"[\s_\-\"'\ufeff]+")


@dataclass
class Operation:
    """One operation applied to each line of a file: `build(**fields)` makes the call from the
    line's fields over `defaults` (the flags). A bare line (not a JSON object) is the value of
    `id_field`; a JSON object line gives any of `fields` by name; None in `id_field`: every
    line must be a JSON object."""

    name: str  # as the user typed it: "person delete"
    build: Callable[..., dict[str, Any]]
    fields: tuple[str, ...]
    id_field: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    # the first line of a file: True a header (skipped), False an id (sent), None: a first line
    # that looks like a header (header_names) is refused, since it would be sent as an id
    header: bool | None = None
    header_names: frozenset[str] = frozenset()

    def fields_of(self, line: bytes) -> dict[str, Any]:
        """The line's fields (defaults applied), or BadLine."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise BadLine("not valid UTF-8", "not UTF-8") from None
        value = self._value_of(text.strip().lstrip(BOM).strip())
        if isinstance(value, str):
            if self.id_field is None:
                raise BadLine(f"expected a JSON object with {', '.join(self.fields)}", "not an object")
            _check_id(value)
            return {**self.defaults, self.id_field: value}
        if not isinstance(value, dict):
            raise BadLine("expected an id or a JSON object", "not an object")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise BadLine(f"unknown field {unknown[0]!r}; {self.name} takes {', '.join(self.fields)}", "unknown field")
        value = dict(value)
        for name, given in value.items():
            if name in _ID_FIELDS and isinstance(given, int) and not isinstance(given, bool):
                value[name] = given = str(given)  # numeric ids are sent as strings, as the SDKs do
            if isinstance(given, str) and name in _ID_FIELDS:
                _check_id(given)
        return {**self.defaults, **{k: v for k, v in value.items() if v is not None}}

    def _value_of(self, text: str) -> Any:
        """A line's JSON value, or its text when it is a bare id; BadLine for a CSV row."""
        if text.startswith(("{", '"')):
            try:
                return jsontext.loads(text)
            except jsontext.JSONTextError as exc:
                if text.startswith('"') and cell_separator(text):  # "a@x.com","Ada": a quoted CSV row
                    raise BadLine(_csv_row(text), "CSV row") from None
                message = str(exc)
                raise BadLine(
                    message, "duplicate key" if message.startswith("duplicate key") else "invalid JSON"
                ) from None
        if self.id_field is None:
            raise BadLine(
                f"expected a JSON object with {', '.join(self.fields)}, e.g. {self.example()}", "not an object"
            )
        if cell_separator(text):
            raise BadLine(_csv_row(text), "CSV row")
        return text

    def call_for(self, line: bytes) -> dict[str, Any]:
        fields = self.fields_of(line)
        missing = [name for name in self.required() if fields.get(name) is None]
        if missing:
            raise BadLine(f"missing {missing[0]!r}: give it on each line or as a flag", "missing field")
        try:
            return self.build(**fields)
        except UsageError as exc:
            raise BadLine(exc.message, "invalid call") from None

    def required(self) -> list[str]:
        """The build function's fields without a default (checked before the call: a
        TypeError from inside it is a bug to report, not a missing field)."""
        return [
            name
            for name, parameter in inspect.signature(self.build).parameters.items()
            if parameter.default is inspect.Parameter.empty
            and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        ]

    def example(self) -> str:
        return json.dumps(dict.fromkeys(self.fields[:2], "…"), ensure_ascii=False)

    def key_of(self, line: bytes) -> str:
        """What makes two lines the same call (the fields they give): a repeated one is sent once."""
        return fields_key(self.fields_of(line))

    def read_ids(self, sources: Iterable[tuple[str, Iterable[bytes], bool]], count: int = 10) -> IdList:
        """What files of ids hold, read as the send reads them: what a confirmation shows.
        `sources`: each file's label, lines and whether its first line is to be judged (not
        when a resumed run settled it). Each file's first line is a header or not, a
        leading BOM is dropped, comments and repeated calls are left out. UsageError, before
        anything is sent, for a first line that looks like a header when no one said what it
        is, and for a row of a CSV export (its file:line)."""
        ids = IdList()
        seen: set[str] = set()
        key = self.id_field or self.fields[0]
        for label, lines, first in sources:
            for line_no, line in enumerate(lines, 1):
                line = (line.removeprefix(_BOM_BYTES) if line_no == 1 else line).strip()
                if not line:
                    continue
                if is_comment(line):
                    ids.comments += 1
                    continue
                if first:
                    first = False
                    if self.check_first(line, f"{label}:{line_no}"):
                        ids.header = line.decode("utf-8", "replace").lstrip(BOM)
                        continue
                try:
                    fields = self.fields_of(line)
                except BadLine as exc:
                    if exc.reason == "CSV row":
                        raise self.csv_refusal(line, f"{label}:{line_no}") from None
                    ids.bad += 1
                    continue
                unique = fields_key(fields)  # as the send tells a repeated line (key_of)
                if unique in seen:
                    ids.duplicates += 1
                    continue
                seen.add(unique)
                ids.distinct += 1
                if len(ids.first) < count and fields.get(key) is not None:
                    ids.first.append(str(fields[key]))
        return ids

    def check_first(self, line: bytes, where: str) -> bool:
        """A file's first line (comments and blank lines aside): True when it is a header to
        skip (header=True). UsageError when it looks like a header and no one said what it is
        (it would be sent as an id: a person called `email` deleted), or is a CSV row."""
        if self.header is None and looks_like_header(line, self.header_names):
            raise UsageError(
                f"{where}: the first line, {line.decode('utf-8', 'replace').strip().lstrip(BOM)!r}, "
                "looks like a header, not an id",
                hint="say what it is: header=True (a header: skipped) or header=False (an id: sent)",
                option="header",
            )
        if self.header:
            return True
        if self.id_field is not None and cell_separator(line.decode("utf-8", "replace")):
            raise self.csv_refusal(line, where)
        return False

    def csv_refusal(self, line: bytes, where: str) -> UsageError:
        """The error for a CSV row among the ids: nothing is sent, and how to make ids of it."""
        text = line.decode("utf-8", "replace").strip().lstrip(BOM)
        separator = cell_separator(text) or ","
        name = where.rpartition(":")[0]
        # a tab is a control character, which no id holds (_check_id)
        quoted = (
            ""
            if separator == "\t"
            else (
                f'; an id that really holds {CELL_SEPARATORS[separator]} goes as a JSON string line, e.g. "a{separator}b"'
            )
        )
        return UsageError(
            f"{where}: {_csv_row(text)}; nothing was sent",
            hint=f"keep the id column alone, e.g. {_TAKE_FIRST_COLUMN[separator]} {shlex.quote(name)} > ids.txt, "
            f"and say whether its first line is a header (header=True) or an id (header=False){quoted}",
            option="header",
        )


def cell_separator(text: str) -> str | None:
    """The cell separator a line of an export holds (the most frequent), or None: JSON text
    (an object, a string) is never a row."""
    if "," not in text and ";" not in text and "\t" not in text:  # nearly every id: the quick answer
        return None
    text = text.strip().lstrip(BOM)
    if text.startswith("{"):
        return None
    if text.startswith('"'):
        try:
            jsontext.loads(text)
            return None
        except jsontext.JSONTextError:
            pass
    counts = {separator: text.count(separator) for separator in CELL_SEPARATORS}
    separator = max(counts, key=counts.__getitem__)
    return separator if counts[separator] else None


def _csv_row(text: str) -> str:
    separator = cell_separator(text) or ","
    shown = text if len(text) <= 60 else text[:57] + "…"
    return f"{shown!r} holds {CELL_SEPARATORS[separator]}: a row of a CSV export, not an id"


@dataclass
class IdList:
    """A file of ids as a confirmation shows it: distinct ids, the first few, and what was
    dropped (repeated ids, # comment lines, a header line) or cannot be sent (bad lines)."""

    distinct: int = 0
    first: list[str] = field(default_factory=list)
    duplicates: int = 0
    comments: int = 0
    bad: int = 0
    header: str | None = None

    def describe(self) -> str:
        """One line: "3 distinct; 2 repeated ids and 1 comment line dropped" (what was dropped)."""
        dropped = [
            f"{n:,} {what}{'' if n == 1 else 's'}"
            for n, what in ((self.duplicates, "repeated id"), (self.comments, "comment line"), (self.bad, "bad line"))
            if n
        ]
        if self.header is not None:
            dropped.append(f"the header {self.header!r}")
        return f"{self.distinct:,} distinct" + (f"; dropped: {', '.join(dropped)}" if dropped else "")


def fields_key(fields: dict[str, Any]) -> str:
    """The fields a line gives, as text that is equal for the same call, whatever their order."""
    return json.dumps(fields, sort_keys=True, ensure_ascii=False)


def header_key(text: str) -> str:
    """A column name as the header lists hold it: `E-Mail Address` -> emailaddress."""
    return _HEADER_NOISE.sub("", text).casefold()


def is_comment(line: bytes) -> bool:
    return line.lstrip().removeprefix(_BOM_BYTES).lstrip().startswith(b"#")


def looks_like_header(line: bytes, names: frozenset[str] = PERSON_HEADER_NAMES) -> bool:
    return header_key(line.decode("utf-8", "replace")) in names


_ID_FIELDS = ("user", "anonymous_id", "object", "token")
# Unicode's control characters (category Cc: C0, DEL and C1), which no id holds; a regular
# expression finds one ten times faster than asking unicodedata about each character
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _check_id(value: str) -> None:
    if not value.strip():
        raise BadLine("empty id", "empty id")
    if _CONTROL.search(value):
        raise BadLine(f"id {value[:40]!r} has a control character", "control character")


def operation(name: str, **defaults: Any) -> Operation:
    """The bulk form of an operation by its command name, flags as `defaults` (None left out)."""
    defaults = {k: v for k, v in defaults.items() if v is not None}
    if name.startswith("person "):
        action = name.split(" ", 1)[1]
        return Operation(
            name, lambda user: person(action, user), ("user",), "user", defaults, None, PERSON_HEADER_NAMES
        )
    if name == "object delete":

        def build(object: str, object_type_id: Any = None, user: Any = None, anonymous_id: Any = None) -> dict:
            return object_delete(object, object_type_id=object_type_id, user_id=user, anonymous_id=anonymous_id)

        fields = ("object", "object_type_id", "user", "anonymous_id")
        return Operation(name, build, fields, "object", defaults, None, OBJECT_HEADER_NAMES)
    if name == "device add":

        def build_add(
            user: str, token: str, platform: Any = None, token_type: Any = None, attributes: Any = None
        ) -> dict:
            if attributes is not None and not isinstance(attributes, dict):
                raise UsageError("attributes must be a JSON object")
            return device_add(user, token, platform=platform, token_type=token_type, attributes=attributes)

        return Operation(name, build_add, ("user", "token", "platform", "token_type", "attributes"), None, defaults)
    if name == "device remove":

        def build_remove(user: str, token: str, platform: Any = None) -> dict:
            return device_remove(user, token, platform=platform)

        return Operation(name, build_remove, ("user", "token", "platform"), None, defaults)
    raise UsageError(f"{name!r} has no bulk form")


def _preparer_for(op: Operation) -> Callable[[str | None], Any]:
    from cdpcli.importing.prepare import InvalidLine, Preparer, SkipLine  # lazy: start-up
    from cdpcli.wire import dumps  # lazy: start-up

    class OperationPreparer(Preparer):
        """The import's Preparer, given the call a line of ids stands for; a line that names
        none is an invalid line (rejected with its number and the reason). `#` lines are
        comments; a header is skipped (or refused, see Operation.check_first); a call already
        sent in this run is not sent again."""

        def __init__(self, default_type: str | None) -> None:
            super().__init__(default_type)
            self.first_line = True
            self.label = ""
            self.seen: set[str] = set()  # each call sent in this run, by its fields

        def for_source(self, source: Any) -> None:
            super().for_source(source)
            self.first_line = source.skip == 0  # resumed: the first line was settled before
            self.label = source.label

        def prepare(self, line_no: int, line: bytes) -> bytes:
            if is_comment(line):
                raise SkipLine("comment")
            if self.first_line:
                self.first_line = False
                try:
                    header = op.check_first(line, f"{self.label}:{line_no}")
                except UsageError as exc:  # stdin: files were checked before anything was sent
                    raise FatalStop(exc.message, exc.hint, ExitCode.USAGE, option=exc.option) from None
                if header:
                    raise SkipLine("header")
            try:
                key = op.key_of(line)
                call = op.call_for(line)
            except BadLine as exc:
                raise InvalidLine(str(exc), exc.reason) from None
            if key in self.seen:
                raise SkipLine("duplicate")
            ready = super().prepare(line_no, dumps(call).encode())
            self.seen.add(key)
            return ready

    return lambda default_type: OperationPreparer(default_type)


def bulk_importer(
    op: Operation,
    inputs: list[str],
    target: Target,
    *,
    rejects: str | None = None,
    checkpoint: str | None = None,
    concurrency: int = 16,
    max_invalid: int | None = None,
    id_namespace: str | None = None,
    dry_run: bool = False,
    events: ImportEvents | None = None,
    confirm: Callable[[IdList], None] | None = None,
) -> tuple[Importer, list[str]]:
    """An Importer (not yet run) that sends `op` for each line of `inputs` (paths, or "-" for
    stdin) as `cdp import` sends calls: batches, retries, splitting, rejects with line numbers,
    checkpoint; messageIds derived from (file name, line number, call), so a re-run sends the
    same ids. Also the warnings about the inputs.

    The files are read through first (`read_sources`): a header-like first line or a CSV row
    is refused before anything is sent, and `confirm`, when given, sees what they hold (the
    distinct ids that will be sent) and may refuse by raising."""
    from cdpcli.importing import Importer, ImportOptions, check_options, make_sources  # lazy: start-up

    options = ImportOptions.build(
        concurrency=concurrency,
        rejects=rejects,
        checkpoint=checkpoint,
        max_invalid=max_invalid,
        dry_run=dry_run,
        preparer=_preparer_for(op),
    )
    # ids or JSON objects one per line, whatever the file is named (a .csv name is not CSV here)
    sources, warnings = make_sources(inputs, id_namespace, fmt="ndjson")
    check_options(options, sources)
    ids = read_sources(op, sources)
    if confirm is not None:
        confirm(ids)
    if not dry_run:
        target.require_key()
    return Importer(target, sources, options, events), warnings


def read_sources(op: Operation, sources: list[Any]) -> IdList:
    """What the files among `sources` hold (Operation.read_ids; stdin's lines are checked as
    they are read)."""
    from cdpcli.importing.sources import source_lines  # lazy: start-up

    files = [source for source in sources if source.is_file]
    # a resumed source's first line was judged (a header or not) by the run that settled it
    return op.read_ids((source.label, source_lines(source), source.skip == 0) for source in files)


def bulk(op: Operation, inputs: list[str], target: Target, **options: Any) -> ImportResult:
    """`bulk_importer(…)`, run: the counts, as import_lines returns them."""
    importer, _ = bulk_importer(op, inputs, target, **options)
    return importer.run()

"""Pydantic models of the six call types and the API's required-field rules.

Field names are the wire's camelCase names, so a model dumps straight to the body.
Fields we do not model (originalTimestamp, channel, …) pass through untouched, and so does
anything inside traits, properties, context and integrations.

The six models are defined once and built in two flavours:
- lax (the default): accepts numeric ids (sent as strings), any ISO-8601
  timestamp (normalised), nulls for absent fields; its verdict on a call is final.
- strict (`import` fast path): accepts only what can go out as the original bytes —
  string ids, canonical `…T…:…:….mmmZ` timestamps, no nulls — and ignores extra keys
  so validating a line builds as little Python as possible. For the same reason it leaves
  traits and properties undeclared: turning them into Python dicts was 60 % of
  the cost, and the import checks on the bytes that each is an object (importer.Preparer).
  A line strict rejects goes to the lax models, never straight to the rejects.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, Union

# Pydantic scans every installed package's entry points for plugins when it builds the first
# model (~20 ms at start-up); cdp uses none, so skip the scan unless the user asked for one.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import (  # noqa: E402
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from cdpcli.wire import CALL_TYPES, parse_timestamp  # noqa: E402

CANONICAL_TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"



# Customer.io's semantic events (track calls with reserved names) and what the OpenAPI
# document requires of each, beyond `event` (#/components/schemas/create_update_device, …).
SEMANTIC_EVENTS: dict[str, tuple[str, ...]] = {
    "Device Created or Updated": ("userId", "context.device.token"),
    "Device Deleted": ("userId", "context.device.token"),
    "User Deleted": ("userId",),
    "User Suppressed": ("userId",),
    "User Unsuppressed": ("userId",),
    "Relationship Deleted": ("userId", "properties.objectId"),
    "Object Deleted": ("anonymousId", "properties"),
    "Report Delivery Event": ("properties",),
    "Report Content Event": ("properties",),
}


def semantic_event_problem(event: str, call: dict[str, Any]) -> str | None:
    """What a semantic event lacks, in the document's terms; None when it is complete."""
    missing = []
    for path in SEMANTIC_EVENTS[event]:
        node: Any = call
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node in (None, ""):
            missing.append(path)
    device = (call.get("context") or {}).get("device")
    if isinstance(device, dict) and device.get("type") not in (None, "ios", "android"):
        return f"{event}: context.device.type must be ios or android, not {device['type']!r}"
    if missing:
        return f"{event} needs {' and '.join(missing)}"
    return None


def _id(value: Any) -> Any:
    # Numeric ids are sent as strings (the official SDKs stringify them too).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return parse_timestamp(value)
    raise ValueError("expected an ISO-8601 date-time string")


def _define(strict: bool) -> dict[str, type[BaseModel]]:
    """The six models; `strict` picks the field types (see the module docstring)."""
    if strict:
        Id: Any = StrictStr
        Timestamp: Any = Annotated[str, StringConstraints(pattern=CANONICAL_TIMESTAMP)]
        Text: Any = StrictStr
        Object: Any = dict[str, Any]

        def optional(kind: Any) -> Any:  # absent is fine, an explicit null goes to the lax path
            return kind

    else:
        Id = Annotated[str, BeforeValidator(_id)]
        Timestamp = Annotated[str, BeforeValidator(_timestamp)]
        Text = str
        Object = dict[str, Any]

        def optional(kind: Any) -> Any:
            return kind | None

    config = ConfigDict(extra="ignore" if strict else "allow", defer_build=True)

    class Call(BaseModel):
        model_config = config

        userId: optional(Id) = None
        anonymousId: optional(Id) = None
        messageId: optional(Annotated[Text, Field(min_length=1, max_length=100)]) = None
        timestamp: optional(Timestamp) = None
        context: optional(Object) = None
        # the document: "a list of booleans indicating the integrations that are enabled"
        integrations: optional(dict[str, StrictBool]) = None

        @model_validator(mode="after")
        def _rules(self) -> Call:
            event = self.__dict__.get("event")
            if event in SEMANTIC_EVENTS:
                if strict:  # rare: the lax models check them, with their properties
                    raise ValueError("semantic event")
                problem = semantic_event_problem(event, self.__dict__)
                if problem:
                    raise ValueError(problem)
                return self
            if self.type != "alias" and not (self.userId or self.anonymousId):
                raise ValueError(f"{self.type} needs userId or anonymousId")
            return self

    class Identify(Call):
        type: Literal["identify"] = "identify"
        if not strict:
            traits: optional(Object) = None

    class Track(Call):
        type: Literal["track"] = "track"
        event: Annotated[Text, Field(min_length=1)]
        if not strict:
            properties: optional(Object) = None

    class View(Call):  # page and screen: the same fields
        name: optional(Text) = None
        category: optional(Text) = None
        if not strict:
            properties: optional(Object) = None

    class Page(View):
        type: Literal["page"] = "page"

    class Screen(View):
        type: Literal["screen"] = "screen"

    class Group(Call):
        type: Literal["group"] = "group"
        groupId: Annotated[Id, Field(min_length=1)]
        objectTypeId: optional(Id) = None
        if not strict:
            traits: optional(Object) = None

    class Alias(Call):
        type: Literal["alias"] = "alias"
        userId: Annotated[Id, Field(min_length=1)]
        previousId: Annotated[Id, Field(min_length=1)]

    return dict(zip(CALL_TYPES, (Identify, Track, Page, Screen, Group, Alias)))


_adapters: dict[tuple[str, bool], TypeAdapter[Any]] = {}
_models: dict[bool, dict[str, type[BaseModel]]] = {}


def models(strict: bool = False) -> dict[str, type[BaseModel]]:
    """The six models by call type, defined on first use (the import path needs only strict)."""
    if strict not in _models:
        _models[strict] = _define(strict)
    return _models[strict]


def _union(models: dict[str, type[BaseModel]]) -> Any:
    return Annotated[Union[tuple(models.values())], Field(discriminator="type")]  # type: ignore[misc]


def adapter(kind: str = "any", *, strict: bool = False) -> TypeAdapter[Any]:
    """A cached TypeAdapter for one call type, "any" (discriminated on `type`), or "list" of any."""
    key = (kind, strict)
    if key not in _adapters:
        by_type = models(strict)
        shape = {"any": _union(by_type), "list": list[_union(by_type)]}.get(kind) or by_type[kind]  # type: ignore[misc]
        _adapters[key] = TypeAdapter(shape)
    return _adapters[key]


def any_call_adapter() -> TypeAdapter[Any]:
    return adapter("any")


def to_wire(call: BaseModel) -> dict[str, Any]:
    wire = call.model_dump(mode="json", exclude_none=True)
    return {"type": wire.pop("type"), **wire}  # type first, as people read it


def validate_call(data: dict[str, Any]) -> dict[str, Any]:
    """Validate one call (its `type` picks the model) and return the wire dict.

    Raises pydantic.ValidationError; render it with `describe_errors`.
    """
    kind = data.get("type")
    # one known type: build only its model (start-up); otherwise the union reports the tag error
    return to_wire(adapter(kind if kind in CALL_TYPES else "any").validate_python(data))


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, naming the field as it appears on the wire."""
    lines = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        # drop the discriminator tag pydantic puts first (`track.event` -> `event`)
        if loc and loc[0] in CALL_TYPES:
            loc = loc[1:]
        msg = item["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if item["type"] == "union_tag_invalid":
            got = item["input"].get("type") if isinstance(item["input"], dict) else None
            msg = f"type must be one of {', '.join(CALL_TYPES)} (got {got!r})"
            loc = []
        elif item["type"] == "union_tag_not_found":
            msg = "missing type (one of " + ", ".join(CALL_TYPES) + "; or pass --type)"
            loc = []
        elif item["type"] == "model_attributes_type":
            msg = "expected a JSON object"
        lines.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return lines

"""Pydantic models of the six call types and the API's required-field rules.

Field names are the wire's camelCase names, so a model dumps straight to the body.
Fields we do not model (originalTimestamp, channel, …) pass through untouched, and so does
anything inside traits, properties, context and integrations.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, Union

# Pydantic scans every installed package's entry points for plugins when it builds the first
# model (~20 ms at start-up); cdp uses none, so skip the scan unless the user asked for one.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator  # noqa: E402

from cdpcli.wire import parse_timestamp


def _id(value: Any) -> Any:
    # Numeric ids are sent as strings (the official SDKs stringify them too).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return parse_timestamp(value)
    raise ValueError("expected an ISO-8601 date-time string")


Id = Annotated[str, BeforeValidator(_id)]
Timestamp = Annotated[str, BeforeValidator(_timestamp)]
JsonObject = dict[str, Any]


class _Call(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    userId: Id | None = None
    anonymousId: Id | None = None
    messageId: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    timestamp: Timestamp | None = None
    context: JsonObject | None = None
    integrations: JsonObject | None = None

    @model_validator(mode="after")
    def _needs_identity(self) -> _Call:
        if self.type != "alias" and not (self.userId or self.anonymousId):
            raise ValueError(f"{self.type} needs userId or anonymousId")
        return self


class Identify(_Call):
    type: Literal["identify"] = "identify"
    traits: JsonObject | None = None


class Track(_Call):
    type: Literal["track"] = "track"
    event: Annotated[str, Field(min_length=1)]
    properties: JsonObject | None = None


class Page(_Call):
    type: Literal["page"] = "page"
    name: str | None = None
    category: str | None = None
    properties: JsonObject | None = None


class Screen(_Call):
    type: Literal["screen"] = "screen"
    name: str | None = None
    category: str | None = None
    properties: JsonObject | None = None


class Group(_Call):
    type: Literal["group"] = "group"
    groupId: Annotated[Id, Field(min_length=1)]
    objectTypeId: Id | None = None
    traits: JsonObject | None = None


class Alias(_Call):
    type: Literal["alias"] = "alias"
    userId: Annotated[Id, Field(min_length=1)]
    previousId: Annotated[Id, Field(min_length=1)]


MODELS: dict[str, type[_Call]] = {
    "identify": Identify,
    "track": Track,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}

AnyCall = Annotated[Union[Identify, Track, Page, Screen, Group, Alias], Field(discriminator="type")]

_any_call: TypeAdapter[Any] | None = None


def any_call_adapter() -> TypeAdapter[Any]:
    global _any_call
    if _any_call is None:
        _any_call = TypeAdapter(AnyCall)
    return _any_call


def validate_call(data: dict[str, Any]) -> dict[str, Any]:
    """Validate one call (its `type` picks the model) and return the wire dict.

    Raises pydantic.ValidationError; render it with `describe_errors`.
    """
    model = MODELS.get(data.get("type"))  # type: ignore[arg-type]
    # one known type: build only its model (start-up); otherwise the union reports the tag error
    validated = model.model_validate(data) if model else any_call_adapter().validate_python(data)
    wire = validated.model_dump(mode="json", exclude_none=True)
    return {"type": wire.pop("type"), **wire}  # type first, as people read it


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, naming the field as it appears on the wire."""
    lines = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        # drop the discriminator tag pydantic puts first (`track.event` -> `event`)
        if loc and loc[0] in MODELS:
            loc = loc[1:]
        msg = item["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if item["type"] == "union_tag_invalid":
            msg = f"type must be one of {', '.join(MODELS)} (got {item['input'].get('type')!r})"
            loc = []
        elif item["type"] == "union_tag_not_found":
            msg = "missing type (one of " + ", ".join(MODELS) + "; or pass --type)"
            loc = []
        lines.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return lines

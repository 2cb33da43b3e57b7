"""The lax flavour (the default): what a user gives cdp, and its verdict on a call is final.

It accepts numeric ids (sent as strings), any ISO-8601 timestamp (normalised) and nulls for
absent fields; inside traits, properties and context it checks the fields the document types
but keeps each object exactly as given. Fields we do not model pass through untouched.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from cdpcli.models.rules import check_rules
from cdpcli.models.shapes import (
    GroupTraitsObject,
    IdentifyTraitsObject,
    MobileContextObject,
    PagePropertiesObject,
    WebContextObject,
    WebOrMobileContextObject,
)
from cdpcli.wire import CALL_TYPES, parse_timestamp


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


class Call(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    userId: Id | None = None
    anonymousId: Id | None = None
    messageId: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    timestamp: Timestamp | None = None
    originalTimestamp: Timestamp | None = None
    sentAt: Timestamp | None = None
    context: WebOrMobileContextObject | None = None
    # the document: "a list of booleans indicating the integrations that are enabled"
    integrations: dict[str, StrictBool] | None = None

    @model_validator(mode="after")
    def _rules(self) -> Call:
        check_rules(self, lax=True)
        return self


class Identify(Call):
    type: Literal["identify"] = "identify"
    traits: IdentifyTraitsObject | None = None


class Track(Call):
    type: Literal["track"] = "track"
    event: Annotated[str, Field(min_length=1)]
    properties: dict[str, Any] | None = None


class View(Call):  # page and screen: the same fields
    name: str | None = None
    category: str | None = None


class Page(View):
    type: Literal["page"] = "page"
    context: WebContextObject | None = None  # the document: only the web context
    properties: PagePropertiesObject | None = None


class Screen(View):
    type: Literal["screen"] = "screen"
    context: MobileContextObject | None = None  # the document: only the mobile context
    properties: dict[str, Any] | None = None


class Group(Call):
    type: Literal["group"] = "group"
    groupId: Annotated[Id, Field(min_length=1)]
    objectTypeId: Id | None = None
    traits: GroupTraitsObject | None = None


class Alias(Call):
    type: Literal["alias"] = "alias"
    userId: Annotated[Id, Field(min_length=1)]
    previousId: Annotated[Id, Field(min_length=1)]


MODELS: dict[str, type[BaseModel]] = dict(zip(CALL_TYPES, (Identify, Track, Page, Screen, Group, Alias), strict=True))

"""The wire flavour (`cdp serve`): a body as the API would judge it.

String ids, RFC 3339 timestamps, no nulls, and nothing is normalised. A field may be absent
(`ABSENT`, the default) but not an explicit null, except where the official Python SDK sends
null for what it leaves unset (the ids, name and category): the API takes its traffic, so null
reads as absent there. Typed fields of traits and properties are checked straight from the
input; other keys are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from cdpcli.models.rules import check_rules
from cdpcli.models.shapes import (
    RFC3339,
    GroupTraits,
    IdentifyTraits,
    MobileContextObject,
    PageProperties,
    WebContextObject,
    WebOrMobileContextObject,
)
from cdpcli.wire import CALL_TYPES

# The default of a field that may be absent but not null: pydantic never validates a default,
# so an absent field passes and an explicit null is checked against the type (and refused).
ABSENT: Any = None


class Call(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    userId: StrictStr | None = None
    anonymousId: StrictStr | None = None
    messageId: Annotated[StrictStr, Field(min_length=1, max_length=100)] = ABSENT
    timestamp: RFC3339 = ABSENT
    originalTimestamp: RFC3339 = ABSENT
    sentAt: RFC3339 = ABSENT
    context: WebOrMobileContextObject = ABSENT
    # the document: "a list of booleans indicating the integrations that are enabled"
    integrations: dict[str, StrictBool] = ABSENT

    @model_validator(mode="after")
    def _rules(self) -> Call:
        check_rules(self, lax=False)
        return self


class Identify(Call):
    type: Literal["identify"] = "identify"
    traits: IdentifyTraits = ABSENT


class Track(Call):
    type: Literal["track"] = "track"
    event: Annotated[StrictStr, Field(min_length=1)]
    properties: dict[str, Any] = ABSENT


class View(Call):  # page and screen: the same fields
    name: StrictStr | None = None
    category: StrictStr | None = None


class Page(View):
    type: Literal["page"] = "page"
    context: WebContextObject = ABSENT  # the document: only the web context
    properties: PageProperties = ABSENT


class Screen(View):
    type: Literal["screen"] = "screen"
    context: MobileContextObject = ABSENT  # the document: only the mobile context
    properties: dict[str, Any] = ABSENT


class Group(Call):
    type: Literal["group"] = "group"
    groupId: Annotated[StrictStr, Field(min_length=1)]
    objectTypeId: StrictStr = ABSENT
    traits: GroupTraits = ABSENT


class Alias(Call):
    type: Literal["alias"] = "alias"
    userId: Annotated[StrictStr, Field(min_length=1)]
    previousId: Annotated[StrictStr, Field(min_length=1)]


class BatchEnvelope(BaseModel):
    """A /batch body's own fields, as the API judges them; its calls are checked apart."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    batch: list[Any]
    context: WebOrMobileContextObject = ABSENT
    integrations: dict[str, StrictBool] = ABSENT
    sentAt: RFC3339 = ABSENT


MODELS: dict[str, type[BaseModel]] = dict(zip(CALL_TYPES, (Identify, Track, Page, Screen, Group, Alias), strict=True))

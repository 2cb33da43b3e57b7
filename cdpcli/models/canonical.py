"""The strict flavour (import's fast path, and cdp serve's first look at a batch): canonical
calls as TypedDicts.

It accepts only what can go out as the original bytes: string ids, canonical
`…T…:…:….mmmZ` timestamps, no nulls. Validating into a plain dict costs ~40 % less than
building a model, and strict needs no model behaviour; free-form traits and properties are
checked to be objects without being built (building them was 60 % of the cost). Absent fields
are absent keys; the rules live in `rules.strict_rules_hold`. A line strict rejects goes to the
lax models, never straight to the rejects.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictStr, StringConstraints
from typing_extensions import Required

from cdpcli.models.shapes import (
    CANONICAL_TIMESTAMP,
    AnyContext,
    AnyObject,
    GroupTraits,
    IdentifyTraits,
    PageProperties,
    Part,
)
from cdpcli.wire import CALL_TYPES

_CanonicalTimestamp = Annotated[StrictStr, StringConstraints(pattern=CANONICAL_TIMESTAMP)]
_NonEmpty = Annotated[StrictStr, Field(min_length=1)]


class CanonicalCall(Part, total=False):
    userId: StrictStr
    anonymousId: StrictStr
    messageId: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    timestamp: _CanonicalTimestamp
    originalTimestamp: _CanonicalTimestamp
    sentAt: _CanonicalTimestamp
    context: AnyContext
    integrations: dict[str, StrictBool]


class CanonicalIdentify(CanonicalCall, total=False):
    type: Literal["identify"]
    traits: IdentifyTraits


class CanonicalTrack(CanonicalCall, total=False):
    type: Literal["track"]
    event: Required[_NonEmpty]
    properties: AnyObject


class CanonicalPage(CanonicalCall, total=False):
    type: Literal["page"]
    name: StrictStr
    category: StrictStr
    properties: PageProperties


class CanonicalScreen(CanonicalCall, total=False):
    type: Literal["screen"]
    name: StrictStr
    category: StrictStr
    properties: AnyObject


class CanonicalGroup(CanonicalCall, total=False):
    type: Literal["group"]
    groupId: Required[_NonEmpty]
    objectTypeId: StrictStr
    traits: GroupTraits


class CanonicalAlias(CanonicalCall, total=False):
    type: Literal["alias"]
    userId: Required[_NonEmpty]  # type: ignore[misc]  # required here, optional in the base
    previousId: Required[_NonEmpty]


MODELS: dict[str, type] = dict(
    zip(
        CALL_TYPES,
        (CanonicalIdentify, CanonicalTrack, CanonicalPage, CanonicalScreen, CanonicalGroup, CanonicalAlias),
        strict=True,
    )
)

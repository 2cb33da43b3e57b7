"""The fast path's models: the strict ones, with every timestamp and id shape the lax models
accept let through, and the fields that hold such a value named.

Archives and exports rarely hold cdp's own `2024-03-01T01:02:03.000Z` and string ids: most write
`…:03Z`, an offset, microseconds, a space, Unix seconds (Mixpanel) or `"userId": 42`. The canonical
models (models/canonical.py) refuse all of these, and a refused line took the plain path at 4-5x the CPU
(a Python parse, the lax models, a dump). Here a top-level timestamp that is not canonical, or
an id that is a JSON integer, passes validation written as the plain path writes it
(wire.parse_timestamp, str()), and its field and value as given are appended to the list given
as the validation context: prepare.py writes the call as read again with those values. A
canonical value costs what it cost before: the canonical member of each union is tried first, in
Rust.

Timestamps inside traits and properties are not fields of these models: never touched.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
)
from pydantic_core import SchemaValidator
from typing_extensions import Required, TypedDict

from cdpcli.models.canonical import (
    CanonicalAlias,
    CanonicalGroup,
    CanonicalIdentify,
    CanonicalPage,
    CanonicalScreen,
    CanonicalTrack,
)
from cdpcli.models.shapes import CANONICAL_TIMESTAMP
from cdpcli.wire import CALL_TYPES, parse_timestamp


def _stamp(value: Any, info: ValidationInfo) -> str:
    """A timestamp written another way, as the plain path writes it; the field and the value as
    given go to the context (prepare.py's list), to find it in the line. A value the plain path
    refuses fails validation here: the line takes the plain path, which says why."""
    text = parse_timestamp(value)
    if info.context is not None:
        info.context.append((info.field_name, value))
    return text


def _id(value: int, info: ValidationInfo) -> str:
    """A numeric id, as the plain path writes it (see _stamp)."""
    if info.context is not None:
        info.context.append((info.field_name, value))
    return str(value)


_Canonical = Annotated[StrictStr, StringConstraints(pattern=CANONICAL_TIMESTAMP)]
_NonEmpty = Annotated[StrictStr, Field(min_length=1)]
# left to right: the canonical (or string) member first, so the common case is one check in Rust
_FIRST_THAT_FITS = Field(union_mode="left_to_right")
Stamp = Annotated[
    Union[_Canonical, Annotated[Union[StrictStr, StrictInt, StrictFloat], AfterValidator(_stamp)]],  # noqa: UP007
    _FIRST_THAT_FITS,
]
Id = Annotated[Union[StrictStr, Annotated[StrictInt, AfterValidator(_id)]], _FIRST_THAT_FITS]  # noqa: UP007
NonEmptyId = Annotated[Union[_NonEmpty, Annotated[StrictInt, AfterValidator(_id)]], _FIRST_THAT_FITS]  # noqa: UP007


# The strict TypedDicts with those fields replaced (a later base's annotation wins)
class _Loose(TypedDict, total=False):
    userId: Id
    anonymousId: Id
    timestamp: Stamp
    originalTimestamp: Stamp
    sentAt: Stamp


class _Identify(CanonicalIdentify, _Loose, total=False):  # type: ignore[misc]
    pass


class _Track(CanonicalTrack, _Loose, total=False):  # type: ignore[misc]
    pass


class _Page(CanonicalPage, _Loose, total=False):  # type: ignore[misc]
    pass


class _Screen(CanonicalScreen, _Loose, total=False):  # type: ignore[misc]
    pass


class _Group(CanonicalGroup, _Loose, total=False):  # type: ignore[misc]
    groupId: Required[NonEmptyId]  # type: ignore[misc]
    objectTypeId: Id  # type: ignore[misc]


class _Alias(CanonicalAlias, _Loose, total=False):  # type: ignore[misc]
    userId: Required[NonEmptyId]  # type: ignore[misc]
    previousId: Required[NonEmptyId]  # type: ignore[misc]


FAST_MODELS = dict(zip(CALL_TYPES, (_Identify, _Track, _Page, _Screen, _Group, _Alias), strict=True))
# the fields a model may name (as the list given as context holds them)
REWRITTEN_FIELDS = (
    "userId",
    "anonymousId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "groupId",
    "previousId",
    "objectTypeId",
)
TIMESTAMP_FIELDS = frozenset(("timestamp", "originalTimestamp", "sentAt"))

_validators: dict[str, SchemaValidator] = {}


def fast_validator(kind: str = "any") -> SchemaValidator:
    """The core validator of one call type, or "any" (discriminated on `type`); built once.
    The TypeAdapter's Python wrapper costs ~0.5 µs a line: the core validator is used as is."""
    if kind not in _validators:
        if kind == "any":
            shape: Any = Annotated[Union[tuple(FAST_MODELS.values())], Field(discriminator="type")]  # noqa: UP007
        else:
            shape = FAST_MODELS[kind]
        _validators[kind] = TypeAdapter(shape).validator  # type: ignore[assignment]
    return _validators[kind]

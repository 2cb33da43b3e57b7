"""Pydantic models of the six call types and the API's required-field rules.

Field names are the wire's camelCase names, so a model dumps straight to the body.
Fields we do not model pass through untouched. Inside traits, properties and context only the
fields Customer.io's OpenAPI document types are checked (context.active is a boolean,
context.device.type is ios or android, a page's properties.url is a string, …: see `shapes`);
those objects are still sent exactly as given.

The six call types come in three flavours, each a module:
- `lax` (the default): accepts numeric ids (sent as strings), any ISO-8601 timestamp
  (normalised), nulls for absent fields; its verdict on a call is final.
- `wire` (`cdp serve`): a body as the API would judge it — string ids, RFC 3339 timestamps,
  no nulls; nothing is normalised.
- `canonical`, the "strict" flavour (`import`'s fast path, and `cdp serve`'s first look at a
  batch): TypedDicts that accept only what can go out as the original bytes. A line strict
  rejects goes to the lax models, never straight to the rejects.

Beside them: `semantic` (Customer.io's semantic events), `rules` (the required-field rules),
`describe` (errors as lines naming wire fields).

Required ids: every call but alias needs a userId or anonymousId, except an identify that names
its person by a non-empty traits.email (the API documents this for Customer.io as the
destination): strict refuses it (`strict_rules_hold`), so it takes the plain path, where lax
accepts it and sends it with `"userId": ""`; wire accepts it as given.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from cdpcli.models.describe import describe_errors
from cdpcli.models.rules import IDENTIFY_NEEDS, identified_by_email, strict_rules_hold
from cdpcli.models.semantic import (
    DEVICE_TYPES,
    DOCUMENTED_METRICS,
    SEMANTIC_EVENTS,
    semantic_event_problem,
    semantic_warnings,
)
from cdpcli.models.shapes import CANONICAL_TIMESTAMP, RFC3339
from cdpcli.wire import CALL_TYPES

__all__ = [
    "CANONICAL_TIMESTAMP",
    "DEVICE_TYPES",
    "DOCUMENTED_METRICS",
    "IDENTIFY_NEEDS",
    "RFC3339",
    "SEMANTIC_EVENTS",
    "Flavour",
    "adapter",
    "batch_envelope",
    "describe_errors",
    "identified_by_email",
    "models",
    "semantic_event_problem",
    "semantic_warnings",
    "strict_rules_hold",
    "to_wire",
    "validate_call",
]

Flavour = Literal["lax", "strict", "wire"]
# Each flavour's module, imported on first use: the import path needs only strict.
_MODULES: dict[str, str] = {
    "lax": "cdpcli.models.lax",
    "wire": "cdpcli.models.wire",
    "strict": "cdpcli.models.canonical",
}

_adapters: dict[tuple[str, str], TypeAdapter[Any]] = {}


def models(flavour: Flavour = "lax") -> dict[str, type]:
    """The six models by call type (pydantic models; TypedDicts for strict)."""
    models_by_type: dict[str, type] = importlib.import_module(_MODULES[flavour]).MODELS  # lazy: start-up
    return models_by_type


def _union(models: dict[str, type]) -> Any:
    """The six models as one type, told apart by `type`: Union[...] of a runtime tuple, since
    `X | Y` cannot be spelled for a computed set of models."""
    members: Any = tuple(models.values())
    return Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007


def adapter(kind: str = "any", flavour: Flavour = "lax") -> TypeAdapter[Any]:
    """A cached TypeAdapter for one call type, "any" (discriminated on `type`), or "list" of any.

    Flavours: "lax" judges what a user gives cdp (numeric ids, any timestamp, nulls for absent
    fields) and its verdict on a call is final; "strict" is import's fast path (see the package
    docstring); "wire" judges a body as the API would (`cdp serve`): string ids, RFC 3339
    timestamps, no nulls.
    """
    key = (kind, flavour)
    if key not in _adapters:
        by_type = models(flavour)
        shape: Any = by_type.get(kind)
        if kind == "any":
            shape = _union(by_type)
        elif kind == "list":
            shape = list[_union(by_type)]  # type: ignore[misc]  # a runtime-built item type
        elif shape is None:
            raise KeyError(kind)
        _adapters[key] = TypeAdapter(shape)
    return _adapters[key]


@cache
def batch_envelope() -> TypeAdapter[Any]:
    """A /batch body's own fields, as the API judges them (`cdp serve`); its calls are checked apart."""
    envelope: type = importlib.import_module(_MODULES["wire"]).BatchEnvelope  # lazy: start-up
    return TypeAdapter(envelope)


def to_wire(call: BaseModel) -> dict[str, Any]:
    wire = call.model_dump(mode="json", exclude_none=True)
    # a null in a field we model means "absent"; a field we do not model passes through as
    # given, null included (import's fast path sends it as it is: both paths must agree)
    wire.update((key, None) for key, value in (call.__pydantic_extra__ or {}).items() if value is None)
    return {"type": wire.pop("type"), **wire}  # type first, as people read it


def validate_call(data: dict[str, Any]) -> dict[str, Any]:
    """Validate one call (its `type` picks the model) and return the wire dict.

    Raises pydantic.ValidationError; render it with `describe_errors`.
    """
    kind = data.get("type")
    # one known type: build only its model (start-up); otherwise the union reports the tag error
    return to_wire(adapter(kind if kind in CALL_TYPES else "any").validate_python(data))

"""Pydantic models of the six call types and the API's required-field rules.

Field names are the wire's camelCase names, so a model dumps straight to the body.
Fields we do not model pass through untouched. Inside traits, properties and context only the
fields Customer.io's OpenAPI document types are checked (context.active is a boolean,
context.device.type is ios or android, a page's properties.url is a string, …: see
`ContextCommon` and below); those objects are still sent exactly as given.

The six call types come in three flavours (lax and wire are models defined once, in `_define`;
strict is a set of TypedDicts):
- lax (the default): accepts numeric ids (sent as strings), any ISO-8601
  timestamp (normalised), nulls for absent fields; its verdict on a call is final.
- wire (`cdp serve`): a body as the API would judge it — string ids, RFC 3339 timestamps,
  no nulls; nothing is normalised.
- strict (`import` fast path, and `cdp serve`'s first look at a batch): accepts only what
  can go out as the original bytes — string ids, canonical `…T…:…:….mmmZ` timestamps, no
  nulls — as TypedDicts that ignore extra keys, so validating a line builds as little Python
  as possible: free-form traits and properties are checked to be objects without being built
  (building them was 60 % of the cost). A line strict rejects goes to the lax models, never
  straight to the rejects.

Required ids: every call but alias needs a userId or anonymousId, except an identify that names
its person by a non-empty traits.email (the API documents this for Customer.io as the
destination): strict refuses it (`strict_rules_hold`), so it takes the plain path, where lax
accepts it and sends it with `"userId": ""`; wire accepts it as given.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from typing_extensions import Required, TypedDict

from cdpcli.wire import CALL_TYPES, parse_timestamp

CANONICAL_TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
# JSON Schema's "date-time" (RFC 3339), for values cdp passes through rather than normalises
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _rfc3339(value: str) -> str:
    if not _RFC3339.fullmatch(value):
        raise ValueError(f"expected an RFC 3339 date-time such as 2026-11-27T13:31:42Z, not {value[:40]!r}")
    return value


RFC3339: Any = Annotated[StrictStr, AfterValidator(_rfc3339)]


# Customer.io's semantic events (track calls with reserved names) and what each needs beyond
# `event`: the OpenAPI document's required fields (#/components/schemas/create_update_device, …)
# where an official SDK confirms them; `a|b` is either. Rules only the document states, which no
# SDK confirms, are warnings (`semantic_warnings`), not rejects (issue 12): Object Deleted's
# anonymousId, a delivery metric outside the document's four, a string objectTypeId.
SEMANTIC_EVENTS: dict[str, tuple[str, ...]] = {
    "Device Created or Updated": ("userId", "context.device.token"),
    "Device Deleted": ("userId", "context.device.token"),
    "User Deleted": ("userId",),
    "User Suppressed": ("userId",),
    "User Unsuppressed": ("userId",),
    "Relationship Deleted": ("userId", "properties.objectId"),
    "Object Deleted": ("userId|anonymousId", "properties"),
    "Report Delivery Event": ("properties",),
    "Report Content Event": ("properties",),
}
# context.device.type of a device event: the document's ios and android, and the "web" that
# Customer.io's browser SDK sends for web push (cdp-analytics-js web-push-plugin/index.ts)
DEVICE_TYPES = ("ios", "android", "web")
# Report Delivery Event's metric as the document lists it (the Android SDK's Metric enum too)
DOCUMENTED_METRICS = ("delivered", "opened", "clicked", "converted")


def _value_at(call: Any, path: str) -> Any:
    node: Any = call
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def semantic_event_problem(event: str, call: dict[str, Any]) -> str | None:
    """What a semantic event lacks, in the document's terms; None when it is complete."""
    missing = []
    for path in SEMANTIC_EVENTS[event]:
        if all(_value_at(call, option) in (None, "") for option in path.split("|")):
            missing.append(path.replace("|", " or "))
    device = (call.get("context") or {}).get("device")
    if isinstance(device, dict) and device.get("type") not in (None, *DEVICE_TYPES):
        return f"{event}: context.device.type must be ios, android or web, not {device['type']!r}"
    if missing:
        return f"{event} needs {' and '.join(missing)}"
    return None


def semantic_warnings(call: dict[str, Any]) -> list[str]:
    """What the OpenAPI document asks of a semantic event that no official SDK confirms, for a
    call that is otherwise valid: said, never refused (the API's verdict is unknown)."""
    event = call.get("event")
    if call.get("type", "track") != "track" or event not in SEMANTIC_EVENTS:
        return []
    warnings = []
    properties = call.get("properties") if isinstance(call.get("properties"), dict) else {}
    if event == "Report Delivery Event":
        metric = properties.get("metric")
        if isinstance(metric, str) and metric not in DOCUMENTED_METRICS:
            warnings.append(
                f"Report Delivery Event: metric {metric!r} is not one of {', '.join(DOCUMENTED_METRICS)}, "
                "the metrics the API document lists; Customer.io may ignore it"
            )
    if event in ("Relationship Deleted", "Object Deleted") and isinstance(properties.get("objectTypeId"), str):
        warnings.append(
            f"{event}: objectTypeId {properties['objectTypeId']!r} is a string; the API document types it "
            "as an integer here (group sends it as a string), and which one Customer.io takes is unconfirmed"
        )
    if event == "Object Deleted" and not call.get("anonymousId"):
        warnings.append(
            "Object Deleted without anonymousId: the API document requires one (no SDK confirms it); "
            "Customer.io may ignore the call"
        )
    return warnings


def _id(value: Any) -> Any:
    # Numeric ids are sent as strings (the official SDKs stringify them too).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return parse_timestamp(value)
    raise ValueError("expected an ISO-8601 date-time string")


# The fields the OpenAPI document types inside context, traits and properties, as TypedDicts:
# a typed key may be absent but not null, other keys are ignored (so validating JSON bytes
# builds no Python for them), and checking one costs less than building a model instance.
_IGNORE_OTHERS = ConfigDict(extra="ignore")


class _Part(TypedDict, total=False):
    __pydantic_config__ = _IGNORE_OTHERS  # type: ignore[misc]


class AnyObject(_Part, total=False):
    """Any JSON object, not built: every key is ignored."""


class ContextCommon(_Part, total=False):  # #/components/schemas/context_common
    active: StrictBool
    ip: StrictStr
    locale: StrictStr
    userAgent: StrictStr
    channel: Literal["browser", "server", "mobile"]


class PageContext(_Part, total=False):  # context_page
    name: StrictStr
    title: StrictStr
    path: StrictStr
    referrer: StrictStr
    search: StrictStr
    url: StrictStr
    keywords: list[StrictStr]


class WebContext(ContextCommon, total=False):  # context_non_mobile
    campaign: dict[str, StrictStr]
    page: PageContext


class App(_Part, total=False):
    name: StrictStr
    version: StrictStr
    build: StrictStr
    namespace: StrictStr


class Device(_Part, total=False):
    id: StrictStr
    advertisingId: StrictStr
    manufacturer: StrictStr
    model: StrictStr
    name: StrictStr
    type: Literal["android", "ios"]
    version: StrictStr


class Network(_Part, total=False):
    bluetooth: StrictBool
    carrier: StrictStr
    cellular: StrictBool
    wifi: StrictBool


class OS(_Part, total=False):
    name: StrictStr
    version: StrictStr


class MobileContext(ContextCommon, total=False):  # context_mobile
    app: App
    device: Device
    network: Network
    os: OS


class AnyContext(WebContext, MobileContext, total=False):
    """Both halves typed at once: stricter than the document's either-or, which the strict
    flavour may be (a context it refuses goes to the lax path). Keeps `library` so that import
    knows whether to add cdp's (as an empty dict: its contents are not needed)."""

    library: AnyObject


class SubscriptionPreferences(_Part, total=False):
    topics: dict[str, StrictBool]
    channels: dict[str, StrictBool]


class IdentifyTraits(_Part, total=False):  # identify's traits
    email: StrictStr
    createdAt: RFC3339
    cio_subscription_preferences: SubscriptionPreferences
    unsubscribed: StrictBool


class GroupTraits(_Part, total=False):  # group's traits
    object_type_id: StrictStr
    relationshipAttributes: dict[str, Any]


class PageProperties(_Part, total=False):  # page's properties
    category: StrictStr
    title: StrictStr
    url: StrictStr
    referrer: StrictStr
    path: StrictStr
    search: StrictStr


# What the document types in each semantic event (#/components/schemas/create_update_device, …)


class _DeviceToken(_Part, total=False):
    token: StrictStr
    type: Literal["ios", "android", "web"]


class _DeviceContext(_Part, total=False):
    device: _DeviceToken


class _DeviceEvent(_Part, total=False):
    context: _DeviceContext


class _ObjectProperties(_Part, total=False):
    objectId: StrictStr
    # an integer in the document, a string everywhere else (group): a numeric string is taken
    # with a warning (`semantic_warnings`)
    objectTypeId: StrictInt | Annotated[StrictStr, StringConstraints(pattern=r"^[0-9]+$")]


class _ObjectEvent(_Part, total=False):
    properties: _ObjectProperties


class _DeliveryProperties(_Part, total=False):
    deliveryId: StrictStr
    metric: StrictStr  # the document's four (DOCUMENTED_METRICS) warned of, not enforced
    recipient: StrictStr
    reason: StrictStr
    actionValue: StrictStr
    href: StrictStr


class _DeliveryEvent(_Part, total=False):
    properties: _DeliveryProperties


class _ContentProperties(_Part, total=False):
    actionType: Literal["viewed_content", "clicked_content"]
    contentId: StrictInt
    templateId: StrictInt


class _ContentEvent(_Part, total=False):
    properties: _ContentProperties


_SEMANTIC_SHAPES: dict[str, type] = {
    "Device Created or Updated": _DeviceEvent,
    "Device Deleted": _DeviceEvent,
    "Relationship Deleted": _ObjectEvent,
    "Object Deleted": _ObjectEvent,
    "Report Delivery Event": _DeliveryEvent,
    "Report Content Event": _ContentEvent,
}


# The strict flavour (import's fast path, and cdp serve's first look at a batch) as TypedDicts:
# validating into a plain dict costs ~40 % less than building a model, and strict needs no
# model behaviour. Absent fields are absent keys; the rules live in `strict_rules_hold`.
_CanonicalTimestamp = Annotated[StrictStr, StringConstraints(pattern=CANONICAL_TIMESTAMP)]
_NonEmpty = Annotated[StrictStr, Field(min_length=1)]


class _StrictCall(_Part, total=False):
    userId: StrictStr
    anonymousId: StrictStr
    messageId: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    timestamp: _CanonicalTimestamp
    originalTimestamp: _CanonicalTimestamp
    sentAt: _CanonicalTimestamp
    context: AnyContext
    integrations: dict[str, StrictBool]


class _StrictIdentify(_StrictCall, total=False):
    type: Literal["identify"]
    traits: IdentifyTraits


class _StrictTrack(_StrictCall, total=False):
    type: Literal["track"]
    event: Required[_NonEmpty]
    properties: AnyObject


class _StrictPage(_StrictCall, total=False):
    type: Literal["page"]
    name: StrictStr
    category: StrictStr
    properties: PageProperties


class _StrictScreen(_StrictCall, total=False):
    type: Literal["screen"]
    name: StrictStr
    category: StrictStr
    properties: AnyObject


class _StrictGroup(_StrictCall, total=False):
    type: Literal["group"]
    groupId: Required[_NonEmpty]
    objectTypeId: StrictStr
    traits: GroupTraits


class _StrictAlias(_StrictCall, total=False):
    type: Literal["alias"]
    userId: Required[_NonEmpty]
    previousId: Required[_NonEmpty]


_STRICT = (_StrictIdentify, _StrictTrack, _StrictPage, _StrictScreen, _StrictGroup, _StrictAlias)


def _object_matching(*shapes: type) -> Any:
    """A JSON object that matches at least one of `shapes` (the document's oneOf, read as anyOf);
    the object itself passes through as given."""
    checks: tuple[Any, ...] = ()  # built on first use: most single calls carry no context

    def check(value: dict[str, Any]) -> dict[str, Any]:
        nonlocal checks
        if not checks:  # two threads may both build them: the same, and assigned at once
            checks = tuple(TypeAdapter(shape).validator for shape in shapes)
        first: ValidationError | None = None
        for validate in checks:
            try:
                validate.validate_python(value)
                return value
            except ValidationError as error:
                first = first or error
        # both context shapes failed: show the mobile one's complaint when the call looks mobile
        if len(checks) > 1 and _MOBILE_KEYS.intersection(value):
            checks[-1].validate_python(value)
        raise first  # type: ignore[misc]

    return Annotated[dict[str, Any], AfterValidator(check)]


_MOBILE_KEYS = frozenset(("app", "device", "network", "os"))


Flavour = Literal["lax", "strict", "wire"]


def _check_rules(call: BaseModel, lax: bool) -> BaseModel:
    """The required-field rules (SPEC) and what the document requires of semantic events.
    An identify may name its person by traits.email alone (`identified_by_email`); the lax
    flavour then sends it as documented, with `"userId": ""`."""
    fields = call.__dict__
    event = fields.get("event")
    if event in SEMANTIC_EVENTS:
        problem = semantic_event_problem(event, fields)
        if problem:
            raise ValueError(problem)
        typed_fields = _semantic_adapter(event)
        if typed_fields:
            typed_fields.validate_python(fields)
        return call
    if fields["type"] != "alias" and not (fields["userId"] or fields["anonymousId"]):
        if fields["type"] != "identify":
            raise ValueError(f"{fields['type']} needs userId or anonymousId")
        if not identified_by_email(fields):
            raise ValueError(IDENTIFY_NEEDS)
        if lax and fields["userId"] is None:
            fields["userId"] = ""  # the documented form: an empty userId beside traits.email
    return call


IDENTIFY_NEEDS = "identify needs userId or anonymousId, or a non-empty traits.email"


def identified_by_email(call: dict[str, Any]) -> bool:
    """An identify with no userId or anonymousId that names its person by a non-empty
    `traits.email`: the API documents that "you can pass an empty userId" then, when
    Customer.io is the destination (the identify operation and the email trait's description)."""
    if call.get("type") != "identify" or call.get("userId") or call.get("anonymousId"):
        return False
    traits = call.get("traits")
    email = traits.get("email") if isinstance(traits, dict) else None
    return isinstance(email, str) and email.strip() != ""  # "   " names nobody


def strict_rules_hold(call: dict[str, Any]) -> bool:
    """The strict flavour's verdict on the rules `_check_rules` enforces, cheaply: False sends
    the call to the lax (or wire) models, which decide and say why. An identify with no id
    (one identified by email, or one that is invalid) is refused here: it takes the plain path,
    where lax adds the empty userId, and lines with an id pay nothing for the rule."""
    if call.get("type") == "alias":
        return True
    return bool(call.get("userId") or call.get("anonymousId")) and call.get("event") not in SEMANTIC_EVENTS


def _define(flavour: Flavour) -> dict[str, type[BaseModel]]:
    """The six models in one flavour (see the module docstring)."""
    if flavour == "strict":
        return dict(zip(CALL_TYPES, _STRICT, strict=True))  # type: ignore[arg-type]
    lax = flavour == "lax"
    if lax:
        Id: Any = Annotated[str, BeforeValidator(_id)]
        Timestamp: Any = Annotated[str, BeforeValidator(_timestamp)]
        Text: Any = str

        def optional(kind: Any) -> Any:
            return kind | None

    else:  # wire: absent is fine, an explicit null is not
        Id = StrictStr
        Text = StrictStr
        Timestamp = RFC3339

        def optional(kind: Any) -> Any:
            return kind

    config = ConfigDict(extra="allow" if lax else "ignore", defer_build=True)
    # wire checks the typed fields of traits/properties straight from the input and ignores the
    # rest; lax checks the same fields but keeps the object exactly as given
    typed = _object_matching if lax else (lambda shape: shape)
    Free: Any = optional(dict[str, Any])

    # the official Python SDK sends null for the ids, name and category it leaves unset; the
    # API takes its traffic, so the wire flavour reads null there as absent
    def unset_by_sdk(kind: Any) -> Any:
        return kind | None if flavour == "wire" else optional(kind)

    class Call(BaseModel):
        model_config = config

        userId: unset_by_sdk(Id) = None
        anonymousId: unset_by_sdk(Id) = None
        messageId: optional(Annotated[Text, Field(min_length=1, max_length=100)]) = None
        timestamp: optional(Timestamp) = None
        originalTimestamp: optional(Timestamp) = None
        sentAt: optional(Timestamp) = None
        context: optional(_object_matching(WebContext, MobileContext)) = None
        # the document: "a list of booleans indicating the integrations that are enabled"
        integrations: optional(dict[str, StrictBool]) = None

        @model_validator(mode="after")
        def _rules(self) -> Call:
            return _check_rules(self, lax)

    class Identify(Call):
        type: Literal["identify"] = "identify"
        traits: optional(typed(IdentifyTraits)) = None

    class Track(Call):
        type: Literal["track"] = "track"
        event: Annotated[Text, Field(min_length=1)]
        properties: Free = None

    class View(Call):  # page and screen: the same fields
        name: unset_by_sdk(Text) = None
        category: unset_by_sdk(Text) = None

    class Page(View):
        type: Literal["page"] = "page"
        # the document: only the web context
        context: optional(_object_matching(WebContext)) = None
        properties: optional(typed(PageProperties)) = None

    class Screen(View):
        type: Literal["screen"] = "screen"
        # the document: only the mobile context
        context: optional(_object_matching(MobileContext)) = None
        properties: Free = None

    class Group(Call):
        type: Literal["group"] = "group"
        groupId: Annotated[Id, Field(min_length=1)]
        objectTypeId: optional(Id) = None
        traits: optional(typed(GroupTraits)) = None

    class Alias(Call):
        type: Literal["alias"] = "alias"
        userId: Annotated[Id, Field(min_length=1)]
        previousId: Annotated[Id, Field(min_length=1)]

    return dict(zip(CALL_TYPES, (Identify, Track, Page, Screen, Group, Alias), strict=True))


_adapters: dict[tuple[str, str], TypeAdapter[Any]] = {}
_models: dict[str, dict[str, type[BaseModel]]] = {}


def models(flavour: Flavour = "lax") -> dict[str, type[BaseModel]]:
    """The six models by call type, defined on first use (the import path needs only strict)."""
    if flavour not in _models:
        _models[flavour] = _define(flavour)
    return _models[flavour]


def _union(models: dict[str, type[BaseModel]]) -> Any:
    # Union[...] of a runtime tuple: `X | Y` cannot be spelled for a computed set of models
    return Annotated[Union[tuple(models.values())], Field(discriminator="type")]  # type: ignore[misc]  # noqa: UP007


def adapter(kind: str = "any", flavour: Flavour = "lax") -> TypeAdapter[Any]:
    """A cached TypeAdapter for one call type, "any" (discriminated on `type`), or "list" of any.

    Flavours: "lax" judges what a user gives cdp (numeric ids, any timestamp, nulls for absent
    fields) and its verdict on a call is final; "strict" is import's fast path (see the module
    docstring); "wire" judges a body as the API would (`cdp serve`): string ids, RFC 3339
    timestamps, no nulls.
    """
    key = (kind, flavour)
    if key not in _adapters:
        by_type = models(flavour)
        shape = {"any": _union(by_type), "list": list[_union(by_type)]}.get(kind) or by_type[kind]  # type: ignore[misc]
        _adapters[key] = TypeAdapter(shape)
    return _adapters[key]


@cache
def batch_envelope() -> TypeAdapter[Any]:
    """A /batch body's own fields, as the API judges them (`cdp serve`); its calls are checked apart."""

    class Envelope(BaseModel):
        model_config = ConfigDict(extra="ignore")

        batch: list[Any]
        context: _object_matching(WebContext, MobileContext) = None
        integrations: dict[str, StrictBool] = None
        sentAt: RFC3339 = None

    return TypeAdapter(Envelope)


@cache
def _semantic_adapter(event: str) -> TypeAdapter[Any] | None:
    shape = _SEMANTIC_SHAPES.get(event)
    return TypeAdapter(shape) if shape else None


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

"""The typed parts of a call as Customer.io's OpenAPI document types them (context, traits,
properties), shared by every flavour of the models.

They are TypedDicts: a typed key may be absent but not null, other keys are ignored (so
validating JSON bytes builds no Python for them), and checking one costs less than building a
model instance. `MatchesOne` checks an object against them and keeps the object as given.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, StrictBool, StrictStr, TypeAdapter, ValidationError
from typing_extensions import TypedDict

# ASCII digits only: a pattern's \d is any script's decimal digit, in Python's re and in the Rust
# regex pydantic-core checks patterns with (which knows Unicode 15's, Python 3.11's re does not)
CANONICAL_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
# JSON Schema's "date-time" (RFC 3339), for values cdp passes through rather than normalises
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def _rfc3339(value: str) -> str:
    if not _RFC3339.fullmatch(value):
        raise ValueError(f"expected an RFC 3339 date-time such as 2026-11-27T13:31:42Z, not {value[:40]!r}")
    return value


RFC3339 = Annotated[StrictStr, AfterValidator(_rfc3339)]

_IGNORE_OTHERS = ConfigDict(extra="ignore")


class Part(TypedDict, total=False):
    """A typed part: the keys it names are checked, others ignored."""

    __pydantic_config__ = _IGNORE_OTHERS  # type: ignore[misc]


class AnyObject(Part, total=False):
    """Any JSON object, not built: every key is ignored."""


class ContextCommon(Part, total=False):  # #/components/schemas/context_common
    active: StrictBool
    ip: StrictStr
    locale: StrictStr
    userAgent: StrictStr
    channel: Literal["browser", "server", "mobile"]


class PageContext(Part, total=False):  # context_page
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


class App(Part, total=False):
    name: StrictStr
    version: StrictStr
    build: StrictStr
    namespace: StrictStr


class Device(Part, total=False):
    id: StrictStr
    advertisingId: StrictStr
    manufacturer: StrictStr
    model: StrictStr
    name: StrictStr
    type: Literal["android", "ios"]
    version: StrictStr


class Network(Part, total=False):
    bluetooth: StrictBool
    carrier: StrictStr
    cellular: StrictBool
    wifi: StrictBool


class OS(Part, total=False):
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


class SubscriptionPreferences(Part, total=False):
    topics: dict[str, StrictBool]
    channels: dict[str, StrictBool]


class IdentifyTraits(Part, total=False):  # identify's traits
    email: StrictStr
    createdAt: RFC3339
    cio_subscription_preferences: SubscriptionPreferences
    unsubscribed: StrictBool


class GroupTraits(Part, total=False):  # group's traits
    object_type_id: StrictStr
    relationshipAttributes: dict[str, Any]


class PageProperties(Part, total=False):  # page's properties
    category: StrictStr
    title: StrictStr
    url: StrictStr
    referrer: StrictStr
    path: StrictStr
    search: StrictStr


_MOBILE_KEYS = frozenset(("app", "device", "network", "os"))


class MatchesOne:
    """A validator: a JSON object that matches at least one of `shapes` (the document's oneOf,
    read as anyOf); the object itself passes through as given."""

    def __init__(self, *shapes: type) -> None:
        self.shapes = shapes
        self.checks: tuple[Any, ...] = ()  # built on first use: most single calls carry no context

    def __call__(self, value: dict[str, Any]) -> dict[str, Any]:
        if not self.checks:  # two threads may both build them: the same, and assigned at once
            self.checks = tuple(TypeAdapter(shape).validator for shape in self.shapes)
        failures: list[ValidationError] = []
        for check in self.checks:
            try:
                check.validate_python(value)
                return value
            except ValidationError as error:
                failures.append(error)
        # both context shapes failed: show the mobile one's complaint when the call looks mobile
        if len(self.checks) > 1 and _MOBILE_KEYS.intersection(value):
            self.checks[-1].validate_python(value)
        raise failures[0]


# A JSON object checked against the document's shapes and kept as given.
WebOrMobileContextObject = Annotated[dict[str, Any], AfterValidator(MatchesOne(WebContext, MobileContext))]
WebContextObject = Annotated[dict[str, Any], AfterValidator(MatchesOne(WebContext))]
MobileContextObject = Annotated[dict[str, Any], AfterValidator(MatchesOne(MobileContext))]
IdentifyTraitsObject = Annotated[dict[str, Any], AfterValidator(MatchesOne(IdentifyTraits))]
GroupTraitsObject = Annotated[dict[str, Any], AfterValidator(MatchesOne(GroupTraits))]
PagePropertiesObject = Annotated[dict[str, Any], AfterValidator(MatchesOne(PageProperties))]

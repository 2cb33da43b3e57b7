"""Customer.io's semantic events: track calls with reserved names, what each needs beyond
`event`, what the document types in them, and what it asks that no official SDK confirms
(warned of, never refused)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import StrictInt, StrictStr, StringConstraints, TypeAdapter

from cdpcli.models.shapes import Part

# What each semantic event needs beyond `event`: the OpenAPI document's required fields
# (#/components/schemas/create_update_device, …) where an official SDK confirms them; `a|b` is
# either. Rules only the document states, which no SDK confirms, are warnings
# (`semantic_warnings`), not rejects: Object Deleted's anonymousId, a delivery metric outside
# the document's four, a string objectTypeId.
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
    given = call.get("properties")
    properties: dict[str, Any] = given if isinstance(given, dict) else {}
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


# What the document types in each semantic event (#/components/schemas/create_update_device, …)


class _DeviceToken(Part, total=False):
    token: StrictStr
    type: Literal["ios", "android", "web"]


class _DeviceContext(Part, total=False):
    device: _DeviceToken


class _DeviceEvent(Part, total=False):
    context: _DeviceContext


class _ObjectProperties(Part, total=False):
    objectId: StrictStr
    # an integer in the document, a string everywhere else (group): a numeric string is taken
    # with a warning (`semantic_warnings`)
    objectTypeId: StrictInt | Annotated[StrictStr, StringConstraints(pattern=r"^[0-9]+$")]


class _ObjectEvent(Part, total=False):
    properties: _ObjectProperties


class _DeliveryProperties(Part, total=False):
    deliveryId: StrictStr
    metric: StrictStr  # the document's four (DOCUMENTED_METRICS) warned of, not enforced
    recipient: StrictStr
    reason: StrictStr
    actionValue: StrictStr
    href: StrictStr


class _DeliveryEvent(Part, total=False):
    properties: _DeliveryProperties


class _ContentProperties(Part, total=False):
    actionType: Literal["viewed_content", "clicked_content"]
    contentId: StrictInt
    templateId: StrictInt


class _ContentEvent(Part, total=False):
    properties: _ContentProperties


_SEMANTIC_SHAPES: dict[str, type] = {
    "Device Created or Updated": _DeviceEvent,
    "Device Deleted": _DeviceEvent,
    "Relationship Deleted": _ObjectEvent,
    "Object Deleted": _ObjectEvent,
    "Report Delivery Event": _DeliveryEvent,
    "Report Content Event": _ContentEvent,
}


@cache
def semantic_adapter(event: str) -> TypeAdapter[Any] | None:
    """The typed fields of a semantic event, checked apart from the call's own model."""
    shape = _SEMANTIC_SHAPES.get(event)
    return TypeAdapter(shape) if shape else None

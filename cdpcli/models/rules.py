"""The required-field rules (SPEC) every flavour applies, beside the semantic events' needs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cdpcli.models.semantic import SEMANTIC_EVENTS, semantic_adapter, semantic_event_problem

IDENTIFY_NEEDS = "identify needs userId or anonymousId, or a non-empty traits.email"


def check_rules(call: BaseModel, lax: bool) -> BaseModel:
    """The required-field rules (SPEC) and what the document requires of semantic events.
    An identify may name its person by traits.email alone (`identified_by_email`); the lax
    flavour then sends it as documented, with `"userId": ""`."""
    fields = call.__dict__
    event = fields.get("event")
    if event in SEMANTIC_EVENTS:
        problem = semantic_event_problem(event, fields)
        if problem:
            raise ValueError(problem)
        typed_fields = semantic_adapter(event)
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
    """The strict flavour's verdict on the rules `check_rules` enforces, cheaply: False sends
    the call to the lax (or wire) models, which decide and say why. An identify with no id
    (one identified by email, or one that is invalid) is refused here: it takes the plain path,
    where lax adds the empty userId, and lines with an id pay nothing for the rule."""
    if call.get("type") == "alias":
        return True
    return bool(call.get("userId") or call.get("anonymousId")) and call.get("event") not in SEMANTIC_EVENTS

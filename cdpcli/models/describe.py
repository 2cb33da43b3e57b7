"""A pydantic ValidationError as lines a person reads: one per problem, naming the field as it
appears on the wire (never a CLI flag: the front ends add their own hints)."""

from __future__ import annotations

from pydantic import ValidationError

from cdpcli.wire import CALL_TYPES


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
            msg = "missing type (one of " + ", ".join(CALL_TYPES) + "; or give a default type)"
            loc = []
        elif item["type"] == "model_attributes_type":
            msg = "expected a JSON object"
        lines.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return lines

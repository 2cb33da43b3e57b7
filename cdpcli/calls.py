"""The six single calls: flags -> validated call -> request -> dry-run print or send -> report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cdpcli.errors import DeliveryError, UsageError
from cdpcli.items import apply_items, check_argument, read_json_object
from cdpcli.session import SendOptions, Session, open_session
from cdpcli.wire import MAX_CALL_BYTES, Request, call_size, complete_call, parse_timestamp, single_request

# How the wire's field names are typed on the command line, for error messages.
FLAG_FOR_FIELD = {
    "userId": "--user",
    "anonymousId": "--anonymous-id",
    "event": "--event",
    "groupId": "--group",
    "previousId": "--previous-id",
    "objectTypeId": "--object-type-id",
    "timestamp": "--timestamp",
    "messageId": "--message-id",
    "context": "--context",
    "integrations": "--integrations",
    "traits": "--traits",
    "properties": "--properties",
    "name": "--name",
    "category": "--category",
}


@dataclass
class CommonFields:
    """The options every call command takes, as typed."""

    timestamp: str | None = None
    message_id: str | None = None
    context: str | None = None
    context_field: list[str] | None = None
    integrations: str | None = None


@dataclass
class CallInput:
    """What the user typed for one call, before parsing."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)  # plain top-level fields
    objects: dict[str, tuple[str | None, list[str] | None]] = field(default_factory=dict)  # traits/properties
    context: str | None = None
    context_items: list[str] | None = None
    integrations: str | None = None


def build_call(spec: CallInput) -> dict[str, Any]:
    """Parse JSON and items, validate with the call's model, and fill in ids and timestamps."""
    from pydantic import ValidationError

    from cdpcli.models import describe_errors, validate_call

    data: dict[str, Any] = {"type": spec.type}
    data.update({k: v for k, v in spec.fields.items() if v is not None})
    for name, value in data.items():
        if isinstance(value, str):
            check_argument(value, FLAG_FOR_FIELD.get(name, name))
    _check_stdin_once(spec)
    _check_fields(data)
    item_flag = {"traits": "-t", "properties": "-p"}
    for name, (text, items) in spec.objects.items():
        obj = read_json_object(text, f"--{name}")
        if items:
            obj = apply_items(obj or {}, items, item_flag[name])
        if obj is not None:
            data[name] = obj
    context = read_json_object(spec.context, "--context")
    if spec.context_items:
        context = apply_items(context or {}, spec.context_items, "-c", dotted=True)
    if context is not None:
        data["context"] = context
    integrations = read_json_object(spec.integrations, "--integrations")
    if integrations is not None:
        data["integrations"] = integrations
    _check_depth(data)
    try:
        call = validate_call(data)
    except ValidationError as exc:
        problems = [_with_flags(line) for line in describe_errors(exc)]
        raise UsageError(
            f"invalid {spec.type} call: " + "; ".join(problems),
            hint=f"see `cdp {spec.type} --help`",
        ) from None
    call = complete_call(call)
    size = call_size(call)
    if size > MAX_CALL_BYTES:
        raise UsageError(
            f"the {spec.type} call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,} per call",
            hint="send fewer or smaller traits/properties",
        )
    return call


def _check_stdin_once(spec: CallInput) -> None:
    """stdin can be read once: two options asking for `@-` is a usage error, not an empty second read."""
    readers = [f"--{name}" for name, (text, _) in spec.objects.items() if text == "@-"]
    readers += [
        flag for flag, text in (("--context", spec.context), ("--integrations", spec.integrations)) if text == "@-"
    ]
    if len(readers) > 1:
        raise UsageError(
            f"{' and '.join(readers)} both read @- (stdin), which can be read only once",
            hint=f"keep @- for one of them and give the other inline or as @FILE, e.g. {readers[1]} @file.json",
        )


_WHOLE_NUMBER = re.compile(r"[0-9]+")


def _check_fields(data: dict[str, Any]) -> None:
    """Checks on single values whose errors deserve their own hint."""
    type_id = data.get("objectTypeId")
    if type_id is not None and not _WHOLE_NUMBER.fullmatch(type_id):
        raise UsageError(
            f"--object-type-id {type_id!r}: expected a whole number (the API takes object type IDs "
            'as stringified integers, e.g. "1")',
            hint="e.g. --object-type-id 2; left out, the API assumes 1",
        )
    timestamp = data.get("timestamp")
    if timestamp is not None:
        try:
            parse_timestamp(timestamp)
        except ValueError as exc:
            if "milliseconds" in str(exc):
                hint = f"give seconds: --timestamp {float(timestamp.strip()) / 1000:.3f}"
            else:
                hint = "e.g. --timestamp 2026-11-27T13:31:42Z (a naive time is UTC) or --timestamp $(date +%s)"
            raise UsageError(f"--timestamp: {exc}", hint=hint) from None


def _check_depth(data: dict[str, Any]) -> None:
    """The assembled call nests at most jsontext.MAX_DEPTH levels, as import and serve read it:
    each flag's JSON was checked alone, but `-p k:=[[…]]` inside --properties, or `-c a.b.c…`
    with 300 dotted parts, nest deeper together."""
    from cdpcli.jsontext import MAX_DEPTH, depth

    for name, value in data.items():
        if isinstance(value, (dict, list)) and depth(value) > MAX_DEPTH:
            flag = FLAG_FOR_FIELD.get(name, f"--{name}")
            raise UsageError(
                f"{flag}: nesting deeper than {MAX_DEPTH} levels inside the call",
                hint="flatten the value; the API's JSON readers stop at some depth",
            )


def _with_flags(problem: str) -> str:
    field_name, sep, rest = problem.partition(": ")
    if sep and field_name.split(".")[0] in FLAG_FOR_FIELD:
        head = field_name.split(".")[0]
        return f"{FLAG_FOR_FIELD[head]}{field_name[len(head) :]}: {rest}"
    # identify's rule names the three ways to say who the person is (models.IDENTIFY_NEEDS)
    problem = problem.replace(
        "userId or anonymousId, or a non-empty traits.email",
        "--user or --anonymous-id, or --email (a non-empty traits.email)",
    )
    return problem.replace("userId or anonymousId", "--user or --anonymous-id")


def print_dry_run(session: Session, request: Request) -> None:
    session.out.request(request.url, request.redacted_headers(), request.body_bytes().decode("utf-8"))


def run_call(spec: CallInput, opts: SendOptions) -> None:
    """Validate, then print (dry-run) or send one call; raises CdpError on failure."""
    session = open_session(opts, need_key=True)
    call = build_call(spec)
    request = single_request(call, session.base, session.headers(), gzip=session.gzip)
    if session.dry_run:
        print_dry_run(session, request)
        return
    out = session.out
    with session.sender(on_retry=out.info) as sender:
        outcome = sender.send(request)
    result = {
        "ok": outcome.ok,
        "status": outcome.status,
        "type": spec.type,
        "messageId": call["messageId"],
        "url": request.url,
        "attempts": outcome.attempts,
    }
    if outcome.ok:
        if out.json_mode:
            out.json(result)
        elif not out.quiet:
            out.result(f"{spec.type} accepted: HTTP {outcome.status}, messageId {call['messageId']}")
        if not session.strict:
            out.info("Note: strict mode is off, so a 200 does not prove the key or the call was valid.")
        return
    error = _delivery_error(session, request, outcome)
    # under --json, `reporting` prints this as the one result object, with hint and exit_code
    error.details = {**result, "error": outcome.error}
    raise error


def _delivery_error(session: Session, request: Request, outcome: Any) -> DeliveryError:
    tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    if outcome.status is None:
        return DeliveryError(
            f"could not reach {request.url}: {outcome.error}{tries}",
            hint="check --endpoint/--region and your network; `cdp connect test` checks the setup",
            attempts=outcome.attempts,
            exit_code=outcome.exit_code,
        )
    if outcome.status in (401, 403):
        return DeliveryError(
            f"the API rejected the key (HTTP {outcome.status}) at {request.url}",
            hint=f"the key came from {session.source('api-key')}; check it is the HTTP source's API key for region {session.region}",
            status=outcome.status,
            attempts=outcome.attempts,
            exit_code=outcome.exit_code,
        )
    return DeliveryError(
        f"the API answered HTTP {outcome.status}{tries}: {outcome.error}",
        status=outcome.status,
        attempts=outcome.attempts,
        exit_code=outcome.exit_code,
    )

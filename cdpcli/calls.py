"""Single calls: fields in, a validated call, its request, and the API's answer as a SendResult."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdpcli.errors import DeliveryError, UsageError, delivery_failure
from cdpcli.wire import CALL_TYPES, MAX_CALL_BYTES, Request, call_size, complete_call, single_request

if TYPE_CHECKING:
    from cdpcli.target import Target
    from cdpcli.transport import Exchange, Outcome


class InvalidCall(UsageError):
    """A call the models refuse. `problems` name the wire's fields ("properties.price: …"), so
    that a front end can say them its own way (the CLI names its flags); `lead` goes first."""

    def __init__(self, lead: str, problems: list[str], hint: str | None = None) -> None:
        super().__init__(lead + "; ".join(problems), hint)
        self.lead = lead
        self.problems = problems


def prepare_call(call_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The call to send: `fields` (wire names, None = left out) validated with the call's
    model, with messageId, timestamp and context.library filled in when absent."""
    from pydantic import ValidationError  # lazy: start-up

    from cdpcli.jsontext import MAX_DEPTH, depth  # lazy: start-up
    from cdpcli.models import describe_errors, validate_call  # lazy: start-up

    if call_type not in CALL_TYPES:
        raise UsageError(f"unknown call type {call_type!r}", hint="one of: " + ", ".join(CALL_TYPES))
    data: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    data["type"] = call_type
    # as import and serve read it: `-p k:=[[…]]` inside --properties nest deeper together
    for name, value in data.items():
        if isinstance(value, (dict, list)) and depth(value) > MAX_DEPTH:
            raise InvalidCall(
                "",
                [f"{name}: nesting deeper than {MAX_DEPTH} levels inside the call"],
                hint="flatten the value; the API's JSON readers stop at some depth",
            )
    try:
        call = validate_call(data)
    except ValidationError as exc:
        raise InvalidCall(f"invalid {call_type} call: ", describe_errors(exc)) from None
    call = complete_call(call)
    size = call_size(call)
    if size > MAX_CALL_BYTES:
        raise UsageError(
            f"the {call_type} call is {size:,} bytes; the API accepts at most {MAX_CALL_BYTES:,} per call",
            hint="send fewer or smaller traits/properties",
        )
    return call


def call_warnings(call: dict[str, Any]) -> list[str]:
    """What is doubtful about a valid call without making it invalid: the rules of semantic events
    that only the API document states (models.semantic_warnings). A front end says them (the CLI
    on stderr); they never change what is sent."""
    from cdpcli.models import semantic_warnings  # lazy: start-up

    return semantic_warnings(call)


def call_request(call: dict[str, Any], target: Target) -> Request:
    """The request that carries one prepared call (what a dry run shows)."""
    return single_request(call, target.base, target.headers(), gzip=target.gzip)


@dataclass
class SendResult:
    """What became of one call. `ok` is a 2xx answer; otherwise `error` says why."""

    ok: bool
    status: int | None  # None: no answer (network error)
    message_id: str
    attempts: int
    type: str
    url: str
    latency_ms: float = 0.0
    error: str = ""
    failure: DeliveryError | None = None  # the message, hint and exit code of a failed send
    warnings: list[str] = field(default_factory=list)  # call_warnings of the call sent

    def raise_for_failure(self) -> SendResult:
        """Raise the DeliveryError of a failed send; returns self when it was delivered."""
        if self.failure is not None:
            raise self.failure
        return self


def deliver(
    call: dict[str, Any],
    target: Target,
    *,
    check: bool = True,
    on_retry: Callable[[str], None] | None = None,
    on_exchange: Callable[[Exchange], None] | None = None,
) -> SendResult:
    """Send a prepared call (retries per target.retries). A failure raises DeliveryError
    unless `check` is false; then it is in the result."""
    request = call_request(call, target)
    outcome = target.send(request, on_retry=on_retry, on_exchange=on_exchange)
    result = SendResult(
        ok=outcome.ok,
        status=outcome.status,
        message_id=call["messageId"],
        attempts=outcome.attempts,
        type=call["type"],
        url=request.url,
        latency_ms=outcome.latency_ms,
        error=outcome.error,
        warnings=call_warnings(call),
    )
    if not outcome.ok:
        result.failure = failure_of(outcome, request.url, target)
        result.failure.details = {
            "ok": False,
            "status": outcome.status,
            "type": result.type,
            "messageId": result.message_id,
            "url": result.url,
            "attempts": outcome.attempts,
            "error": outcome.error,
        }
        if check:
            raise result.failure
    return result


def failure_of(outcome: Outcome, url: str, target: Target) -> DeliveryError:
    """errors.delivery_failure for a transport Outcome sent to `target`."""
    return delivery_failure(
        url=url,
        status=outcome.status,
        error=outcome.error,
        attempts=outcome.attempts,
        network_kind=outcome.network_kind,
        key_origin=target.key_origin(),
        region=target.region or "",
    )


def send(
    call_type: str,
    fields: dict[str, Any],
    *,
    target: Target,
    check: bool = True,
    on_retry: Callable[[str], None] | None = None,
) -> SendResult:
    """Validate and send one call: `send("track", {"userId": "42", "event": "Item Purchased"},
    target=target)`. Invalid fields raise InvalidCall (a UsageError, exit code 2); a call that
    is not delivered raises DeliveryError (exit code 3-6), or with check=False comes back with
    ok False. Never prints."""
    return deliver(prepare_call(call_type, fields), target, check=check, on_retry=on_retry)

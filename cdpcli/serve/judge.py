"""The API's verdict on one request, as `cdp serve` gives it: pure (a body in, a verdict out; no
sockets, threads, files or clock), so that every rule can be tested without a server.

The checks come in the API's order: the key (Authorization), what reading the body found (gzip
that is not, a body over the limit: see asgi.py), the size inflated, strict JSON (`read_body`), the
calls against the wire models (cdpcli.models) and the size of each call. In strict mode
(X-Strict-Mode: 1) a bad call makes the request a 400 naming it; without it the request is
answered 200 and the bad calls are dropped, as the API does, and the verdict's notes say so.
An accepted call's top-level writeKey (the key, as browser and mobile SDKs send it) is kept masked.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json, to_json

from cdpcli.jsontext import JSONTextError, first_repeated_key, may_overflow, may_repeat_a_key
from cdpcli.jsontext import loads as strict_loads
from cdpcli.redaction import WRITE_KEY, without_write_key
from cdpcli.serve.limits import MAX_SDK_CALL_BYTES
from cdpcli.wire import CALL_TYPES, MAX_BATCH_CALLS, MAX_CALL_BYTES, MAX_REQUEST_BYTES, call_size

PATHS = "/v1/identify|track|page|screen|group|alias|batch"
# the undocumented one-letter paths Customer.io's browser SDK posts to (identify … alias), and
# its and the mobile SDKs' batch path, authenticated by a body writeKey (api-wire-facts 1.3, 2.2)
SDK_PATHS = ("/v1/i", "/v1/t", "/v1/p", "/v1/s", "/v1/g", "/v1/a", "/v1/b")
SDK_NOTE = (
    "the browser and mobile SDKs' own paths and body writeKey are not served: cdp serve takes the HTTP "
    "API's paths with Authorization: Basic, as the server-side SDKs (Python, Node, Go) and cdp send them"
)
WRONG_KEY = "unauthorized: wrong API key"
NO_AUTHORIZATION = "unauthorized: send Authorization: Basic base64(<api key>:)"
PERMISSIVE_WRONG_KEY = "wrong key; answered 200 as the API does without strict mode"


@dataclass
class Body:
    """A request body as read: its size on the wire, its bytes (inflated when gzip), or the
    answer it gets instead (gzip that is not, a body over the limit)."""

    raw_size: int
    text: bytes | None
    problem: tuple[int, str] | None = None


@dataclass
class Verdict:
    """The answer to one request (status, JSON body, extra headers) and the calls it accepted."""

    status: int
    answer: Any
    headers: dict[str, str] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)  # accepted, to be recorded
    encoded: list[bytes | None] = field(default_factory=list)  # each call's compact JSON, when made
    notes: list[str] = field(default_factory=list)  # what the log says of it: calls dropped, …
    dropped: list[str] = field(default_factory=list)  # without strict mode: the problems of the calls dropped
    warnings: list[list[str]] = field(default_factory=list)  # each accepted call's warnings (may be empty)


def errors(*messages: str) -> dict[str, Any]:
    """The API's error body."""
    return {"meta": {"errors": list(messages)}}


def call_kind(path: str) -> str | None:
    """The call type a path takes (`batch` for /v1/batch), or None when the API has no such
    path: exactly /v1/identify|track|page|screen|group|alias|batch (a query string aside), no
    trailing slash, no other segment."""
    route = path.split("?", 1)[0]
    kind = route[4:] if route.startswith("/v1/") else ""
    return kind if kind in (*CALL_TYPES, "batch") else None


def not_found(path: str, host: str | None = None) -> Verdict:
    """404 for a path the API does not have; for /v1/v1/… what base URL to give instead."""
    route = path.split("?", 1)[0]
    if route == "/v1/v1" or route.startswith("/v1/v1/"):
        base = f"http://{host}" if host else "the receiver's address"
        return Verdict(
            404,
            errors(
                f"no such path {route}: the base URL holds /v1 twice. Give {base} (no /v1) to an SDK that adds "
                f"/v1/batch itself (the Python, Node and Go SDKs; the fixture's .base_url), and {base}/v1 to a "
                f"client that adds only /batch or /track (cdp --endpoint, the fixture's .url)"
            ),
        )
    if route in SDK_PATHS:
        return Verdict(404, errors(f"no such path {route}; the API's paths are {PATHS} ({SDK_NOTE})"))
    slash = " (without the trailing slash)" if route.endswith("/") and call_kind(route.rstrip("/")) else ""
    return Verdict(404, errors(f"no such path {route}{slash}; the API's paths are {PATHS}"))


def cannot_record(reason: str) -> Verdict:
    """503, retryable: the calls were not recorded, and the client may send them again elsewhere."""
    return Verdict(503, errors(f"cdp serve cannot record calls: {reason}; it is stopping"), {"Connection": "close"})


def status_for(kind: str, calls: list[dict[str, Any]], codes: dict[str, int]) -> Verdict | None:
    """The answer `--status-for EVENT=CODE` gives a request carrying a call with one of those
    events (the first such call's code), None when it carries none. A 4xx names each such call
    as strict mode does (`batch[i]: …`), so that a client isolates them by splitting."""
    named = [(index, call) for index, call in enumerate(calls) if str(call.get("event")) in codes]
    if not named:
        return None
    status = codes[str(named[0][1].get("event"))]
    where = (lambda index: f"batch[{index}]: ") if kind == "batch" else (lambda index: "")
    messages = [
        f"{where(index)}event {call.get('event')!r} is answered {status} (--status-for)"
        for index, call in named
        if codes[str(call.get("event"))] == status
    ]
    headers = {"Retry-After": "1"} if status in (429, 503) else {}
    return Verdict(status, errors(*messages), headers)


def injected_failure(status: int) -> Verdict:
    """A failure `--fail-rate` injects: one a client retries (500, 503, or 429 to retry at once)."""
    return Verdict(status, errors("injected failure (--fail-rate)"), {"Retry-After": "0"} if status == 429 else {})


class Judge:
    """The API's verdict on requests that carry `api_key` (None: any non-empty key passes).
    `strict`: None follows each request's X-Strict-Mode header; True or False judges every
    request as if it said so (the pytest fixture's `strict=`)."""

    def __init__(self, api_key: str | None = None, *, strict: bool | None = None) -> None:
        self.api_key = api_key
        self.strict = strict

    def warm(self) -> None:
        """Import and build what judging needs now, not at the first request: under a burst that
        uses every file descriptor, a first request that must open a module's file would fail."""
        from cdpcli.models import adapter, batch_envelope  # lazy: start-up (the one-liners never judge)

        batch_envelope()
        adapter("list", "strict")
        adapter("any", "wire")

    def is_strict(self, headers: dict[str, str]) -> bool:
        return self.strict if self.strict is not None else headers.get("x-strict-mode") == "1"

    def verdict(self, kind: str, headers: dict[str, str], body: Body) -> Verdict:
        """The verdict on a request to the path for `kind` (see call_kind); `headers` lowercased."""
        strict = self.is_strict(headers)
        problem = self.check_auth(headers.get("authorization", ""))
        if problem == WRONG_KEY and not strict:  # the API drops the call and answers 200
            return Verdict(200, {}, notes=[PERMISSIVE_WRONG_KEY], dropped=[PERMISSIVE_WRONG_KEY])
        if problem:
            if problem == NO_AUTHORIZATION and body.text is not None and b'"writeKey"' in body.text:
                problem += f" ({SDK_NOTE})"
            return Verdict(401, errors(problem))
        if body.problem is not None:
            return Verdict(body.problem[0], errors(body.problem[1]))
        text = body.text
        assert text is not None
        if len(text) > MAX_REQUEST_BYTES:
            return Verdict(413, errors(f"request body is {len(text):,} bytes; the limit is {MAX_REQUEST_BYTES:,}"))
        try:
            parsed = read_body(text, kind)
        except JSONTextError as exc:
            message = str(exc)
            return Verdict(400, errors(message if message.startswith("invalid JSON") else f"invalid JSON: {message}"))
        calls, encoded, problems = self.validate(kind, parsed)
        if problems and strict:
            return Verdict(400, errors(*problems))
        # permissive mode: like the API, answer 200 and drop them
        notes = [f"dropped {p} (no X-Strict-Mode: 1 header, so answered 200 as the API does)" for p in problems]
        warnings = size_warnings(calls, encoded)
        if calls:
            notes += [
                f"{_where(kind, index)}: warning: {text}" for index, texts in enumerate(warnings) for text in texts
            ]
            notes += _identified_by_email(kind, calls)
            notes += _semantic_warnings(kind, calls)
        return Verdict(200, {}, calls=calls, encoded=encoded, notes=notes, dropped=problems, warnings=warnings)

    def check_auth(self, value: str) -> str | None:
        """What is wrong with an Authorization header's value (None: nothing)."""
        scheme, _, credential = value.partition(" ")
        if scheme.lower() == "basic":
            try:
                key, _, _ = base64.b64decode(credential, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return "unauthorized: malformed Basic credentials"
        elif scheme.lower() == "bearer":
            key = credential.strip()
        else:
            return NO_AUTHORIZATION
        if not key:
            return "unauthorized: empty API key"
        if self.api_key is not None and key != self.api_key:
            return WRONG_KEY
        return None

    def validate(self, kind: str, body: Any) -> tuple[list[dict[str, Any]], list[bytes | None], list[str]]:
        """The calls to record, each one's compact JSON when already made (else None), and the problems."""
        from pydantic import ValidationError  # lazy: start-up (pydantic, only when judging)

        from cdpcli.models import batch_envelope, describe_errors  # lazy: start-up

        if not isinstance(body, dict):
            return [], [], ["body must be a JSON object"]
        if kind != "batch":
            if body.get("type", kind) != kind:
                return [], [], [f"type {body.get('type')!r} does not match the path /v1/{kind}"]
            [problem], _ = self.check_calls([{**body, "type": kind}])
            if problem:
                return [], [], [problem]
            call = {k: v for k, v in body.items() if k != "sentAt"} | {"type": kind}
            return [without_write_key(call)], [None], []
        if not isinstance(body.get("batch"), list):
            return [], [], ["batch must be an array of calls"]
        try:
            batch_envelope().validate_python(body)
        except ValidationError as exc:
            return [], [], describe_errors(exc)
        items = body["batch"]
        if len(items) > MAX_BATCH_CALLS:
            return [], [], [f"batch has {len(items)} calls; the limit is {MAX_BATCH_CALLS}"]
        verdicts, encodings = self.check_calls(items)
        calls: list[dict[str, Any]] = []
        encoded: list[bytes | None] = []
        problems: list[str] = []
        for index, (item, problem) in enumerate(zip(items, verdicts, strict=True)):
            if problem:
                problems.append(f"batch[{index}]: {problem}")
            elif WRITE_KEY in item:  # kept and written out masked: its JSON is made again
                calls.append(without_write_key(item))
                encoded.append(None)
            else:
                calls.append(item)
                encoded.append(encodings[index])
        return calls, encoded, problems

    def check_calls(self, calls: list[Any]) -> tuple[list[str | None], list[bytes | None]]:
        """The API's verdict on each call (None when it is accepted, else the problem), and each
        accepted call's compact JSON, made for the size check and written out as it is."""
        from pydantic import ValidationError  # lazy: start-up (pydantic, only when judging)

        from cdpcli.models import adapter, describe_errors, strict_rules_hold  # lazy: start-up

        try:  # the common case in one pass: every call valid as it stands
            adapter("list", "strict").validate_python(calls)
            if not all(map(strict_rules_hold, calls)):
                raise ValueError("required fields: let the wire models say which")
            verdicts: list[str | None] = [None] * len(calls)
        except ValueError:  # pydantic's ValidationError is one too
            verdicts = []
            for call in calls:
                if not isinstance(call, dict):
                    verdicts.append("must be an object")
                elif "type" not in call:
                    verdicts.append("type: Field required")
                else:
                    try:
                        adapter("any", "wire").validate_python(call)
                        verdicts.append(None)
                    except ValidationError as exc:
                        verdicts.append("; ".join(describe_errors(exc)))
        encodings: list[bytes | None] = [None] * len(calls)
        for index, call in enumerate(calls):
            if verdicts[index] is None:
                encoded = encodings[index] = to_json(call)  # compact, like call_size, and ~2x faster
                size = len(encoded) if encoded.isascii() else call_size(call)  # exact for ASCII
                if size > MAX_SDK_CALL_BYTES:
                    verdicts[index] = f"call is {size:,} bytes; the limit is {MAX_SDK_CALL_BYTES:,}"
        return verdicts, encodings


def size_warnings(calls: list[dict[str, Any]], encoded: list[bytes | None]) -> list[list[str]]:
    """Each accepted call's size warning: over MAX_CALL_BYTES (32,000, where cdp's own sender
    and the Go SDK stop) yet within MAX_SDK_CALL_BYTES (32 KB = 32,768, the Python and Node
    SDKs' limit), so accepted; empty lists for the rest."""
    warnings: list[list[str]] = []
    for call, made in zip(calls, encoded, strict=True):
        # the escaped size the API counts: the same as the compact UTF-8 for ASCII, at most 3x it
        escaped = made is None or (len(made) > MAX_CALL_BYTES // 3 and not made.isascii())
        size = call_size(call) if escaped else len(made or b"")
        warnings.append(
            [
                f"call is {size:,} bytes: accepted (the API's 32 KB, as the Python and Node SDKs count it, is "
                f"{MAX_SDK_CALL_BYTES:,}), but over {MAX_CALL_BYTES:,}, where cdp's own sender and the Go SDK stop"
            ]
            if size > MAX_CALL_BYTES
            else []
        )
    return warnings


def _where(kind: str, index: int) -> str:
    return f"batch[{index}]" if kind == "batch" else kind


def _identified_by_email(kind: str, calls: list[dict[str, Any]]) -> list[str]:
    """A note for each accepted call that names its person by email alone (no userId or anonymousId)."""
    from cdpcli.models import identified_by_email  # lazy: start-up

    notes = []
    for index, call in enumerate(calls):
        if not (call.get("userId") or call.get("anonymousId")) and identified_by_email(call):
            where = f"batch[{index}]" if kind == "batch" else "identify"
            notes.append(f"{where}: person identified by email {call['traits']['email']!r} (no userId or anonymousId)")
    return notes


def _semantic_warnings(kind: str, calls: list[dict[str, Any]]) -> list[str]:
    """A note for each warning on an accepted semantic event (models.semantic_warnings): rules
    only the API document states, which serve logs but does not enforce."""
    from cdpcli.models import SEMANTIC_EVENTS, semantic_warnings  # lazy: start-up

    notes = []
    for index, call in enumerate(calls):
        if call.get("event") in SEMANTIC_EVENTS:
            where = f"batch[{index}]" if kind == "batch" else kind
            notes += [f"{where}: warning: {text}" for text in semantic_warnings({"type": kind, **call})]
    return notes


def read_body(text: bytes, kind: str) -> Any:
    """A request body as the API's strict JSON parser reads it (cdpcli.jsontext's rules), or
    JSONTextError: no NaN or Infinity, no number that overflows a double, no lone surrogate, no
    call nested deeper than jsontext.MAX_DEPTH levels (counted from the call: a /batch body's
    calls sit 2 levels down), no key twice in one object.

    Fast path: pydantic-core's reader refuses NaN, Infinity, lone surrogates, invalid UTF-8 and
    nesting past 201 levels by itself, and is faster than json.loads (2.7 against 3.6 ms for a
    470 KB batch); only overflowing numbers need a look at the bytes (`jsontext.may_overflow`, ~1 ms),
    and duplicate keys a count of colons (`jsontext.may_repeat_a_key`). Whatever it refuses or doubts goes to
    the exact reader, which says what is wrong."""
    try:
        body = from_json(text, allow_inf_nan=False)
    except ValueError:
        return _read_exactly(text, kind)
    if may_overflow(text):
        body = _read_exactly(text, kind)
    if may_repeat_a_key(text, body):
        _refuse_repeated_keys(text)
    return body


def _refuse_repeated_keys(text: bytes) -> None:
    """JSONTextError naming the first key an object of `text` holds twice (none: nothing)."""
    key = first_repeated_key(text)
    if key is not None:
        raise JSONTextError(f"invalid JSON: duplicate key {json.dumps(key)}")


def _read_exactly(text: bytes, kind: str) -> Any:
    try:
        return strict_loads(text)
    except JSONTextError as exc:
        if kind != "batch":
            raise
        problem = exc
    # jsontext counts levels from the body, and a /batch body holds its calls 2 levels down:
    # a call 200 levels deep (allowed) makes the body 202 deep. Judge the envelope and each call
    # on its own; if they all pass, depth was the only complaint and it does not hold
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise problem from None
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise problem
    for index, call in enumerate(body["batch"]):
        complaint = _complaint_alone(call)
        if complaint is not None:
            # the call's index when its own complaint is the body's (not so for 1e400, written
            # back as Infinity: then the body's message, which quotes the number, stands alone)
            raise (JSONTextError(f"batch[{index}]: {problem}") if complaint == str(problem) else problem) from None
    if _complaint_alone({k: v for k, v in body.items() if k != "batch"}) is not None:
        raise problem
    return body


def _complaint_alone(value: Any) -> str | None:
    """What jsontext says of `value` written as JSON by itself (None: nothing). Python's writer
    keeps NaN, infinities, huge integers and lone surrogates (as \\ud800 escapes) for it to see."""
    try:
        strict_loads(json.dumps(value))
    except JSONTextError as exc:
        return str(exc)
    except RecursionError:
        return "nesting"
    return None

"""`cdp serve`: a local Data Pipelines-compatible receiver for development, CI and our tests.

Same paths, auth, strict-mode validation and size limits as the API; answers 200 `{}` and
appends every accepted call (with `receivedAt`) as NDJSON to a file or stdout.

It runs on uvicorn (its httptools HTTP/1.1 protocol on an asyncio loop; imported only when a
Receiver is made, never on the one-liner path), with the limits a server that strangers can reach
needs: a listen backlog and connection limit that take thousands of clients at once, a deadline
for a request's headers and one for its body (slow clients are cut off, not accumulated), bodies
refused by their declared length, gzip inflated as it arrives and only up to the limit, and a
JSON `{"meta": {"errors": [...]}}` body for every error, malformed requests included.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import ipaddress
import json
import random
import re
import socket
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from pydantic_core import from_json, to_json

from cdpcli.jsontext import JSONTextError, may_overflow
from cdpcli.jsontext import loads as strict_loads
from cdpcli.wire import CALL_TYPES, MAX_BATCH_CALLS, MAX_CALL_BYTES, MAX_REQUEST_BYTES, call_size, now_timestamp

# seconds between garbage collections while `cdp serve` runs (see Receiver._take_over_gc)
SERVE_COLLECT_EVERY = 10.0
# seconds a request's request line and headers may take to arrive, and then its body: a client
# slower than that is answered 408 and cut off (a 500,000-byte body in 10 s is 400 kbit/s)
READ_TIMEOUT = 10.0
# seconds an idle keep-alive connection is kept (longer than clients' own idle expiry, httpx: 5 s,
# so that a client never reuses a connection the server is closing)
KEEP_ALIVE_TIMEOUT = 30.0
# queued connections the kernel may hold for us (capped by net.core.somaxconn), and connections
# served at once; beyond MAX_CONNECTIONS a new one is answered 503 and closed
BACKLOG = 4096
MAX_CONNECTIONS = 4096
# request line plus headers: a longer one is answered 414 (the line) or 431 (the headers)
MAX_HEAD_BYTES = 64 * 1024
# the largest body read: a valid request inflates to at most MAX_REQUEST_BYTES, and its gzip is
# never more than a few dozen bytes bigger than that (stored blocks); the margin is generous
MAX_RAW_BYTES = MAX_REQUEST_BYTES + 64 * 1024
# a body declared over MAX_RAW_BYTES is answered 413 at once; up to this size it is read and
# dropped first (never kept), so that a client busy sending it gets the 413 and not a broken pipe
DRAIN_LIMIT = 16 << 20
# seconds a stop waits for the requests in flight (delays are cut short) before closing them
STOP_GRACE = 5.0


@dataclass
class Scripted:
    """A canned answer for the next request (tests use these to drive retries)."""

    status: int
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw_size: int
    status: int


@dataclass
class _Body:
    """A request body as read: its size on the wire, its bytes (inflated when gzip), or the
    answer it gets instead (gzip that is not, a body over the limit)."""

    raw_size: int
    text: bytes | None
    problem: tuple[int, str] | None = None


class _TooSlow(Exception):
    """The body did not arrive in time."""


class _Gone(Exception):
    """The client closed the connection before its body was in."""


class Receiver:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        out: TextIO | None = None,
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        keep: bool = True,
        log: Callable[[str], None] | None = None,
        collect_every: float | None = None,
        seed: int | None = None,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.api_key = api_key
        self.out = out
        self.fail_rate = fail_rate
        self.latency = latency_ms / 1000
        self.keep = keep  # keep calls and requests in memory (tests); off for long runs
        self.log = log or (lambda text: None)
        self.calls: list[dict[str, Any]] = []
        self.accepted = 0  # calls accepted, counted even when not kept
        self.accepted_bytes = 0  # bodies (uncompressed) of the requests that carried them
        self.requests: list[Received] = []
        self.script: deque[Scripted] = deque()
        self.reject_when: Callable[[dict[str, Any]], str | None] | None = None  # tests: extra 400 rule
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._lock = threading.Lock()
        # seeded, --fail-rate's faults repeat run to run for a client sending one request at a
        # time (concurrent requests draw in the order they arrive)
        self._random = random.Random(seed)
        # why `out` can no longer be written (the reader closed the pipe, the disk is full):
        # from then on every request gets a 503 and the receiver stops listening
        self.broken: OSError | ValueError | None = None
        self._in_flight = 0  # POST requests being handled, so that a stop can let them finish
        self._idle = threading.Condition(self._lock)
        # bound and listening now, so that the port is known and a busy one is an OSError here
        self._socket = _listen(host, port)
        self._address = self._socket.getsockname()
        try:
            self._server = _server_for(self)
        except BaseException:
            self._socket.close()
            raise
        self._thread: threading.Thread | None = None
        # None leaves the process's garbage collector alone (tests, a receiver inside another
        # program); `cdp serve` owns its process and collects every SERVE_COLLECT_EVERY s
        self.collect_every = collect_every
        self._stopped = threading.Event()
        self._collector: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._address[1]

    @property
    def host(self) -> str:
        """The address listened on, as it goes in a URL ([::1] for IPv6)."""
        address = self._address[0]
        return f"[{address}]" if ":" in address else address

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def connections(self) -> int:
        """Connections open right now."""
        return len(self._server.server_state.connections)

    def start(self) -> Receiver:
        """Serve from a thread of its own (its own event loop; no signal handlers)."""
        self._take_over_gc()
        self._thread = threading.Thread(target=self._run, name="cdp-serve", daemon=True)
        self._thread.start()
        self._server.ready.wait(10)
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # noqa: BLE001 - a serving thread says why it ended, never a traceback
            self.log(f"cdp serve stopped: {type(exc).__name__}: {exc}")
        finally:
            self._server.ready.set()

    def serve_forever(self) -> None:
        """Serve in this thread until stop(), Ctrl-C (from the main thread), or output that fails."""
        self._take_over_gc()
        try:
            asyncio.run(self._serve_here())
        finally:
            self._give_back_gc()

    async def _serve_here(self) -> None:
        if threading.current_thread() is threading.main_thread():
            import signal

            # Ctrl-C stops it like stop(): listening ends, requests in flight get their answer
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._stop_listening)
        await self._server.serve(sockets=[self._socket])

    def stop(self) -> None:
        self._stop_listening()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_GRACE + 5)
        self._socket.close()
        self._give_back_gc()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled (True), or for `timeout` s (False)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _stop_listening(self) -> None:
        """Stop accepting connections (from any thread): the listening socket is closed, so that
        new clients are refused, the requests in flight get their answer, then serving ends."""
        self._server.request_exit()

    def _take_over_gc(self) -> None:
        """Automatic garbage collection off while serving; a full collection every `collect_every` s.

        A 500 KB body parses into ~10,000 containers, and CPython's collector runs every 700
        new ones, promoting the bodies in flight to older generations that it then rescans: with
        16 concurrent batch requests it took a third of the receiver's CPU, and more the more
        clients sent at once. Parsed JSON holds no reference cycles (after repeated 100,000-call
        imports gc.collect() finds nothing), so a collection on a schedule loses nothing.
        """
        if self.collect_every is None or self._collector is not None:
            return
        gc.disable()
        self._collector = threading.Thread(target=self._collect_on_schedule, name="cdp-serve-gc", daemon=True)
        self._collector.start()

    def _collect_on_schedule(self) -> None:
        assert self.collect_every is not None
        while not self._stopped.wait(self.collect_every):
            gc.collect()

    def _give_back_gc(self) -> None:
        if self._collector is not None and not self._stopped.is_set():
            self._stopped.set()
            gc.enable()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request handling (on the event loop) --

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """The ASGI application uvicorn runs for each request."""
        if scope["type"] != "http":
            return
        client = scope.get("client")
        who = client[0] if client else "-"
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        status: int | str = "-"
        try:
            if scope["method"] != "POST":
                # every method but POST (GET, TRACE, or one nobody has heard of); a body it may
                # carry is left unread, so the connection closes after the answer
                status = 405
                await _reply(
                    send,
                    405,
                    _errors("the Data Pipelines API takes POST only"),
                    {"Allow": "POST", "Connection": "close"},
                )
            else:
                status = await self._post(scope, receive, send, path)
        except asyncio.CancelledError:  # a stop that could not wait any longer
            status = 503
            await _reply_if_possible(send, 503, _errors("cdp serve is stopping"), {"Connection": "close"})
        except Exception as exc:  # noqa: BLE001 - one request's failure is no reason to stop serving
            status = 500
            self.log(f"{who}:{client[1] if client else '-'}: {type(exc).__name__}: {exc}")
            await _reply_if_possible(
                send,
                500,
                _errors(f"cdp serve could not handle this request ({type(exc).__name__})"),
                {"Connection": "close"},
            )
        self.log(f'{who} "{scope["method"]} {path} HTTP/{scope["http_version"]}" {status} -')

    async def _post(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any], path: str
    ) -> int | str:
        with self._idle:
            self._in_flight += 1
        try:
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
            deadline = asyncio.get_running_loop().time() + self.read_timeout
            declared = headers.get("content-length", "")
            length = int(declared) if declared.isdigit() else None  # the parser has refused any other
            try:
                if length is not None and length > MAX_RAW_BYTES:
                    # refused by its declared length: never kept, read (and dropped) only when
                    # small enough, so that a client busy sending it sees the 413
                    if length <= DRAIN_LIMIT and "expect" not in headers:
                        await _drain(receive, deadline)
                    await _reply(
                        send,
                        413,
                        _errors(f"request body is {length:,} bytes; the limit is {MAX_REQUEST_BYTES:,}"),
                        {"Connection": "close"},
                    )
                    return 413
                body = await _read_body(receive, headers, deadline)
            except _TooSlow:
                await _reply(
                    send,
                    408,
                    _errors(
                        f"the request body did not arrive within {self.read_timeout:g} s; "
                        "cdp serve does not wait for slow clients"
                    ),
                    {"Connection": "close"},
                )
                return 408
            except _Gone:
                return "- (client went away)"
            status, answer, extra = await self.handle(path, headers, body)
            await _reply(send, status, answer, extra)
            return status
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
            if self.broken is not None:  # this request's answer is out: now stop
                self._stop_listening()

    async def handle(self, path: str, headers: dict[str, str], body: _Body) -> tuple[int, Any, dict[str, str]]:
        status, answer, extra, delay = self._answer(path, headers, body)
        if delay:
            await self._server.pause(delay)
        if self.keep:
            parsed = None
            if body.text is not None:
                try:
                    parsed = json.loads(body.text)
                except Exception:  # noqa: BLE001 - a log of what came, whatever it was
                    pass
            with self._lock:
                self.requests.append(Received(path, headers, parsed, body.raw_size, status))
        if self.latency:
            await self._server.pause(self.latency)
        return status, answer, extra

    def _answer(self, path: str, headers: dict[str, str], body: _Body) -> tuple[int, Any, dict[str, str], float]:
        if self.broken is not None:
            return (*self._cannot_record(), 0.0)
        kind = path.rstrip("/").rsplit("/", 1)[-1]
        if not path.startswith("/v1/") or kind not in (*CALL_TYPES, "batch"):
            return 404, _errors(f"no such path {path}; use /v1/identify|track|page|screen|group|alias|batch"), {}, 0.0
        with self._lock:
            scripted = self.script.popleft() if self.script else None
        if scripted:
            return scripted.status, scripted.body, scripted.headers, scripted.delay
        return (*self._judge(path, kind, headers, body), 0.0)

    def _judge(self, path: str, kind: str, headers: dict[str, str], body: _Body) -> tuple[int, Any, dict[str, str]]:
        if self.fail_rate and self._random.random() < self.fail_rate:
            status = self._random.choice((500, 503, 429))
            return status, _errors("injected failure (--fail-rate)"), ({"Retry-After": "0"} if status == 429 else {})
        problem = self._check_auth(headers.get("authorization", ""))
        if problem:
            return 401, _errors(problem), {}
        if body.problem is not None:
            return body.problem[0], _errors(body.problem[1]), {}
        text = body.text
        assert text is not None
        if len(text) > MAX_REQUEST_BYTES:
            return 413, _errors(f"request body is {len(text):,} bytes; the limit is {MAX_REQUEST_BYTES:,}"), {}
        try:
            parsed = read_body(text, kind)
        except JSONTextError as exc:
            message = str(exc)
            return 400, _errors(message if message.startswith("invalid JSON") else f"invalid JSON: {message}"), {}
        strict = headers.get("x-strict-mode") == "1"
        calls, encoded, errors = self._validate(kind, parsed)
        if errors and strict:
            return 400, _errors(*errors), {}
        for problem in errors:  # permissive mode: like the API, answer 200 and drop them
            self.log(f"POST {path}: dropped {problem} (no X-Strict-Mode: 1 header, so answered 200 as the API does)")
        if calls:
            from cdpcli.models import identified_by_email

            for index, call in enumerate(calls):
                if not (call.get("userId") or call.get("anonymousId")) and identified_by_email(call):
                    where = f"batch[{index}]" if kind == "batch" else "identify"
                    self.log(
                        f"POST {path}: {where}: person identified by email {call['traits']['email']!r} (no userId or anonymousId)"
                    )
            if not self._record(calls, encoded, len(text)):
                return self._cannot_record()
        return 200, {}, {}

    def _cannot_record(self) -> tuple[int, Any, dict[str, str]]:
        # 503, retryable: the calls were not recorded, and the client may send them again elsewhere
        return (
            503,
            _errors(f"cdp serve cannot record calls: {self.broken_reason()}; it is stopping"),
            {"Connection": "close"},
        )

    def broken_reason(self) -> str:
        """Why `out` cannot be written, for the 503 answers and serve's last words."""
        exc = self.broken
        if isinstance(exc, BrokenPipeError):
            return "its output was closed by the reader"
        return f"writing its output failed ({_strerror(exc)})"

    def _check_auth(self, value: str) -> str | None:
        scheme, _, credential = value.partition(" ")
        if scheme.lower() == "basic":
            try:
                key, _, _ = base64.b64decode(credential, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return "unauthorized: malformed Basic credentials"
        elif scheme.lower() == "bearer":
            key = credential.strip()
        else:
            return "unauthorized: send Authorization: Basic base64(<api key>:)"
        if not key:
            return "unauthorized: empty API key"
        if self.api_key is not None and key != self.api_key:
            return "unauthorized: wrong API key"
        return None

    def _validate(self, kind: str, body: Any) -> tuple[list[dict[str, Any]], list[bytes | None], list[str]]:
        """The calls to record, each one's compact JSON when already made (else None), and the problems."""
        from pydantic import ValidationError

        from cdpcli.models import batch_envelope, describe_errors

        if not isinstance(body, dict):
            return [], [], ["body must be a JSON object"]
        if kind != "batch":
            if body.get("type", kind) != kind:
                return [], [], [f"type {body.get('type')!r} does not match the path /v1/{kind}"]
            [problem], _ = self._check_calls([{**body, "type": kind}])
            if problem:
                return [], [], [problem]
            return [{k: v for k, v in body.items() if k != "sentAt"} | {"type": kind}], [None], []
        if not isinstance(body.get("batch"), list):
            return [], [], ["batch must be an array of calls"]
        try:
            batch_envelope().validate_python(body)
        except ValidationError as exc:
            return [], [], describe_errors(exc)
        items = body["batch"]
        if len(items) > MAX_BATCH_CALLS:
            return [], [], [f"batch has {len(items)} calls; the limit is {MAX_BATCH_CALLS}"]
        verdicts, encodings = self._check_calls(items)
        calls, encoded, errors = [], [], []
        for index, (item, problem) in enumerate(zip(items, verdicts, strict=True)):
            if problem:
                errors.append(f"batch[{index}]: {problem}")
            else:
                calls.append(item)
                encoded.append(encodings[index])
        return calls, encoded, errors

    def _check_calls(self, calls: list[Any]) -> tuple[list[str | None], list[bytes | None]]:
        """The API's verdict on each call (None when it is accepted, else the problem), and each
        accepted call's compact JSON, made for the size check and written out as it is."""
        from pydantic import ValidationError

        from cdpcli.models import adapter, describe_errors, strict_rules_hold

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
                if size > MAX_CALL_BYTES:
                    verdicts[index] = f"call is {size:,} bytes; the limit is {MAX_CALL_BYTES:,}"
                elif self.reject_when:
                    verdicts[index] = self.reject_when(call)
        return verdicts, encodings

    def _record(self, calls: list[dict[str, Any]], encoded: list[bytes | None], body_bytes: int) -> bool:
        """Keep and write out the accepted calls; False when `out` cannot be written (then none
        of them counts as accepted, and `broken` says why)."""
        data = b""
        if self.keep or self.out is not None:
            received = now_timestamp()
            if self.out is not None:
                # each call's compact JSON from the size check, receivedAt spliced in before its
                # closing brace: a json.dumps per call took 8.8 of the 18 ms a 470 KB batch cost
                tail = b',"receivedAt":"%s"}' % received.encode()
                lines = []
                for call, made in zip(calls, encoded, strict=True):
                    if made is None or "receivedAt" in call:
                        call["receivedAt"] = received
                        lines.append(to_json(call))
                    else:
                        lines.append(made[:-1] + tail)
                data = b"\n".join(lines) + b"\n"
            for call in calls:
                call["receivedAt"] = received
        with self._lock:
            if self.broken is not None:
                return False
            if data:
                try:
                    buffer = getattr(self.out, "buffer", None)
                    if buffer is not None:  # a text file or stdout: its bytes, not decoded and encoded again
                        buffer.write(data)
                        buffer.flush()
                    else:
                        self.out.write(data.decode("utf-8"))
                        self.out.flush()
                except (OSError, ValueError) as exc:  # ValueError: a closed file
                    self.broken = exc
                    return False
            self.accepted += len(calls)
            self.accepted_bytes += body_bytes
            if self.keep:
                self.calls.extend(calls)
        return True


def read_body(text: bytes, kind: str) -> Any:
    """A request body as the API's strict JSON parser reads it (cdpcli.jsontext's rules), or
    JSONTextError: no NaN or Infinity, no number that overflows a double, no lone surrogate, no
    call nested deeper than jsontext.MAX_DEPTH levels (counted from the call: a /batch body's
    calls sit 2 levels down).

    Fast path: pydantic-core's reader refuses NaN, Infinity, lone surrogates, invalid UTF-8 and
    nesting past 201 levels by itself, and is faster than json.loads (2.7 against 3.6 ms for a
    470 KB batch); only overflowing numbers need a look at the bytes (`jsontext.may_overflow`, ~1 ms).
    Whatever it refuses or doubts goes to the exact reader, which says what is wrong."""
    try:
        body = from_json(text, allow_inf_nan=False)
    except ValueError:
        return _read_exactly(text, kind)
    if may_overflow(text):
        return _read_exactly(text, kind)
    return body


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


def _strerror(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _errors(*messages: str) -> dict[str, Any]:
    return {"meta": {"errors": list(messages)}}


# -- the HTTP side: body reading, answers, and uvicorn set up for a receiver --


class _Inflater:
    """A gzip body inflated as it arrives, and only up to `limit` bytes: past that it stops
    (`over`), so a body that inflates to a gigabyte costs about the limit. Members follow one
    another as gzip.decompress reads them; anything else after one is not gzip (`bad`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.over = False
        self.bad = False
        self._fed = False
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> None:
        if self.over or self.bad or not data:
            return
        self._fed = True
        try:
            while data:
                if self._member.eof:  # the next member starts here
                    self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
                # never more than one byte over the limit: that byte says it is over
                out = self._member.decompress(data, self.limit + 1 - self.size)
                self.size += len(out)
                if self.size > self.limit:
                    self.over, self.parts = True, []
                    return
                self.parts.append(out)
                data = self._member.unused_data if self._member.eof else self._member.unconsumed_tail
        except zlib.error:
            self.bad, self.parts = True, []

    def result(self) -> bytes | None:
        """The inflated body; None when it was not gzip (or ended early) or went over."""
        if self.over or self.bad or (self._fed and not self._member.eof):
            return None
        return b"".join(self.parts)


async def _next_chunk(receive: Callable[..., Any], deadline: float) -> tuple[bytes, bool]:
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise _TooSlow
    try:
        message = await asyncio.wait_for(receive(), left)
    except asyncio.TimeoutError:
        raise _TooSlow from None
    if message["type"] == "http.disconnect":
        raise _Gone
    return message.get("body", b""), message.get("more_body", False)


async def _drain(receive: Callable[..., Any], deadline: float, budget: int = DRAIN_LIMIT) -> None:
    """Read a body and drop it, up to `budget` bytes."""
    more, seen = True, 0
    while more and seen <= budget:
        chunk, more = await _next_chunk(receive, deadline)
        seen += len(chunk)


async def _read_body(receive: Callable[..., Any], headers: dict[str, str], deadline: float) -> _Body:
    """The body, by `deadline`; never more than MAX_RAW_BYTES of it kept (one sent in chunks,
    with no length declared, is cut there), inflated as it comes when it is gzip."""
    inflater = _Inflater(MAX_REQUEST_BYTES) if headers.get("content-encoding", "").lower() == "gzip" else None
    parts: list[bytes] = []
    size, more = 0, True
    while more:
        chunk, more = await _next_chunk(receive, deadline)
        size += len(chunk)
        if size > MAX_RAW_BYTES:
            if more:
                await _drain(receive, deadline)
            return _Body(
                size, None, (413, f"request body is over {MAX_RAW_BYTES:,} bytes; the limit is {MAX_REQUEST_BYTES:,}")
            )
        if inflater is not None:
            inflater.feed(chunk)
        elif chunk:
            parts.append(chunk)
    if inflater is None:
        return _Body(size, parts[0] if len(parts) == 1 else b"".join(parts))
    text = inflater.result()
    if inflater.over:
        return _Body(
            size,
            None,
            (413, f"request body inflates to over {MAX_REQUEST_BYTES:,} bytes; the limit is {MAX_REQUEST_BYTES:,}"),
        )
    if text is None:
        return _Body(size, None, (400, "body is not valid gzip"))
    return _Body(size, text)


def _response_head(status: int, extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in extra.items()]


async def _reply(send: Callable[..., Any], status: int, body: Any, extra: dict[str, str]) -> None:
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(data)),
        *_response_head(status, extra),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _reply_if_possible(send: Callable[..., Any], status: int, body: Any, extra: dict[str, str]) -> None:
    try:
        await _reply(send, status, body, extra)
    except Exception:  # noqa: BLE001 - the answer had started: the connection closes instead
        pass


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host` (an IPv4 or IPv6 address or a name; IPv4 first when a
    name has both, as before) and `port`."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


_classes: tuple[type, type] | None = None


def _server_for(receiver: Receiver) -> Any:
    """A uvicorn Server that runs `receiver` as its application on the receiver's socket."""
    import uvicorn

    server_class, protocol_class = _uvicorn_classes()
    config = uvicorn.Config(
        receiver,
        http=protocol_class,
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
        backlog=BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,  # type: ignore[arg-type]
    )
    config.load()
    config.cdp_receiver = receiver  # type: ignore[attr-defined]  (the protocol's limits)
    return server_class(config)


def _uvicorn_classes() -> tuple[type, type]:
    """The uvicorn Server and HTTP protocol, adapted (made on first use: uvicorn is imported only
    by code that starts a receiver)."""
    global _classes
    if _classes is not None:
        return _classes
    import http

    import httptools
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Server(uvicorn.Server):  # type: ignore[misc]
        """uvicorn's Server, woken by an event rather than a 0.1 s tick (a receiver starts and
        stops in a millisecond: the test suite makes hundreds), with no signal handlers of its own
        (the receiver sets its own in the main thread) and a stop that ends delays at once."""

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.ready = threading.Event()
            self._loop: asyncio.AbstractEventLoop | None = None
            self._wake = asyncio.Event()
            self._stopping = asyncio.Event()

        def capture_signals(self) -> Any:
            import contextlib

            return contextlib.nullcontext()

        async def startup(self, sockets: Any = None) -> None:
            self._loop = asyncio.get_running_loop()
            self.server_state.default_headers = list(self.config.encoded_headers)
            try:
                await super().startup(sockets=sockets)
            finally:
                self.ready.set()

        def request_exit(self) -> None:
            """From any thread: stop serving."""
            self.should_exit = True
            loop = self._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._wake.set)
                except RuntimeError:  # the loop is closed: it has stopped already
                    pass

        async def main_loop(self) -> None:
            while not self.should_exit:
                await self._wake.wait()
                self._wake.clear()

        @property
        def stopping(self) -> bool:
            return self._stopping.is_set()

        async def pause(self, seconds: float) -> None:
            """asyncio.sleep, cut short by a stop."""
            if self._stopping.is_set():
                return
            try:
                await asyncio.wait_for(self._stopping.wait(), seconds)
            except asyncio.TimeoutError:
                pass

        async def shutdown(self, sockets: Any = None) -> None:
            self._stopping.set()
            # stop accepting, and let the connections already accepted be made before the
            # listener closes: asyncio (3.11) fails to make one whose server has closed and
            # leaves its socket open, its client waiting, until a garbage collection
            loop = asyncio.get_running_loop()
            for server in self.servers:
                for sock in server.sockets:
                    loop.remove_reader(sock.fileno())
            for _ in range(3):
                await asyncio.sleep(0)  # they see the stop and close (Protocol.connection_made)
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            for connection in list(self.server_state.connections):
                connection.shutdown()  # idle ones close now, busy ones after their answer
            tasks = set(self.server_state.tasks)
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1)
            for connection in list(self.server_state.connections):
                connection.transport.close()
            await asyncio.sleep(0)  # their connection_lost callbacks

    class Protocol(HttpToolsProtocol):  # type: ignore[misc]
        """uvicorn's httptools protocol with a receiver's limits: the request line and headers
        within READ_TIMEOUT and MAX_HEAD_BYTES, at most MAX_CONNECTIONS connections, and JSON
        answers to what uvicorn would answer in plain text (a malformed request)."""

        def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self.receiver: Receiver = config.cdp_receiver
            self._head_clock: asyncio.TimerHandle | None = None
            self._in_head = True  # the bytes coming are a request line and headers
            self._head_bytes = 0
            self._over_limit = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if self.receiver._server.stopping:  # accepted just as the listener closed
                transport.close()
                return
            # over the limit: its request is read (so that the client is not reset before it
            # sees the answer) and answered 503 (on_headers_complete)
            self._over_limit = len(self.connections) > self.receiver.max_connections
            self._start_head_clock()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_clock()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            if self._in_head:
                room = MAX_HEAD_BYTES - self._head_bytes
                if len(data) > room:
                    # feed what may still be head; if the head has not ended there, it is too long
                    if room > 0:
                        self._head_bytes += room
                        if not self._feed(data[:room]):
                            return
                    if self._in_head:
                        if len(getattr(self, "url", b"")) > MAX_HEAD_BYTES // 2:  # the request line is most of it
                            self._refuse(414, f"the request line is over {MAX_HEAD_BYTES:,} bytes")
                        else:
                            self._refuse(431, f"the request headers are over {MAX_HEAD_BYTES:,} bytes")
                        return
                    data = data[room:]
                else:
                    self._head_bytes += len(data)
            self._feed(data)

        def _feed(self, data: bytes) -> bool:
            if self.transport.is_closing():
                return False
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._refuse(400, "cdp serve does not switch protocols: send the request without Connection: upgrade")
                return False
            except httptools.HttpParserInvalidMethodError as exc:
                if _REQUEST_LINE.match(data):  # BREW, or another method the parser does not know
                    self._refuse(405, "the Data Pipelines API takes POST only", {"Allow": "POST"})
                else:  # not HTTP at all (TLS to this plain HTTP port, garbage)
                    self._refuse(400, f"malformed HTTP request: {_parser_problem(exc)}")
                return False
            except httptools.HttpParserError as exc:
                self._refuse(400, f"malformed HTTP request: {_parser_problem(exc)}")
                return False
            return True

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._start_head_clock()

        def on_headers_complete(self) -> None:
            self._stop_head_clock()
            self._in_head = False
            if self._over_limit:
                self._refuse(
                    503,
                    f"cdp serve has {self.receiver.max_connections:,} connections open, its limit; try again shortly",
                    {"Retry-After": "1"},
                )
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if self.cycle is not None and not self.transport.is_closing():
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self.cycle is not None and not self.transport.is_closing():
                super().on_message_complete()
            self._in_head, self._head_bytes = True, 0

        def _start_head_clock(self) -> None:
            if self._head_clock is None:
                self._head_clock = self.loop.call_later(self.receiver.read_timeout, self._head_too_slow)

        def _stop_head_clock(self) -> None:
            if self._head_clock is not None:
                self._head_clock.cancel()
                self._head_clock = None

        def _head_too_slow(self) -> None:
            self._head_clock = None
            if self.transport.is_closing():
                return
            if self._head_bytes:
                self._refuse(
                    408,
                    f"the request line and headers did not arrive within {self.receiver.read_timeout:g} s; "
                    "cdp serve does not wait for slow clients",
                )
            else:  # connected and said nothing: closed without a word
                self.transport.close()

        def _refuse(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
            """Answer `status` with a JSON error and close, from the protocol (no request to answer)."""
            self._stop_head_clock()
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                if cycle.response_started:  # an answer is half out: all we can do is close
                    self.transport.close()
                    return
                cycle.disconnected = True  # its application stops waiting, and sends nothing
                cycle.message_event.set()
            data = json.dumps(_errors(message)).encode()
            head = [
                b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode()),
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(data),
                b"connection: close\r\n",
            ]
            head += [b"%s: %s\r\n" % pair for pair in _response_head(status, extra or {})]
            self.transport.write(b"".join(head) + b"\r\n" + data)
            self.transport.close()
            who = self.client[0] if self.client else "-"
            self.receiver.log(f"{who} {status} {message}")

    _classes = (Server, Protocol)
    return _classes


# a request line, whatever its method: `BREW /v1/track HTTP/1.1`
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+ HTTP/\d")


def _parser_problem(exc: BaseException) -> str:
    """What the HTTP parser found wrong, in words (its own, or ours when a callback refused)."""
    import httptools

    if isinstance(exc, httptools.HttpParserCallbackError):
        return (
            "the request target is not a valid path" if exc.__context__ is not None else "the request could not be read"
        )
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text[:1].lower() + text[1:]


def run_server(
    *,
    host: str,
    port: int,
    api_key: str | None,
    out_path: str | None,
    fail_rate: float,
    latency_ms: int,
    seed: int | None = None,
) -> None:
    """Serve until interrupted, or until the output can no longer be written. The banner and the
    log go to stderr, so stdout stays pure NDJSON.

    When the output fails, the request whose calls could not be recorded gets a 503 (never a
    200), so do the requests after it; serve stops listening, lets the requests in flight get
    their answer, and exits like a filter whose reader went away: 0 when the reader closed it
    (`cdp serve | head -1`, as every cdp command treats a closed stdout), 1 with Error/Hint for
    any other failure (a full disk, an I/O error)."""
    import errno

    from cdpcli.errors import CdpError, UsageError

    _raise_open_files_limit()
    try:
        receiver = Receiver(
            host,
            port,
            api_key=api_key,
            fail_rate=fail_rate,
            latency_ms=latency_ms,
            keep=False,
            seed=seed,
            collect_every=SERVE_COLLECT_EVERY,
            log=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            hint = "another program listens there: pick another --port (0 picks a free one)"
        elif exc.errno == errno.EACCES:
            hint = "ports below 1024 need privileges: pick --port 1024 or above (0 picks a free one)"
        else:
            hint = "--host must be an address of this machine, such as 127.0.0.1 or ::1"
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint=hint) from None
    try:
        # opened once listening works, so that a busy port leaves no empty file behind
        out = open(out_path, "a", encoding="utf-8") if out_path else sys.stdout  # noqa: SIM115 (the server owns it)
    except OSError as exc:
        receiver.stop()
        hints = {
            errno.ENOENT: "its directory does not exist: create it first, or pick another path",
            errno.EISDIR: "--out takes a file name, not a directory",
            errno.EACCES: "you may not write there: pick a path you can write",
        }
        raise UsageError(
            f"cannot open --out {out_path!r} for appending: {exc.strerror or exc}",
            hint=hints.get(exc.errno or 0, "pick a file you can write"),
        ) from None
    receiver.out = out
    address = receiver._address[0]
    if not is_loopback(address):
        print(
            f"Warning: --host {host} listens on {address}, not a loopback address: anyone who can reach this machine "
            f"can send calls to it (plain HTTP, any non-empty key unless --api-key is given); use --host 127.0.0.1 "
            f"or ::1 to keep it to this machine",
            file=sys.stderr,
            flush=True,
        )
    print(f"cdp serve: listening on {receiver.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
        if receiver.broken is not None:
            receiver.wait_idle(5.0)  # the requests in flight get their 503 before the process ends
        if out is not sys.stdout:
            try:
                out.close()
            except (OSError, ValueError):  # the failure that stopped us, met again on the last flush
                pass
    if receiver.broken is None:
        return
    where = repr(out_path) if out_path else "stdout"
    recorded = f"{receiver.accepted:,} call{'' if receiver.accepted == 1 else 's'} recorded"
    if isinstance(receiver.broken, BrokenPipeError):
        print(
            f"cdp serve: stopped: {where} was closed by its reader ({recorded}; later requests were answered 503)",
            file=sys.stderr,
            flush=True,
        )
        return
    raise CdpError(
        f"cannot write to {where}: {_strerror(receiver.broken)}; cdp serve stopped ({recorded})",
        hint="the requests it could not record were answered 503, so clients retry them: "
        "free space or pick another --out, and start it again",
    )


def _raise_open_files_limit() -> None:
    """Each connection is a file descriptor: a soft limit of 1,024 (a common default) would turn
    clients away long before MAX_CONNECTIONS. Raised as far as the hard limit allows."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = MAX_CONNECTIONS + 256
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard)
            )
    except (ImportError, ValueError, OSError):  # no resource module (Windows), or not allowed
        pass

"""`cdp serve`: a local Data Pipelines-compatible receiver for development, CI and our tests.

Same paths, auth, strict-mode validation and size limits as the API; answers 200 `{}` and
appends every accepted call (with `receivedAt`) as NDJSON to a file or stdout. Standard
library HTTP server: no extra dependency, and one thread per connection is plenty on loopback.
"""

from __future__ import annotations

import base64
import gc
import gzip
import json
import random
import re
import socket
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, TextIO

from pydantic_core import from_json, to_json

from cdpcli.jsontext import JSONTextError
from cdpcli.jsontext import loads as strict_loads
from cdpcli.wire import CALL_TYPES, MAX_BATCH_CALLS, MAX_CALL_BYTES, MAX_REQUEST_BYTES, call_size, now_timestamp


# seconds between garbage collections while `cdp serve` runs (see Receiver._take_over_gc)
SERVE_COLLECT_EVERY = 10.0


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
        self._lock = threading.Lock()
        # seeded, --fail-rate's faults repeat run to run for a client sending one request at a
        # time (concurrent requests draw in the order they arrive)
        self._random = random.Random(seed)
        # why `out` can no longer be written (the reader closed the pipe, the disk is full):
        # from then on every request gets a 503 and the receiver stops listening
        self.broken: OSError | ValueError | None = None
        self._in_flight = 0  # POST requests being handled, so that a stop can let them finish
        self._stopping = False
        self._idle = threading.Condition(self._lock)
        self._server = _Server((host, port), _handler_for(self))
        self._server.log = self.log
        self._thread: threading.Thread | None = None
        # None leaves the process's garbage collector alone (tests, a receiver inside another
        # program); `cdp serve` owns its process and collects every SERVE_COLLECT_EVERY s
        self.collect_every = collect_every
        self._stopped = threading.Event()
        self._collector: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}/v1"

    def start(self) -> Receiver:
        self._take_over_gc()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="cdp-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._take_over_gc()
        try:
            self._server.serve_forever()
        finally:
            self._give_back_gc()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
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
        """Stop accepting connections, from a thread of its own: shutdown() waits for the serving
        loop, and the listening socket is closed so that new clients are refused, not left
        waiting in the backlog."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True

        def stop() -> None:
            self._server.shutdown()
            self._server.server_close()

        threading.Thread(target=stop, name="cdp-serve-stop", daemon=True).start()

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

    # -- request handling (called from handler threads) --

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        status, body, extra = self._answer(path, headers, raw)
        if self.keep:
            parsed = None
            try:
                parsed = json.loads(_decoded(headers, raw))
            except Exception:  # noqa: BLE001 - a log of what came, whatever it was
                pass
            with self._lock:
                self.requests.append(Received(path, headers, parsed, len(raw), status))
        return status, body, extra

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        if self.broken is not None:
            return self._cannot_record()
        kind = path.rstrip("/").rsplit("/", 1)[-1]
        if not path.startswith("/v1/") or kind not in (*CALL_TYPES, "batch"):
            return 404, _errors(f"no such path {path}; use /v1/identify|track|page|screen|group|alias|batch"), {}
        with self._lock:
            scripted = self.script.popleft() if self.script else None
        if scripted:
            if scripted.delay:
                time.sleep(scripted.delay)
            return scripted.status, scripted.body, scripted.headers
        if self.fail_rate and self._random.random() < self.fail_rate:
            status = self._random.choice((500, 503, 429))
            return status, _errors("injected failure (--fail-rate)"), ({"Retry-After": "0"} if status == 429 else {})
        problem = self._check_auth(headers.get("authorization", ""))
        if problem:
            return 401, _errors(problem), {}
        try:
            text = _decoded(headers, raw)
        except (OSError, EOFError, zlib.error):
            return 400, _errors("body is not valid gzip"), {}
        if len(text) > MAX_REQUEST_BYTES:
            return 413, _errors(f"request body is {len(text):,} bytes; the limit is {MAX_REQUEST_BYTES:,}"), {}
        try:
            body = read_body(text, kind)
        except JSONTextError as exc:
            message = str(exc)
            return 400, _errors(message if message.startswith("invalid JSON") else f"invalid JSON: {message}"), {}
        strict = headers.get("x-strict-mode") == "1"
        calls, encoded, errors = self._validate(kind, body)
        if errors and strict:
            return 400, _errors(*errors), {}
        for problem in errors:  # permissive mode: like the API, answer 200 and drop them
            self.log(f"POST {path}: dropped {problem} (no X-Strict-Mode: 1 header, so answered 200 as the API does)")
        if calls:
            from cdpcli.models import identified_by_email

            for index, call in enumerate(calls):
                if not (call.get("userId") or call.get("anonymousId")) and identified_by_email(call):
                    where = f"batch[{index}]" if kind == "batch" else "identify"
                    self.log(f"POST {path}: {where}: person identified by email {call['traits']['email']!r} (no userId or anonymousId)")
            if not self._record(calls, encoded, len(text)):
                return self._cannot_record()
        return 200, {}, {}

    def _cannot_record(self) -> tuple[int, Any, dict[str, str]]:
        # 503, retryable: the calls were not recorded, and the client may send them again elsewhere
        return 503, _errors(f"cdp serve cannot record calls: {self.broken_reason()}; it is stopping"), {"Connection": "close"}

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
        for index, (item, problem) in enumerate(zip(items, verdicts)):
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
                for call, made in zip(calls, encoded):
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
    470 KB batch); only overflowing numbers need a look at the bytes (`_may_overflow`, ~1 ms).
    Whatever it refuses or doubts goes to the exact reader, which says what is wrong."""
    try:
        body = from_json(text, allow_inf_nan=False)
    except ValueError:
        return _read_exactly(text, kind)
    if _may_overflow(text):
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


# After this translation a JSON number is a run of "0"s (its sign and point aside), its exponent
# mark "e" and its end ",": an overflowing number has an exponent of 3 or more digits after a
# digit ("1e400", "2E+308": a 2-digit exponent needs 210+ mantissa digits to overflow) or a run
# of 200+ digits. "+" is deleted: only positive exponents overflow.
_NUMBER_SHAPE = bytes.maketrans(b"123456789E}] \t\r\n", b"000000000e,,,,,,")
_BIG_EXPONENT = re.compile(rb"e0{3,}(?:,|\Z)")
_LONG_RUN = b"0" * 200


def _may_overflow(text: bytes) -> bool:
    """False when no number in `text` can overflow a double; True sends it to the exact reader.

    A regular expression over the raw bytes took 6-12 ms for a 470 KB body (':' and digits are
    everywhere); a translation and finds take ~1 ms. Hex ids ("…3e451…") are the usual false
    candidates: each is dismissed by one match at its "e"."""
    shape = text.translate(_NUMBER_SHAPE, b"+")
    if shape.find(_LONG_RUN) >= 0:
        return True
    at = shape.find(b"e000")
    while at >= 0:
        if at and shape[at - 1] == 0x30 and _BIG_EXPONENT.match(shape, at):
            return True
        at = shape.find(b"e000", at + 4)
    return False


def _strerror(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _decoded(headers: dict[str, str], raw: bytes) -> bytes:
    if headers.get("content-encoding", "").lower() == "gzip":
        return gzip.decompress(raw)
    return raw


def _errors(*messages: str) -> dict[str, Any]:
    return {"meta": {"errors": list(messages)}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    log: Callable[[str], None]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (timeout, Ctrl-C) is no reason for a traceback on our stderr
        exc = sys.exc_info()[1]
        self.log(f"{client_address[0]}:{client_address[1]}: {type(exc).__name__}: {exc}")


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the API
        server_version = "cdp-serve"

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK stall every small request by ~40 ms
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            with receiver._idle:
                receiver._in_flight += 1
            try:
                self._post()
            finally:
                with receiver._idle:
                    receiver._in_flight -= 1
                    receiver._idle.notify_all()
                if receiver.broken is not None:  # this request's answer is out: now stop
                    receiver._stop_listening()

        def _post(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self._reply(400, _errors("bad Content-Length"), {})
                return
            # bodies far over the limit (gzip may shrink a valid one 10x+) are refused without
            # being kept; read (up to 64 MB) so the client gets the 413 rather than a broken pipe
            if length > 20 * MAX_REQUEST_BYTES:
                left = length if length <= 64 << 20 else 0
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:  # the client gave up
                        break
                    left -= len(chunk)
                self.close_connection = True
                self._reply(413, _errors(f"request body is {length:,} bytes; the limit is {MAX_REQUEST_BYTES:,}"), {})
                return
            raw = self.rfile.read(length)
            status, body, extra = receiver.handle(self.path, headers, raw)
            if receiver.latency:
                time.sleep(receiver.latency)
            self._reply(status, body, extra)

        def __getattr__(self, name: str) -> Any:
            # every method but POST (GET, TRACE, or one http.server has never heard of) gets a
            # JSON 405, not http.server's HTML 501; a body it may carry is left unread, so close
            if name.startswith("do_"):
                return self._not_allowed
            raise AttributeError(name)

        def _not_allowed(self) -> None:
            self.close_connection = True
            self._reply(405, _errors("the Data Pipelines API takes POST only"), {"Allow": "POST"})

        def _reply(self, status: int, body: Any, extra: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            receiver.log(f"{self.address_string()} {format % args}")

    return Handler


def run_server(*, host: str, port: int, api_key: str | None, out_path: str | None, fail_rate: float, latency_ms: int,
               seed: int | None = None) -> None:
    """Serve until interrupted, or until the output can no longer be written. The banner and the
    log go to stderr, so stdout stays pure NDJSON.

    When the output fails, the request whose calls could not be recorded gets a 503 (never a
    200), so do the requests after it; serve stops listening, lets the requests in flight get
    their answer, and exits like a filter whose reader went away: 0 when the reader closed it
    (`cdp serve | head -1`, as every cdp command treats a closed stdout), 1 with Error/Hint for
    any other failure (a full disk, an I/O error)."""
    import errno

    from cdpcli.errors import CdpError, UsageError

    try:
        receiver = Receiver(host, port, api_key=api_key, fail_rate=fail_rate, latency_ms=latency_ms, keep=False, seed=seed,
                            collect_every=SERVE_COLLECT_EVERY, log=lambda text: print(text, file=sys.stderr, flush=True))
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
        out = open(out_path, "a", encoding="utf-8") if out_path else sys.stdout
    except OSError as exc:
        receiver._server.server_close()
        hints = {errno.ENOENT: "its directory does not exist: create it first, or pick another path",
                 errno.EISDIR: "--out takes a file name, not a directory",
                 errno.EACCES: "you may not write there: pick a path you can write"}
        raise UsageError(f"cannot open --out {out_path!r} for appending: {exc.strerror or exc}",
                         hint=hints.get(exc.errno or 0, "pick a file you can write")) from None
    receiver.out = out
    print(f"cdp serve: listening on {receiver.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver._server.server_close()
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
        print(f"cdp serve: stopped: {where} was closed by its reader ({recorded}; later requests were answered 503)",
              file=sys.stderr, flush=True)
        return
    raise CdpError(f"cannot write to {where}: {_strerror(receiver.broken)}; cdp serve stopped ({recorded})",
                   hint="the requests it could not record were answered 503, so clients retry them: "
                        "free space or pick another --out, and start it again")

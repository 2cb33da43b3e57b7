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
import socket
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, TextIO

from pydantic_core import to_json

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
        self._random = random.Random()
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
            body = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            return 400, _errors(f"invalid JSON: {exc}"), {}
        strict = headers.get("x-strict-mode") == "1"
        calls, errors = self._validate(kind, body)
        if errors and strict:
            return 400, _errors(*errors), {}
        for problem in errors:  # permissive mode: like the API, answer 200 and drop them
            self.log(f"dropped (not strict): {problem}")
        self._record(calls, len(text))
        return 200, {}, {}

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

    def _validate(self, kind: str, body: Any) -> tuple[list[dict[str, Any]], list[str]]:
        from pydantic import ValidationError

        from cdpcli.models import batch_envelope, describe_errors

        if not isinstance(body, dict):
            return [], ["body must be a JSON object"]
        if kind != "batch":
            if body.get("type", kind) != kind:
                return [], [f"type {body.get('type')!r} does not match the path /v1/{kind}"]
            [problem] = self._check_calls([{**body, "type": kind}])
            if problem:
                return [], [problem]
            return [{k: v for k, v in body.items() if k != "sentAt"} | {"type": kind}], []
        if not isinstance(body.get("batch"), list):
            return [], ["batch must be an array of calls"]
        try:
            batch_envelope().validate_python(body)
        except ValidationError as exc:
            return [], describe_errors(exc)
        items = body["batch"]
        if len(items) > MAX_BATCH_CALLS:
            return [], [f"batch has {len(items)} calls; the limit is {MAX_BATCH_CALLS}"]
        calls, errors = [], []
        for index, (item, problem) in enumerate(zip(items, self._check_calls(items))):
            if problem:
                errors.append(f"batch[{index}]: {problem}")
            else:
                calls.append(item)
        return calls, errors

    def _check_calls(self, calls: list[Any]) -> list[str | None]:
        """The API's verdict on each call: None when it is accepted, else the problem."""
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
        for index, call in enumerate(calls):
            if verdicts[index] is None:
                verdicts[index] = _size_problem(call) or (self.reject_when(call) if self.reject_when else None)
        return verdicts

    def _record(self, calls: list[dict[str, Any]], body_bytes: int) -> None:
        if not calls:
            return
        lines = ""
        if self.keep or self.out is not None:
            received = now_timestamp()
            for call in calls:
                call["receivedAt"] = received
            if self.out is not None:
                lines = "\n".join(json.dumps(call, ensure_ascii=False, separators=(",", ":")) for call in calls) + "\n"
        with self._lock:
            self.accepted += len(calls)
            self.accepted_bytes += body_bytes
            if self.keep:
                self.calls.extend(calls)
            if lines:
                self.out.write(lines)
                self.out.flush()


def _size_problem(call: dict[str, Any]) -> str | None:
    encoded = to_json(call)  # compact, like call_size, and ~2x faster; exact for ASCII
    size = len(encoded) if encoded.isascii() else call_size(call)
    if size > MAX_CALL_BYTES:
        return f"call is {size:,} bytes; the limit is {MAX_CALL_BYTES:,}"
    return None


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


def run_server(*, host: str, port: int, api_key: str | None, out_path: str | None, fail_rate: float, latency_ms: int) -> None:
    """Serve until interrupted; the banner goes to stderr so stdout stays pure NDJSON."""
    out = open(out_path, "a", encoding="utf-8") if out_path else sys.stdout
    try:
        receiver = Receiver(host, port, api_key=api_key, out=out, fail_rate=fail_rate, latency_ms=latency_ms, keep=False,
                            collect_every=SERVE_COLLECT_EVERY, log=lambda text: print(text, file=sys.stderr, flush=True))
    except OSError as exc:
        from cdpcli.errors import UsageError

        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="pick another --port") from None
    print(f"cdp serve: listening on {receiver.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver._server.server_close()
        if out is not sys.stdout:
            out.close()

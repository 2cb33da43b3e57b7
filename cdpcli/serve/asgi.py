"""The ASGI side of a receiver: each request's Host checked (hosts.py: 421 for a name it does
not answer to), its path and method checked (404 for a path the API does not have, 405), its body
read within the limits and the deadline (gzip inflated as it arrives, and only up to the limit),
handed to the receiver for a verdict, the answer written as strict JSON, and one log line (for a
refused request, with the first error its answer gives).

A body is refused by its declared length (413) before any of it is kept, one sent in chunks with
no length declared is cut at MAX_RAW_BYTES, and a client slower than the read timeout is answered
408: neither a big body nor a slow client accumulates.
"""

from __future__ import annotations

import asyncio
import errno
import json
import threading
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from cdpcli.redaction import redact
from cdpcli.serve.hosts import HostCheck
from cdpcli.serve.judge import Body, Verdict, call_kind, errors, not_found
from cdpcli.serve.limits import DRAIN_LIMIT, MAX_RAW_BYTES
from cdpcli.wire import MAX_REQUEST_BYTES

Handle = Callable[[str, dict[str, str], Body], Awaitable[Verdict]]


class Application:
    """The ASGI application uvicorn runs for each request: `handle(path, headers, body)` gives
    the verdict on a POST; `after_post()` is called once each POST is answered (or given up)."""

    def __init__(
        self,
        handle: Handle,
        *,
        log: Callable[[str], None],
        read_timeout: float,
        after_post: Callable[[], None],
        hosts: HostCheck | None = None,
    ) -> None:
        self.handle = handle
        self.hosts = hosts or HostCheck("127.0.0.1")
        self.log = log
        self.read_timeout = read_timeout
        self.after_post = after_post
        # the receiver's own routes, /_cdp/… (control.Control), set by the receiver
        self.control: Callable[..., Awaitable[tuple[int, str | None]]] | None = None
        self._in_flight = 0  # POST requests being handled, so that a stop can let them finish
        self._idle = threading.Condition()

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

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        client = scope.get("client")
        who = client[0] if client else "-"
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        status: int | str = "-"
        problem: str | None = None
        try:
            status, problem = await self._route(scope, receive, send, path)
        except asyncio.CancelledError:  # a stop that could not wait any longer
            status = 503
            await _reply_if_possible(send, 503, errors("cdp serve is stopping"), {"Connection": "close"})
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):  # out of descriptors (overload.py): retryable
                status = 503
                await _reply_if_possible(
                    send, 503, errors(f"cdp serve is overloaded: {exc.strerror}"), {"Retry-After": "1"}
                )
            else:
                status = await self._failed(exc, who, client, send)
        except Exception as exc:  # noqa: BLE001 - one request's failure is no reason to stop serving
            status = await self._failed(exc, who, client, send)
        line = f'{who} "{scope["method"]} {path} HTTP/{scope["http_version"]}" {status} -'
        self.log(line if problem is None else f"{line} {log_text(problem)}")

    async def _failed(self, exc: Exception, who: str, client: Any, send: Callable[..., Any]) -> int:
        """A request whose handling failed: one log line (no traceback) and a 500 JSON answer."""
        self.log(f"{who}:{client[1] if client else '-'}: {type(exc).__name__}: {exc}")
        await _reply_if_possible(
            send,
            500,
            errors(f"cdp serve could not handle this request ({type(exc).__name__})"),
            {"Connection": "close"},
        )
        return 500

    async def _route(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any], path: str
    ) -> tuple[int | str, str | None]:
        """Answer the request: its status and, when refused, the first error its answer gives
        (for the log line: an SDK may crash on the error body and never show it)."""
        host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), None)
        if not self.hosts.allows(host):
            assert host is not None
            return await refuse(send, 421, self.hosts.refusal(host), {"Connection": "close"})
        route = scope["path"]
        if self.control is not None and (route.startswith("/_cdp") or route == "/favicon.ico" or wants_page(scope)):
            return await self.control(scope, receive, send)
        if scope["method"] == "POST":
            return await self._post(scope, receive, send, path)
        if route.startswith("/v1/") and call_kind(route) is None:  # no such path, whatever the method
            verdict = not_found(route, host)
            await reply(send, 404, verdict.answer, {"Connection": "close"})
            return 404, first_error(verdict.answer)
        # every method but POST (GET, TRACE, or one nobody has heard of); a body it may carry is
        # left unread, so the connection closes after the answer
        return await refuse(
            send, 405, "the Data Pipelines API takes POST only", {"Allow": "POST", "Connection": "close"}
        )

    async def _post(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any], path: str
    ) -> tuple[int | str, str | None]:
        with self._idle:
            self._in_flight += 1
        try:
            return await self._answer_post(scope, receive, send, path)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
            self.after_post()

    async def _answer_post(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any], path: str
    ) -> tuple[int | str, str | None]:
        """Read the body, have it judged, answer: the status and the first error (for the log line)."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        deadline = asyncio.get_running_loop().time() + self.read_timeout
        try:
            body = await _read_body(receive, headers, deadline)
        except _TooBig as exc:
            status, message = 413, f"request body is {exc.length:,} bytes; the limit is {MAX_REQUEST_BYTES:,}"
        except _TooSlow:
            status, message = (
                408,
                f"the request body did not arrive within {self.read_timeout:g} s; "
                "cdp serve does not wait for slow clients",
            )
        except _Gone:
            return "- (client went away)", None
        else:
            verdict = await self.handle(path, headers, body)
            await reply(send, verdict.status, verdict.answer, verdict.headers)
            return verdict.status, first_error(verdict.answer) if verdict.status >= 400 else None
        return await refuse(send, status, message, {"Connection": "close"})


LOG_ERROR_CHARS = 300  # of a refused request's first error on its log line: the 404 for /v1/v1 is ~290


def first_error(answer: Any) -> str | None:
    """The first message of an error answer (`{"meta": {"errors": [...]}}`), None without one."""
    try:
        return str(answer["meta"]["errors"][0])
    except (TypeError, KeyError, IndexError):
        return None


def log_text(message: str) -> str:
    """An error for a log line: one line (control characters escaped), redacted, at most LOG_ERROR_CHARS."""
    text = redact(message)
    if not text.isprintable():
        text = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
    return text if len(text) <= LOG_ERROR_CHARS else text[: LOG_ERROR_CHARS - 1] + "…"


def wants_page(scope: dict[str, Any]) -> bool:
    """A browser asking for `/`: it gets the live view."""
    if scope["method"] != "GET" or scope["path"] != "/":
        return False
    accept = next((value for name, value in scope["headers"] if name == b"accept"), b"")
    return b"text/html" in accept


class _TooSlow(Exception):
    """The body did not arrive in time."""


class _Gone(Exception):
    """The client closed the connection before its body was in."""


class _TooBig(Exception):
    """The body declared a length over MAX_RAW_BYTES: refused before any of it is kept."""

    def __init__(self, length: int) -> None:
        self.length = length


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


async def _read_body(receive: Callable[..., Any], headers: dict[str, str], deadline: float) -> Body:
    """The body, by `deadline`; never more than MAX_RAW_BYTES of it kept (one declared longer is
    refused at once, _TooBig; one sent in chunks, with no length declared, is cut there), inflated
    as it comes when it is gzip."""
    declared = headers.get("content-length", "")
    length = int(declared) if declared.isdigit() else None  # the parser has refused any other
    if length is not None and length > MAX_RAW_BYTES:
        # never kept, read (and dropped) only when small enough, so that a client busy sending
        # it sees the 413
        if length <= DRAIN_LIMIT and "expect" not in headers:
            await _drain(receive, deadline)
        raise _TooBig(length)
    inflater = _Inflater(MAX_REQUEST_BYTES) if headers.get("content-encoding", "").lower() == "gzip" else None
    parts: list[bytes] = []
    size, more = 0, True
    while more:
        chunk, more = await _next_chunk(receive, deadline)
        size += len(chunk)
        if size > MAX_RAW_BYTES:
            if more:
                await _drain(receive, deadline)
            return Body(
                size, None, (413, f"request body is over {MAX_RAW_BYTES:,} bytes; the limit is {MAX_REQUEST_BYTES:,}")
            )
        if inflater is not None:
            inflater.feed(chunk)
        elif chunk:
            parts.append(chunk)
    if inflater is None:
        return Body(size, parts[0] if len(parts) == 1 else b"".join(parts))
    text = inflater.result()
    if inflater.over:
        return Body(
            size,
            None,
            (413, f"request body inflates to over {MAX_REQUEST_BYTES:,} bytes; the limit is {MAX_REQUEST_BYTES:,}"),
        )
    if text is None:
        return Body(size, None, (400, "body is not valid gzip"))
    return Body(size, text)


def response_head(extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Extra response headers as the wire has them (lowercase names)."""
    return [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in extra.items()]


def json_bytes(value: Any) -> bytes:
    """`value` as strict JSON (compact, ASCII): a NaN or an infinity, which JSON has no word for
    (Python's reader lets them into a stored body), is written as a string ("NaN", "Infinity")."""
    try:
        return _STRICT.encode(value).encode()
    except ValueError:
        return _STRICT.encode(_finite(value)).encode()


_STRICT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


async def refuse(
    send: Callable[..., Any], status: int, problem: str, extra: dict[str, str] | None = None
) -> tuple[int, str]:
    """Answer `status` with `problem` as the API's error body; (status, problem) for the log line."""
    await reply(send, status, errors(problem), extra or {})
    return status, problem


async def reply(send: Callable[..., Any], status: int, body: Any, extra: dict[str, str]) -> None:
    data = json_bytes(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(data)),
        *response_head(extra),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _reply_if_possible(send: Callable[..., Any], status: int, body: Any, extra: dict[str, str]) -> None:
    try:
        await reply(send, status, body, extra)
    except Exception:  # noqa: BLE001 - the answer had started: the connection closes instead
        pass

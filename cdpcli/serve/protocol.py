"""uvicorn adapted to a receiver: `Listener` (uvicorn serving an application on a socket bound at
once, from a thread of its own or from this one, stopped from any thread), its Server woken by an
event, and its httptools HTTP/1.1 protocol with a receiver's limits. Imported only when a receiver
is made (receiver.Receiver): uvicorn and httptools add ~35 ms to the rest of cdpcli.serve, which
the one-liner commands never import at all."""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import re
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cdpcli.serve.asgi import response_head
from cdpcli.serve.judge import errors
from cdpcli.serve.limits import BACKLOG, KEEP_ALIVE_TIMEOUT, MAX_HEAD_BYTES, STOP_GRACE
from cdpcli.serve.overload import Overload


class Server(uvicorn.Server):
    """uvicorn's Server, woken by an event rather than a 0.1 s tick (a receiver starts and
    stops in a millisecond: the test suite makes hundreds), with no signal handlers of its own
    (the listener sets its own in the main thread) and a stop that ends delays at once."""

    def __init__(self, config: Any, listener: Listener) -> None:
        super().__init__(config)
        self.listener = listener
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def capture_signals(self) -> Any:
        return contextlib.nullcontext()

    async def startup(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        # out of descriptors: 503 answers and a line a burst, never asyncio's tracebacks
        self._loop.set_exception_handler(self.listener.overload.handle)
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


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a receiver's limits: the request line and headers
    within the listener's read_timeout and MAX_HEAD_BYTES, at most its max_connections, and JSON
    answers to what uvicorn would answer in plain text (a malformed request)."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.listener: Listener = config.cdp_listener
        self._head_clock: asyncio.TimerHandle | None = None
        self._in_head = True  # the bytes coming are a request line and headers
        self._head_bytes = 0
        self._over_limit = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.listener.stopping:  # accepted just as the listener closed
            transport.close()
            return
        # over the limit: its request is read (so that the client is not reset before it
        # sees the answer) and answered 503 (on_headers_complete)
        self._over_limit = len(self.connections) > self.listener.max_connections
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
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope["cdp.transport"] = self.transport  # the event stream cuts a stalled reader off
        if self._over_limit:
            self._refuse(
                503,
                f"cdp serve has {self.listener.max_connections:,} connections open, its limit; try again shortly",
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
            self._head_clock = self.loop.call_later(self.listener.read_timeout, self._head_too_slow)

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
                f"the request line and headers did not arrive within {self.listener.read_timeout:g} s; "
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
        self.transport.write(_refusal(status, message, extra or {}))
        self.transport.close()
        who = self.client[0] if self.client else "-"
        self.listener.log(f"{who} {status} {message}")


def _refusal(status: int, message: str, extra: dict[str, str]) -> bytes:
    """A whole JSON error response that closes the connection."""
    data = json.dumps(errors(message)).encode()
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode()),
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(data),
        b"connection: close\r\n",
    ]
    head += [b"%s: %s\r\n" % pair for pair in response_head(extra)]
    return b"".join(head) + b"\r\n" + data


# a request line, whatever its method: `BREW /v1/track HTTP/1.1`
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+ HTTP/\d")


def _parser_problem(exc: BaseException) -> str:
    """What the HTTP parser found wrong, in words (its own, or ours when a callback refused)."""
    if isinstance(exc, httptools.HttpParserCallbackError):
        return (
            "the request target is not a valid path" if exc.__context__ is not None else "the request could not be read"
        )
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text[:1].lower() + text[1:]


class Listener:
    """uvicorn serving `app` on a socket bound at once (so that the port is known, and a busy
    one is an OSError here), from a thread of its own or from this one; stopped from any thread.
    `read_timeout`, `max_connections` and `log` are the protocol's limits and voice (protocol.py)."""

    def __init__(
        self,
        app: Callable[..., Any],
        host: str,
        port: int,
        *,
        read_timeout: float,
        max_connections: int,
        log: Callable[[str], None],
    ) -> None:
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.log = log
        self._socket = _listen(host, port)
        self.address = self._socket.getsockname()
        self.overload = Overload(self._socket, log)
        try:
            self._server = _server_for(app, self)
        except BaseException:
            self._socket.close()
            raise
        self._thread: threading.Thread | None = None
        self.interrupted = False  # stopped by Ctrl-C (SIGINT in the main thread)

    @property
    def connections(self) -> int:
        return len(self._server.server_state.connections)

    @property
    def stopping(self) -> bool:
        """A stop has begun: connections accepted now are closed at once."""
        return self._server.stopping

    @property
    def stopping_event(self) -> asyncio.Event:
        """Set when a stop begins (waits and streams end at once)."""
        return self._server._stopping

    def start(self) -> None:
        """Serve from a thread of its own (its own event loop; no signal handlers)."""
        self._thread = threading.Thread(target=self._run, name="cdp-serve", daemon=True)
        self._thread.start()
        self._server.ready.wait(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # noqa: BLE001 - a serving thread says why it ended, never a traceback
            self.log(f"cdp serve stopped: {type(exc).__name__}: {exc}")
        finally:
            self._server.ready.set()

    def serve_forever(self) -> None:
        asyncio.run(self._serve_here())

    async def _serve_here(self) -> None:
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C stops it like stop(): listening ends, requests in flight get their answer
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._interrupt)
        await self._server.serve(sockets=[self._socket])

    def _interrupt(self) -> None:
        self.interrupted = True
        self.stop_listening()

    def stop(self) -> None:
        self.stop_listening()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_GRACE + 5)
        self._socket.close()
        self.overload.close()

    def stop_listening(self) -> None:
        """Stop accepting connections (from any thread): the listening socket is closed, so that
        new clients are refused, the requests in flight get their answer, then serving ends."""
        self._server.request_exit()

    async def pause(self, seconds: float) -> None:
        """asyncio.sleep, cut short by a stop (--latency, and delays that must not hold a stop up)."""
        await self._server.pause(seconds)


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


def _server_for(app: Callable[..., Any], listener: Listener) -> Server:
    """A uvicorn Server that runs `app` with the listener's limits."""
    config = uvicorn.Config(
        app,
        http=Protocol,
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
    setattr(config, "cdp_listener", listener)  # noqa: B010 - the protocol's limits, on uvicorn's Config
    return Server(config, listener)

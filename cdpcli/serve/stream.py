"""The event stream's fan-out (`GET /_cdp/events`): each change to the store encoded once, as
Server-Sent Events, and handed to every client's bounded queue.

A client that reads slower than calls arrive (a stalled tab, a script that never reads) falls
behind: once STREAM_QUEUE changes wait for it, its queue is replaced by a last `dropped` event
and, unless it takes that at once, its connection is closed DROP_GRACE s later. So intake never
waits for a reader, and what a stalled reader holds is bounded (one chunk in its socket's buffer).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic_core import to_json

from cdpcli.serve.asgi import json_bytes
from cdpcli.serve.store import Store

STREAM_QUEUE = 256  # changes (a request's calls, a reject, a reset) a client may be behind
# the kernel's send buffer for a stream's connection: a reader that stalls is found out after
# this much (on loopback the kernel would otherwise grow it to megabytes, each byte copied in)
STREAM_SEND_BUFFER = 64 * 1024
DROP_GRACE = 2.0  # seconds a dropped client has to take its last event before it is cut off
DROPPED = (
    b'event: dropped\ndata: {"reason": "this client fell too far behind; reconnect, and read /_cdp/calls '
    b'for what it missed"}\n\n'
)


def connection_closer(transport: Any) -> Callable[[], None] | None:
    """What cuts a stream's connection off (None: nothing can); its send buffer made small."""
    if transport is None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)
        except OSError:
            pass
    return transport.close


def encode(kind: str, items: list[dict[str, Any]]) -> bytes:
    """One change as SSE: `reset` once, or an event a call or reject (strict JSON, one line).
    Accepted calls hold only what strict JSON reading gave (no NaN, no infinity), so pydantic's
    writer, ~5x faster, writes them; a reject's body may hold anything (asgi.json_bytes)."""
    if kind == "reset":
        return b"event: reset\ndata: {}\n\n"
    write = to_json if kind == "call" else json_bytes
    name = kind.encode()
    return b"".join(b"event: %s\ndata: %s\n\n" % (name, write(item)) for item in items)


class Client:
    """One stream client's queue of encoded changes (used on the event loop only)."""

    def __init__(self, size: int, close: Callable[[], None] | None) -> None:
        self.size = size
        self.chunks: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.dropped = False
        self._close = close

    def offer(self, chunk: bytes) -> None:
        if self.dropped:
            return
        if len(self.chunks) >= self.size:
            self.dropped = True
            self.chunks.clear()
            self.chunks.append(DROPPED)
            if self._close is not None:
                asyncio.get_running_loop().call_later(DROP_GRACE, self._close)
        else:
            self.chunks.append(chunk)
        self.ready.set()

    def take(self) -> bytes:
        """Every chunk waiting, as one (empty: none)."""
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.ready.clear()
        return data


class Broadcast:
    """The store's changes, encoded once and offered to each client (see the module)."""

    def __init__(self, store: Store, queue_size: int = STREAM_QUEUE) -> None:
        self.store = store
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def join(self, close: Callable[[], None] | None = None) -> Client:
        """A new client (on the event loop); `close` cuts its connection off."""
        client = Client(self.queue_size, close)
        self.clients.add(client)
        if self._unsubscribe is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._unsubscribe = self.store.subscribe(self._changed)
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)
        if not self.clients and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _changed(self, kind: str, items: list[dict[str, Any]]) -> None:
        """The store's listener, on the thread that changed it."""
        if threading.get_ident() == self._loop_thread:
            self._fan_out(kind, items)
        elif self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._fan_out, kind, items)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                pass

    def _fan_out(self, kind: str, items: list[dict[str, Any]]) -> None:
        if not self.clients:
            return
        chunk = encode(kind, items)
        for client in list(self.clients):
            client.offer(chunk)

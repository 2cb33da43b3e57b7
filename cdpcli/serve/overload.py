"""A receiver out of file descriptors: answered in JSON, told in one line, never a traceback.

Each connection is a descriptor. `cdp serve` raises its soft limit to the hard one at start
(`raise_open_files_limit`); past it, the kernel refuses `accept()` (EMFILE) and asyncio logs a
traceback for each refusal, then stops accepting for a second while the clients wait in the
listen queue. `Overload.handle` takes over as the event loop's exception handler: it frees the
descriptor it holds in reserve, accepts each waiting client in turn and answers it 503 JSON with
Retry-After (reading what it sent first, so that it sees the answer and not a reset), then takes
the reserve back; and it says so once a burst. Any other trouble the loop reports is one line too.
"""

from __future__ import annotations

import http
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

ACCEPT_TROUBLE = "socket.accept() out of system resource"
BURST_GAP = 5.0  # seconds without a refusal that end a burst
MAX_SHED = 1_000  # clients answered 503 in one go (the loop has other work)


def overloaded_answer(limit: int) -> bytes:
    data = json.dumps(
        {
            "meta": {
                "errors": [
                    f"cdp serve is out of file descriptors ({limit:,} connections or files open); try again shortly"
                ]
            }
        }
    ).encode()
    head = (
        f"HTTP/1.1 503 {http.HTTPStatus(503).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + data


class Overload:
    """The event loop's exception handler for one receiver's listening socket (see the module)."""

    def __init__(
        self, listening: socket.socket, log: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ):
        self.listening = listening
        self.log = log
        self._clock = clock
        self._reserve: int | None = _reserve()
        self._last = -BURST_GAP
        self.shed = 0  # clients answered 503 since the burst began
        self.bursts = 0

    def close(self) -> None:
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def handle(self, loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if context.get("message") == ACCEPT_TROUBLE:
            self._overloaded(exc)
        elif isinstance(exc, ValueError) and "Invalid file descriptor" in str(exc) and self.listening.fileno() < 0:
            pass  # asyncio retrying an accept on the socket a stop has closed
        else:
            what = f"{type(exc).__name__}: {exc}" if exc is not None else ""
            self.log(f"cdp serve: {context.get('message', 'event loop trouble')}{': ' + what if what else ''}")

    def _overloaded(self, exc: BaseException | None) -> None:
        now = self._clock()
        if now - self._last > BURST_GAP:
            if self.bursts:
                self.log(f"cdp serve: the last burst ended; {self.shed:,} clients were answered 503 in it")
            self.bursts += 1
            self.shed = 0
            limit = _soft_limit()
            self.log(
                f"cdp serve: out of file descriptors ({exc}; the limit is {limit:,}): new connections are answered "
                "503 until some close (raise it with ulimit -n)"
            )
        self._last = now
        self.shed += self._shed()

    def _shed(self) -> int:
        """Answer waiting clients 503 with the reserve descriptor; how many were."""
        if self._reserve is None:
            return 0
        os.close(self._reserve)  # one descriptor free: each client takes it and gives it back
        self._reserve = None
        answer = overloaded_answer(_soft_limit())
        shed = 0
        try:
            while shed < MAX_SHED:
                try:
                    client, _ = self.listening.accept()
                except OSError:  # none waiting (EAGAIN), or still out of descriptors
                    break
                shed += 1
                _answer(client, answer)
        finally:
            self._reserve = _reserve()
        return shed


def _answer(client: socket.socket, answer: bytes) -> None:
    try:
        client.setblocking(False)
        try:
            client.recv(65536)  # its request, so that closing sends no reset
        except OSError:
            pass
        client.send(answer)
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        client.close()


def _reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None


def _soft_limit() -> int:
    try:
        import resource  # lazy: Unix only

        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return -1


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise the soft limit on open files to the hard one (a soft 1,024, a common default, turns
    clients away long before limits.MAX_CONNECTIONS); (before, after), None where there is no
    such limit (Windows) or it may not be raised."""
    try:
        import resource  # lazy: Unix only

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        return None

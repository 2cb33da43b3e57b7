"""The receiver's own routes, under `/_cdp/` beside the API's `/v1/…`: what it was sent, queried.

  GET  /_cdp/calls    type, event, userId, anonymousId, messageId, since, limit, cursor
                      → {"calls": [...], "next": cursor or null}; tail=N: the last N that match
  GET  /_cdp/rejects  since, limit, cursor → {"rejects": [...], "next": …}
  GET  /_cdp/summary  {"accepted", "rejected", "evicted", "kept", "by_type", "by_event"}
  POST /_cdp/reset    empties the store
  GET  /_cdp/wait     the filters of calls, count (1), timeout (5 s): 200 {"calls": [...]} as
                      soon as `count` calls match, else 408 with those that did at the timeout
  GET  /_cdp/events   Server-Sent Events: each accepted call (`call`), reject, and reset
  GET  /_cdp/ui       the live view (and `/` for a browser); `/favicon.ico` its icon

With an API key set (`--api-key`), each takes the API's auth (the browser asks for it: the key
as the user name, no password). Answers are strict JSON; errors the API's `{"meta": {"errors":
[...]}}`. A state change (`POST /_cdp/reset`) must not look like another site's form (hosts.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from cdpcli.serve.asgi import refuse, reply, response_head
from cdpcli.serve.hosts import cross_site_problem
from cdpcli.serve.judge import Judge, errors
from cdpcli.serve.store import FILTERS, Filters, Seen, Store
from cdpcli.serve.stream import Broadcast, connection_closer

ROUTES = "GET /_cdp/calls|rejects|summary|wait|events|ui, POST /_cdp/reset"
MAX_LIMIT = 100_000
MAX_WAIT = 300.0  # seconds a wait may ask for
SSE_KEEPALIVE = 15.0
FIRST_SCREEN = 100  # calls (and rejects) the live view's HTML holds as it is served


class BadQuery(ValueError):
    """A parameter that is not what the route takes (answered 400)."""


class Control:
    """The `/_cdp/` routes of one receiver (see the module's docstring) over its store; `judge`
    checks their auth, and `stopping` ends waits and streams when the receiver stops."""

    def __init__(self, store: Store, judge: Judge, *, stopping: asyncio.Event) -> None:
        self.store = store
        self.judge = judge
        self.stopping = stopping
        self.broadcast = Broadcast(store)

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> tuple[int, str | None]:
        """Answer a request to a route of its own: the status, and the error when refused (the log line's)."""
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if path == "/favicon.ico":
            return await self.icon(send), None
        if self.judge.api_key is not None:
            problem = self.judge.check_auth(headers.get("authorization", ""))
            if problem:
                return await refuse(send, 401, problem, {"WWW-Authenticate": 'Basic realm="cdp serve"'})
        routes: dict[str, tuple[str, Callable[..., Any]]] = {
            "/_cdp/calls": ("GET", self.calls),
            "/_cdp/rejects": ("GET", self.rejects),
            "/_cdp/summary": ("GET", self.summary),
            "/_cdp/reset": ("POST", self.reset),
            "/_cdp/wait": ("GET", self.wait),
            # the connection's own close (protocol.Protocol): the stream cuts a stalled client off
            "/_cdp/events": (
                "GET",
                lambda query, receive, send: self.events(query, receive, send, scope.get("cdp.transport")),
            ),
            "/_cdp/ui": ("GET", self.page),
            "/": ("GET", self.page),
        }
        if path not in routes:
            return await refuse(send, 404, f"no such path {path}; cdp serve has {ROUTES}")
        allowed, route = routes[path]
        if method != allowed and not (method == "HEAD" and allowed == "GET"):
            return await refuse(send, 405, f"{path} takes {allowed} only", {"Allow": allowed})
        if method == "POST" and (problem := cross_site_problem(headers)):
            return await refuse(send, 403, problem)
        try:
            query = {name: values[-1] for name, values in parse_qs(scope["query_string"].decode("latin-1")).items()}
        except ValueError:
            query = {}
        try:
            return await route(query, receive, send), None
        except BadQuery as exc:
            return await refuse(send, 400, str(exc))

    async def calls(self, query: dict[str, str], receive: Any, send: Callable[..., Any]) -> int:
        filters = _filters(query, extra=("limit", "cursor", "tail", "before"))
        if "tail" in query:  # the last N that match (before a sequence number: the live view's pages)
            tail = _number(query, "tail", 100, 1, MAX_LIMIT)
            before = _number(query, "before", 0, 1, None) or None
            await reply(send, 200, {"calls": self.tail(filters, tail, before), "next": None}, {})
            return 200
        if "before" in query:
            raise BadQuery("before goes with tail (the last N calls before a sequence number)")
        page, cursor = self.store.query(
            filters, limit=_number(query, "limit", 100, 1, MAX_LIMIT), cursor=_number(query, "cursor", 0, 0, None)
        )
        await reply(send, 200, {"calls": page, "next": None if cursor is None else str(cursor)}, {})
        return 200

    def tail(self, filters: Filters, count: int, before: int | None = None) -> list[dict[str, Any]]:
        """The last `count` calls `filters` take (before the sequence number `before`), oldest first."""
        selected = self.store.select(filters)
        if before is not None:
            selected = [(seq, call) for seq, call in selected if seq < before]
        return [{**call, "_seq": seq} for seq, call in selected[-count:]]

    async def rejects(self, query: dict[str, str], receive: Any, send: Callable[..., Any]) -> int:
        _known(query, ("since", "limit", "cursor", "tail", "before"))
        if "tail" in query:  # the last N (the live view's first page: never the whole store)
            tail = _number(query, "tail", 100, 1, MAX_LIMIT)
            before = _number(query, "before", 0, 1, None) or None
            page = self.store.reject_page(limit=tail, before=before if before is not None else 1 << 62)
            await reply(send, 200, {"rejects": page, "next": None}, {})
            return 200
        after = max(_number(query, "since", 0, 0, None), _number(query, "cursor", 0, 0, None))
        limit = _number(query, "limit", 100, 1, MAX_LIMIT)
        page = self.store.reject_page(after=after, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        await reply(send, 200, {"rejects": page, "next": str(page[-1]["seq"]) if more else None}, {})
        return 200

    async def summary(self, query: dict[str, str], receive: Any, send: Callable[..., Any]) -> int:
        await reply(send, 200, self.store.summary(), {})
        return 200

    async def reset(self, query: dict[str, str], receive: Callable[..., Any], send: Callable[..., Any]) -> int:
        await _skip_body(receive)
        self.store.reset()
        await reply(send, 200, {"reset": True}, {})
        return 200

    async def wait(self, query: dict[str, str], receive: Any, send: Callable[..., Any]) -> int:
        filters = _filters(query, extra=("count", "timeout"))
        count = _number(query, "count", 1, 1, MAX_LIMIT)
        try:
            timeout = float(query.get("timeout", "5"))
        except ValueError:
            raise BadQuery(f"timeout must be a number of seconds, not {query['timeout']!r}") from None
        if not 0 <= timeout <= MAX_WAIT:  # also refuses nan
            raise BadQuery(f"timeout must be between 0 and {MAX_WAIT:g} seconds, not {query['timeout']}")
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake(kind: str, items: list[dict[str, Any]]) -> None:
            loop.call_soon_threadsafe(changed.set)

        unsubscribe = self.store.subscribe(wake)
        stopping = self.stopping
        deadline = loop.time() + timeout
        seen = Seen(filters)
        try:
            while True:
                changed.clear()
                self.store.catch_up(seen)
                if len(seen.matched) >= count:
                    await reply(send, 200, {"calls": seen.numbered(), "count": len(seen.matched)}, {})
                    return 200
                left = deadline - loop.time()
                if left <= 0 or stopping.is_set():
                    break
                await _first_of(changed, stopping, left)
        finally:
            unsubscribe()
        answer = {
            **errors(f"{len(seen.matched)} of {count} matching calls arrived within {timeout:g} s"),
            "calls": seen.numbered(),
            "count": len(seen.matched),
        }
        await reply(send, 408, answer, {})
        return 408

    async def events(
        self,
        query: dict[str, str],
        receive: Callable[..., Any],
        send: Callable[..., Any],
        transport: Any = None,
    ) -> int:
        """Server-Sent Events: each change to the store, as stream.Broadcast hands it out."""
        _known(query, ())
        client = self.broadcast.join(connection_closer(transport))
        gone = asyncio.ensure_future(_disconnected(receive))
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": response_head(
                        {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
                    ),
                }
            )
            await _chunk(send, b"retry: 1000\n\n")
            while not client.dropped or client.chunks:
                if not client.chunks:
                    ready = asyncio.ensure_future(client.ready.wait())
                    done, _ = await asyncio.wait(
                        {ready, gone, stop}, timeout=SSE_KEEPALIVE, return_when="FIRST_COMPLETED"
                    )
                    ready.cancel()
                    if gone in done or stop in done:
                        break
                    if ready not in done:
                        await _chunk(send, b": keep-alive\n\n")
                        continue
                await _chunk(send, client.take())
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            self.broadcast.leave(client)
            gone.cancel()
            stop.cancel()
        return 200

    async def page(self, query: dict[str, str], receive: Any, send: Callable[..., Any]) -> int:
        """The live view, its first screen (the newest calls and rejects, the counts) in the HTML."""
        from cdpcli.serve.ui import render  # lazy: start-up (the page is only built when asked for)

        calls = self.tail(Filters(), FIRST_SCREEN)
        rejects = self.store.reject_page(limit=FIRST_SCREEN, before=1 << 62)
        data = render(calls, rejects, self.store.summary(), FIRST_SCREEN).encode()
        head = response_head(
            {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(data)), "Cache-Control": "no-store"}
        )
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": data, "more_body": False})
        return 200

    async def icon(self, send: Callable[..., Any]) -> int:
        from cdpcli.serve.ui import ICON  # lazy: start-up

        head = response_head(
            {"Content-Type": "image/svg+xml", "Content-Length": str(len(ICON)), "Cache-Control": "max-age=86400"}
        )
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": ICON, "more_body": False})
        return 200


def _known(query: dict[str, str], names: tuple[str, ...]) -> None:
    unknown = sorted(set(query) - set(names))
    if unknown:
        raise BadQuery(f"unknown parameter {unknown[0]!r}; this route takes {', '.join(names) or 'none'}")


def _filters(query: dict[str, str], extra: tuple[str, ...]) -> Filters:
    _known(query, (*FILTERS, "since", *extra))
    try:
        return Filters.of({name: query[name] for name in FILTERS if name in query}, query.get("since"))
    except ValueError as exc:
        raise BadQuery(str(exc)) from None


def _number(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        top = f" and {high:,}" if high is not None else " or more"
        raise BadQuery(f"{name} must be a whole number between {low}{top}, not {text!r}")
    return int(text)


async def _first_of(changed: asyncio.Event, stopping: asyncio.Event, timeout: float) -> None:
    waits = {asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stopping.wait())}
    _, pending = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
    for task in pending:
        task.cancel()


async def _disconnected(receive: Callable[..., Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _skip_body(receive: Callable[..., Any]) -> None:
    more, seen = True, 0
    while more and seen < 1 << 16:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        seen += len(message.get("body", b""))
        more = message.get("more_body", False)


async def _chunk(send: Callable[..., Any], data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})

"""The only module that talks HTTP: sends a wire.Request with retries.

Retried: network errors, 408, 429 and 5xx, with exponential backoff and full jitter;
`Retry-After` (seconds or an HTTP date, capped at 300 s) replaces the backoff's wait. Every
retry counts against `--retries N`, whatever its wait, so a request is tried at most N + 1
times. The messageId stays the same on every attempt (it is in the payload); sentAt is set per
attempt; `X-Retry-Count: n` goes on the n-th retry.

Proxies (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) and SSL_CERT_FILE/SSL_CERT_DIR are
honoured by httpx; a network error through a proxy names the proxy.
"""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from cdpcli.errors import ExitCode, exit_code_for_status
from cdpcli.redaction import redact
from cdpcli.wire import Request, redacted_headers

RETRY_AFTER_CAP = 300.0


def _once(data: bytes) -> Iterator[bytes]:
    yield data


def is_retryable(status: int | None) -> bool:
    return status is None or status in (408, 429) or status >= 500


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (now if now is not None else time.time())
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def backoff_seconds(retry: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter for the n-th retry (1-based)."""
    return random.uniform(0, min(cap, base * 2 ** (retry - 1)))


def server_errors(text: str) -> list[str]:
    """The API's strict-mode error list, `{"meta":{"errors":[…]}}`, or the raw body."""
    try:
        data = json.loads(text)
    except ValueError:
        return [text.strip()[:500]] if text.strip() else []
    if isinstance(data, dict):
        meta = data.get("meta")
        if isinstance(meta, dict):
            errors = meta.get("errors") or ([meta["error"]] if meta.get("error") else [])
            if isinstance(errors, list):
                return [str(e) for e in errors]
    return [text.strip()[:500]]


class Exchange:
    """One attempt as it went over the wire, for `-v` (request line, status, latency, answer)
    and `-vv` (headers too). The Authorization header and any key in the answer are redacted.

    The redacted views are made when read: an import hands every attempt over, and making them
    for each (a regex over every header and the answer) cost ~150 µs of the ~1.4 ms a 475 KB
    /batch request costs the client, thrown away unless -v shows it."""

    def __init__(
        self,
        url: str,
        attempt: int,
        headers: dict[str, str],
        status: int | None,
        latency_ms: float,
        response: httpx.Response | None,
        error: str = "",
    ) -> None:
        self.url = url
        self.attempt = attempt
        self.status = status
        self.latency_ms = latency_ms
        self._headers = headers
        self._response = response
        self._error = error

    @property
    def request_headers(self) -> dict[str, str]:
        return redacted_headers(self._headers)

    @property
    def response_headers(self) -> dict[str, str]:
        response = self._response
        return {k: redact(v) for k, v in response.headers.items()} if response is not None else {}

    @property
    def response_body(self) -> str:
        return redact(self._response.text) if self._response is not None else ""

    @property
    def error(self) -> str:
        return redact(self._error)


@dataclass
class Outcome:
    status: int | None  # None: no HTTP answer (network error)
    attempts: int
    latency_ms: float  # of the last attempt
    error: str = ""  # network error description, or the server's errors joined
    network_kind: str = ""  # refused, dns, timeout, tls, network
    retry_after: float | None = None  # seconds the last answer's Retry-After asked for

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def exit_code(self) -> ExitCode:
        if self.ok:
            return ExitCode.OK
        if self.status is None:
            return ExitCode.NETWORK
        return exit_code_for_status(self.status)


def describe_network_error(exc: Exception, timeout: float, proxy: str | None = None) -> tuple[str, str]:
    """(kind, message) for a transport failure, saying which kind it was; with `proxy` (the
    proxy the request went through, see proxy_for), the message says it was the proxy."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, httpx.ProxyError):
        # the proxy answered but would not forward: the endpoint is behind it
        return "proxy", f"the proxy {proxy or ''} could not connect to the endpoint: {text}".replace("  ", " ")
    if isinstance(exc, httpx.TimeoutException):
        kind, message = "timeout", f"timed out after {timeout:g}s ({type(exc).__name__})"
    elif "ssl" in lowered or "certificate" in lowered:
        kind, message = "tls", f"TLS error: {text}"
    elif (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or "getaddrinfo" in lowered
        or "name resolution" in lowered
    ):
        kind, message = "dns", f"DNS lookup failed: {text}"
    elif "refused" in lowered:
        kind, message = "refused", "connection refused"
    else:
        kind, message = "network", text
    if proxy and kind != "tls":  # a TLS error is with the endpoint (tunnelled through the proxy)
        return (
            "proxy",
            f"{message} by the proxy {proxy}" if kind == "refused" else f"{message} (through the proxy {proxy})",
        )
    return kind, message


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _proxy_setting_error(exc: Exception) -> Exception:
    """httpx refuses the environment's proxy settings when it builds its client (a bad URL, an
    unknown scheme, SOCKS without socksio): a usage error naming the variables, never a crash."""
    import os

    from cdpcli.errors import UsageError

    shown = ", ".join(
        f"{name}={_without_userinfo(os.environ[name])!r}" for name in _PROXY_VARIABLES if os.environ.get(name)
    )
    if not shown:
        return exc
    return UsageError(
        f"the proxy setting in the environment cannot be used ({shown}): {_without_userinfo(str(exc))}",
        hint="fix or unset the variable; an HTTP proxy looks like http://proxy.example:3128 "
        "(a SOCKS proxy needs: pip install 'httpx[socks]')",
    )


def _without_userinfo(url: str) -> str:
    at = url.rfind("@")
    if at < 0:
        return url
    start = url.find("://") + 3 if "://" in url else 0
    return url[:start] + url[at + 1 :] if at >= start else url


def proxy_for(url: str) -> str | None:
    """The proxy httpx takes for `url` from the environment, as `URL (from VARIABLE)` with any
    user:password@ left out; None when it goes direct. Follows httpx's rules: HTTPS_PROXY or
    HTTP_PROXY by scheme, else ALL_PROXY; NO_PROXY hosts (or `*`) go direct."""
    import os
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    chosen = None
    for name in (f"{scheme}_proxy", "all_proxy"):
        for variable in (name.upper(), name):
            if os.environ.get(variable):
                chosen = (variable, os.environ[variable])
                break
        if chosen:
            break
    if chosen is None:
        return None
    # urllib.request.proxy_bypass_environment: the standard NO_PROXY check, absent from typeshed
    if parts.hostname and urllib.request.proxy_bypass_environment(parts.hostname):  # type: ignore[attr-defined]
        return None
    variable, proxy = chosen
    return f"{_without_userinfo(proxy)} (from {variable})"


class Sender:
    """One kept-alive httpx.Client shared by any number of threads."""

    def __init__(
        self,
        *,
        timeout: float,
        retries: int,
        connections: int = 1,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        on_retry: Callable[[str], None] | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
        stop: threading.Event | None = None,
        tls: bool = True,
        retry_throttled: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`transport`: what carries the requests instead of the network (tests pass an
        httpx.MockTransport; proxies from the environment then do not apply)."""
        self.timeout = timeout
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.on_retry = on_retry
        self.on_exchange = on_exchange
        # False: a 429 comes back at once (with its Retry-After) for the caller to pace itself
        self.retry_throttled = retry_throttled
        self.stop = stop or threading.Event()
        try:
            self._client = httpx.Client(
                timeout=timeout,
                limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
                follow_redirects=False,
                # Loading the CA bundle costs ~40-70 ms at start-up; a plain-http endpoint
                # (cdp serve, a local proxy) never uses it.
                verify=bool(tls),
                transport=transport,
            )
        except (ImportError, ValueError, httpx.InvalidURL) as exc:
            raise _proxy_setting_error(exc) from None
        # each URL parsed once: httpx re-parses a str URL on every request (~50 µs of the
        # ~1 ms a 475 KB /batch request costs the client); an import posts to one URL
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(self, request: Request) -> Outcome:
        attempt = 0
        while True:
            attempt += 1
            headers = dict(request.headers)
            if attempt > 1:
                headers["X-Retry-Count"] = str(attempt - 1)
            content = request.body_bytes()
            if request.gzip:
                compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # level 1: cheapest CPU
                content = compressor.compress(content) + compressor.flush()
            headers["Content-Length"] = str(len(content))
            started = time.perf_counter()
            response = None
            try:
                # The body goes in as a one-shot iterator: httpx's Response and Request form
                # reference cycles, and a bytes body inside them would stay alive (500 KB each)
                # until a rare full garbage collection; collecting after every response instead
                # costs ~3 µs per call. With the length given, httpx sends it as is, not chunked.
                response = self._client.post(self._url(request.url), content=_once(content), headers=headers)
                code = response.status_code
                status: int | None = code
                # an accepted request's answer is read (the connection is reused) but decoded
                # only when it explains a failure, or when -v shows it: ~20 µs a request
                text = "" if 200 <= code < 300 else response.text
                kind, error = "", ""
            except httpx.TransportError as exc:
                status, text = None, ""
                kind, error = describe_network_error(exc, self.timeout, proxy_for(request.url))
            latency = (time.perf_counter() - started) * 1000
            wait_hint = (
                retry_after_seconds(response.headers.get("Retry-After"))
                if response is not None and status != 200
                else None
            )
            if self.on_exchange is not None:
                self.on_exchange(Exchange(request.url, attempt, headers, status, latency, response, error))
            del response
            if status is not None and 200 <= status < 300:
                return Outcome(status, attempt, latency)
            if status is not None:
                error = "; ".join(server_errors(text)) or f"HTTP {status}"
            # the one redaction step (redaction.redact): an error from the HTTP stack or a server
            # echoing the request must not carry the key into messages or the rejects file
            outcome = Outcome(status, attempt, latency, redact(error), kind, wait_hint)
            if not is_retryable(status) or attempt > self.retries or self.stop.is_set():
                return outcome
            if status == 429 and not self.retry_throttled:
                return outcome
            # every retry counts against --retries; the server's Retry-After replaces the backoff
            delay = (
                wait_hint if wait_hint is not None else backoff_seconds(attempt, self.backoff_base, self.backoff_cap)
            )
            if self.on_retry:
                what = f"HTTP {status}" if status is not None else error
                self.on_retry(f"{what.rstrip('.')}; retrying {request.url} in {delay:.1f}s (retry {attempt})")
            if self.stop.wait(delay):
                return outcome


def get_json(
    url: str, *, params: dict[str, str] | None = None, api_key: str | None = None, timeout: float = 10.0
) -> tuple[int, Any]:
    """One GET of a JSON resource (cdp serve's /_cdp/ routes, for `cdp expect`), no retries:
    (status, parsed body). A network failure is a DeliveryError with exit code 6 and the
    reason in words; the key goes in Basic auth and never into a message."""
    from cdpcli.errors import DeliveryError

    auth = (api_key, "") if api_key else None
    try:
        # trust_env off: a receiver is usually on loopback, which a proxy from the environment cannot reach
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.get(url, params=params, auth=auth)
    except httpx.HTTPError as exc:
        from urllib.parse import urlsplit

        _, message = describe_network_error(exc, timeout)
        parts = urlsplit(_without_userinfo(url))
        raise DeliveryError(
            redact(f"cannot reach the receiver at {parts.scheme}://{parts.netloc}: {message}"),
            hint="start it first (cdp serve), or check against=",
            exit_code=ExitCode.NETWORK,
            option="against",
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body

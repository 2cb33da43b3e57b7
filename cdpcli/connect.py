"""Checking a target: the HTTP source's verification step.

A strict-mode request that creates no data (an empty /batch) checks the key and the endpoint;
`send_event` sends one real call instead, as the dashboard's "send a test call" step wants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cdpcli.errors import ExitCode
from cdpcli.wire import Request, complete_call, single_request

if TYPE_CHECKING:
    from cdpcli.target import Target
    from cdpcli.transport import Exchange

TEST_EVENT = {"type": "track", "anonymousId": "cdp-connect-test", "event": "cdp connect test"}


@dataclass
class ConnectReport:
    ok: bool
    status: int | None
    endpoint: str
    region: str
    auth: str
    latency_ms: float
    url: str
    key: str  # masked
    key_source: str
    sent_event: bool
    proxy: str | None
    verdict: str
    error: str = ""
    hint: str | None = None
    exit_code: ExitCode = ExitCode.OK


def connect_request(target: Target, send_event: bool) -> Request:
    headers = target.headers()
    headers["X-Strict-Mode"] = "1"  # without it a wrong key still gets 200: no verdict at all
    if send_event:
        return single_request(complete_call(dict(TEST_EVENT)), target.base, headers)
    return Request(f"{target.base}/batch", headers, {"batch": []})


def check_connection(
    target: Target,
    send_event: bool = False,
    *,
    on_retry: Callable[[str], None] | None = None,
    on_exchange: Callable[[Exchange], None] | None = None,
) -> ConnectReport:
    """Send the check and say what it found; a failure is in the report, not raised."""
    from cdpcli.calls import failure_of  # lazy: start-up
    from cdpcli.transport import proxy_for  # lazy: start-up

    request = connect_request(target, send_event)
    outcome = target.send(request, on_retry=on_retry, on_exchange=on_exchange)
    report = ConnectReport(
        ok=outcome.ok,
        status=outcome.status,
        endpoint=target.base,
        region=target.region or "",
        auth=target.auth,
        latency_ms=round(outcome.latency_ms, 1),
        url=request.url,
        key=target.masked_key,
        key_source=target.key_origin(),
        sent_event=send_event,
        proxy=proxy_for(request.url),
        verdict="the key was accepted" + (" and a test call was delivered" if send_event else ""),
    )
    if outcome.ok:
        return report
    failure = failure_of(outcome, request.url, target)
    report.error = outcome.error
    report.hint = failure.hint
    report.exit_code = failure.exit_code
    if failure.exit_code == ExitCode.AUTH:
        report.verdict = "the key was rejected"
    elif outcome.status is None:
        report.verdict = f"unreachable ({outcome.network_kind})"
    else:
        report.verdict = f"unexpected answer HTTP {outcome.status}"
    return report

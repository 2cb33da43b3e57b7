"""`cdp connect test`: the HTTP source's verification step, from the command line.

A strict-mode request that creates no data (an empty /batch) checks the key and the endpoint;
`--send-event` sends one real call instead, as the dashboard's "send a test call" step wants.
"""

from __future__ import annotations

from typing import Any

from cdpcli.errors import ExitCode
from cdpcli.session import Session
from cdpcli.wire import Request, complete_call, mask_key, single_request

TEST_EVENT = {"type": "track", "anonymousId": "cdp-connect-test", "event": "cdp connect test"}


def test_request(session: Session, send_event: bool) -> Request:
    headers = session.headers()
    headers["X-Strict-Mode"] = "1"  # without it a wrong key still gets 200: no verdict at all
    if send_event:
        return single_request(complete_call(dict(TEST_EVENT)), session.base, headers)
    return Request(f"{session.base}/batch", headers, {"batch": []})


def run_connect_test(session: Session, send_event: bool) -> tuple[dict[str, Any], ExitCode, str | None]:
    """Send the check; returns the report, its exit code and a hint for failures."""
    request = test_request(session, send_event)
    with session.sender(on_retry=session.out.verbose) as sender:
        outcome = sender.send(request)
    from cdpcli.transport import proxy_for

    report: dict[str, Any] = {
        "ok": outcome.ok,
        "status": outcome.status,
        "endpoint": session.base,
        "region": session.region,
        "auth": session.auth,
        "latency_ms": round(outcome.latency_ms, 1),
        "url": request.url,
        "key": mask_key(session.api_key),
        "key_source": session.source("api-key"),
        "sent_event": send_event,
        "proxy": proxy_for(request.url),
    }
    code = outcome.exit_code
    hint = None
    if outcome.ok:
        report["verdict"] = "the key was accepted" + (" and a test call was delivered" if send_event else "")
    elif outcome.status in (401, 403):
        report["verdict"] = "the key was rejected"
        report["error"] = outcome.error
        hint = (
            f"the key came from {session.source('api-key')} (profile {session.profile!r}); "
            f"use the API key of a Customer.io HTTP source in region {session.region}"
        )
    elif outcome.status is None:
        report["verdict"] = f"unreachable ({outcome.network_kind})"
        report["error"] = outcome.error
        hint = {
            "dns": "check the host name in --endpoint (or the region)",
            "refused": "nothing listens there: check --endpoint, or start `cdp serve`",
            "timeout": "the endpoint did not answer in time: check the network or raise --timeout",
            "tls": "the TLS handshake failed: check the endpoint's scheme (http/https) and certificates "
            "(a private CA goes in SSL_CERT_FILE)",
            "proxy": "the proxy comes from the environment: check that it runs, or let this host bypass "
            "it with NO_PROXY (or unset the variable)",
        }.get(outcome.network_kind, "check --endpoint/--region and your network")
    else:
        report["verdict"] = f"unexpected answer HTTP {outcome.status}"
        report["error"] = outcome.error
    return report, code, hint


def format_report(report: dict[str, Any]) -> str:
    rows = [
        ("endpoint", report["endpoint"]),
        ("region", report["region"]),
        ("auth", f"{report['auth']} (key {report['key']} from {report['key_source']})"),
        ("status", report["status"] if report["status"] is not None else "-"),
        ("latency", f"{report['latency_ms']:.0f} ms"),
        ("verdict", ("ok: " if report["ok"] else "failed: ") + report["verdict"]),
    ]
    if report.get("proxy"):
        rows.insert(1, ("proxy", report["proxy"]))
    if report.get("error"):
        rows.append(("error", report["error"]))
    return "\n".join(f"{name:<9} {value}" for name, value in rows)

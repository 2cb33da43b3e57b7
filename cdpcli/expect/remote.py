"""A Spec checked against a running `cdp serve` over HTTP (through cdpcli.transport)."""

from __future__ import annotations

from typing import Any

from cdpcli.errors import AUTH_STATUSES, CdpError, DeliveryError, ExitCode, UsageError
from cdpcli.expect.check import Result, settle
from cdpcli.expect.spec import DEFAULT_TIMEOUT, Spec
from cdpcli.wire import EndpointError, base_url

RECEIVER_HINT = "give the URL that cdp serve prints when it starts, e.g. http://127.0.0.1:8787"


def receiver_base(against: str) -> str:
    """A receiver's base URL from what a user gives: http://host:port, …/v1, or …/_cdp.
    UsageError (option `against`) when it is not a URL cdp would send to: the same test as
    an endpoint's (wire.base_url)."""
    try:
        base_url(against, "us")
    except EndpointError as exc:
        raise UsageError(f"against= {exc}", hint=RECEIVER_HINT, option="against") from None
    base = against.rstrip("/")
    for tail in ("/v1", "/_cdp"):
        if base.endswith(tail):
            base = base[: -len(tail)]
    return base


def check_against(
    spec: Spec, against: str, *, api_key: str | None = None, timeout: float | None = None
) -> list[Result]:
    """`spec` checked against the receiver at URL `against` (`cdp serve`), waiting up to `timeout` s
    (the file's, else DEFAULT_TIMEOUT) for calls yet to come. DeliveryError (exit 6) when the
    receiver cannot be reached; UsageError when `against` is not an http(s) URL; DeliveryError
    (exit 2) when it refuses `api_key`; CdpError when it is not a cdp serve."""
    from cdpcli.redaction import add_secret  # lazy: start-up
    from cdpcli.transport import get_json  # lazy: start-up

    if api_key:
        add_secret(api_key)  # a server echoing it must not carry it into cdp's messages
    base = receiver_base(against)
    wait = timeout if timeout is not None else spec.timeout if spec.timeout is not None else DEFAULT_TIMEOUT

    def fetch(route: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "10000", **({"cursor": cursor} if cursor else {})}
            status, body = get_json(f"{base}/_cdp/{route}", params=params, api_key=api_key)
            _answer_ok(status, body, base, bool(api_key))
            items += body[key]
            cursor = body.get("next")
            if not cursor:
                return items

    def snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return fetch("calls", "calls"), (fetch("rejects", "rejects") if spec.no_rejects else [])

    def wait_for_more(last: int, seconds: float) -> None:
        params = {"since": str(last), "count": "1", "timeout": f"{min(seconds, 300):.3f}"}
        status, body = get_json(f"{base}/_cdp/wait", params=params, api_key=api_key, timeout=seconds + 10)
        if status != 408:
            _answer_ok(status, body, base, bool(api_key))

    return settle(spec, snapshot, wait_for_more, wait)


def _answer_ok(status: int, body: Any, base: str, sent_key: bool) -> None:
    if status == 200 and isinstance(body, dict):
        return
    if status in AUTH_STATUSES:  # the key is configuration here: SPEC's exit codes for expect are 0, 1, 2, 6
        what = "refused the key" if sent_key else "wants an API key"
        raise DeliveryError(
            f"the receiver at {base} {what} (HTTP {status})",
            hint="it was started with an API key: give the same key (api_key=, or CDP_API_KEY)",
            status=status,
            exit_code=ExitCode.USAGE,
            option="api_key",
        )
    raise CdpError(
        f"{base} answered HTTP {status} to /_cdp/: is it a cdp serve?",
        hint="point against= at the URL that cdp serve prints when it starts",
        option="against",
    )

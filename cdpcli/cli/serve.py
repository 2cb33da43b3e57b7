"""`cdp serve`: the local receiver (cdpcli.serve), its flags checked."""

import sys
from typing import Annotated

import typer

from cdpcli.cli import startup
from cdpcli.cli.base import app
from cdpcli.cli.output import reporting
from cdpcli.errors import UsageError
from cdpcli.redaction import add_secret, redact

MAX_REJECT_BYTES = 32 << 20  # cdpcli.serve.limits.MAX_REJECT_BYTES, not imported: start-up


HostOpt = Annotated[str, typer.Option(help="Address to listen on.", metavar="ADDRESS")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).", metavar="PORT")]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key", help="Accept only this key (default: any non-empty key).", show_default=False, metavar="KEY"
    ),
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="Append accepted calls as NDJSON to this file (default: stdout).",
        show_default=False,
        metavar="FILE",
    ),
]
FailRateOpt = Annotated[
    float,
    typer.Option(
        "--fail-rate", help="Share of requests (0-1) answered with 500/503/429, to test retries.", metavar="SHARE"
    ),
]
LatencyMsOpt = Annotated[
    int, typer.Option("--latency-ms", help="Delay every answer by this many milliseconds.", metavar="MS")
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Seed --fail-rate's random choices, so a run's faults repeat.",
        show_default=False,
        metavar="N",
    ),
]
MaxCallsOpt = Annotated[
    int,
    typer.Option(
        "--max-calls",
        help="Keep the last N calls for /_cdp/ queries (older ones are evicted and counted; 0 keeps none).",
        metavar="N",
    ),
]
RateLimitOpt = Annotated[
    float | None,
    typer.Option(
        "--rate-limit",
        help="Answer requests over N per second with 429 and Retry-After (a token bucket).",
        show_default=False,
        metavar="N",
    ),
]
FailFirstOpt = Annotated[int, typer.Option("--fail-first", help="Answer the first K requests with 503.", metavar="K")]
StatusForOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status-for",
        help="Answer any request carrying a call with this event with CODE (a 400 names the call). Repeatable.",
        show_default=False,
        metavar="EVENT=CODE",
    ),
]
AllowHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        help="Also answer requests whose Host is NAME (as from another container; * for any). Repeatable.",
        show_default=False,
        metavar="NAME",
    ),
]
MaxRejectBytesOpt = Annotated[
    int,
    typer.Option(
        "--max-reject-bytes",
        help="Keep refused requests for /_cdp/rejects up to N bytes (older ones are evicted and counted).",
        metavar="N",
    ),
]


@app.command()
def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8787,
    api_key: ApiKeyOpt = None,
    out: OutOpt = None,
    fail_rate: FailRateOpt = 0.0,
    latency_ms: LatencyMsOpt = 0,
    seed: SeedOpt = None,
    max_calls: MaxCallsOpt = 100_000,
    rate_limit: RateLimitOpt = None,
    fail_first: FailFirstOpt = 0,
    status_for: StatusForOpt = None,
    allow_host: AllowHostOpt = None,
    max_reject_bytes: MaxRejectBytesOpt = MAX_REJECT_BYTES,
) -> None:
    """Run a local Data Pipelines-compatible receiver for offline development and CI.

    Example: cdp serve --port 8787 --out calls.ndjson

    Then: cdp track … --endpoint http://127.0.0.1:8787

    What it receives is kept for GET /_cdp/calls, rejects, summary and wait (and
    cdp expect); the live view is at /_cdp/ui.

    When its output can no longer be written, it answers 503 and exits: 0 when
    the reader closed it (cdp serve | head -1), 1 on other write errors.
    """
    with reporting():
        _check(
            port=port,
            fail_rate=fail_rate,
            latency_ms=latency_ms,
            max_calls=max_calls,
            rate_limit=rate_limit,
            fail_first=fail_first,
            max_reject_bytes=max_reject_bytes,
        )
        codes = _status_for(status_for or [])
        if api_key:
            add_secret(api_key)  # serve's log passes `redact`: the key it takes never shows there
        from cdpcli.serve import run_server  # lazy: start-up (the receiver, only for cdp serve)

        startup.started()  # the interpreter's collector thresholds back for a long-running server
        run_server(
            host=host,
            port=port,
            api_key=api_key,
            out_path=out,
            fail_rate=fail_rate,
            latency_ms=latency_ms,
            seed=seed,
            max_calls=max_calls,
            rate_limit=rate_limit,
            fail_first=fail_first,
            status_for=codes,
            allow_hosts=tuple(allow_host or ()),
            max_reject_bytes=max_reject_bytes,
            say=_say,
        )


def _check(
    *,
    port: int,
    fail_rate: float,
    latency_ms: int,
    max_calls: int,
    rate_limit: float | None,
    fail_first: int,
    max_reject_bytes: int,
) -> None:
    """UsageError for a flag value out of its range."""
    if not 0 <= port <= 65535:
        raise UsageError(
            f"--port must be between 0 and 65535, not {port}", hint="pick a free port, or 0 for any free one"
        )
    if not 0 <= fail_rate <= 1:  # also refuses nan
        raise UsageError(
            f"--fail-rate must be between 0 and 1, not {fail_rate}",
            hint="e.g. --fail-rate 0.2 fails one request in five",
        )
    if latency_ms < 0:
        raise UsageError(
            f"--latency-ms must be 0 or more, not {latency_ms}",
            hint="e.g. --latency-ms 50 delays every answer by 50 ms",
        )
    if max_calls < 0:
        raise UsageError(f"--max-calls must be 0 or more, not {max_calls}", hint="e.g. --max-calls 10000")
    if rate_limit is not None and not rate_limit > 0:  # also refuses nan
        raise UsageError(
            f"--rate-limit must be more than 0, not {rate_limit}",
            hint="e.g. --rate-limit 1000 (requests per second)",
        )
    if fail_first < 0:
        raise UsageError(f"--fail-first must be 0 or more, not {fail_first}", hint="e.g. --fail-first 3")
    if max_reject_bytes < 0:
        raise UsageError(
            f"--max-reject-bytes must be 0 or more, not {max_reject_bytes}", hint="e.g. --max-reject-bytes 10000000"
        )


def _say(text: str) -> None:
    """cdp serve's banner, warnings and log: stderr, each line at once (scripts wait for the URL)."""
    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()


def _status_for(values: list[str]) -> dict[str, int]:
    """--status-for EVENT=CODE values as {event: code}; UsageError for a malformed one."""
    codes: dict[str, int] = {}
    for value in values:
        event, sep, code = value.rpartition("=")
        if not sep or not event or not code.isdigit() or not 200 <= int(code) <= 599:
            raise UsageError(
                f"--status-for takes EVENT=CODE with a status between 200 and 599, not {value!r}",
                hint='e.g. --status-for "Order Completed=400"',
            )
        codes[event] = int(code)
    return codes

"""`cdp serve`: the local receiver (cdpcli.serve), its flags checked."""

from typing import Annotated

import typer

from cdpcli.cli.app import app
from cdpcli.cli.output import reporting


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8787,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Accept only this key (default: any non-empty key).", show_default=False),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out", help="Append accepted calls as NDJSON to this file (default: stdout).", show_default=False
        ),
    ] = None,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", help="Share of requests (0-1) answered with 500/503/429, to test retries.")
    ] = 0.0,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Delay every answer by this many milliseconds.")] = 0,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed --fail-rate's random choices, so a run's faults repeat.", show_default=False),
    ] = None,
) -> None:
    """Run a local Data Pipelines-compatible receiver for offline development and CI.

    Example: cdp serve --port 8787 --out calls.ndjson   (then: cdp track … --endpoint http://127.0.0.1:8787)

    When its output can no longer be written, it answers 503 and exits: 0 when the reader
    closed it (cdp serve | head -1), 1 on any other write error (a full disk).
    """
    from cdpcli.errors import UsageError

    with reporting():
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
        from cdpcli.serve import run_server

        run_server(
            host=host, port=port, api_key=api_key, out_path=out, fail_rate=fail_rate, latency_ms=latency_ms, seed=seed
        )

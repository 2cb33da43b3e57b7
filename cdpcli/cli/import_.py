"""`cdp import`: the options checked, the core's import run with progress and reject lines on
stderr, and the summary rendered from its ImportResult."""

import os
from typing import Annotated

import typer

from cdpcli.cli.base import app
from cdpcli.cli.import_events import ECHO_REJECTS, TerminalEvents, run_and_report, terminal_events
from cdpcli.cli.options import SendOptions, env_note, sending_command
from cdpcli.cli.output import reporting
from cdpcli.errors import UsageError
from cdpcli.importing.shard import SHARD_ENV, Shard, parse_shard, shard_sources
from cdpcli.wire import CALL_TYPES, DEFAULT_BATCH_BYTES

__all__ = ["ECHO_REJECTS", "TerminalEvents", "import_", "run_and_report", "terminal_events"]


@app.command("import")
@sending_command
def import_(
    opts: SendOptions,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="NDJSON, CSV or Parquet files, plain or compressed (gzip, bzip2, xz, zstd), zip and tar archives (member by member), directories (read recursively), or s3://BUCKET/KEY-OR-PREFIX (extra s3); none or - reads stdin.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Call type for lines without one: " + ", ".join(CALL_TYPES) + ".",
            metavar="TYPE",
            show_default=False,
            autocompletion=lambda: list(CALL_TYPES),
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.", metavar="N")] = 16,
    batch_bytes: Annotated[
        int, typer.Option("--batch-bytes", help="Largest request body in bytes (API limit 500,000).", metavar="BYTES")
    ] = DEFAULT_BATCH_BYTES,
    batch_events: Annotated[
        int, typer.Option("--batch-events", help="Most calls per request (API limit 2,500).", metavar="N")
    ] = 2500,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            help="Most requests per second (default 1000), or auto: start there (or at the budget's share) and adapt to the API's 429s.",
            metavar="N|auto",
            show_default=False,
            autocompletion=lambda: ["auto"],
        ),
    ] = None,
    rate_budget: Annotated[
        float | None,
        typer.Option(
            "--rate-budget",
            help="Requests per second for all shards together: each takes TOTAL/N (with --shard K/N).",
            metavar="TOTAL",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Send only shard K of N (0 <= K < N): N imports over the same inputs, K = 0…N-1, send every call once between them; messageIds do not change."
            + env_note("CDP_SHARD"),
            metavar="K/N",
            show_default=False,
        ),
    ] = None,
    shard_by: Annotated[
        str,
        typer.Option(
            "--shard-by",
            help="How lines are dealt to shards: line (by number), file (whole files), user (one person's calls on one shard, in order).",
            metavar="line|file|user",
            autocompletion=lambda: ["line", "file", "user"],
        ),
    ] = "line",
    rejects: Annotated[
        str | None,
        typer.Option(
            "--rejects",
            help="Where invalid and undelivered calls are appended, with the reason (created 0600).  \\[default: cdp-rejects.ndjson]",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            "--checkpoint",
            help="Record progress here; the same command run again resumes after it.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="none (fastest), or phased: identify and group calls first, then track/page/screen, then alias, then deletes and suppressions, each phase once the one before is acknowledged (inputs are read once per phase; stdin is copied to a private temporary file).",
            metavar="none|phased",
            autocompletion=lambda: ["none", "phased"],
        ),
    ] = "none",
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Live progress on stderr (default: when stderr is a terminal).",
            metavar="",
            show_default=False,
        ),
    ] = None,
    max_invalid: Annotated[
        int | None,
        typer.Option(
            "--max-invalid",
            help="Stop after this many invalid lines (exit 1; checkpoint and summary written).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    id_namespace: Annotated[
        str | None,
        typer.Option(
            "--id-namespace",
            metavar="NAME",
            help="Mixed into every derived messageId, so that sources with the same file name (day1/events.ndjson, day2/events.ndjson) get different ids. Keep it the same when re-running an import.",
            show_default=False,
        ),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Input format: ndjson, csv or parquet (default: csv for .csv names, parquet for .parquet names, else ndjson; zip and tar archives are read member by member).",
            metavar="FORMAT",
            show_default=False,
            autocompletion=lambda: ["ndjson", "csv", "parquet"],
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(
            "--s3-endpoint",
            help="Endpoint URL of the S3-compatible store s3:// inputs are read from (MinIO, R2, https://storage.googleapis.com); default: $AWS_ENDPOINT_URL, else AWS S3.",
            metavar="URL",
            show_default=False,
        ),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Lines are a Segment or RudderStack archive's calls (keep messageId and timestamp, drop the archive's envelope keys: writeKey, receivedAt, …), or another tool's export, each record mapped to its call: mixpanel, mixpanel-profiles, amplitude, posthog, ga4.",
            metavar="NAME",
            show_default=False,
            autocompletion=lambda: [
                "segment",
                "rudderstack",
                "mixpanel",
                "mixpanel-profiles",
                "amplitude",
                "posthog",
                "ga4",
            ],
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="CSV: put column SRC at DEST (userId, traits.email, …); repeatable.",
            metavar="SRC=DEST",
            show_default=False,
        ),
    ] = None,
    infer_types: Annotated[
        bool,
        typer.Option(
            "--infer-types",
            help="CSV: cells that are integers, decimals or true/false become those.",
            metavar="",
            show_default=False,
        ),
    ] = False,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="CSV: the cell separator (default: , ; tab or | as the header line shows).",
            metavar="C",
            show_default=False,
        ),
    ] = None,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="In a directory, read what symbolic links point at (each file once; default: skip them, with a warning).",
            metavar="",
            show_default=False,
        ),
    ] = False,
    resolve_identities: Annotated[
        bool,
        typer.Option(
            "--resolve-identities",
            help="Read the input twice: learn which anonymous ids belong to which user (identify calls, aliases, calls carrying both ids, the vendor's merge records), then send anonymous-only calls with that userId added.",
            metavar="",
            show_default=False,
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only calls timestamped at or after TIME (ISO-8601; UTC unless it says).",
            metavar="TIME",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only calls timestamped before TIME.", metavar="TIME", show_default=False),
    ] = None,
    types: Annotated[
        str | None,
        typer.Option("--types", help="Only calls of these types (comma-separated).", metavar="T,…", show_default=False),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help="Only track calls of these events (comma-separated; other types pass).",
            metavar="NAME,…",
            show_default=False,
        ),
    ] = None,
    exclude_events: Annotated[
        str | None,
        typer.Option(
            "--exclude-events", help="Leave out track calls of these events.", metavar="NAME,…", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="Stop after N calls.", metavar="N", show_default=False),
    ] = None,
    sample: Annotated[
        float | None,
        typer.Option(
            "--sample",
            help="Send this share of the calls (0-1), the same ones every run (a hash of the messageId).",
            metavar="FRACTION",
            show_default=False,
        ),
    ] = None,
    preflight: Annotated[
        bool,
        typer.Option(
            "--preflight",
            help="Read everything (same inputs and filters), send and write nothing, no key needed; report calls by type and event, profiles it may create, recent or odd timestamps, attribute-name drift, deletes followed by calls, invalid lines.",
            metavar="",
            show_default=False,
        ),
    ] = False,
    recent: Annotated[
        str,
        typer.Option(
            "--recent",
            help="Calls timestamped in the last 72 hours may trigger campaigns: warn (count them), skip them, or fail (reject each into the rejects file, reason recent; exit 1).",
            metavar="warn|skip|fail",
            autocompletion=lambda: ["warn", "skip", "fail"],
        ),
    ] = "warn",
) -> None:
    """Stream NDJSON calls (one per line) into /batch requests: fast, resumable, nothing lost.

    Example: cdp import events.ndjson --checkpoint events.ckpt

    Example: cdp import segment-logs/ --from segment --since 2024-01-01

    Example: cdp import people.csv --type identify --column id=userId

    Example: cdp import segment-logs/ --from segment --preflight
    """
    from cdpcli.importing import Importer, ImportOptions, check_options, make_sources  # lazy: start-up

    out = opts.output()
    with reporting(out):
        options = ImportOptions.build(
            type=type_,
            concurrency=concurrency,
            batch_bytes=batch_bytes,
            batch_events=batch_events,
            rate=rate,
            rate_budget=rate_budget,
            shard=_shard(shard, shard_by),
            shard_by=shard_by,
            rejects=rejects,
            checkpoint=checkpoint,
            order=order,
            max_invalid=max_invalid,
            dry_run=opts.dry_run,
            archive=from_,
            column=column or [],
            infer_types=infer_types,
            delimiter=delimiter,
            resolve_identities=resolve_identities,
            types=types,
            events=events,
            exclude_events=exclude_events,
            since=since,
            until=until,
            sample=sample,
            limit=limit,
            recent=recent,
        )
        sources, warnings = make_sources(files or [], id_namespace, format_, s3_endpoint, follow_symlinks)
        sources = shard_sources(sources, options.shard)
        check_options(options, sources)
        if preflight:
            from cdpcli.cli.import_preflight import render  # lazy: start-up
            from cdpcli.importing.preflight import preflight as run_preflight  # lazy: start-up

            for text in warnings:
                out.warn(text)
            found = run_preflight(sources, options)
            render(found, out)
            raise typer.Exit(found["exit_code"])
        target = opts.target()
        for text in warnings:
            out.warn(text)
        observer = terminal_events(opts, progress)
        code = run_and_report(Importer(target, sources, options, observer), out, observer)
    raise typer.Exit(code)


def _shard(flag: str | None, by: str) -> str | Shard | None:
    """--shard K/N as given, else $CDP_SHARD (an Indexed Job's $JOB_COMPLETION_INDEX goes
    there) parsed here, so that its errors name the variable."""
    if flag is not None:
        return flag
    if os.environ.get(SHARD_ENV, "").strip():
        return parse_shard(os.environ[SHARD_ENV], by, origin="$" + SHARD_ENV + " ")
    if by != "line":
        raise UsageError(f"--shard-by {by} needs --shard K/N (or $CDP_SHARD)")
    return None

"""`cdp import`: the options checked, the core's import run with progress and reject lines on
stderr, and the summary rendered from its ImportResult."""

import os
from typing import Annotated

import typer

from cdpcli.cli.base import app
from cdpcli.cli.import_events import ECHO_REJECTS, TerminalEvents, run_and_report, terminal_events
from cdpcli.cli.options import (
    BULK_CONCURRENCY,
    CheckpointOpt,
    ConcurrencyOpt,
    MaxInvalidOpt,
    ProgressOpt,
    RejectsOpt,
    SendOptions,
    env_note,
    panel_info,
    sending_command,
)
from cdpcli.cli.output import reporting
from cdpcli.errors import UsageError
from cdpcli.importing.shard import SHARD_ENV, Shard, parse_shard, shard_sources
from cdpcli.wire import CALL_TYPES, DEFAULT_BATCH_BYTES

__all__ = ["ECHO_REJECTS", "TerminalEvents", "import_", "run_and_report", "terminal_events"]


# Panels of `cdp import --help`: each option's short help there; the full text of each is in
# IMPORT_HELP's "Options in detail", after a form feed: --help stops there, docs/cli.md keeps it.
INPUT = "Input"
SELECTION = "Selection"
SENDING = "Sending"
RESUMING = "Rejects and resuming"
IMPORT_PANELS = (INPUT, SELECTION, SENDING, RESUMING)
VENDORS = ["segment", "rudderstack", "mixpanel", "mixpanel-profiles", "amplitude", "posthog", "ga4"]


IMPORT_HELP = """Stream NDJSON calls (one per line) into /batch requests: fast, resumable, nothing lost.

Example: cdp import events.ndjson --checkpoint events.ckpt

Example: cdp import segment-logs/ --from segment --since 2024-01-01

Example: cdp import people.csv --type identify --column id=userId

Example: cdp import segment-logs/ --from segment --preflight
\f
**Options in detail** (`--help` shows each in short):

* `FILE`: NDJSON, CSV or Parquet files, plain or compressed (gzip, bzip2, xz, zstd), zip and tar archives (member by member), directories (read recursively), or s3://BUCKET/KEY-OR-PREFIX (extra s3); none or - reads stdin.
* `--type TYPE`: Call type for lines without one: identify, track, page, screen, group, alias.
* `--format FORMAT`: Input format: ndjson, csv or parquet (default: csv for .csv and .tsv names (.tsv split by tabs), parquet for .parquet names, else ndjson; zip and tar archives are read member by member).
* `--from NAME`: Lines are a Segment or RudderStack archive's calls (keep messageId and timestamp, drop the archive's envelope keys: writeKey, receivedAt, …), or another tool's export, each record mapped to its call: mixpanel, mixpanel-profiles, amplitude, posthog, ga4.
* `--column SRC=DEST`: CSV: put column SRC at DEST (userId, traits.email, …); repeatable.
* `--delimiter C`: CSV: the cell separator (default: , ; tab or | as the header line shows).
* `--infer-types`: CSV: cells that are integers, decimals or true/false become those.
* `--follow-symlinks`: In a directory, read what symbolic links point at (each file once; default: skip them, with a warning).
* `--id-namespace NAME`: Mixed into every derived messageId, so that sources with the same file name (day1/events.ndjson, day2/events.ndjson) get different ids. Keep it the same when re-running an import.
* `--resolve-identities`: Read the input twice: learn which anonymous ids belong to which user (identify calls, aliases, calls carrying both ids, the vendor's merge records), then send anonymous-only calls with that userId added.
* `--s3-endpoint URL`: Endpoint URL of the S3-compatible store s3:// inputs are read from (MinIO, R2, https://storage.googleapis.com); default: $AWS_ENDPOINT_URL, else AWS S3.
* `--since TIME`: Only calls timestamped at or after TIME (ISO-8601; UTC unless it says).
* `--until TIME`: Only calls timestamped before TIME.
* `--types T,…`: Only calls of these types (comma-separated).
* `--events NAME,…`: Only track calls of these events (comma-separated; other types pass).
* `--exclude-events NAME,…`: Leave out track calls of these events (other types pass).
* `--limit N`: Stop after N calls.
* `--sample FRACTION`: Send this share of the calls (0-1), the same ones every run (a hash of the messageId).
* `--recent warn|skip|fail`: Calls timestamped in the last 72 hours may trigger campaigns: warn (count them), skip them, or fail (reject each into the rejects file, reason recent; exit 1).
* `--shard K/N`: Send only shard K of N (0 <= K < N): N imports over the same inputs, K = 0…N-1, send every call once between them; messageIds do not change.
* `--shard-by line|file|user`: How lines are dealt to shards: line (by number), file (whole files), user (one person's calls on one shard, in order).
* `--batch-bytes BYTES`: Largest request body in bytes (API limit 500,000).
* `--batch-events N`: Most calls per request (API limit 2,500).
* `--rate N|auto`: Most requests per second (default 1000), or auto: start there (or at the budget's share) and adapt to the API's 429s.
* `--rate-budget TOTAL`: Requests per second for all shards together: each takes TOTAL/N (with --shard K/N).
* `--order none|phased`: none (fastest), or phased: identify and group calls first, then track/page/screen, then alias, then deletes and suppressions, each phase once the one before is acknowledged (inputs are read once per phase; stdin is copied to a private temporary file).
* `--preflight`: Read everything (same inputs and filters), send and write nothing, no key needed; report calls by type and event, profiles it may create, recent or odd timestamps, attribute-name drift, deletes followed by calls, invalid lines.

The options shared with the operations' bulk `--from` (concurrency, rejects, checkpoint, progress, max-invalid) are given in full in the list above.
"""


@app.command("import", help=IMPORT_HELP)
@sending_command
def import_(
    opts: SendOptions,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, directories, archives, s3://…; none or -: stdin.", metavar="FILE", show_default=False
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
            rich_help_panel=INPUT,
        ),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="ndjson, csv, parquet (default: by name).",
            metavar="FORMAT",
            show_default=False,
            autocompletion=lambda: ["ndjson", "csv", "parquet"],
            rich_help_panel=INPUT,
        ),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Export format: segment, mixpanel, …",
            metavar="NAME",
            show_default=False,
            autocompletion=lambda: VENDORS,
            rich_help_panel=INPUT,
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="CSV: column SRC to DEST; repeatable.",
            metavar="SRC=DEST",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="CSV: separator (default: detected).",
            metavar="C",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = None,
    infer_types: Annotated[
        bool,
        typer.Option(
            "--infer-types",
            help="CSV: numbers and true/false as such.",
            metavar="",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Follow symbolic links in directories.",
            metavar="",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = False,
    id_namespace: Annotated[
        str | None,
        typer.Option(
            "--id-namespace",
            help="Mixed into every derived messageId.",
            metavar="NAME",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = None,
    resolve_identities: Annotated[
        bool,
        typer.Option(
            "--resolve-identities",
            help="Add known userIds to anonymous calls.",
            metavar="",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = False,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(
            "--s3-endpoint",
            help="S3-compatible store of s3:// inputs.",
            metavar="URL",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only calls from TIME on (ISO-8601).",
            metavar="TIME",
            show_default=False,
            rich_help_panel=SELECTION,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Only calls before TIME.", metavar="TIME", show_default=False, rich_help_panel=SELECTION
        ),
    ] = None,
    types: Annotated[
        str | None,
        typer.Option(
            "--types", help="Only calls of these types.", metavar="T,…", show_default=False, rich_help_panel=SELECTION
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help="Only track calls of these events.",
            metavar="NAME,…",
            show_default=False,
            rich_help_panel=SELECTION,
        ),
    ] = None,
    exclude_events: Annotated[
        str | None,
        typer.Option(
            "--exclude-events",
            help="Skip track calls of these events.",
            metavar="NAME,…",
            show_default=False,
            rich_help_panel=SELECTION,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="Stop after N calls.", metavar="N", show_default=False, rich_help_panel=SELECTION),
    ] = None,
    sample: Annotated[
        float | None,
        typer.Option(
            "--sample",
            help="Send this share of the calls (0-1).",
            metavar="FRACTION",
            show_default=False,
            rich_help_panel=SELECTION,
        ),
    ] = None,
    recent: Annotated[
        str,
        typer.Option(
            "--recent",
            help="Calls < 72 h old: warn, skip, fail.",
            metavar="warn|skip|fail",
            autocompletion=lambda: ["warn", "skip", "fail"],
            rich_help_panel=SELECTION,
        ),
    ] = "warn",
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Send only shard K of N." + env_note("CDP_SHARD"),
            metavar="K/N",
            show_default=False,
            rich_help_panel=SELECTION,
        ),
    ] = None,
    shard_by: Annotated[
        str,
        typer.Option(
            "--shard-by",
            help="Deal to shards by line, file, user.",
            metavar="line|file|user",
            autocompletion=lambda: ["line", "file", "user"],
            rich_help_panel=SELECTION,
        ),
    ] = "line",
    concurrency: Annotated[int, panel_info(ConcurrencyOpt, SENDING)] = BULK_CONCURRENCY,
    batch_bytes: Annotated[
        int,
        typer.Option(
            "--batch-bytes",
            help="Largest request body (API: 500,000).",
            metavar="BYTES",
            rich_help_panel=SENDING,
        ),
    ] = DEFAULT_BATCH_BYTES,
    batch_events: Annotated[
        int,
        typer.Option(
            "--batch-events", help="Most calls per request (API: 2,500).", metavar="N", rich_help_panel=SENDING
        ),
    ] = 2500,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            help="Requests per second (1000), or auto.",
            metavar="N|auto",
            show_default=False,
            autocompletion=lambda: ["auto"],
            rich_help_panel=SENDING,
        ),
    ] = None,
    rate_budget: Annotated[
        float | None,
        typer.Option(
            "--rate-budget",
            help="Requests per second for all shards.",
            metavar="TOTAL",
            show_default=False,
            rich_help_panel=SENDING,
        ),
    ] = None,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="none, or phased (profiles first).",
            metavar="none|phased",
            autocompletion=lambda: ["none", "phased"],
            rich_help_panel=SENDING,
        ),
    ] = "none",
    rejects: Annotated[str | None, panel_info(RejectsOpt, RESUMING)] = None,
    checkpoint: Annotated[str | None, panel_info(CheckpointOpt, RESUMING)] = None,
    progress: Annotated[bool | None, panel_info(ProgressOpt, RESUMING)] = None,
    max_invalid: Annotated[int | None, panel_info(MaxInvalidOpt, RESUMING)] = None,
    preflight: Annotated[
        bool,
        typer.Option(
            "--preflight",
            help="Check everything; send nothing.",
            metavar="",
            show_default=False,
            rich_help_panel=RESUMING,
        ),
    ] = False,
) -> None:
    """Run `cdp import` (its help, each option's long help included, is IMPORT_HELP)."""
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

"""The command-line interface: thin Typer commands over the core modules.

Heavy modules (pydantic models, httpx, Rich) are imported inside the commands that need them,
so `cdp --help`, completion and dry-run stay quick.
"""

import os
from typing import Annotated, Optional

import typer

from cdpcli import __version__
from cdpcli.calls import CallInput, run_call
from cdpcli.wire import CALL_TYPES

DEFAULT_BATCH_BYTES = 490_000  # importer.DEFAULT_BATCH_BYTES, without importing it at start-up
from cdpcli.options import (
    AnonymousOpt,
    CategoryOpt,
    ContextItemsOpt,
    ContextOpt,
    IntegrationsOpt,
    MessageIdOpt,
    NameOpt,
    PropertiesOpt,
    PropertyItemsOpt,
    TimestampOpt,
    TraitItemsOpt,
    TraitsOpt,
    UserOpt,
    sending_command,
)
from cdpcli.output import reporting
from cdpcli.session import SendOptions

def _new_app() -> typer.Typer:
    return typer.Typer(
        name="cdp",
        help="Send Customer.io Data Pipelines calls (identify, track, page, screen, group, alias) and NDJSON backfills.",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=False,
    )


app = _new_app()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cdp {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """Send Customer.io Data Pipelines calls from the shell, CI or NDJSON backfills.

    Example: cdp track --user 42 --event Item_Purchased -p price:=9.5 --dry-run
    """


def _call(
    call_type: str,
    opts: SendOptions,
    *,
    user: Optional[str],
    anonymous_id: Optional[str],
    timestamp: Optional[str],
    message_id: Optional[str],
    context: Optional[str],
    context_items: Optional[list[str]],
    integrations: Optional[str],
    fields: Optional[dict] = None,
    objects: Optional[dict] = None,
) -> None:
    with reporting(opts.output()):
        spec = CallInput(
            type=call_type,
            fields={"userId": user, "anonymousId": anonymous_id, "timestamp": timestamp, "messageId": message_id, **(fields or {})},
            objects=objects or {},
            context=context,
            context_items=context_items,
            integrations=integrations,
        )
        run_call(spec, opts)


@app.command()
@sending_command
def identify(
    opts: SendOptions,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    traits: TraitsOpt = None,
    trait: TraitItemsOpt = None,
    timestamp: TimestampOpt = None,
    message_id: MessageIdOpt = None,
    context: ContextOpt = None,
    context_field: ContextItemsOpt = None,
    integrations: IntegrationsOpt = None,
) -> None:
    """Create or update a person and their traits.

    Example: cdp identify --user 42 -t email=ada@example.com -t plan=pro -t logins:=7
    """
    _call("identify", opts, user=user, anonymous_id=anonymous_id, timestamp=timestamp, message_id=message_id,
          context=context, context_items=context_field, integrations=integrations,
          objects={"traits": (traits, trait)})


@app.command()
@sending_command
def track(
    opts: SendOptions,
    event: Annotated[str, typer.Option("--event", "-e", help="Event name, e.g. Item_Purchased.", show_default=False, rich_help_panel="Call fields")],
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    properties: PropertiesOpt = None,
    prop: PropertyItemsOpt = None,
    timestamp: TimestampOpt = None,
    message_id: MessageIdOpt = None,
    context: ContextOpt = None,
    context_field: ContextItemsOpt = None,
    integrations: IntegrationsOpt = None,
) -> None:
    """Record an event a person did.

    Example: cdp track --user 42 --event Item_Purchased -p sku=A-1 -p price:=9.5
    """
    _call("track", opts, user=user, anonymous_id=anonymous_id, timestamp=timestamp, message_id=message_id,
          context=context, context_items=context_field, integrations=integrations,
          fields={"event": event}, objects={"properties": (properties, prop)})


def _view(call_type: str, opts: SendOptions, name: Optional[str], category: Optional[str], properties: Optional[str],
          prop: Optional[list[str]], **common) -> None:
    # The official SDKs send category top level; the OpenAPI document puts it in properties.
    items = list(prop or [])
    if category is not None:
        items.insert(0, "category=" + category)
    _call(call_type, opts, fields={"name": name, "category": category}, objects={"properties": (properties, items)}, **common)


@app.command()
@sending_command
def page(
    opts: SendOptions,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    name: NameOpt = None,
    category: CategoryOpt = None,
    properties: PropertiesOpt = None,
    prop: PropertyItemsOpt = None,
    timestamp: TimestampOpt = None,
    message_id: MessageIdOpt = None,
    context: ContextOpt = None,
    context_field: ContextItemsOpt = None,
    integrations: IntegrationsOpt = None,
) -> None:
    """Record a page view on a website.

    Example: cdp page --user 42 --name Pricing -p url=https://example.com/pricing
    """
    _view("page", opts, name, category, properties, prop, user=user, anonymous_id=anonymous_id, timestamp=timestamp,
          message_id=message_id, context=context, context_items=context_field, integrations=integrations)


@app.command()
@sending_command
def screen(
    opts: SendOptions,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    name: NameOpt = None,
    category: CategoryOpt = None,
    properties: PropertiesOpt = None,
    prop: PropertyItemsOpt = None,
    timestamp: TimestampOpt = None,
    message_id: MessageIdOpt = None,
    context: ContextOpt = None,
    context_field: ContextItemsOpt = None,
    integrations: IntegrationsOpt = None,
) -> None:
    """Record a screen view in a mobile app.

    Example: cdp screen --anonymous-id 7f3c --name Checkout -p step:=2
    """
    _view("screen", opts, name, category, properties, prop, user=user, anonymous_id=anonymous_id, timestamp=timestamp,
          message_id=message_id, context=context, context_items=context_field, integrations=integrations)


@app.command()
@sending_command
def group(
    opts: SendOptions,
    group_id: Annotated[str, typer.Option("--group", "--group-id", "-g", help="groupId: the object (company, account…) to relate the person to.", show_default=False, rich_help_panel="Call fields")],
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    object_type_id: Annotated[Optional[str], typer.Option("--object-type-id", help="Object type ID (sent as objectTypeId; the API assumes 1).", show_default=False, rich_help_panel="Call fields")] = None,
    traits: TraitsOpt = None,
    trait: TraitItemsOpt = None,
    timestamp: TimestampOpt = None,
    message_id: MessageIdOpt = None,
    context: ContextOpt = None,
    context_field: ContextItemsOpt = None,
    integrations: IntegrationsOpt = None,
) -> None:
    """Relate a person to an object (a group, company or account) and set its traits.

    Example: cdp group --user 42 --group acme --object-type-id 1 -t name=Acme -t seats:=50
    """
    _call("group", opts, user=user, anonymous_id=anonymous_id, timestamp=timestamp, message_id=message_id,
          context=context, context_items=context_field, integrations=integrations,
          fields={"groupId": group_id, "objectTypeId": object_type_id}, objects={"traits": (traits, trait)})


@app.command()
@sending_command
def alias(
    opts: SendOptions,
    user: Annotated[str, typer.Option("--user", "-u", "--user-id", help="userId to keep.", show_default=False, rich_help_panel="Call fields")],
    previous_id: Annotated[str, typer.Option("--previous-id", help="The anonymousId or userId to merge into --user.", show_default=False, rich_help_panel="Call fields")],
    timestamp: TimestampOpt = None,
    message_id: MessageIdOpt = None,
    context: ContextOpt = None,
    context_field: ContextItemsOpt = None,
    integrations: IntegrationsOpt = None,
) -> None:
    """Merge two profiles: --previous-id into --user.

    Example: cdp alias --user 42 --previous-id 7f3c-anon
    """
    _call("alias", opts, user=user, anonymous_id=None, timestamp=timestamp, message_id=message_id,
          context=context, context_items=context_field, integrations=integrations,
          fields={"previousId": previous_id})


@app.command("import")
@sending_command
def import_(
    opts: SendOptions,
    files: Annotated[Optional[list[str]], typer.Argument(help="NDJSON files; none or - reads stdin.", show_default=False)] = None,
    type_: Annotated[Optional[str], typer.Option("--type", help="Call type for lines without one.", show_default=False, autocompletion=lambda: list(CALL_TYPES))] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.")] = 16,
    batch_bytes: Annotated[int, typer.Option("--batch-bytes", help="Largest request body in bytes (API limit 500,000).")] = DEFAULT_BATCH_BYTES,
    batch_events: Annotated[int, typer.Option("--batch-events", help="Most calls per request (API limit 2,500).")] = 2500,
    rate: Annotated[float, typer.Option("--rate", help="Most requests per second.")] = 1000.0,
    rejects: Annotated[str, typer.Option("--rejects", help="Where invalid and undelivered calls are appended, with the reason.")] = "cdp-rejects.ndjson",
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", help="Record progress here; the same command run again resumes after it.", show_default=False)] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live progress on stderr (default: when stderr is a terminal).", show_default=False)] = None,
) -> None:
    """Stream NDJSON calls (one per line) into /batch requests: fast, resumable, nothing lost.

    Example: zcat events.ndjson.gz | cdp import --type track --checkpoint import.ckpt
    """
    from cdpcli.imports import run_import

    with reporting(opts.output()):
        code = run_import(
            opts, files or [], default_type=type_, concurrency=concurrency, batch_bytes=batch_bytes,
            batch_events=batch_events, rate=rate, rejects=rejects, checkpoint=checkpoint, progress=progress,
        )
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8787,
    api_key: Annotated[Optional[str], typer.Option("--api-key", help="Accept only this key (default: any non-empty key).", show_default=False)] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="Append accepted calls as NDJSON to this file (default: stdout).", show_default=False)] = None,
    fail_rate: Annotated[float, typer.Option("--fail-rate", help="Share of requests (0-1) answered with 500/503/429, to test retries.")] = 0.0,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Delay every answer by this many milliseconds.")] = 0,
) -> None:
    """Run a local Data Pipelines-compatible receiver for offline development and CI.

    Example: cdp serve --port 8787 --out calls.ndjson   (then: cdp track … --endpoint http://127.0.0.1:8787)
    """
    from cdpcli.errors import UsageError

    with reporting():
        if not 0 <= fail_rate <= 1:
            raise UsageError(f"--fail-rate must be between 0 and 1, not {fail_rate}")
        from cdpcli.server import run_server

        run_server(host=host, port=port, api_key=api_key, out_path=out, fail_rate=fail_rate, latency_ms=latency_ms)


def app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command being run registered, when that is clear from argv.

    Typer builds the click parameters of every registered command on each start (~15 ms for
    all of ours); `cdp track …` needs one. Help, completion and anything unclear get the full app.
    """
    name = argv[0] if argv else ""
    if name.startswith("-") or "_CDP_COMPLETE" in os.environ:
        return app
    for info in app.registered_commands:
        if (info.name or info.callback.__name__) == name:
            lean = _new_app()
            lean.registered_callback = app.registered_callback
            lean.registered_commands = [info]
            return lean
    return app


def main() -> None:
    import sys

    app_for(sys.argv[1:])(prog_name="cdp")

"""The command-line interface: thin Typer commands over the core modules.

Heavy modules (pydantic models, httpx, Rich) are imported inside the commands that need them,
so `cdp --help`, completion and dry-run stay quick.
"""

import os
import sys
from typing import Annotated

import typer

from cdpcli import __version__
from cdpcli.calls import CallInput, CommonFields, run_call
from cdpcli.config import SETTINGS, profile_names
from cdpcli.options import (
    AnonymousOpt,
    CategoryOpt,
    EmailOpt,
    NameOpt,
    PropertiesOpt,
    PropertyItemsOpt,
    TraitItemsOpt,
    TraitsOpt,
    UserOpt,
    common_call_options,
    sending_command,
)
from cdpcli.output import reporting
from cdpcli.session import SendOptions
from cdpcli.wire import CALL_TYPES, DEFAULT_BATCH_BYTES


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
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Send Customer.io Data Pipelines calls from the shell, CI or NDJSON backfills.

    Example: cdp track --user 42 --event Item_Purchased -p price:=9.5 --dry-run
    """


def _call(
    call_type: str,
    opts: SendOptions,
    common: CommonFields,
    *,
    fields: dict,
    objects: dict | None = None,
) -> None:
    with reporting(opts.output()):
        spec = CallInput(
            type=call_type,
            fields={"timestamp": common.timestamp, "messageId": common.message_id, **fields},
            objects=objects or {},
            context=common.context,
            context_items=common.context_field,
            integrations=common.integrations,
        )
        run_call(spec, opts)


@app.command()
@sending_command
@common_call_options
def identify(
    opts: SendOptions,
    common: CommonFields,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    traits: TraitsOpt = None,
    trait: TraitItemsOpt = None,
    email: EmailOpt = None,
) -> None:
    """Create or update a person and their traits.

    Example: cdp identify --user 42 -t email=ada@example.com -t plan=pro -t logins:=7

    By email alone (sent with "userId": ""): cdp identify --email ada@example.com -t plan=pro
    """
    if email is not None and any(item.startswith(("email=", "email:=")) for item in trait or []):
        with reporting(opts.output()):
            from cdpcli.errors import UsageError

            raise UsageError("--email and -t email=… both give the email", hint="keep one of them")
    items = [*(trait or []), "email=" + email] if email is not None else trait
    _call(
        "identify",
        opts,
        common,
        fields={"userId": user, "anonymousId": anonymous_id},
        objects={"traits": (traits, items)},
    )


@app.command()
@sending_command
@common_call_options
def track(
    opts: SendOptions,
    common: CommonFields,
    event: Annotated[
        str,
        typer.Option(
            "--event", "-e", help="Event name, e.g. Item_Purchased.", show_default=False, rich_help_panel="Call fields"
        ),
    ],
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    properties: PropertiesOpt = None,
    prop: PropertyItemsOpt = None,
) -> None:
    """Record an event a person did.

    Example: cdp track --user 42 --event Item_Purchased -p sku=A-1 -p price:=9.5
    """
    _call(
        "track",
        opts,
        common,
        fields={"userId": user, "anonymousId": anonymous_id, "event": event},
        objects={"properties": (properties, prop)},
    )


def _view_command(call_type: str, doc: str):
    """page and screen take the same options; one definition serves both."""

    @sending_command
    @common_call_options
    def command(
        opts: SendOptions,
        common: CommonFields,
        user: UserOpt = None,
        anonymous_id: AnonymousOpt = None,
        name: NameOpt = None,
        category: CategoryOpt = None,
        properties: PropertiesOpt = None,
        prop: PropertyItemsOpt = None,
    ) -> None:
        # The official SDKs send category top level; the OpenAPI document puts it in properties.
        items = list(prop or [])
        if category is not None:
            items.insert(0, "category=" + category)
        _call(
            call_type,
            opts,
            common,
            fields={"userId": user, "anonymousId": anonymous_id, "name": name, "category": category},
            objects={"properties": (properties, items)},
        )

    command.__doc__ = doc
    command.__name__ = call_type
    return command


page = app.command("page")(
    _view_command(
        "page",
        """Record a page view on a website.

    Example: cdp page --user 42 --name Pricing -p url=https://example.com/pricing
    """,
    )
)
screen = app.command("screen")(
    _view_command(
        "screen",
        """Record a screen view in a mobile app.

    Example: cdp screen --anonymous-id 7f3c --name Checkout -p step:=2
    """,
    )
)


@app.command()
@sending_command
@common_call_options
def group(
    opts: SendOptions,
    common: CommonFields,
    group_id: Annotated[
        str,
        typer.Option(
            "--group",
            "--group-id",
            "-g",
            help="groupId: the object (company, account…) to relate the person to.",
            show_default=False,
            rich_help_panel="Call fields",
        ),
    ],
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    object_type_id: Annotated[
        str | None,
        typer.Option(
            "--object-type-id",
            help="Object type ID (sent as objectTypeId; the API assumes 1).",
            show_default=False,
            rich_help_panel="Call fields",
        ),
    ] = None,
    traits: TraitsOpt = None,
    trait: TraitItemsOpt = None,
) -> None:
    """Relate a person to an object (a group, company or account) and set its traits.

    Example: cdp group --user 42 --group acme --object-type-id 1 -t name=Acme -t seats:=50
    """
    _call(
        "group",
        opts,
        common,
        fields={"userId": user, "anonymousId": anonymous_id, "groupId": group_id, "objectTypeId": object_type_id},
        objects={"traits": (traits, trait)},
    )


@app.command()
@sending_command
@common_call_options
def alias(
    opts: SendOptions,
    common: CommonFields,
    user: Annotated[
        str,
        typer.Option(
            "--user", "-u", "--user-id", help="userId to keep.", show_default=False, rich_help_panel="Call fields"
        ),
    ],
    previous_id: Annotated[
        str,
        typer.Option(
            "--previous-id",
            help="The anonymousId or userId to merge into --user.",
            show_default=False,
            rich_help_panel="Call fields",
        ),
    ],
) -> None:
    """Merge two profiles: --previous-id into --user.

    Example: cdp alias --user 42 --previous-id 7f3c-anon
    """
    _call("alias", opts, common, fields={"userId": user, "previousId": previous_id})


@app.command("import")
@sending_command
def import_(
    opts: SendOptions,
    files: Annotated[
        list[str] | None, typer.Argument(help="NDJSON files; none or - reads stdin.", show_default=False)
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Call type for lines without one.",
            show_default=False,
            autocompletion=lambda: list(CALL_TYPES),
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.")] = 16,
    batch_bytes: Annotated[
        int, typer.Option("--batch-bytes", help="Largest request body in bytes (API limit 500,000).")
    ] = DEFAULT_BATCH_BYTES,
    batch_events: Annotated[
        int, typer.Option("--batch-events", help="Most calls per request (API limit 2,500).")
    ] = 2500,
    rate: Annotated[float, typer.Option("--rate", help="Most requests per second.")] = 1000.0,
    rejects: Annotated[
        str | None,
        typer.Option(
            "--rejects",
            help="Where invalid and undelivered calls are appended, with the reason (created 0600).  [default: cdp-rejects.ndjson]",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            "--checkpoint",
            help="Record progress here; the same command run again resumes after it.",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Live progress on stderr (default: when stderr is a terminal).",
            show_default=False,
        ),
    ] = None,
    max_invalid: Annotated[
        int | None,
        typer.Option(
            "--max-invalid",
            help="Stop after this many invalid lines (exit 1; checkpoint and summary written).",
            show_default=False,
        ),
    ] = None,
    id_namespace: Annotated[
        str | None,
        typer.Option(
            "--id-namespace",
            help="Mixed into every derived messageId, so that sources with the same file name (day1/events.ndjson, day2/events.ndjson) get different ids. Keep it the same when re-running an import.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Stream NDJSON calls (one per line) into /batch requests: fast, resumable, nothing lost.

    Example: cdp import events.ndjson --checkpoint events.ckpt

    Example: zcat events.ndjson.gz | cdp import --type track
    """
    from cdpcli.imports import run_import

    with reporting(opts.output()):
        code = run_import(
            opts,
            files or [],
            default_type=type_,
            concurrency=concurrency,
            batch_bytes=batch_bytes,
            batch_events=batch_events,
            rate=rate,
            rejects=rejects,
            checkpoint=checkpoint,
            progress=progress,
            max_invalid=max_invalid,
            id_namespace=id_namespace,
        )
    raise typer.Exit(code)


connect_app = typer.Typer(help="Check the API key and endpoint.", no_args_is_help=True)
app.add_typer(connect_app, name="connect")


@connect_app.command("test")
@sending_command
def connect_test(
    opts: SendOptions,
    send_event: Annotated[
        bool, typer.Option("--send-event", help="Send one real test call (a track event) instead of an empty batch.")
    ] = False,
) -> None:
    """Check the key and reachability of the endpoint, as the HTTP source's setup step does.

    Example: cdp connect test --profile staging

    TLS: an https:// endpoint (in any letter case) gets certificate checks, always; a private CA
    bundle goes in SSL_CERT_FILE (or SSL_CERT_DIR).

    Proxies: HTTPS_PROXY, HTTP_PROXY and ALL_PROXY are used, and NO_PROXY lists hosts that go
    direct; the report names the proxy in use, and says so when it is the proxy that fails.
    """
    from cdpcli.connect import format_report, run_connect_test, test_request
    from cdpcli.session import open_session

    out = opts.output()
    with reporting(out):
        session = open_session(opts, need_key=True)
        if session.dry_run:
            from cdpcli.calls import print_dry_run

            print_dry_run(session, test_request(session, send_event))
            return
        report, code, hint = run_connect_test(session, send_event)
        if out.json_mode:
            shown = {k: report[k] for k in ("ok", "status", "endpoint", "region", "auth", "latency_ms")}
            shown |= {k: report[k] for k in ("proxy", "error") if report.get(k)}
            if code:  # the same shape as every other error under --json
                shown |= {"hint": hint, "exit_code": int(code)}
            out.json(shown)
        else:
            out.result(format_report(report))
        if code:
            out.error(
                f"{report['verdict']} at {report['url']}" + (f": {report['error']}" if report.get("error") else ""),
                hint,
            )
    raise typer.Exit(int(code))


config_app = typer.Typer(help="Read and write settings in the config file (per profile).", no_args_is_help=True)
app.add_typer(config_app, name="config")

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Profile to use (default: $CDP_PROFILE, else 'default').",
        show_default=False,
        autocompletion=profile_names,
    ),
]
KeyArg = Annotated[
    str,
    typer.Argument(
        help="One of: api-key, region, endpoint, timeout, retries, strict, gzip.",
        show_default=False,
        autocompletion=lambda: list(SETTINGS),
    ),
]


def _profile(profile: str | None) -> str:
    return profile or os.environ.get("CDP_PROFILE") or "default"


def _shown(name: str, value: object) -> str:
    from cdpcli.wire import mask_key, masked_url

    if value is None:
        return ""
    if name == "api-key":
        return mask_key(str(value))  # never the whole key
    if name == "endpoint":
        return masked_url(str(value))  # a hand-edited user:password@ is never shown
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@config_app.command("set")
def config_set(
    key: KeyArg,
    value: Annotated[
        str | None,
        typer.Argument(
            help="The value; for api-key leave it out to type it hidden or pipe it on stdin.", show_default=False
        ),
    ] = None,
    profile: ProfileOpt = None,
) -> None:
    """Store a setting in a profile of the config file (mode 0600).

    Example: cdp config set api-key --profile prod   (prompts; or: echo "$KEY" | cdp config set api-key)
    """
    import sys

    from cdpcli.config import set_value
    from cdpcli.errors import UsageError

    with reporting():
        if value is None:
            if key != "api-key":
                raise UsageError(f"missing VALUE for {key}", hint=f"cdp config set {key} VALUE")
            if sys.stdin.isatty():
                import getpass

                value = getpass.getpass("API key (input hidden): ")
            else:
                try:  # all of it (bounded): a stray line break inside the key must not cut it short silently
                    value = sys.stdin.read(65536)
                except UnicodeDecodeError:
                    raise UsageError(
                        "the API key on stdin is not text (the key is not shown)",
                        hint="an API key is plain ASCII: copy it again and pipe it in",
                    ) from None
            value = value.strip()
            if not value:
                raise UsageError(
                    "no API key given", hint='type it at the prompt, or pipe it: echo "$KEY" | cdp config set api-key'
                )
        elif key == "api-key":
            from cdpcli.output import Output

            Output().warn(
                "a key given as an argument stays in your shell history; next time leave VALUE out to be prompted"
            )
        name = _profile(profile)
        path = set_value(name, key, value)
        typer.echo(f"set {key} = {_shown(key, value)} in profile {name} ({path})", err=True)


@config_app.command("get")
def config_get(key: KeyArg, profile: ProfileOpt = None) -> None:
    """Print a setting stored in a profile (API keys masked).

    Example: cdp config get region --profile staging
    """
    from cdpcli.config import DEFAULT_PROFILE, check_key_name, load_config, unknown_profile_error
    from cdpcli.errors import UsageError

    with reporting():
        check_key_name(key)
        name = _profile(profile)
        profiles = load_config()
        if name != DEFAULT_PROFILE and name not in profiles:
            raise unknown_profile_error(name, profiles)
        value = profiles.get(name, {}).get(key)
        if value is None:
            raise UsageError(f"{key} is not set in profile {name}", hint=f"cdp config set {key} VALUE --profile {name}")
        typer.echo(_shown(key, value))


@config_app.command("unset")
def config_unset(key: KeyArg, profile: ProfileOpt = None) -> None:
    """Remove a setting from a profile.

    Example: cdp config unset endpoint --profile staging
    """
    from cdpcli.config import unset_value

    with reporting():
        name = _profile(profile)
        removed = unset_value(name, key)
        typer.echo(f"{'removed' if removed else 'was not set:'} {key} in profile {name}", err=True)


@config_app.command("list")
@sending_command
def config_list(
    opts: SendOptions,
    resolved: Annotated[
        bool,
        typer.Option(
            "--resolved",
            help="Show the value each setting takes and where it comes from (flag > env > profile > default).",
        ),
    ] = False,
) -> None:
    """List the settings of a profile, or with --resolved what a command would use and why.

    Example: cdp config list --resolved --profile prod
    """
    from cdpcli.config import DEFAULT_PROFILE, config_path, load_config, unknown_profile_error

    out = opts.output()
    with reporting(out):
        if resolved:
            from cdpcli.session import open_session

            session = open_session(opts, need_key=False)
            rows = {name: (item.value, item.source) for name, item in session.settings.items()}
            rows["endpoint"] = (
                session.base,
                rows["endpoint"][1] if rows["endpoint"][0] else f"region {session.region}",
            )
            if out.json_mode:
                out.json(
                    {
                        "profile": session.profile,
                        "config": str(config_path()),
                        "settings": {k: {"value": _shown(k, v), "source": src} for k, (v, src) in rows.items()},
                    }
                )
                return
            out.result(f"profile {session.profile} ({config_path()})")
            for name, (value, source) in rows.items():
                out.result(f"{name:<9} {_shown(name, value) or '-':<40} {source}")
            return
        profiles = load_config()
        if opts.profile and opts.profile != DEFAULT_PROFILE and opts.profile not in profiles:
            raise unknown_profile_error(opts.profile, profiles)
        names = [opts.profile] if opts.profile else sorted(profiles) or []
        if out.json_mode:
            out.json(
                {
                    "config": str(config_path()),
                    "profiles": {n: {k: _shown(k, v) for k, v in profiles.get(n, {}).items()} for n in names},
                }
            )
            return
        if not profiles:
            out.info(f"no settings yet in {config_path()}; try: cdp config set api-key")
        for name in names:
            out.result(f"[{name}]")
            for key, value in profiles.get(name, {}).items():
                out.result(f"{key} = {_shown(key, value)}")


@app.command()
def completions(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", autocompletion=lambda: list(COMPLETION_SHELLS))],
) -> None:
    """Print the shell completion script (also in completions/ of the source tree).

    Example: cdp completions bash > ~/.local/share/bash-completion/completions/cdp
    """
    from cdpcli.errors import UsageError

    with reporting():
        if shell not in COMPLETION_SHELLS:
            raise UsageError(f"unsupported shell {shell!r}", hint="one of: " + ", ".join(COMPLETION_SHELLS))
        typer.echo(completion_script(shell), nl=False)


COMPLETION_SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="cdp", complete_var="_CDP_COMPLETE", shell=shell) + "\n"


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


def _run(argv: list[str]) -> int:
    """Run the app; under --json, usage errors that Typer catches before any command runs
    (a missing --event, --retries abc) are one JSON object on stdout like every other outcome."""
    app_to_run = app_for(argv)
    if "--json" not in argv:
        app_to_run(prog_name="cdp")  # standalone: Typer formats usage errors and exits
        return 0
    try:
        result = app_to_run(prog_name="cdp", standalone_mode=False)
    except typer.TyperException as exc:  # click's UsageError, BadParameter, …: public base class
        exc.show()
        from cdpcli.output import Output

        exit_code = getattr(exc, "exit_code", 2)
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else "cdp"
        Output(json_mode=True).json(
            {"ok": False, "error": exc.format_message(), "hint": f"see `{where} --help`", "exit_code": exit_code}
        )
        return exit_code
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    if "_CDP_COMPLETE" in os.environ:  # the shell asks for completions (see completions/)
        from typer._completion_classes import completion_init

        completion_init()
    try:
        code = _run(sys.argv[1:])
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    # Every command has closed its files by now; skipping the interpreter's teardown of
    # pydantic, httpx and typer saves ~30-40 ms on every run.
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    try:
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)

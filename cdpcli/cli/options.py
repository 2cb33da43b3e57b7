"""The one place that defines each shared option.

`sending_command` adds the sending options (SPEC: "Options for every sending command") to a
command's signature and hands them to it packed in one `SendOptions` named `opts`, so each
command lists only its own options and users can type them after the subcommand.
`SendOptions.target()` turns them into the core's Target, `.output()` into the command's Output.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer

from cdpcli.cli.output import Output
from cdpcli.config import profile_names
from cdpcli.settings import PROFILE_ENV, SETTINGS

if TYPE_CHECKING:
    from cdpcli.target import Target


@dataclass
class SendOptions:
    """The sending options every sending command takes, as typed (None = not given)."""

    api_key: str | None = None
    region: str | None = None
    endpoint: str | None = None
    profile: str | None = None
    timeout: float | None = None
    retries: int | None = None
    strict: bool | None = None
    gzip: bool | None = None
    dry_run: bool = False
    json: bool = False
    quiet: bool = False
    verbose: int = 0

    _out: Output | None = field(default=None, init=False, repr=False, compare=False)

    def output(self) -> Output:
        """The command's one Output (the same object each call)."""
        if self._out is None:
            self._out = Output(
                json_mode=self.json,
                quiet=self.quiet,
                verbosity=self.verbose,
                api_key=self.api_key,
                profile=self.profile,
            )
        return self._out

    def target(self, *, need_key: bool = True) -> Target:
        """The core's Target from these flags (flag > env > profile > default); its warnings
        are printed here, also when resolving fails. A key is needed to send, not for a dry run."""
        from cdpcli.target import Target  # lazy: start-up

        warnings: list[str] = []
        try:
            target = Target.resolve(
                profile=self.profile,
                api_key=self.api_key,
                region=self.region,
                endpoint=self.endpoint,
                timeout=self.timeout,
                retries=self.retries,
                strict=self.strict,
                gzip=self.gzip,
                warnings=warnings,
            )
        finally:  # said before any error resolving ends in
            for text in warnings:
                self.output().warn(text)
        if need_key and not self.dry_run:
            target.require_key()
        return target


CONNECTION = "Connection"
OUTPUT = "Output"
CALL = "Call fields"

# The metavar of a plain flag: nothing, where Typer would show <bool> or <int>.
FLAG = ""


def env_note(setting: str) -> str:
    """The help text's note of the environment variable behind a setting. Escaped: Typer reads
    help as Rich markup, where a bare [env: …] is a style tag and vanishes. The variable is
    read by settings.resolve (flag > env > profile > default), never by Click itself."""
    name = setting if setting.startswith("CDP_") else SETTINGS[setting][0]
    return f"\n\n\\[env: {name}]"  # its own paragraph: a line of its own in help


def in_panel(option: Any, panel: str) -> Any:
    """The same option (one declaration: flags, help, type) shown in another help panel."""
    kind, _ = get_args(option)
    return Annotated[kind, panel_info(option, panel)]


def panel_info(option: Any, panel: str) -> Any:
    """in_panel's option info alone, for a signature: `x: Annotated[int, panel_info(XOpt, P)]`
    (a type checker accepts a call there, not in place of the whole annotation)."""
    moved = copy.copy(get_args(option)[1])
    moved.rich_help_panel = panel
    return moved


ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Config profile to use (default: 'default')." + env_note(PROFILE_ENV),
        metavar="NAME",
        show_default=False,
        autocompletion=profile_names,
    ),
]

ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key of the HTTP source." + env_note("api-key"),
        metavar="KEY",
        show_default=False,
        rich_help_panel=CONNECTION,
    ),
]

_SEND_OPTIONS: dict[str, Any] = {
    "api_key": ApiKeyOpt,
    "region": Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Default: us, or the region of a pk_/sk_ key." + env_note("region"),
            metavar="us|eu",
            show_default=False,
            rich_help_panel=CONNECTION,
            autocompletion=lambda: ["us", "eu"],
        ),
    ],
    "endpoint": Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Base URL, http:// or https:// (no user:password@), e.g. http://127.0.0.1:8787/v1 (overrides --region)."
            + env_note("endpoint"),
            metavar="URL",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "profile": in_panel(ProfileOpt, CONNECTION),
    "timeout": Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds to wait for each response (default 10)." + env_note("timeout"),
            metavar="SECONDS",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "retries": Annotated[
        int | None,
        typer.Option(
            "--retries",
            help="Retries for network errors, 408, 429 and 5xx (default 3): at most N+1 attempts; a wait asked for by Retry-After counts as a retry."
            + env_note("retries"),
            metavar="N",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "strict": Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Send X-Strict-Mode: 1 so invalid calls and wrong keys get 400/401 instead of a silent 200 (default on)."
            + env_note("strict"),
            metavar=FLAG,
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "gzip": Annotated[
        bool | None,
        typer.Option(
            "--gzip/--no-gzip",
            help="Compress request bodies (Content-Encoding: gzip)." + env_note("gzip"),
            metavar=FLAG,
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "dry_run": Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the exact request instead of sending it; needs no API key.",
            metavar=FLAG,
            rich_help_panel=OUTPUT,
        ),
    ],
    "json": Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print results as one JSON object per line; errors too: {"ok": false, "error", "hint", "exit_code"}.',
            metavar=FLAG,
            rich_help_panel=OUTPUT,
        ),
    ],
    "quiet": Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only errors (and --json results).", metavar=FLAG, rich_help_panel=OUTPUT
        ),
    ],
    "verbose": Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Show each request and answer on stderr (-vv: with headers; the key redacted).",
            metavar=FLAG,
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ],
}
_SEND_DEFAULTS = {"dry_run": False, "json": False, "quiet": False, "verbose": 0}

# What `cdp config list` uses: the settings it resolves with --resolved, and --json. The same
# option objects as above (one definition each), in a smaller bundle.
_CONNECTION_OPTIONS = {
    name: _SEND_OPTIONS[name]
    for name in ("api_key", "region", "endpoint", "profile", "timeout", "retries", "strict", "gzip", "json")
}


def extend_signature(
    func: Callable[..., Any], target: str, options: dict[str, Any], defaults: dict[str, Any], pack: Callable[..., Any]
) -> Callable[..., Any]:
    """Add `options` to func's signature as keyword-only parameters; func gets them packed
    into one object as its `target` parameter."""
    signature = inspect.signature(func)
    own = [p for p in signature.parameters.values() if p.name != target]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(name), annotation=annotation)
        for name, annotation in options.items()
    ]

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        packed = pack(**{name: kwargs.pop(name) for name in options})
        return func(**kwargs, **{target: packed})

    command.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in own + added}
    del command.__wrapped__  # Typer must read __signature__, not the wrapped function
    return command


def sending_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give `func(…, opts: SendOptions)` the sending options."""
    return extend_signature(func, "opts", _SEND_OPTIONS, _SEND_DEFAULTS, SendOptions)


def connection_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give `func(…, opts: SendOptions)` only the connection settings and --json (the other
    fields of `opts` keep their defaults: no dry run, not quiet, not verbose)."""
    return extend_signature(func, "opts", _CONNECTION_OPTIONS, _SEND_DEFAULTS, SendOptions)


# Options shared by the six call commands.
ITEM = "KEY=VALUE|KEY:=JSON"
JSON_OR_FILE = "JSON|@FILE"
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        "--user-id",
        help="userId of a known person.",
        metavar="ID",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
AnonymousOpt = Annotated[
    str | None,
    typer.Option(
        "--anonymous-id",
        help="anonymousId, for someone not yet identified.",
        metavar="ID",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
TimestampOpt = Annotated[
    str | None,
    typer.Option(
        "--timestamp",
        help="When it happened: ISO-8601 (naive = UTC) or Unix seconds. Default: now.",
        metavar="TIME",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
MessageIdOpt = Annotated[
    str | None,
    typer.Option(
        "--message-id",
        help="messageId for de-duplication. Default: a new UUID.",
        metavar="ID",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="context object: JSON, @FILE or @- (stdin).",
        metavar=JSON_OR_FILE,
        show_default=False,
        rich_help_panel=CALL,
    ),
]
ContextItemsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-c",
        "--context-field",
        help="context field KEY=VALUE or KEY:=JSON; a dotted KEY nests (page.url=…). Repeatable.",
        metavar=ITEM,
        show_default=False,
        rich_help_panel=CALL,
    ),
]
IntegrationsOpt = Annotated[
    str | None,
    typer.Option(
        "--integrations",
        help="integrations object: JSON, @FILE or @-, e.g. '{\"All\":false}'.",
        metavar=JSON_OR_FILE,
        show_default=False,
        rich_help_panel=CALL,
    ),
]


@dataclass
class CommonFields:
    """The options every call command takes, as typed."""

    timestamp: str | None = None
    message_id: str | None = None
    context: str | None = None
    context_field: list[str] | None = None
    integrations: str | None = None


_COMMON_CALL_OPTIONS: dict[str, Any] = {
    "timestamp": TimestampOpt,
    "message_id": MessageIdOpt,
    "context": ContextOpt,
    "context_field": ContextItemsOpt,
    "integrations": IntegrationsOpt,
}


def common_call_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give `func(…, common: CommonFields)` the options all six call commands share."""
    return extend_signature(func, "common", _COMMON_CALL_OPTIONS, {}, CommonFields)


TraitsOpt = Annotated[
    str | None,
    typer.Option(
        "--traits",
        help="traits object: JSON, @FILE or @- (stdin).",
        metavar=JSON_OR_FILE,
        show_default=False,
        rich_help_panel=CALL,
    ),
]
TraitItemsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-t",
        "--trait",
        help="trait KEY=VALUE (string) or KEY:=JSON. Repeatable; applied on top of --traits.",
        metavar=ITEM,
        show_default=False,
        rich_help_panel=CALL,
    ),
]
PropertiesOpt = Annotated[
    str | None,
    typer.Option(
        "--properties",
        help="properties object: JSON, @FILE or @- (stdin).",
        metavar=JSON_OR_FILE,
        show_default=False,
        rich_help_panel=CALL,
    ),
]
PropertyItemsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--property",
        help="property KEY=VALUE (string) or KEY:=JSON. Repeatable; applied on top of --properties.",
        metavar=ITEM,
        show_default=False,
        rich_help_panel=CALL,
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name", help="Name of the page or screen.", metavar="NAME", show_default=False, rich_help_panel=CALL
    ),
]
CategoryOpt = Annotated[
    str | None,
    typer.Option(
        "--category", help="Category of the page or screen.", metavar="NAME", show_default=False, rich_help_panel=CALL
    ),
]
EmailOpt = Annotated[
    str | None,
    typer.Option(
        "--email",
        metavar="EMAIL",
        help="The person's email, sent as traits.email (after --traits and -t). With no --user or --anonymous-id it identifies the person: sent with an empty userId, as the API documents for Customer.io as the destination.",
        show_default=False,
        rich_help_panel=CALL,
    ),
]


# Options of the operations (cdp person|device|object|relationship|report …).
ObjectOpt = Annotated[
    str | None,
    typer.Option(
        "--object",
        "--object-id",
        help="objectId of the object.",
        metavar="ID",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
ObjectTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--object-type-id",
        help="Object type ID, a whole number (sent as objectTypeId; the API assumes 1).",
        metavar="N",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (required without a terminal).", metavar=FLAG),
]

# How many lines go through the import engine: `cdp import`'s options, and the operations'
# bulk bundle (with --from FILE|-), which shows them in its own help panel.
BULK = "Bulk (--from)"
BULK_CONCURRENCY = 16
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.", metavar="N")]
RejectsOpt = Annotated[
    str | None,
    typer.Option(
        "--rejects",
        help="Where invalid and undelivered calls are appended, with the reason (created 0600).  \\[default: cdp-rejects.ndjson]",
        metavar="FILE",
        show_default=False,
    ),
]
CheckpointOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        help="Record progress here; the same command run again resumes after it.",
        metavar="FILE",
        show_default=False,
    ),
]
ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Live progress on stderr (default: when stderr is a terminal).",
        metavar=FLAG,
        show_default=False,
    ),
]
MaxInvalidOpt = Annotated[
    int | None,
    typer.Option(
        "--max-invalid",
        help="Stop after this many invalid lines (exit 1; checkpoint and summary written).",
        metavar="N",
        show_default=False,
    ),
]
FromFileOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="Send one call per line of FILE (- reads stdin) through the import engine: an id per line, or a JSON object per line with the command's fields.",
        metavar="FILE|-",
        show_default=False,
        rich_help_panel=BULK,
    ),
]


@dataclass
class BulkOptions:
    """How an operation's --from FILE|- is sent (the import engine's options), as typed."""

    checkpoint: str | None = None
    rejects: str | None = None
    concurrency: int = BULK_CONCURRENCY
    progress: bool | None = None
    max_invalid: int | None = None
    header: bool | None = None  # the first line is a header (True) or an id (False); None: ask


HeaderOpt = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="The first line of FILE is a header, skipped (--header), or an id, sent (--no-header); a first line like email or user_id is refused without one of them.",
        metavar="",
        show_default=False,
    ),
]
_BULK_OPTIONS: dict[str, Any] = {
    "checkpoint": in_panel(CheckpointOpt, BULK),
    "rejects": in_panel(RejectsOpt, BULK),
    "concurrency": in_panel(ConcurrencyOpt, BULK),
    "progress": in_panel(ProgressOpt, BULK),
    "max_invalid": in_panel(MaxInvalidOpt, BULK),
    "header": in_panel(HeaderOpt, BULK),
}


def bulk_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give `func(…, bulk: BulkOptions)` the --from options, defined once for every operation."""
    return extend_signature(func, "bulk", _BULK_OPTIONS, {"concurrency": BULK_CONCURRENCY}, BulkOptions)

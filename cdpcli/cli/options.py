"""The one place that defines each shared option.

`sending_command` adds the sending options (SPEC: "Options for every sending command") to a
command's signature and hands them to it packed in one `SendOptions` named `opts`, so each
command lists only its own options and users can type them after the subcommand.
`SendOptions.target()` turns them into the core's Target, `.output()` into the command's Output.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdpcli.cli.output import Output
from cdpcli.config import profile_names

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
            self._out = Output(json_mode=self.json, quiet=self.quiet, verbosity=self.verbose)
        return self._out

    def target(self, *, need_key: bool = True) -> Target:
        """The core's Target from these flags (flag > env > profile > default); its warnings
        are printed here. A key is needed to send, not for a dry run."""
        from cdpcli.target import Target

        target = Target.resolve(
            profile=self.profile,
            api_key=self.api_key,
            region=self.region,
            endpoint=self.endpoint,
            timeout=self.timeout,
            retries=self.retries,
            strict=self.strict,
            gzip=self.gzip,
        )
        for text in target.warnings:
            self.output().warn(text)
        if need_key and not self.dry_run:
            target.require_key()
        return target


CONNECTION = "Connection"
OUTPUT = "Output"
CALL = "Call fields"

_SEND_OPTIONS: dict[str, Any] = {
    "api_key": Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key of the HTTP source. [env: CDP_API_KEY]",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "region": Annotated[
        str | None,
        typer.Option(
            "--region",
            help="us or eu (default: us, or the region of a pk_/sk_ key). [env: CDP_REGION]",
            show_default=False,
            rich_help_panel=CONNECTION,
            autocompletion=lambda: ["us", "eu"],
        ),
    ],
    "endpoint": Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Base URL, http:// or https:// (no user:password@), e.g. http://127.0.0.1:8787/v1 (overrides --region). [env: CDP_ENDPOINT]",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "profile": Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Config profile to read settings from. [env: CDP_PROFILE]",
            show_default=False,
            rich_help_panel=CONNECTION,
            autocompletion=profile_names,
        ),
    ],
    "timeout": Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds to wait for each response (default 10).",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "retries": Annotated[
        int | None,
        typer.Option(
            "--retries",
            help="Retries for network errors, 408, 429 and 5xx (default 3): at most N+1 attempts; a wait asked for by Retry-After counts as a retry.",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "strict": Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Send X-Strict-Mode: 1 so invalid calls and wrong keys get 400/401 instead of a silent 200 (default on).",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "gzip": Annotated[
        bool | None,
        typer.Option(
            "--gzip/--no-gzip",
            help="Compress request bodies (Content-Encoding: gzip).",
            show_default=False,
            rich_help_panel=CONNECTION,
        ),
    ],
    "dry_run": Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the exact request instead of sending it; needs no API key.", rich_help_panel=OUTPUT
        ),
    ],
    "json": Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print results as one JSON object per line; errors too: {"ok": false, "error", "hint", "exit_code"}.',
            rich_help_panel=OUTPUT,
        ),
    ],
    "quiet": Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print only errors (and --json results).", rich_help_panel=OUTPUT),
    ],
    "verbose": Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More detail on stderr (repeat for more).", rich_help_panel=OUTPUT
        ),
    ],
}
_SEND_DEFAULTS = {"dry_run": False, "json": False, "quiet": False, "verbose": 0}


def _extend(
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
    return _extend(func, "opts", _SEND_OPTIONS, _SEND_DEFAULTS, SendOptions)


# Options shared by the six call commands.
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user", "-u", "--user-id", help="userId of a known person.", show_default=False, rich_help_panel=CALL
    ),
]
AnonymousOpt = Annotated[
    str | None,
    typer.Option(
        "--anonymous-id", help="anonymousId, for someone not yet identified.", show_default=False, rich_help_panel=CALL
    ),
]
TimestampOpt = Annotated[
    str | None,
    typer.Option(
        "--timestamp",
        help="When it happened: ISO-8601 (naive = UTC) or Unix seconds. Default: now.",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
MessageIdOpt = Annotated[
    str | None,
    typer.Option(
        "--message-id",
        help="messageId for de-duplication. Default: a new UUID.",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        "--context", help="context object: JSON, @FILE or @- (stdin).", show_default=False, rich_help_panel=CALL
    ),
]
ContextItemsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-c",
        "--context-field",
        help="context field KEY=VALUE or KEY:=JSON; a dotted KEY nests (page.url=…). Repeatable.",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
IntegrationsOpt = Annotated[
    str | None,
    typer.Option(
        "--integrations",
        help="integrations object: JSON, @FILE or @-, e.g. '{\"All\":false}'.",
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
    return _extend(func, "common", _COMMON_CALL_OPTIONS, {}, CommonFields)


TraitsOpt = Annotated[
    str | None,
    typer.Option(
        "--traits", help="traits object: JSON, @FILE or @- (stdin).", show_default=False, rich_help_panel=CALL
    ),
]
TraitItemsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-t",
        "--trait",
        help="trait KEY=VALUE (string) or KEY:=JSON. Repeatable; applied on top of --traits.",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
PropertiesOpt = Annotated[
    str | None,
    typer.Option(
        "--properties", help="properties object: JSON, @FILE or @- (stdin).", show_default=False, rich_help_panel=CALL
    ),
]
PropertyItemsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--property",
        help="property KEY=VALUE (string) or KEY:=JSON. Repeatable; applied on top of --properties.",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="Name of the page or screen.", show_default=False, rich_help_panel=CALL)
]
CategoryOpt = Annotated[
    str | None,
    typer.Option("--category", help="Category of the page or screen.", show_default=False, rich_help_panel=CALL),
]
EmailOpt = Annotated[
    str | None,
    typer.Option(
        "--email",
        help="The person's email, sent as traits.email (after --traits and -t). With no --user or --anonymous-id it identifies the person: sent with an empty userId, as the API documents for Customer.io as the destination.",
        show_default=False,
        rich_help_panel=CALL,
    ),
]

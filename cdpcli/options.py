"""The one place that defines each shared option.

`sending_command` adds the sending options (SPEC: "Options for every sending command") to a
command's signature and hands them to it packed in one `SendOptions` named `opts`, so each
command lists only its own options and users can type them after the subcommand.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cdpcli.calls import CommonFields
from cdpcli.config import profile_names
from cdpcli.session import SendOptions

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

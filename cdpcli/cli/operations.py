"""Customer.io's operations (issue 12): `cdp person delete|suppress|unsuppress`, `cdp device
add|remove`, `cdp object delete`, `cdp relationship delete`, `cdp report delivery|content`.
Flags -> the core's builders (cdpcli.operations) -> one call sent as the call commands send it,
or with --from FILE|- one call per line through the import engine, reported as `cdp import`
reports. Deleting and suppressing ask first on a terminal (--yes skips the question)."""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdpcli.cli.base import CdpGroup, app
from cdpcli.cli.items import apply_items
from cdpcli.cli.options import CALL, ITEM, SendOptions, extend_signature, sending_command
from cdpcli.cli.output import Output, reporting
from cdpcli.errors import CdpError, ExitCode, UsageError

if TYPE_CHECKING:
    from cdpcli.operations import IdList, Operation  # noqa: F401

BULK = "Bulk (--from)"

person_app = typer.Typer(cls=CdpGroup, help="Delete, suppress or unsuppress people.", no_args_is_help=True)
device_app = typer.Typer(cls=CdpGroup, help="Register or remove a person's push devices.", no_args_is_help=True)
object_app = typer.Typer(cls=CdpGroup, help="Delete objects (groups, companies, accounts…).", no_args_is_help=True)
relationship_app = typer.Typer(cls=CdpGroup, help="Delete a person's relationship to an object.", no_args_is_help=True)
report_app = typer.Typer(
    cls=CdpGroup, help="Report message metrics (delivery and content events).", no_args_is_help=True
)
app.add_typer(person_app, name="person")
app.add_typer(device_app, name="device")
app.add_typer(object_app, name="object")
app.add_typer(relationship_app, name="relationship")
app.add_typer(report_app, name="report")


def _opt(*flags: str, help: str, metavar: str, kind: Any = str | None, panel: str = CALL, **extra: Any) -> Any:
    return Annotated[
        kind, typer.Option(*flags, help=help, metavar=metavar, show_default=False, rich_help_panel=panel, **extra)
    ]


UserOpt = _opt("--user", "-u", "--user-id", help="userId of the person.", metavar="ID")
AnonymousOpt = _opt("--anonymous-id", help="anonymousId of the person.", metavar="ID")
PlatformOpt = _opt(
    "--platform",
    help="The device's platform, sent as context.device.type.",
    metavar="ios|android|web",
    autocompletion=lambda: ["ios", "android", "web"],
)
TokenOpt = _opt(
    "--token", help="The device token (for web push: the push subscription's endpoint URL).", metavar="TOKEN"
)
ObjectTypeOpt = _opt(
    "--object-type-id", help="Object type ID, a whole number (the API assumes 1).", metavar="N", kind=int | None
)
ActionNameOpt = _opt("--action-name", help="Name of the action clicked (actionName).", metavar="NAME")
ActionValueOpt = _opt(
    "--action-value", help="Value of the action clicked, e.g. its link (actionValue).", metavar="VALUE"
)
FromOpt = _opt(
    "--from",
    help="Send one call per line of FILE (- reads stdin) through the import engine: an id per line, or a JSON object per line with the command's fields.",
    metavar="FILE|-",
    panel=BULK,
)
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (required without a terminal).", metavar=""),
]
CheckpointOpt = _opt(
    "--checkpoint",
    help="With --from: record progress here; the same command run again resumes.",
    metavar="FILE",
    panel=BULK,
)
RejectsOpt = _opt(
    "--rejects",
    help="With --from: where invalid and undelivered lines go, with the reason.  \\[default: cdp-rejects.ndjson]",
    metavar="FILE",
    panel=BULK,
)
ConcurrencyOpt = Annotated[
    int,
    typer.Option("--concurrency", help="With --from: requests in flight at once.", metavar="N", rich_help_panel=BULK),
]
ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="With --from: live progress on stderr (default: when stderr is a terminal).",
        metavar="",
        show_default=False,
        rich_help_panel=BULK,
    ),
]
MaxInvalidOpt = _opt(
    "--max-invalid", help="With --from: stop after N invalid lines.", metavar="N", kind=int | None, panel=BULK
)


@dataclass
class BulkOptions:
    """How --from FILE|- is sent (the import engine's options), as typed."""

    checkpoint: str | None = None
    rejects: str | None = None
    concurrency: int = 16
    progress: bool | None = None
    max_invalid: int | None = None


_BULK_OPTIONS: dict[str, Any] = {
    "checkpoint": CheckpointOpt,
    "rejects": RejectsOpt,
    "concurrency": ConcurrencyOpt,
    "progress": ProgressOpt,
    "max_invalid": MaxInvalidOpt,
}


def bulk_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give `func(…, bulk: BulkOptions)` the --from options, defined once for every operation."""
    return extend_signature(func, "bulk", _BULK_OPTIONS, {"concurrency": 16}, BulkOptions)


def _one_call(opts: SendOptions, call: dict[str, Any], command: str) -> None:
    """Validate and print (dry-run) or send one call, as the call commands do."""
    from cdpcli.calls import InvalidCall, prepare_call
    from cdpcli.cli.calls import send_call

    target = opts.target()
    try:
        prepared = prepare_call("track", {k: v for k, v in call.items() if k != "type"})
    except InvalidCall as exc:
        raise UsageError(str(exc), hint=f"see `cdp {command} --help`") from None
    send_call(prepared, opts, target)


def _bulk(opts: SendOptions, op: "Operation", source: str, bulk: BulkOptions) -> None:
    """`cdp import`'s run, progress, interrupts and summary, over one call per line of `source`."""
    from cdpcli.cli.import_ import run_and_report, terminal_events
    from cdpcli.operations import bulk_importer

    out = opts.output()
    target = opts.target()
    events = terminal_events(opts, bulk.progress)
    importer, warnings = bulk_importer(
        op,
        [source],
        target,
        rejects=bulk.rejects,
        checkpoint=bulk.checkpoint,
        concurrency=bulk.concurrency,
        max_invalid=bulk.max_invalid,
        dry_run=opts.dry_run,
        events=events,
    )
    for text in warnings:
        out.warn(text)
    raise typer.Exit(run_and_report(importer, out, events))


class Declined(CdpError):
    exit_code = ExitCode.ERROR


def confirm(out: Output, question: str, noun: tuple[str, str], ids: "IdList | tuple[int, list[str]]", *, yes: bool, dry_run: bool, from_stdin: bool) -> None:  # fmt: skip
    """Ask `question` (with the distinct count, the first ids and what was dropped) on the
    terminal; refuse without one. --yes never asks; --dry-run shows what it would ask about."""
    from cdpcli.operations import IdList

    listed = ids if isinstance(ids, IdList) else IdList(distinct=ids[0], first=ids[1])
    count, first = listed.distinct, listed.first
    what = f"{count:,} {noun[0] if count == 1 else noun[1]}"
    shown = ", ".join(first) + (", …" if count > len(first) else "")
    dropped = listed.describe().partition("; ")[2]
    if dry_run and not from_stdin:
        out.info(f"{what}: {shown}" + (f" ({dropped})" if dropped else ""))
    if yes or dry_run:
        return
    if from_stdin:
        raise UsageError(
            "the ids come from stdin, so cdp cannot ask for confirmation there",
            hint="add --yes to confirm (or give the ids as --from FILE on a terminal)",
        )
    if not (sys.stdin is not None and sys.stdin.isatty()):
        raise UsageError(
            f"not a terminal: cdp will not {question.split(' ', 1)[0].lower()} {what} without confirmation",
            hint="add --yes to confirm; this cannot be undone",
        )
    sys.stderr.write(
        f"{what}: {shown}\n" + (f"({dropped})\n" if dropped else "") + f"{question.format(what=what)} [y/N] "
    )
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise Declined("not confirmed: nothing was sent")


def _ids_in(op: "Operation", source: str) -> "IdList":
    """The distinct ids, the first ones and what is dropped, as a confirmation shows them, read
    as the send reads them (the same sources: a directory's files, compressed ones
    decompressed; comments, a header and repeated ids left out), not the raw bytes."""
    from cdpcli.operations import IdList

    if source == "-":
        return IdList()
    from cdpcli.importing.sources import make_sources, source_lines

    sources, _ = make_sources([source], fmt="ndjson")
    return op.read_ids(line for s in sources for line in source_lines(s))


def _exactly_one(user: str | None, source: str | None, flag: str = "--user") -> None:
    if (user is None) == (source is None):
        raise UsageError(f"give {flag} ID or --from FILE|- (one of them)", hint=f"e.g. {flag} 42, or --from ids.txt")


# -- person ----------------------------------------------------------------------------------

_PERSON = {
    "delete": ("Delete {what} from Customer.io?", "Delete a person (User Deleted). Cannot be undone."),
    "suppress": (
        "Suppress {what} in Customer.io (each profile is deleted and its identifiers blocked)?",
        "Suppress a person (User Suppressed): delete the profile and block its identifiers. Cannot be undone.",
    ),
    "unsuppress": (None, "Unsuppress a person (User Unsuppressed); the deleted profile does not come back."),
}


def _person_command(action: str):
    question, doc = _PERSON[action]

    @sending_command
    @bulk_command
    def command(
        opts: SendOptions,
        bulk: BulkOptions,
        user: UserOpt = None,
        source: FromOpt = None,
        yes: YesOpt = False,
    ) -> None:
        from cdpcli import operations

        out = opts.output()
        with reporting(out):
            _exactly_one(user, source)
            op = operations.operation(f"person {action}")
            if question is not None:
                ids = (1, [user]) if user is not None else _ids_in(op, source)
                confirm(
                    out, question, ("person", "people"), ids, yes=yes, dry_run=opts.dry_run, from_stdin=source == "-"
                )
            elif yes:
                pass  # accepted for symmetry: unsuppress asks nothing
            if source is None:
                _one_call(opts, operations.person(action, user), f"person {action}")
                return
            _bulk(opts, op, source, bulk)

    command.__doc__ = (
        f"{doc}\n\n    Example: cdp person {action} --user 42\n\n    Example: cdp person {action} --from ids.txt"
        + (" --yes" if question else "")
        + "\n    "
    )
    command.__name__ = f"person_{action}"
    return command


for _action in _PERSON:
    person_app.command(_action)(_person_command(_action))


# -- device ----------------------------------------------------------------------------------


@device_app.command("add")
@sending_command
@bulk_command
def device_add(
    opts: SendOptions,
    bulk: BulkOptions,
    user: UserOpt = None,
    token: TokenOpt = None,
    platform: PlatformOpt = None,
    token_type: _opt(
        "--token-type",
        help="fid for a Firebase Installation ID (sent as the _cio_token_type attribute, as the Android SDK does).",
        metavar="fid|token",
        autocompletion=lambda: ["fid", "token"],
    ) = None,
    prop: _opt(
        "-p",
        "--property",
        help="Device attribute KEY=VALUE or KEY:=JSON. Repeatable.",
        metavar=ITEM,
        kind=list[str] | None,
    ) = None,
    source: FromOpt = None,
) -> None:
    """Register or update a push device (Device Created or Updated).

    The token and platform go in context.device, -p attributes in properties.

    Example: cdp device add --user 42 --token fcm-token --platform android

    Example: cdp device add --from devices.ndjson   (a JSON object per line: {"user": "42", "token": "…"})
    """
    from cdpcli import operations

    out = opts.output()
    with reporting(out):
        attributes = apply_items({}, prop, "-p") if prop else None
        if source is not None:
            if token is not None or prop:
                raise UsageError("--from reads each device from its line; --token and -p go on each line")
            op = operations.operation("device add", user=user, platform=platform, token_type=token_type)
            _bulk(opts, op, source, bulk)
        _need_flags(user=user, token=token)
        call = operations.device_add(user, token, platform=platform, token_type=token_type, attributes=attributes)
        _one_call(opts, call, "device add")


@device_app.command("remove")
@sending_command
@bulk_command
def device_remove(
    opts: SendOptions,
    bulk: BulkOptions,
    user: UserOpt = None,
    token: TokenOpt = None,
    platform: PlatformOpt = None,
    source: FromOpt = None,
) -> None:
    """Remove a push device from a person (Device Deleted).

    Example: cdp device remove --user 42 --token fcm-token --platform android
    """
    from cdpcli import operations

    out = opts.output()
    with reporting(out):
        if source is not None:
            if token is not None:
                raise UsageError("--from reads each device from its line; --token goes on each line")
            op = operations.operation("device remove", user=user, platform=platform)
            _bulk(opts, op, source, bulk)
        _need_flags(user=user, token=token)
        _one_call(opts, operations.device_remove(user, token, platform=platform), "device remove")


def _need_flags(**flags: str | None) -> None:
    missing = [f"--{name}" for name, value in flags.items() if value is None]
    if missing:
        raise UsageError(f"missing {' and '.join(missing)}", hint="or give --from FILE with one JSON object per line")


# -- object, relationship --------------------------------------------------------------------


@object_app.command("delete")
@sending_command
@bulk_command
def object_delete(
    opts: SendOptions,
    bulk: BulkOptions,
    object_id: _opt("--object", "--object-id", help="objectId of the object to delete.", metavar="ID") = None,
    object_type_id: ObjectTypeOpt = None,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    source: FromOpt = None,
    yes: YesOpt = False,
) -> None:
    """Delete an object (Object Deleted). Cannot be undone.

    Example: cdp object delete --object acme --anonymous-id ops-1 --yes

    Example: cdp object delete --from objects.txt --user admin-1 --yes
    """
    from cdpcli import operations

    out = opts.output()
    with reporting(out):
        _exactly_one(object_id, source, "--object")
        op = operations.operation("object delete", object_type_id=object_type_id, user=user, anonymous_id=anonymous_id)
        ids = (1, [object_id]) if object_id is not None else _ids_in(op, source)
        question = "Delete {what} from Customer.io?"
        confirm(out, question, ("object", "objects"), ids, yes=yes, dry_run=opts.dry_run, from_stdin=source == "-")
        if source is not None:
            _bulk(opts, op, source, bulk)
        call = operations.object_delete(
            object_id, object_type_id=object_type_id, user_id=user, anonymous_id=anonymous_id
        )
        _one_call(opts, call, "object delete")


@relationship_app.command("delete")
@sending_command
def relationship_delete(
    opts: SendOptions,
    user: UserOpt = None,
    object_id: _opt("--object", "--object-id", help="objectId of the object.", metavar="ID") = None,
    object_type_id: ObjectTypeOpt = None,
) -> None:
    """Delete a person's relationship to an object (Relationship Deleted).

    Example: cdp relationship delete --user 42 --object acme --object-type-id 1
    """
    from cdpcli import operations

    with reporting(opts.output()):
        _need_flags(user=user, object=object_id)
        _one_call(
            opts,
            operations.relationship_delete(user, object_id, object_type_id=object_type_id),
            "relationship delete",
        )


# -- report ----------------------------------------------------------------------------------


@report_app.command("delivery")
@sending_command
def report_delivery(
    opts: SendOptions,
    delivery_id: _opt("--delivery-id", help="The message's deliveryId.", metavar="ID") = None,
    metric: _opt(
        "--metric",
        help="delivered, opened, clicked or converted (others are sent with a warning).",
        metavar="METRIC",
        autocompletion=lambda: ["delivered", "opened", "clicked", "converted"],
    ) = None,
    recipient: _opt("--recipient", help="The device token a push went to (recipient).", metavar="R") = None,
    href: _opt("--href", help="The link clicked (href).", metavar="URL") = None,
    action_name: ActionNameOpt = None,
    action_value: ActionValueOpt = None,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
) -> None:
    """Report a message metric (Report Delivery Event).

    Example: cdp report delivery --delivery-id RPILAgAB --metric opened
    """
    from cdpcli import operations

    with reporting(opts.output()):
        _need_flags(**{"delivery-id": delivery_id, "metric": metric})
        call = operations.report_delivery(
            delivery_id,
            metric,
            recipient=recipient,
            href=href,
            action_name=action_name,
            action_value=action_value,
            user_id=user,
            anonymous_id=anonymous_id,
        )
        _one_call(opts, call, "report delivery")


@report_app.command("content")
@sending_command
def report_content(
    opts: SendOptions,
    content_id: _opt("--content-id", help="contentId, a whole number.", metavar="N", kind=int | None) = None,
    template_id: _opt("--template-id", help="templateId, a whole number.", metavar="N", kind=int | None) = None,
    action: _opt(
        "--action",
        help="viewed or clicked (sent as actionType viewed_content or clicked_content).",
        metavar="viewed|clicked",
        autocompletion=lambda: ["viewed", "clicked"],
    ) = None,
    action_name: ActionNameOpt = None,
    action_value: ActionValueOpt = None,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
) -> None:
    """Report a view or click of in-app content (Report Content Event).

    Example: cdp report content --content-id 1205 --template-id 87 --action viewed
    """
    from cdpcli import operations

    with reporting(opts.output()):
        _need_flags(**{"content-id": content_id, "template-id": template_id, "action": action})
        call = operations.report_content(
            content_id,
            template_id,
            action,
            action_name=action_name,
            action_value=action_value,
            user_id=user,
            anonymous_id=anonymous_id,
        )
        _one_call(opts, call, "report content")

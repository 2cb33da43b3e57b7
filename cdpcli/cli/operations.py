"""Customer.io's operations: `cdp person delete|suppress|unsuppress`, `cdp device
add|remove`, `cdp object delete`, `cdp relationship delete`, `cdp report delivery|content`.
Flags -> the core's builders (cdpcli.operations) -> one call sent as the call commands send it,
or with --from FILE|- one call per line through the import engine, reported as `cdp import`
reports. Deleting and suppressing ask first on a terminal (--yes skips the question)."""

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from cdpcli.cli.base import CdpGroup, app
from cdpcli.cli.items import apply_items
from cdpcli.cli.options import (
    CALL,
    ITEM,
    AnonymousOpt,
    BulkOptions,
    FromFileOpt,
    ObjectOpt,
    ObjectTypeOpt,
    SendOptions,
    UserOpt,
    YesOpt,
    bulk_command,
    sending_command,
)
from cdpcli.cli.output import Output, reporting
from cdpcli.errors import CdpError, ExitCode, UsageError

if TYPE_CHECKING:
    from cdpcli.operations import IdList, Operation  # noqa: F401

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


PlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform",
        help="The device's platform, sent as context.device.type.",
        metavar="ios|android|web",
        show_default=False,
        rich_help_panel=CALL,
        autocompletion=lambda: ["ios", "android", "web"],
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="The device token (for web push: the push subscription's endpoint URL).",
        metavar="TOKEN",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
ActionNameOpt = Annotated[
    str | None,
    typer.Option(
        "--action-name",
        help="Name of the action clicked (actionName).",
        metavar="NAME",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
ActionValueOpt = Annotated[
    str | None,
    typer.Option(
        "--action-value",
        help="Value of the action clicked, e.g. its link (actionValue).",
        metavar="VALUE",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
TokenTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--token-type",
        help="fid for a Firebase Installation ID (sent as the _cio_token_type attribute, as the Android SDK does).",
        metavar="fid|token",
        show_default=False,
        rich_help_panel=CALL,
        autocompletion=lambda: ["fid", "token"],
    ),
]
DeviceAttributesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--property",
        help="Device attribute KEY=VALUE or KEY:=JSON. Repeatable.",
        metavar=ITEM,
        show_default=False,
        rich_help_panel=CALL,
    ),
]
DeliveryIdOpt = Annotated[
    str | None,
    typer.Option(
        "--delivery-id", help="The message's deliveryId.", metavar="ID", show_default=False, rich_help_panel=CALL
    ),
]
MetricOpt = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="delivered, opened, clicked or converted (others are sent with a warning).",
        metavar="METRIC",
        show_default=False,
        rich_help_panel=CALL,
        autocompletion=lambda: ["delivered", "opened", "clicked", "converted"],
    ),
]
RecipientOpt = Annotated[
    str | None,
    typer.Option(
        "--recipient",
        help="The device token a push went to (recipient).",
        metavar="R",
        show_default=False,
        rich_help_panel=CALL,
    ),
]
HrefOpt = Annotated[
    str | None,
    typer.Option("--href", help="The link clicked (href).", metavar="URL", show_default=False, rich_help_panel=CALL),
]
ContentIdOpt = Annotated[
    int | None,
    typer.Option(
        "--content-id", help="contentId, a whole number.", metavar="N", show_default=False, rich_help_panel=CALL
    ),
]
TemplateIdOpt = Annotated[
    int | None,
    typer.Option(
        "--template-id", help="templateId, a whole number.", metavar="N", show_default=False, rich_help_panel=CALL
    ),
]
ContentActionOpt = Annotated[
    str | None,
    typer.Option(
        "--action",
        help="viewed or clicked (sent as actionType viewed_content or clicked_content).",
        metavar="viewed|clicked",
        show_default=False,
        rich_help_panel=CALL,
        autocompletion=lambda: ["viewed", "clicked"],
    ),
]


def _one_call(opts: SendOptions, call: dict[str, Any], command: str) -> None:
    """Validate and print (dry-run) or send one call, as the call commands do."""
    from cdpcli.calls import InvalidCall, prepare_call  # lazy: start-up
    from cdpcli.cli.calls import send_call  # lazy: start-up

    target = opts.target()
    try:
        prepared = prepare_call("track", {k: v for k, v in call.items() if k != "type"})
    except InvalidCall as exc:
        raise UsageError(str(exc), hint=f"see `cdp {command} --help`") from None
    send_call(prepared, opts, target)


def _bulk(
    opts: SendOptions, op: "Operation", source: str, bulk: BulkOptions, ask: "Callable[[IdList], None] | None" = None
) -> NoReturn:
    """`cdp import`'s run, progress, interrupts and summary, over one call per line of `source`;
    `ask` confirms what the file holds (read as the send reads it) before anything is sent."""
    from cdpcli.cli.import_events import run_and_report, terminal_events  # lazy: start-up
    from cdpcli.operations import bulk_importer  # lazy: start-up

    op.header = bulk.header
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
        confirm=ask,
    )
    for text in warnings:
        out.warn(text)
    raise typer.Exit(run_and_report(importer, out, events))


class Declined(CdpError):
    exit_code = ExitCode.ERROR


def confirm(out: Output, question: str, noun: tuple[str, str], ids: "IdList | tuple[int, list[str]]", *, yes: bool, dry_run: bool, from_stdin: bool) -> None:  # fmt: skip
    """Ask `question` (with the distinct count, the first ids and what was dropped) on the
    terminal; refuse without one. --yes never asks; --dry-run shows what it would ask about."""
    from cdpcli.operations import IdList  # lazy: start-up

    listed = ids if isinstance(ids, IdList) else IdList(distinct=ids[0], first=ids[1])
    count, first = listed.distinct, listed.first
    what = f"{count:,} {noun[0] if count == 1 else noun[1]}"
    # every id when they fit on a line or two; past that, how many more and where to see them
    more = count - len(first)
    shown = ", ".join(first) + (f", and {more:,} more" if more > 0 else "")
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
    if more > 0:
        shown += " (--dry-run prints every request)"
    sys.stderr.write(
        f"{what}: {shown}\n" + (f"({dropped})\n" if dropped else "") + f"{question.format(what=what)} [y/N] "
    )
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise Declined("not confirmed: nothing was sent")


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
        source: FromFileOpt = None,
        yes: YesOpt = False,
    ) -> None:
        from cdpcli import operations  # lazy: start-up

        out = opts.output()
        with reporting(out):
            _exactly_one(user, source)
            op = operations.operation(f"person {action}")

            def ask(ids: "IdList | tuple[int, list[str]]") -> None:
                if question is not None:  # unsuppress asks nothing (--yes is accepted for symmetry)
                    noun = ("person", "people")
                    confirm(out, question, noun, ids, yes=yes, dry_run=opts.dry_run, from_stdin=source == "-")

            if source is not None:
                _bulk(opts, op, source, bulk, ask)
            elif user is not None:
                ask((1, [user]))
                _one_call(opts, operations.person(action, user), f"person {action}")

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
    token_type: TokenTypeOpt = None,
    prop: DeviceAttributesOpt = None,
    source: FromFileOpt = None,
) -> None:
    """Register or update a push device (Device Created or Updated).

    The token and platform go in context.device, -p attributes in properties.

    Example: cdp device add --user 42 --token fcm-token --platform android

    Example: cdp device add --from devices.ndjson   (a JSON object per line: {"user": "42", "token": "…"})
    """
    from cdpcli import operations  # lazy: start-up

    out = opts.output()
    with reporting(out):
        attributes = apply_items({}, prop, "-p") if prop else None
        if source is not None:
            if token is not None or prop:
                raise UsageError("--from reads each device from its line; --token and -p go on each line")
            op = operations.operation("device add", user=user, platform=platform, token_type=token_type)
            _bulk(opts, op, source, bulk)
        if user is None or token is None:
            raise _missing(user=user, token=token)
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
    source: FromFileOpt = None,
) -> None:
    """Remove a push device from a person (Device Deleted).

    Example: cdp device remove --user 42 --token fcm-token --platform android
    """
    from cdpcli import operations  # lazy: start-up

    out = opts.output()
    with reporting(out):
        if source is not None:
            if token is not None:
                raise UsageError("--from reads each device from its line; --token goes on each line")
            op = operations.operation("device remove", user=user, platform=platform)
            _bulk(opts, op, source, bulk)
        if user is None or token is None:
            raise _missing(user=user, token=token)
        _one_call(opts, operations.device_remove(user, token, platform=platform), "device remove")


def _missing(**flags: object) -> UsageError:
    """The error for flags not given (those whose value is None)."""
    missing = [f"--{name}" for name, value in flags.items() if value is None]
    return UsageError(f"missing {' and '.join(missing)}", hint="or give --from FILE with one JSON object per line")


# -- object, relationship --------------------------------------------------------------------


def _object_type(value: str | None) -> str | None:
    """--object-type-id is a string everywhere (as in `cdp group`); the operations send it as
    the whole number the API reads there, so a non-number is named here by its flag."""
    from cdpcli.operations import whole_number  # lazy: start-up

    whole_number(value, "--object-type-id")
    return value


@object_app.command("delete")
@sending_command
@bulk_command
def object_delete(
    opts: SendOptions,
    bulk: BulkOptions,
    object_id: ObjectOpt = None,
    object_type_id: ObjectTypeOpt = None,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    source: FromFileOpt = None,
    yes: YesOpt = False,
) -> None:
    """Delete an object (Object Deleted). Cannot be undone.

    Example: cdp object delete --object acme --anonymous-id ops-1 --yes

    Example: cdp object delete --from objects.txt --user admin-1 --yes
    """
    from cdpcli import operations  # lazy: start-up

    out = opts.output()
    with reporting(out):
        _exactly_one(object_id, source, "--object")
        object_type_id = _object_type(object_type_id)
        op = operations.operation("object delete", object_type_id=object_type_id, user=user, anonymous_id=anonymous_id)
        question, noun = "Delete {what} from Customer.io?", ("object", "objects")
        if source is not None:

            def ask(ids: "IdList") -> None:
                confirm(out, question, noun, ids, yes=yes, dry_run=opts.dry_run, from_stdin=source == "-")

            _bulk(opts, op, source, bulk, ask)
        elif object_id is not None:
            confirm(out, question, noun, (1, [object_id]), yes=yes, dry_run=opts.dry_run, from_stdin=False)
            call = operations.object_delete(
                object_id, object_type_id=object_type_id, user_id=user, anonymous_id=anonymous_id
            )
            _one_call(opts, call, "object delete")


@relationship_app.command("delete")
@sending_command
def relationship_delete(
    opts: SendOptions,
    user: UserOpt = None,
    object_id: ObjectOpt = None,
    object_type_id: ObjectTypeOpt = None,
) -> None:
    """Delete a person's relationship to an object (Relationship Deleted).

    Example: cdp relationship delete --user 42 --object acme --object-type-id 1
    """
    from cdpcli import operations  # lazy: start-up

    with reporting(opts.output()):
        if user is None or object_id is None:
            raise _missing(user=user, object=object_id)
        object_type_id = _object_type(object_type_id)
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
    delivery_id: DeliveryIdOpt = None,
    metric: MetricOpt = None,
    recipient: RecipientOpt = None,
    href: HrefOpt = None,
    action_name: ActionNameOpt = None,
    action_value: ActionValueOpt = None,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
) -> None:
    """Report a message metric (Report Delivery Event).

    Example: cdp report delivery --delivery-id RPILAgAB --metric opened
    """
    from cdpcli import operations  # lazy: start-up

    with reporting(opts.output()):
        if delivery_id is None or metric is None:
            raise _missing(**{"delivery-id": delivery_id, "metric": metric})
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
    content_id: ContentIdOpt = None,
    template_id: TemplateIdOpt = None,
    action: ContentActionOpt = None,
    action_name: ActionNameOpt = None,
    action_value: ActionValueOpt = None,
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
) -> None:
    """Report a view or click of in-app content (Report Content Event).

    Example: cdp report content --content-id 1205 --template-id 87 --action viewed
    """
    from cdpcli import operations  # lazy: start-up

    with reporting(opts.output()):
        if content_id is None or template_id is None or action is None:
            raise _missing(**{"content-id": content_id, "template-id": template_id, "action": action})
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

"""The six single calls as typed: flags -> fields -> the core's validated call -> dry-run print
or send -> report. The core (cdpcli.calls) validates and sends; this module knows the flags."""

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdpcli.calls import InvalidCall, call_request, call_warnings, deliver, prepare_call
from cdpcli.cli.base import app
from cdpcli.cli.items import apply_items, check_argument, read_json_object, text_items, typed_form_hint
from cdpcli.cli.options import (
    CALL,
    AnonymousOpt,
    CategoryOpt,
    CommonFields,
    EmailOpt,
    NameOpt,
    ObjectTypeOpt,
    PropertiesOpt,
    PropertyItemsOpt,
    SendOptions,
    TraitItemsOpt,
    TraitsOpt,
    UserOpt,
    common_call_options,
    sending_command,
)
from cdpcli.cli.output import reporting
from cdpcli.errors import UsageError
from cdpcli.wire import parse_timestamp

if TYPE_CHECKING:
    from cdpcli.target import Target

# How the wire's field names are typed on the command line, for error messages.
FLAG_FOR_FIELD = {
    "userId": "--user",
    "anonymousId": "--anonymous-id",
    "event": "--event",
    "groupId": "--group",
    "previousId": "--previous-id",
    "objectTypeId": "--object-type-id",
    "timestamp": "--timestamp",
    "messageId": "--message-id",
    "context": "--context",
    "integrations": "--integrations",
    "traits": "--traits",
    "properties": "--properties",
    "name": "--name",
    "category": "--category",
}


# Customer.io's merge docs: "The primary profile must already exist"; the secondary is deleted
ALIAS_WARNING = (
    "alias merges --previous-id into --user and cannot be undone (the secondary profile is deleted); "
    "the primary profile (--user) must already exist, so identify it first and give the identify time "
    "to arrive. -q silences this warning"
)


@dataclass
class CallInput:
    """What the user typed for one call, before parsing."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)  # plain top-level fields
    objects: dict[str, tuple[str | None, list[str] | None]] = field(default_factory=dict)  # traits/properties
    context: str | None = None
    context_items: list[str] | None = None
    integrations: str | None = None


def build_call(spec: CallInput) -> dict[str, Any]:
    """Parse JSON and items, validate with the call's model, and fill in ids and timestamps."""
    data: dict[str, Any] = {"type": spec.type}
    data.update({k: v for k, v in spec.fields.items() if v is not None})
    for name, value in data.items():
        if isinstance(value, str):
            check_argument(value, FLAG_FOR_FIELD.get(name, name))
    _check_stdin_once(spec)
    _check_fields(data)
    item_flag = {"traits": "-t", "properties": "-p"}
    items_given = text_items(spec.context_items, "-c", "context.")
    for name, (text, items) in spec.objects.items():
        obj = read_json_object(text, f"--{name}")
        if items:
            obj = apply_items(obj or {}, items, item_flag[name])
            items_given |= text_items(items, item_flag[name], f"{name}.")
        if obj is not None:
            data[name] = obj
    context = read_json_object(spec.context, "--context")
    if spec.context_items:
        context = apply_items(context or {}, spec.context_items, "-c", dotted=True)
    if context is not None:
        data["context"] = context
    integrations = read_json_object(spec.integrations, "--integrations")
    if integrations is not None:
        data["integrations"] = integrations
    try:
        return prepare_call(spec.type, data)
    except InvalidCall as exc:
        # the core names the wire's fields; the user typed flags
        typed = [hint for problem in exc.problems if (hint := _typed_hint(problem, items_given))]
        raise UsageError(
            exc.lead + "; ".join(_with_flags(problem) for problem in exc.problems),
            hint="; ".join(typed) or exc.hint or f"see `cdp {spec.type} --help`",
        ) from None


def _typed_hint(problem: str, items_given: dict[str, tuple[str, str, str]]) -> str | None:
    """A problem at a field given as `KEY=VALUE` text (`traits.unsubscribed: Input should be a
    valid boolean`): the hint naming the `KEY:=JSON` form, if one fits."""
    field_name, _, rest = problem.partition(": ")
    item = items_given.get(field_name)
    return typed_form_hint(item, rest) if item else None


def _check_stdin_once(spec: CallInput) -> None:
    """stdin can be read once: two options asking for `@-` is a usage error, not an empty second read."""
    readers = [f"--{name}" for name, (text, _) in spec.objects.items() if text == "@-"]
    readers += [
        flag for flag, text in (("--context", spec.context), ("--integrations", spec.integrations)) if text == "@-"
    ]
    if len(readers) > 1:
        raise UsageError(
            f"{' and '.join(readers)} both read @- (stdin), which can be read only once",
            hint=f"keep @- for one of them and give the other inline or as @FILE, e.g. {readers[1]} @file.json",
        )


_WHOLE_NUMBER = re.compile(r"[0-9]+")


def _check_fields(data: dict[str, Any]) -> None:
    """Checks on single values whose errors deserve their own hint."""
    type_id = data.get("objectTypeId")
    if type_id is not None and not _WHOLE_NUMBER.fullmatch(type_id):
        raise UsageError(
            f"--object-type-id {type_id!r}: expected a whole number (the API takes object type IDs "
            'as stringified integers, e.g. "1")',
            hint="e.g. --object-type-id 2; left out, the API assumes 1",
        )
    timestamp = data.get("timestamp")
    if timestamp is not None:
        try:
            parse_timestamp(timestamp)
        except ValueError as exc:
            if "milliseconds" in str(exc):
                hint = f"give seconds: --timestamp {float(timestamp.strip()) / 1000:.3f}"
            else:
                hint = "e.g. --timestamp 2026-11-27T13:31:42Z (a naive time is UTC) or --timestamp $(date +%s)"
            raise UsageError(f"--timestamp: {exc}", hint=hint) from None


def _with_flags(problem: str) -> str:
    field_name, sep, rest = problem.partition(": ")
    if sep and field_name.split(".")[0] in FLAG_FOR_FIELD:
        head = field_name.split(".")[0]
        return f"{FLAG_FOR_FIELD[head]}{field_name[len(head) :]}: {rest}"
    # identify's rule names the three ways to say who the person is (models.IDENTIFY_NEEDS)
    problem = problem.replace(
        "userId or anonymousId, or a non-empty traits.email",
        "--user or --anonymous-id, or --email (a non-empty traits.email)",
    )
    return problem.replace("userId or anonymousId", "--user or --anonymous-id")


def run_call(spec: CallInput, opts: SendOptions) -> None:
    """Validate, then print (dry-run) or send one call; raises CdpError on failure."""
    target = opts.target()
    call = build_call(spec)
    send_call(call, opts, target)


def send_call(call: dict[str, Any], opts: SendOptions, target: "Target") -> None:
    """Print (dry-run) or send one prepared call and report it; its warnings go to stderr
    first (not with -q). Raises CdpError on failure."""
    out = opts.output()
    if not out.quiet:
        for text in call_warnings(call):
            out.warn(text)
    if opts.dry_run:
        out.show_request(call_request(call, target))
        return
    result = deliver(call, target, on_retry=out.info, on_exchange=out.exchange)
    if out.json_mode:
        out.json(
            {
                "ok": True,
                "status": result.status,
                "type": result.type,
                "messageId": result.message_id,
                "url": result.url,
                "attempts": result.attempts,
            }
        )
    elif not out.quiet:
        out.result(f"{result.type} accepted: HTTP {result.status}, messageId {result.message_id}")
    if not target.strict:
        out.info("Note: strict mode is off, so a 200 does not prove the key or the call was valid.")


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

    Example: cdp identify --user 42 -t email=ada@example.com -t logins:=7

    By email alone (sent with "userId": ""):
      cdp identify --email ada@example.com -t plan=pro
    """
    if email is not None and any(item.startswith(("email=", "email:=")) for item in trait or []):
        with reporting(opts.output()):
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
            "--event",
            "-e",
            help="Event name, e.g. Item_Purchased.",
            metavar="NAME",
            show_default=False,
            rich_help_panel=CALL,
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

    Example: cdp page --user 42 --name Pricing -p url=https://example.com/p
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
            metavar="ID",
            show_default=False,
            rich_help_panel=CALL,
        ),
    ],
    user: UserOpt = None,
    anonymous_id: AnonymousOpt = None,
    object_type_id: ObjectTypeOpt = None,
    traits: TraitsOpt = None,
    trait: TraitItemsOpt = None,
) -> None:
    """Relate a person to an object (a group, company or account) and set its traits.

    Example: cdp group --user 42 --group acme -t name=Acme -t seats:=50
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
            "--user",
            "-u",
            "--user-id",
            help="userId to keep.",
            metavar="ID",
            show_default=False,
            rich_help_panel=CALL,
        ),
    ],
    previous_id: Annotated[
        str,
        typer.Option(
            "--previous-id",
            help="The anonymousId or userId to merge into --user.",
            metavar="ID",
            show_default=False,
            rich_help_panel=CALL,
        ),
    ],
) -> None:
    """Merge two profiles: --previous-id into --user.

    Example: cdp alias --user 42 --previous-id 7f3c-anon
    """
    if not opts.quiet:
        opts.output().warn(ALIAS_WARNING)
    _call("alias", opts, common, fields={"userId": user, "previousId": previous_id})

"""`cdp connect test`: the core's connection check (cdpcli.connect), reported."""

from typing import TYPE_CHECKING, Annotated

import typer

from cdpcli.cli.base import CdpGroup, app
from cdpcli.cli.options import SendOptions, sending_command
from cdpcli.cli.output import flagged, reporting

if TYPE_CHECKING:
    from cdpcli.connect import ConnectReport

connect_app = typer.Typer(cls=CdpGroup, help="Check the API key and endpoint.", no_args_is_help=True)
app.add_typer(connect_app, name="connect")


@connect_app.command("test")
@sending_command
def connect_test(
    opts: SendOptions,
    send_event: Annotated[
        bool,
        typer.Option(
            "--send-event", help="Send one real test call (a track event) instead of an empty batch.", metavar=""
        ),
    ] = False,
) -> None:
    """Check the key and reachability of the endpoint, as the HTTP source's setup step does.

    Example: cdp connect test --profile staging

    TLS: an https:// endpoint (in any letter case) gets certificate checks, always; a private CA bundle goes in SSL_CERT_FILE (or SSL_CERT_DIR).

    Proxies: HTTPS_PROXY, HTTP_PROXY and ALL_PROXY are used, and NO_PROXY lists hosts that go direct; the report names the proxy in use, and says so when it is the proxy that fails.
    """
    from cdpcli.connect import check_connection, connect_request  # lazy: start-up

    out = opts.output()
    with reporting(out):
        target = opts.target()
        if opts.dry_run:
            out.show_request(connect_request(target, send_event))
            return
        report = check_connection(target, send_event, on_retry=out.verbose, on_exchange=out.exchange)
        code = report.exit_code
        hint = flagged(report.hint) if report.hint else report.hint  # the core names settings, e.g. endpoint=
        if out.json_mode:
            shown = {k: getattr(report, k) for k in ("ok", "status", "endpoint", "region", "auth", "latency_ms")}
            shown |= {k: getattr(report, k) for k in ("proxy", "error") if getattr(report, k)}
            if code:  # the same shape as every other error under --json
                shown |= {"hint": hint, "exit_code": int(code)}
            out.json(shown)
        else:
            out.result(format_report(report))
        if code:
            out.error(f"{report.verdict} at {report.url}" + (f": {report.error}" if report.error else ""), hint)
    raise typer.Exit(int(code))


def format_report(report: "ConnectReport") -> str:
    rows = [
        ("endpoint", report.endpoint),
        ("region", report.region),
        ("auth", f"{report.auth} (key {report.key} from {report.key_source})"),
        ("status", report.status if report.status is not None else "-"),
        ("latency", f"{report.latency_ms:.0f} ms"),
        ("verdict", ("ok: " if report.ok else "failed: ") + report.verdict),
    ]
    if report.proxy:
        rows.insert(1, ("proxy", report.proxy))
    if report.error:
        rows.append(("error", report.error))
    return "\n".join(f"{name:<9} {value}" for name, value in rows)

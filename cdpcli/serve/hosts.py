"""Which `Host` a receiver answers to, and which browser requests may change its state.

A page on another site can make the developer's browser talk to the receiver: by DNS rebinding
(the page's own name re-pointed at 127.0.0.1, so that its scripts may read the answers) and by
"simple" cross-site requests (a form's POST, `text/plain`, which the browser sends without
asking). So a request must name the receiver in its `Host` (an address, a loopback name, the name
it was started on or one given with `--allow-host`): rebinding keeps the attacker's name in
`Host`. And a request that changes state (`POST /_cdp/reset`) must be one a page cannot send
cross-site without the receiver's consent (JSON, or a custom header: the browser asks first, and
the receiver never says yes) and must not come from a foreign `Origin`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
# the header a script may add instead of a JSON content type to make a request non-simple
CONTROL_HEADER = "x-cdp-control"


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def host_name(value: str) -> str:
    """The name in a `Host` header's value (no port, no brackets, lowercase)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") > 1:  # a bare IPv6 address (--host fd00::2): its last part is no port
        return value
    name, _, port = value.rpartition(":")
    return (name if name and port.isdigit() else value).rstrip(".")


class HostCheck:
    """The `Host` values a receiver answers to: the address it is bound to (`bound`: its --host,
    an address or a name), loopback addresses and names (`localhost`, `*.localhost`), and each
    `--allow-host NAME` (`*` allows every name). Bound to every address (0.0.0.0, ::), it answers
    to any IP address too: DNS rebinding needs a name."""

    def __init__(self, bound: str, allowed: Iterable[str] = ()) -> None:
        names = {host_name(name) for name in allowed}
        self.any = "*" in names
        self.names = names | {host_name(bound)}
        self.any_address = host_name(bound) in ("0.0.0.0", "::", "")

    def allows(self, value: str | None) -> bool:
        if value is None or self.any:  # HTTP/1.0 without Host: no browser sends that
            return True
        name = host_name(value)
        if not name:
            return False
        if name in self.names or name in LOOPBACK_NAMES or name.endswith(".localhost"):
            return True
        return is_loopback(name) or (self.any_address and _is_address(name))

    def refusal(self, value: str) -> str:
        name = host_name(value)
        return (
            f"Host {value!r} is not a name cdp serve answers to (a guard against DNS rebinding from web pages); "
            f"use 127.0.0.1 or localhost, or start cdp serve with --allow-host {name or 'NAME'}"
        )


def cross_site_problem(headers: dict[str, str]) -> str | None:
    """Why a state-changing request may have come from another site's page (None: it did not).
    `headers` lowercased."""
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc.lower() != headers.get("host", "").lower():
            return f"Origin {origin!r} is not this receiver's; cdp serve's state changes only come from its own pages"
    elif origin == "null":
        return "Origin 'null' (a sandboxed page or file) may not change cdp serve's state"
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and CONTROL_HEADER not in headers:
        return (
            "send Content-Type: application/json (or an X-Cdp-Control header): a plain form or text POST "
            "could come from any web page"
        )
    return None

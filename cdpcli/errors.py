"""Exit codes and the error types that carry them (SPEC: Output and exit codes).

Every failure the user can cause or meet is a CdpError with a message, an optional hint and
the exit code it maps to; `delivery_failure()` is the one place an answer that is not a 2xx
(or no answer) becomes a message, a hint and an exit code, for single calls, `connect test`
and import alike. The CLI's `reporting()` (cli/output.py) is the one place that turns these
errors into text and a process exit code.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # import: a line not delivered; or an unexpected error
    USAGE = 2  # bad flag, bad JSON, failed validation, missing configuration
    AUTH = 3  # the API rejected the key (401/403)
    REJECTED = 4  # the API rejected the call (other 4xx)
    SERVER = 5  # 5xx or 429 persisted after retries
    NETWORK = 6  # DNS, refused, timeout persisted after retries
    INTERRUPTED = 130


class CdpError(Exception):
    """`option`: the id of the option at fault (e.g. "types"), when one is. The core writes
    an option in the message and hint as Python names it (`types=`); the CLI renders the
    same text with its flags (`--types`)."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None, *, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.option = option


class UsageError(CdpError):
    """Bad flag value, bad JSON, failed validation, missing configuration."""

    exit_code = ExitCode.USAGE


class DeliveryError(CdpError):
    """A request that did not end in 2xx; `status` is None for network errors. `details`: what
    the CLI's --json error object carries besides the message (status, messageId, …)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        attempts: int = 1,
        exit_code: ExitCode = ExitCode.ERROR,
        option: str | None = None,
    ) -> None:
        super().__init__(message, hint, option=option)
        self.status = status
        self.attempts = attempts
        self.exit_code = exit_code
        self.details: dict[str, Any] = {}


# The API's answers to a key it does not take.
AUTH_STATUSES = (401, 403)

# What to try when no answer came, by transport.describe_network_error's kind; the settings
# as Python names them (Target's), which the CLI shows as its flags.
NETWORK_HINTS = {
    "dns": "check the host name in endpoint= (or the region)",
    "refused": "nothing listens there: check endpoint=, or start `cdp serve`",
    "timeout": "the endpoint did not answer in time: check the network or raise timeout=",
    "tls": "the TLS handshake failed: check the endpoint's scheme (http/https) and certificates "
    "(a private CA goes in SSL_CERT_FILE)",
    "proxy": "the proxy comes from the environment: check that it runs, or let this host bypass "
    "it with NO_PROXY (or unset the variable)",
}
NETWORK_HINT = "check endpoint= and region=, and your network; `cdp connect test` checks the setup"


def delivery_failure(
    *,
    url: str,
    status: int | None,
    error: str,
    attempts: int = 1,
    network_kind: str = "",
    key_origin: str = "",
    region: str = "",
) -> DeliveryError:
    """The one mapping from a final answer that is not 2xx (or none: `status` None) to a
    message, a hint and SPEC's exit code. `key_origin` and `region` say where the key came
    from and which region it was sent to, for the hint on a rejected key."""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if status is None:
        return DeliveryError(
            f"could not reach {url}: {error}{tries}",
            hint=NETWORK_HINTS.get(network_kind, NETWORK_HINT),
            attempts=attempts,
            exit_code=ExitCode.NETWORK,
            option="timeout" if network_kind == "timeout" else "endpoint",
        )
    if status in AUTH_STATUSES:
        origin = f"the key came from {key_origin}; " if key_origin else ""
        return DeliveryError(
            f"the API rejected the key (HTTP {status}) at {url}",
            hint=f"{origin}use the API key of a Customer.io HTTP source in region {region or 'us'}",
            status=status,
            attempts=attempts,
            exit_code=ExitCode.AUTH,
        )
    return DeliveryError(
        f"the API answered HTTP {status}{tries}: {error}",
        status=status,
        attempts=attempts,
        exit_code=exit_code_for_status(status),
    )


def exit_code_for_status(status: int) -> ExitCode:
    """Map a final (non-retried or retries-exhausted) HTTP status to SPEC's exit code."""
    if status in AUTH_STATUSES:
        return ExitCode.AUTH
    if status in (408, 429) or status >= 500:  # retried, and still the server's trouble
        return ExitCode.SERVER
    if 400 <= status < 500:
        return ExitCode.REJECTED
    return ExitCode.ERROR


class FatalStop(CdpError):
    """Stops a whole import (the rejects file cannot be written, the key was rejected, …):
    exit code per SPEC; the import still settles what it can and reports its counts."""

    def __init__(
        self, message: str, hint: str | None = None, exit_code: ExitCode = ExitCode.ERROR, *, option: str | None = None
    ) -> None:
        super().__init__(message, hint, option=option)
        self.exit_code = exit_code

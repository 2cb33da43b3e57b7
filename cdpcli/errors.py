"""Exit codes and the error types that carry them (SPEC: Output and exit codes).

Every failure the user can cause or meet is a CdpError with a message, an optional hint and
the exit code it maps to; `reporting()` in output.py is the one place that turns them into
text and a process exit code.
"""

from __future__ import annotations

from enum import IntEnum


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
    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CdpError):
    """Bad flag value, bad JSON, failed validation, missing configuration."""

    exit_code = ExitCode.USAGE


class DeliveryError(CdpError):
    """A request that did not end in 200; `status` is None for network errors."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        attempts: int = 1,
        exit_code: ExitCode = ExitCode.ERROR,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.attempts = attempts
        self.exit_code = exit_code


def exit_code_for_status(status: int) -> ExitCode:
    """Map a final (non-retried or retries-exhausted) HTTP status to SPEC's exit code."""
    if status in (401, 403):
        return ExitCode.AUTH
    if status in (408, 429) or status >= 500:  # retried, and still the server's trouble
        return ExitCode.SERVER
    if 400 <= status < 500:
        return ExitCode.REJECTED
    return ExitCode.ERROR

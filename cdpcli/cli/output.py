"""Where text goes: results to stdout, everything else to stderr, every line through the one
redaction step (redaction.redact); and the one place that maps errors to messages and exit
codes (`reporting`)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from cdpcli.config import ConfigFileError, load_config
from cdpcli.errors import CdpError, ExitCode
from cdpcli.jsontext import is_text
from cdpcli.redaction import add_secret, redact
from cdpcli.settings import DEFAULT_PROFILE, PROFILE_ENV, SETTINGS

if TYPE_CHECKING:
    from cdpcli.transport import Exchange
    from cdpcli.wire import Request

# The core names options by id, in Python's spelling (`types=`, `rate=200`); the CLI shows
# its flags. An id not listed here is spelled "--" + the id with dashes.
FLAG_FOR_OPTION = {"type": "--type", "archive": "--from", "column": "--column", "user_id": "--user"}
OPTION_IDS = (
    *FLAG_FOR_OPTION,
    *[
        "concurrency",
        "batch_bytes",
        "batch_events",
        "rate",
        "rate_budget",
        "shard",
        "shard_by",
        "rejects",
        "checkpoint",
        "order",
    ],
    *["max_invalid", "id_namespace", "format", "infer_types", "since", "until", "types", "events", "exclude_events"],
    *["limit", "sample", "recent", "dry_run", "preflight", "resolve_identities", "delimiter"],
    *["endpoint", "region", "timeout"],  # the connection's, in network hints
    *["against", "api_key", "anonymous_id"],
)
# on/off options: `header=True` is the flag --header, `header=False` its --no-header
_SWITCH_FORM = re.compile(r"(?<![\w./$-])(header|follow_symlinks)=(True|False)\b")
# `id=` not inside a word, a path or a flag; longest first (rate_budget before rate)
_OPTION_FORM = re.compile(r"(?<![\w./$-])(" + "|".join(sorted(OPTION_IDS, key=len, reverse=True)) + r")=(\S?)")


def flag_of(option: str) -> str:
    """The flag that sets an option id (`exclude_events` -> `--exclude-events`)."""
    return FLAG_FOR_OPTION.get(option, "--" + option.replace("_", "-"))


# a value the core quotes (repr's '…' or "…"): the user's input, never rewritten; a quote
# after a letter is an apostrophe (the API's limit), not the start of one
_QUOTED = re.compile(r"""(?<!\w)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")(?!\w)""")


def flagged(text: str) -> str:
    """The core's text with its options as flags: `types='x': …` -> `--types 'x': …`,
    `since= must be before until=` -> `--since must be before --until`. Quoted values are the
    user's input and stay as typed (`since='rate=5'` -> `--since 'rate=5'`)."""

    def flag(match: re.Match[str]) -> str:
        after = match[2]
        return flag_of(match[1]) + (" " + after if after and after not in ",.;:)" else after)

    parts = _QUOTED.split(text)  # odd items are the quoted spans
    shown = []
    for index, part in enumerate(parts):
        if index % 2:
            shown.append(part)
            continue
        # the quote that follows (`since=` then `'x'`) is read with the part, so the flag and
        # its value are spaced as they are before an unquoted value
        quote = parts[index + 1][:1] if index + 1 < len(parts) else ""
        part = _SWITCH_FORM.sub(lambda m: ("--" if m[2] == "True" else "--no-") + m[1].replace("_", "-"), part)
        done = _OPTION_FORM.sub(flag, part + quote)
        shown.append(done[: len(done) - len(quote)])
    return "".join(shown)


def error_text(error: CdpError) -> tuple[str, str | None]:
    """An error's message and hint as the CLI shows them (options as flags when it names one)."""
    if getattr(error, "option", None) is None:
        return error.message, error.hint
    return flagged(error.message), flagged(error.hint) if error.hint else error.hint


def _printable(text: str) -> str:
    """Text that any stream can encode: lone surrogates (undecodable argv bytes) escaped."""
    return text if is_text(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_line(obj: Any) -> str:
    """One compact JSON object, redacted, always encodable."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return redact(text)


@dataclass
class Output:
    json_mode: bool = False
    quiet: bool = False
    verbosity: int = 0
    # JSON objects this command wrote to stdout so far: `reporting` prints an error object
    # under --json only when the command has not already printed its own result object.
    json_objects: int = field(default=0, init=False, compare=False)
    # the command's --api-key and --profile as typed: `reporting` hides the keys they lead to
    api_key: str | None = field(default=None, repr=False, compare=False)
    profile: str | None = field(default=None, compare=False)
    _keys_hidden: bool = field(default=False, init=False, repr=False, compare=False)

    def hide_keys(self) -> None:
        """hide_keys_in_reach for this command, once (it reads the config file)."""
        if not self._keys_hidden:
            self._keys_hidden = True
            hide_keys_in_reach(self.api_key, self.profile)

    def result(self, text: str) -> None:
        """A human-readable result line on stdout."""
        sys.stdout.write(_printable(redact(text)) + "\n")
        sys.stdout.flush()

    def json(self, obj: Any) -> None:
        """One compact JSON object per line on stdout (no colour, no wrapping)."""
        self.json_objects += 1
        sys.stdout.write(json_line(obj) + "\n")
        sys.stdout.flush()

    def show_request(self, request: Request) -> None:
        """A dry run's request, as `request` below shows it."""
        self.request(request.url, request.redacted_headers(), request.body_bytes().decode("utf-8"))

    def request(self, url: str, headers: dict[str, str], body: str) -> None:
        """A dry-run request: `{"method","url","headers","body"}` with --json, else as on the wire.

        `body` is the JSON text as it would be sent (spliced in, never re-parsed)."""
        if self.json_mode:
            self.json_objects += 1
            head = json.dumps(
                {"method": "POST", "url": url, "headers": headers}, ensure_ascii=False, separators=(",", ":")
            )
            self.result(head[:-1] + ',"body":' + body + "}")
        else:
            self.result("\n".join([f"POST {url}", *(f"{k}: {v}" for k, v in headers.items()), "", body]))

    def exchange(self, exchange: Exchange) -> None:
        """-v: each request line, its status, latency and answer on stderr (httpie's -v);
        -vv: the headers both ways too. Credentials are redacted (transport.Exchange)."""
        if self.verbosity < 1:
            return
        retry = f"  (retry {exchange.attempt - 1})" if exchange.attempt > 1 else ""
        lines = [f"> POST {exchange.url}{retry}"]
        if self.verbosity >= 2:
            lines += [f"> {name}: {value}" for name, value in exchange.request_headers.items()]
        if exchange.status is None:
            lines.append(f"< no answer after {exchange.latency_ms:.0f} ms: {exchange.error}")
        else:
            lines.append(f"< HTTP {exchange.status}  ({exchange.latency_ms:.0f} ms)")
            if self.verbosity >= 2:
                lines += [f"< {name}: {value}" for name, value in exchange.response_headers.items()]
            if exchange.response_body.strip():
                lines.append("< " + exchange.response_body.strip()[:2000])
        _stderr("\n".join(lines))

    def info(self, text: str) -> None:
        if not self.quiet:
            _stderr(text)

    def verbose(self, text: str, level: int = 1) -> None:
        if self.verbosity >= level:
            _stderr(text)

    def problem(self, text: str) -> None:
        """A line about one failed input (`file:line: error`): shown even with --quiet."""
        _stderr(text)

    def warn(self, text: str) -> None:
        warn(text)

    def error(self, text: str, hint: str | None = None) -> None:
        self.hide_keys()  # also for an error raised before the command ran
        _stderr(f"Error: {text}")
        if hint:
            _stderr(f"Hint: {hint}")


def warn(text: str) -> None:
    _stderr(f"Warning: {text}")


def _stderr(text: str) -> None:
    sys.stderr.write(_printable(redact(text)) + "\n")
    sys.stderr.flush()


@contextmanager
def reporting(out: Output | None = None) -> Iterator[None]:
    """Turn our errors into `Error:`/`Hint:` lines and SPEC's exit code; never a traceback.

    Under --json, every outcome is one object on stdout: a command that fails before printing
    its own result object gets `{"ok": false, "error", "hint", "exit_code"}` (plus what the
    error carries in `details`, e.g. a failed send's status and messageId).

    It lives inside each command (not around main()) so tests driving the app see exactly
    what users see.
    """
    out = out or Output()
    printed_before = out.json_objects
    try:
        out.hide_keys()
        yield
    except CdpError as exc:
        _fail(out, printed_before, *error_text(exc), exc.exit_code, getattr(exc, "details", None))
    except KeyboardInterrupt:
        _stderr("Interrupted.")
        if out.json_mode and out.json_objects == printed_before:
            _json_error(out, "interrupted", None, ExitCode.INTERRUPTED)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BrokenPipeError:
        # stdout closed early (`cdp … | head`): not an error worth a message
        raise typer.Exit(int(ExitCode.OK)) from None
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if out.verbosity >= 2:
            import traceback  # lazy: start-up

            _stderr("".join(traceback.format_exc()))
        _fail(
            out,
            printed_before,
            f"unexpected {type(exc).__name__}: {exc}",
            "run again with -vv and report this",
            ExitCode.ERROR,
        )


def hide_keys_in_reach(api_key: str | None = None, profile: str | None = None) -> None:
    """Register for `redact` every API key the running command could take, before it prints a
    line: its --api-key as typed, $CDP_API_KEY, and the stored key of its profile (--profile,
    $CDP_PROFILE, else default). The Target registers the key it takes, but a message raised
    before the Target exists (a key pasted where a file name goes: `cannot read KEY`) must not
    show it either."""
    for key in (api_key, os.environ.get(SETTINGS["api-key"][0]), stored_key(profile)):
        if isinstance(key, str) and key.strip():
            add_secret(key)


def stored_key(profile: str | None = None) -> Any:
    """The API key the config file holds for `profile` ($CDP_PROFILE, else default), if any;
    None when it cannot be read for any reason (a broken file, no home directory): a command
    that needs the file says why itself, and this runs where an error is being reported."""
    profile = profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    try:
        return load_config().get(profile, {}).get("api-key")
    except (ConfigFileError, OSError, KeyError, RuntimeError):  # Path.home(): KeyError, RuntimeError
        return None


def _fail(
    out: Output, printed_before: int, message: str, hint: str | None, code: int, details: dict[str, Any] | None = None
) -> None:
    out.error(message, hint)
    if out.json_mode and out.json_objects == printed_before:
        _json_error(out, message, hint, code, details)
    raise typer.Exit(int(code)) from None


def _json_error(out: Output, message: str, hint: str | None, code: int, details: dict[str, Any] | None = None) -> None:
    try:
        out.json(
            {
                **(details or {}),
                "ok": False,
                "error": (details or {}).get("error", message),
                "hint": hint,
                "exit_code": int(code),
            }
        )
    except (BrokenPipeError, ValueError):  # stdout closed: the exit code still tells
        pass

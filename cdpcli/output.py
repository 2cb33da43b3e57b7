"""Where text goes: results to stdout, everything else to stderr; and the one place that
maps errors to messages and exit codes (`reporting`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cdpcli.errors import CdpError, ExitCode


@dataclass
class Output:
    json_mode: bool = False
    quiet: bool = False
    verbosity: int = 0

    def result(self, text: str) -> None:
        """A human-readable result line on stdout."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def json(self, obj: Any) -> None:
        """One compact JSON object per line on stdout (no colour, no wrapping)."""
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def request(self, url: str, headers: dict[str, str], body: str) -> None:
        """A dry-run request: `{"method","url","headers","body"}` with --json, else as on the wire.

        `body` is the JSON text as it would be sent (spliced in, never re-parsed)."""
        if self.json_mode:
            head = json.dumps({"method": "POST", "url": url, "headers": headers}, ensure_ascii=False, separators=(",", ":"))
            self.result(head[:-1] + ',"body":' + body + "}")
        else:
            self.result("\n".join([f"POST {url}", *(f"{k}: {v}" for k, v in headers.items()), "", body]))

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
        _stderr(f"Warning: {text}")

    def error(self, text: str, hint: str | None = None) -> None:
        _stderr(f"Error: {text}")
        if hint:
            _stderr(f"Hint: {hint}")


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@contextmanager
def reporting(out: Output | None = None) -> Iterator[None]:
    """Turn our errors into `Error:`/`Hint:` lines and SPEC's exit code; never a traceback.

    It lives inside each command (not around main()) so tests driving the app see exactly
    what users see.
    """
    import typer

    out = out or Output()
    try:
        yield
    except CdpError as exc:
        out.error(exc.message, exc.hint)
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        _stderr("Interrupted.")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BrokenPipeError:
        # stdout closed early (`cdp … | head`): not an error worth a message
        raise typer.Exit(int(ExitCode.OK)) from None
    except Exception as exc:  # the last line of defence: a message, not a traceback
        out.error(f"unexpected {type(exc).__name__}: {exc}", hint="run again with -vv and report this")
        if out.verbosity >= 2:
            import traceback

            traceback.print_exc()
        raise typer.Exit(int(ExitCode.ERROR)) from None

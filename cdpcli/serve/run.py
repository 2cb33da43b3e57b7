"""`cdp serve` itself: a receiver that owns its process, with its output file, its banner, log
and last words (handed to `say`: the CLI writes them to stderr, so stdout stays pure NDJSON)."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import Any, TextIO

from cdpcli.errors import CdpError, UsageError
from cdpcli.serve.hosts import is_loopback
from cdpcli.serve.limits import MAX_CONNECTIONS, MAX_REJECT_BYTES
from cdpcli.serve.overload import raise_open_files_limit
from cdpcli.serve.receiver import Receiver
from cdpcli.serve.store import MAX_CALLS, strerror

# seconds between garbage collections while `cdp serve` runs (see receiver.CollectionSchedule; read
# when serve starts, so that benchmarks/serve_throughput.py can set it to None to compare)
SERVE_COLLECT_EVERY = 10.0


def run_server(
    *,
    host: str,
    port: int,
    api_key: str | None,
    out_path: str | None,
    fail_rate: float,
    latency_ms: int,
    seed: int | None = None,
    max_calls: int = MAX_CALLS,
    rate_limit: float | None = None,
    fail_first: int = 0,
    status_for: dict[str, int] | None = None,
    allow_hosts: tuple[str, ...] = (),
    max_reject_bytes: int = MAX_REJECT_BYTES,
    say: Callable[[str], None],
) -> None:
    """Serve until interrupted, or until the output can no longer be written. The banner, the
    warnings and the log go to `say` (the CLI's stderr), so stdout stays pure NDJSON.

    When the output fails, the request whose calls could not be recorded gets a 503 (never a
    200), so do the requests after it; serve stops listening, lets the requests in flight get
    their answer, and exits like a filter whose reader went away: 0 when the reader closed it
    (`cdp serve | head -1`, as every cdp command treats a closed stdout), 1 with Error/Hint for
    any other failure (a full disk, an I/O error)."""
    limits = raise_open_files_limit()
    receiver = _listening(
        host,
        port,
        say,
        api_key=api_key,
        fail_rate=fail_rate,
        latency_ms=latency_ms,
        seed=seed,
        max_calls=max_calls,
        rate_limit=rate_limit,
        fail_first=fail_first,
        status_for=status_for,
        allow_hosts=allow_hosts,
        max_reject_bytes=max_reject_bytes,
    )
    try:
        # opened once listening works, so that a busy port leaves no empty file behind
        out = _open_out(out_path)
    except BaseException:
        receiver.stop()
        raise
    receiver.store.out = out
    _say_where(receiver, host, say, limits)
    try:
        receiver.serve_forever()
    finally:
        _wind_down(receiver, out)
    _last_words(receiver, out_path, say)
    if receiver.listener.interrupted:
        raise KeyboardInterrupt  # the CLI's exit code for an interruption, 130


def _listening(host: str, port: int, say: Callable[[str], None], *, api_key: str | None, **faults: Any) -> Receiver:
    """`cdp serve`'s receiver, listening; UsageError with a hint when it cannot listen there."""
    try:
        return Receiver(
            host,
            port,
            api_key=api_key,
            keep_requests=False,  # calls and rejects are kept (up to max_calls), each request is not
            **faults,
            collect_every=SERVE_COLLECT_EVERY,
            log=say,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            hint = "another program listens there: pick another --port (0 picks a free one)"
        elif exc.errno == errno.EACCES:
            hint = "ports below 1024 need privileges: pick --port 1024 or above (0 picks a free one)"
        else:
            hint = "--host must be an address of this machine, such as 127.0.0.1 or ::1"
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint=hint) from None


def _open_out(out_path: str | None) -> TextIO:
    """--out opened for appending (stdout without it); UsageError with a hint when it cannot be."""
    try:
        return open(out_path, "a", encoding="utf-8") if out_path else sys.stdout  # noqa: SIM115 (the server owns it)
    except OSError as exc:
        hints = {
            errno.ENOENT: "its directory does not exist: create it first, or pick another path",
            errno.EISDIR: "--out takes a file name, not a directory",
            errno.EACCES: "you may not write there: pick a path you can write",
        }
        raise UsageError(
            f"cannot open --out {out_path!r} for appending: {exc.strerror or exc}",
            hint=hints.get(exc.errno or 0, "pick a file you can write"),
        ) from None


def _say_where(receiver: Receiver, host: str, say: Callable[[str], None], limits: tuple[int, int] | None) -> None:
    """The banner (its URL is what scripts read), after a warning when strangers can reach it,
    and before one when few descriptors may be open (`limits`: the soft limit before and now)."""
    address = receiver.listener.address[0]
    if not is_loopback(address):
        say(
            f"Warning: --host {host} listens on {address}, not a loopback address: anyone who can reach this machine "
            f"can send calls to it (plain HTTP, any non-empty key unless --api-key is given); use --host 127.0.0.1 "
            f"or ::1 to keep it to this machine"
        )
    say(f"cdp serve: listening on {receiver.url} (Ctrl-C to stop)")
    if limits is not None and limits[1] < MAX_CONNECTIONS + 256:
        say(
            f"Warning: at most {limits[1]:,} files may be open (ulimit -n; the hard limit), so past about "
            f"{limits[1] - 64:,} connections at once new ones are answered 503"
        )


def _wind_down(receiver: Receiver, out: TextIO) -> None:
    """Stop serving and close --out (the requests in flight answered first)."""
    receiver.stop()
    if receiver.store.broken is not None:
        receiver.wait_idle(5.0)  # the requests in flight get their 503 before the process ends
    if out is not sys.stdout:
        try:
            out.close()
        except (OSError, ValueError):  # the failure that stopped us, met again on the last flush
            pass


def _last_words(receiver: Receiver, out_path: str | None, say: Callable[[str], None]) -> None:
    """Nothing when serve was stopped; when its output failed, why: a line when the reader
    closed it (exit 0, like a filter), else CdpError (exit 1)."""
    broken = receiver.store.broken
    if broken is None:
        return
    where = repr(out_path) if out_path else "stdout"
    recorded = f"{receiver.accepted:,} call{'' if receiver.accepted == 1 else 's'} recorded"
    if isinstance(broken, BrokenPipeError):
        say(f"cdp serve: stopped: {where} was closed by its reader ({recorded}; later requests were answered 503)")
        return
    raise CdpError(
        f"cannot write to {where}: {strerror(broken)}; cdp serve stopped ({recorded})",
        hint="the requests it could not record were answered 503, so clients retry them: "
        "free space or pick another --out, and start it again",
    )

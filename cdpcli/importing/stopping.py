"""How far an import is stopping, and why: the state its threads share (as uvicorn's server
state is shared by its protocols). `stop_reading`: no more input is read, what is packed is
still delivered; `stop`: no new request is sent either; `give_up`: a second Ctrl-C, the
senders in flight are not waited for. The first reason given wins."""

from __future__ import annotations

import threading

from cdpcli.errors import CdpError, ExitCode
from cdpcli.importing.stats import Stats


class Stopping:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.stop_reading = threading.Event()
        self.give_up = threading.Event()
        self.fatal: CdpError | None = None
        self.interrupted = False
        self._lock = threading.Lock()

    def stop_with(self, error: CdpError, *, sending: bool = True) -> None:
        """Record why the import stops (the first reason wins); stop reading, and unless
        `sending` is false, stop sending too."""
        with self._lock:
            # after a second Ctrl-C, a sender still running may fail on the closed rejects
            # file: the import was interrupted, and that is what it reports
            if self.fatal is None and not self.give_up.is_set():
                self.fatal = error
        self.stop_reading.set()
        if sending:
            self.stop.set()

    def interrupt(self) -> bool:
        """Ctrl-C or SIGTERM: the first stops reading and sending new requests (those in flight
        finish, their calls settle); a second stops waiting for them (the checkpoint leaves them
        for the next run). True for the first."""
        if self.interrupted:
            self.give_up.set()
            return False
        self.interrupted = True
        self.stop_reading.set()
        self.stop.set()
        return True

    def exit_code(self, stats: Stats) -> int:
        if self.fatal:
            return int(self.fatal.exit_code)
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        if stats.invalid or stats.failed:
            return int(ExitCode.ERROR)
        return int(ExitCode.OK)

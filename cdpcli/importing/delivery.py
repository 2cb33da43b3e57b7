"""The senders of an import: N threads that take batches off a queue, pace requests (pacing.py),
send them (transport.Sender retries), split a batch the API refuses (400/413) until the calls
it rejects are isolated, and stop everything on a rejected key (401/403)."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from cdpcli.calls import failure_of
from cdpcli.errors import AUTH_STATUSES, FatalStop
from cdpcli.importing.batches import Batch, BatchRequest
from cdpcli.importing.events import ImportEvents
from cdpcli.importing.options import ImportOptions
from cdpcli.importing.pacing import AdaptiveRate, RateLimiter
from cdpcli.importing.settle import Settle
from cdpcli.transport import RETRY_AFTER_CAP, Outcome

if TYPE_CHECKING:
    from cdpcli.target import Target


# rate auto: times one batch is answered 429 before it fails (to the rejects file, as any
# other undelivered batch). At the usual Retry-After of 1 s, half a minute of refusals.
MAX_THROTTLED = 30


class Delivery:
    """Sends the batches an import packs; settles their calls through `port` (delivered or
    rejected). `sender_options` go to Target.sender (e.g. `transport=` in tests)."""

    def __init__(
        self,
        target: Target,
        options: ImportOptions,
        port: Settle,
        events: ImportEvents | None = None,
        **sender_options: Any,
    ) -> None:
        self.target = target
        self.port = port
        self.events = events or ImportEvents()
        self.concurrency = options.concurrency
        self.url = f"{target.base}/batch"
        self.headers = target.headers()
        self.gzip = target.gzip
        self.in_flight = 0  # requests being sent (a second Ctrl-C does not wait for them)
        self.ever_delivered = False
        self.sender = target.sender(
            connections=options.concurrency,
            on_retry=self._on_retry,
            on_exchange=self.events.exchange,
            stop=port.stop,
            # rate auto answers 429s itself (slower, then the same batch again), uncounted
            retry_throttled=not options.rate_auto,
            **sender_options,
        )
        self.rate = RateLimiter(options.rate)
        self.adaptive = AdaptiveRate(self.rate) if options.rate_auto else None

    def start(self, batches: queue.Queue) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._send_loop, args=(batches,), name=f"cdp-sender-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        return threads

    def finish(self, senders: list[threading.Thread], batches: queue.Queue, give_up: threading.Event) -> int:
        """Let the senders finish what is queued, unless `give_up` is set (a second Ctrl-C);
        the requests in flight not waited for. Closes the connections when none is left."""
        for _ in senders:
            while True:  # never block for good: a sender may be gone
                try:
                    batches.put(None, timeout=0.1)
                    break
                except queue.Full:
                    if give_up.is_set() or not any(t.is_alive() for t in senders):
                        break
        for thread in senders:
            while thread.is_alive() and not give_up.is_set():
                thread.join(timeout=0.1)
        if not give_up.is_set():
            # every sender is done: its connections go now, not at the next garbage collection
            # (a long-lived worker runs many imports)
            self.sender.close()
            return 0
        with self.port.lock:
            return self.in_flight

    def close(self) -> None:
        self.sender.close()

    def request(self, batch: Batch) -> BatchRequest:
        return BatchRequest(self.url, self.headers, batch, self.gzip)

    def _on_retry(self, text: str) -> None:
        self.port.counted(retries=1)
        self.events.retrying(text)

    def _send_loop(self, batches: queue.Queue) -> None:
        port = self.port
        while True:
            batch = batches.get()
            if batch is None:
                return
            if port.stop.is_set():
                continue  # not sent: it stays open, so the checkpoint resumes before it
            with port.lock:
                self.in_flight += 1
            try:
                settled = self._deliver(batch)
            except FatalStop as exc:  # its rejects could not be written: the batch stays open
                port.stop_with(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - never a dead thread and a hung import
                port.stop_with(
                    FatalStop(
                        f"unexpected {type(exc).__name__} while sending: {exc}",
                        hint="run the same import again (with a checkpoint it resumes); please report this",
                    )
                )
                continue
            finally:
                with port.lock:
                    self.in_flight -= 1
            if settled:
                port.settled(batch)

    def _deliver(self, batch: Batch) -> bool:
        """Send one batch; True when every call in it is settled (delivered or rejected)."""
        outcome = self._send(batch)
        if outcome is None:
            return False  # stopping: not sent, the batch stays open for the next run
        status = outcome.status
        if outcome.ok:
            self.ever_delivered = True
            self.port.delivered(batch)
            return True
        if status in AUTH_STATUSES:
            return self._stop_all(outcome)  # every other batch would be refused alike
        if self.port.stop.is_set() and (status is None or status >= 500 or status in (408, 429)):
            return False  # interrupted while retrying: left for the next run
        if status in (400, 413) and len(batch.calls) > 1:
            # isolate the calls the API refuses; the rest are delivered
            first, second = batch.halves()
            return self._deliver(first) & self._deliver(second)
        if status is None and not self.ever_delivered:
            return self._stop_all(outcome)  # an endpoint never reached: a setup problem
        tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
        reason = f"HTTP {status}{tries}: {outcome.error}" if status is not None else f"{outcome.error}{tries}"
        self.port.failed(batch, reason)
        return True

    def _send(self, batch: Batch) -> Outcome | None:
        """The batch's final answer: the transport's retries, and with rate auto the same
        batch again after each 429 (slower for all senders). None when stopping first."""
        stop = self.port.stop
        throttled = 0
        while True:
            if not self.rate.wait(stop):
                return None
            sent_at = time.monotonic()
            outcome = self.sender.send(self.request(batch))
            self.port.counted(requests=outcome.attempts)
            if self.adaptive is None:
                return outcome
            if outcome.status != 429:
                if outcome.ok:
                    self.adaptive.succeeded(sent_at)
                return outcome
            self.adaptive.throttled_by_api(sent_at)
            throttled += 1
            if throttled >= MAX_THROTTLED:
                return outcome  # an endpoint that only ever answers 429: the batch fails like any other
            # this batch again after the Retry-After the API asked for (capped as transport's)
            wait = min(outcome.retry_after if outcome.retry_after is not None else 1.0, RETRY_AFTER_CAP)
            if stop.wait(wait):
                return None

    def _stop_all(self, outcome: Outcome) -> bool:
        """Stop the import with errors.delivery_failure's message, hint and exit code; the
        batch stays open (not settled) for the next run."""
        failure = failure_of(outcome, self.url, self.target)
        stop = FatalStop(f"{failure.message}; import stopped", failure.hint, failure.exit_code, option=failure.option)
        self.port.stop_with(stop)
        return False

"""The senders of an import: N threads that take batches off a queue, pace requests (pacing.py),
send them (transport.Sender retries), split a batch the API refuses (400/413) until the calls
it rejects are isolated, and stop everything on a rejected key (401/403)."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

from cdpcli.errors import AUTH_STATUSES, FatalStop
from cdpcli.importing.batches import Batch, BatchRequest, unref
from cdpcli.importing.pacing import AdaptiveRate, RateLimiter

if TYPE_CHECKING:
    from cdpcli.importing.engine import Importer
    from cdpcli.transport import Outcome


# --rate auto: times one batch is answered 429 before it fails (to the rejects file, as any
# other undelivered batch). At the usual Retry-After of 1 s, half a minute of refusals.
MAX_THROTTLED = 30


class Delivery:
    """Sends the batches an Importer packs; settles their calls (delivered or rejected)."""

    def __init__(self, importer: Importer) -> None:
        self.importer = importer
        target, options = importer.target, importer.options
        self.url = f"{target.base}/batch"
        self.headers = target.headers()
        self.gzip = target.gzip
        self.in_flight = 0  # requests being sent (a second Ctrl-C does not wait for them)
        self.ever_delivered = False
        self.sender = target.sender(
            connections=options.concurrency,
            on_retry=self._on_retry,
            on_exchange=importer.events.exchange,
            stop=importer.stop,
            # --rate auto answers 429s itself (slower, then the same batch again), uncounted
            retry_throttled=not options.rate_auto,
        )
        self.rate = RateLimiter(options.rate)
        self.adaptive = AdaptiveRate(self.rate) if options.rate_auto else None

    def start(self, batches: queue.Queue) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._send_loop, args=(batches,), name=f"cdp-sender-{i}", daemon=True)
            for i in range(self.importer.options.concurrency)
        ]
        for thread in threads:
            thread.start()
        return threads

    def request(self, batch: Batch) -> BatchRequest:
        return BatchRequest(self.url, self.headers, batch, self.gzip)

    def _on_retry(self, text: str) -> None:
        with self.importer.stats_lock:
            self.importer.stats.retries += 1
        self.importer.events.retrying(text)

    def _send_loop(self, batches: queue.Queue) -> None:
        importer = self.importer
        while True:
            batch = batches.get()
            if batch is None:
                return
            if importer.stop.is_set():
                continue  # not sent: it stays open, so the checkpoint resumes before it
            with importer.stats_lock:
                self.in_flight += 1
            try:
                settled = self._deliver(batch)
            except FatalStop as exc:  # its rejects could not be written: the batch stays open
                importer.stop_with(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - never a dead thread and a hung import
                importer.stop_with(
                    FatalStop(
                        f"unexpected {type(exc).__name__} while sending: {exc}",
                        hint="run the same command again (with --checkpoint it resumes); please report this",
                    )
                )
                continue
            finally:
                with importer.stats_lock:
                    self.in_flight -= 1
            if settled:
                importer.settlement.closed(batch)

    def _deliver(self, batch: Batch) -> bool:
        """Send one batch; True when every call in it is settled (delivered or rejected)."""
        importer = self.importer
        throttled = 0
        while True:
            if not self.rate.wait(importer.stop):
                return False  # stopping: not sent, the batch stays open for the next run
            sent_at = time.monotonic()
            outcome = self.sender.send(self.request(batch))
            with importer.stats_lock:
                importer.stats.requests += outcome.attempts
            if self.adaptive is None:
                break
            if outcome.status != 429:
                if outcome.ok:
                    self.adaptive.succeeded(sent_at)
                break
            self.adaptive.throttled_by_api(sent_at)  # slower for all senders
            throttled += 1
            if throttled >= MAX_THROTTLED:
                break  # an endpoint that only ever answers 429: the batch fails like any other
            # this batch again after the Retry-After the API asked for (capped as transport's)
            from cdpcli.transport import RETRY_AFTER_CAP

            wait = min(outcome.retry_after if outcome.retry_after is not None else 1.0, RETRY_AFTER_CAP)
            if importer.stop.wait(wait):
                return False  # stopping: the batch stays open for the next run
        status = outcome.status
        if outcome.ok:
            self.ever_delivered = True
            with importer.stats_lock:
                importer.stats.batches += 1
                importer.stats.sent += len(batch.calls)
            return True
        if status in AUTH_STATUSES:
            return self._stop_all(outcome)  # every other batch would be refused alike
        if importer.stop.is_set() and (status is None or status >= 500 or status in (408, 429)):
            return False  # interrupted while retrying: left for the next run
        if status in (400, 413) and len(batch.calls) > 1:
            # isolate the calls the API refuses; the rest are delivered
            first, second = batch.halves()
            return self._deliver(first) & self._deliver(second)
        if status is None and not self.ever_delivered:
            return self._stop_all(outcome)  # an endpoint never reached: a setup problem
        tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
        reason = f"HTTP {status}{tries}: {outcome.error}" if status is not None else f"{outcome.error}{tries}"
        self._fail(batch, reason)
        return True

    def _stop_all(self, outcome: Outcome) -> bool:
        """Stop the import with errors.delivery_failure's message, hint and exit code; the
        batch stays open (not settled) for the next run."""
        from cdpcli.calls import failure_of

        failure = failure_of(outcome, self.url, self.importer.target)
        self.importer.stop_with(FatalStop(f"{failure.message}; import stopped", failure.hint, failure.exit_code))
        return False

    def _fail(self, batch: Batch, reason: str) -> None:
        importer = self.importer
        for call, (source, line_no) in zip(batch.calls, map(unref, batch.refs), strict=True):
            importer.reject(source, line_no, reason, call, shown=f"not delivered: {reason}")
        with importer.stats_lock:  # counted once every record is written (a FatalStop counts none)
            importer.stats.failed += len(batch.calls)

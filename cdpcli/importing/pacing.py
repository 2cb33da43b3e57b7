"""How fast an import sends: `rate` (requests per second, per process), `rate_budget` (one
budget for all shards: each takes TOTAL/N), and rate "auto" (adapt to the API's 429s)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from cdpcli.errors import UsageError

if TYPE_CHECKING:
    from cdpcli.importing.shard import Shard

# rate bounds: one request an hour at the slowest (below, the wait overflows clocks: 1e-300
# crashed), and far above the API's 1,000 requests per second at the fastest
MIN_RATE = 1 / 3600
MAX_RATE = 1_000_000
DEFAULT_RATE = 1000.0


def resolve_rate(rate: str | float | None, budget: float | None, shard: Shard | None) -> tuple[float, bool]:
    """(requests per second for this process, whether to adapt it): rate=N | auto, and
    rate_budget=TOTAL shared by the shards. `auto` starts at the budget's share (else the
    default) and adapts."""
    auto = isinstance(rate, str) and rate.strip().lower() == "auto"
    if budget is not None:
        if rate is not None and not auto:
            raise UsageError(
                "rate= and rate_budget= both set the rate",
                hint="keep rate_budget= (shared by the shards), or rate=",
                option="rate",
            )
        check_rate(budget, "rate_budget")
        return budget / (shard.count if shard else 1), auto
    if rate is None or auto:
        return DEFAULT_RATE, auto
    if isinstance(rate, str):
        try:
            rate = float(rate)
        except ValueError:
            raise UsageError(
                f"rate={rate!r}: expected requests per second or auto",
                hint="e.g. rate=200, or rate=auto",
                option="rate",
            ) from None
    check_rate(rate, "rate")
    return rate, False


def check_rate(rate: float, option: str) -> None:
    """`option`: the id of the option that set it (rate, rate_budget)."""
    if not (MIN_RATE <= rate <= MAX_RATE):  # NaN fails both comparisons too
        raise UsageError(
            f"{option}= must be between {MIN_RATE:g} and {MAX_RATE:,} requests per second, not {rate:g}", option=option
        )


class RateLimiter:
    """At most `rate` request starts per second across all senders (a simple interval gate)."""

    def __init__(self, rate: float) -> None:
        self.lock = threading.Lock()
        self.next_at = 0.0
        self.set_rate(rate)

    def set_rate(self, rate: float) -> None:
        with self.lock:
            self.rate = rate
            self.interval = 1.0 / rate if rate > 0 else 0.0

    def wait(self, stop: threading.Event) -> bool:
        """Wait for this request's turn; False when `stop` was set meanwhile (do not send)."""
        with self.lock:
            if not self.interval:
                return not stop.is_set()
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now and stop.wait(start - now):
            return False
        return not stop.is_set()


class AdaptiveRate:
    """rate=auto. On a 429 the rate drops to CUT of what the API accepted lately (over the
    last WINDOW seconds, or since the start when that is shorter: a limit's first burst is
    then counted over the time it took), and no request starts before the Retry-After; while
    requests succeed it climbs by STEP of itself (at least one request per second) each second.
    Near a limit L it saws between about 0.9 L and L. 429s answering requests sent before
    the last cut do not cut again: they say nothing new."""

    WINDOW = 2.0
    # after a cut, 429s to requests sent within this many seconds say nothing new: the limit's
    # bucket is still empty (without it, one overrun cut six times in 60 ms, to 0.8 L)
    SETTLE = 1.0
    CUT = 0.9
    STEP = 0.02

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.lock = threading.Lock()
        self.accepted: deque[float] = deque()  # when requests succeeded, over the last WINDOW
        self.cut_at = 0.0
        self.raised_at = time.monotonic()
        self.throttled = 0  # 429s seen
        self.started: float | None = None  # the first answer

    def succeeded(self, sent_at: float) -> None:
        now = time.monotonic()
        with self.lock:
            if self.started is None:
                self.started = sent_at
            self.accepted.append(now)
            self._forget(now)
            if now - self.raised_at >= 1.0 and sent_at >= self.cut_at:
                self.raised_at = now
                rate = self.limiter.rate
                self.limiter.set_rate(min(rate + max(1.0, rate * self.STEP), MAX_RATE))

    def throttled_by_api(self, sent_at: float) -> None:
        now = time.monotonic()
        with self.lock:
            if self.started is None:
                self.started = sent_at
            self.throttled += 1
            if sent_at < self.cut_at + self.SETTLE:
                return  # sent before the last cut could take effect: it already answered this
            self._forget(now)
            span = max(min(self.WINDOW, now - self.started), 0.05)
            accepted = len(self.accepted) / span
            rate = self.limiter.rate
            new = min(rate, accepted) * self.CUT if accepted > 0 else rate / 2
            self.limiter.set_rate(max(new, MIN_RATE))
            self.cut_at = now
            self.raised_at = now

    def _forget(self, now: float) -> None:
        while self.accepted and self.accepted[0] < now - self.WINDOW:
            self.accepted.popleft()

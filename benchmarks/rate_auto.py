"""--rate auto against a rate-limited receiver (#15): how close the request rate stays to the
limit once the first seconds are past (target: within 10 %), and that nothing is lost.

Usage: python benchmarks/rate_auto.py [--limit 50] [--events 100000] [--batch-events 100]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cdpcli  # noqa: E402
from cdpcli.serve import Receiver  # noqa: E402

API_KEY = "bench-key-0123456789"
WARM_UP = 5.0  # seconds left out of the figure: the cuts from the starting rate (1,000/s) down to the limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=50)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-events", type=int, default=100)
    args = parser.parse_args()
    arrivals: list[float] = []
    with (
        Receiver(api_key=API_KEY, rate_limit=args.limit, keep=True, max_calls=args.events) as receiver,
        tempfile.TemporaryDirectory() as tmp,
    ):
        original = receiver.answer

        async def counted(*a, **k):  # every request to the API's paths, 429s included
            arrivals.append(time.monotonic())
            return await original(*a, **k)

        receiver.answer = counted
        target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url, retries=0)
        lines = ({"type": "track", "userId": str(n), "event": "E"} for n in range(args.events))
        started = time.monotonic()
        result = cdpcli.import_lines(
            lines, target=target, source="bench", rate="auto", batch_events=args.batch_events, rejects=f"{tmp}/r"
        )
        ids = len({call["messageId"] for call in receiver.calls})
    per_second = collections.Counter(int(t - started) for t in arrivals if t - started >= WARM_UP)
    seconds = sorted(per_second)[:-1]  # the last second is partial
    rates = [per_second[s] for s in seconds]
    inside = sum(1 for r in rates if abs(r - args.limit) <= 0.1 * args.limit)
    print(
        f"sent {result.sent:,} of {args.events:,} (distinct ids {ids:,}), failed {result.failed}, "
        f"429s {result.throttled}, rate at the end {result.rate_reached:.1f}/s"
    )
    print(f"requests per second after {WARM_UP:.0f} s: {rates}")
    print(
        f"mean {statistics.mean(rates):.1f}/s against a limit of {args.limit:g}/s "
        f"({statistics.mean(rates) / args.limit:.2f}×); {inside} of {len(rates)} seconds within 10 %"
    )


if __name__ == "__main__":
    main()

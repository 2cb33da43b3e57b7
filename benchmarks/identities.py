"""Identity stitching at scale: IdentityMap with N distinct anonymous ids, each linked to one
of N/10 users (as an identify carrying both ids would), then every anonymous-only call
rewritten, as lines (parsing and writing JSON included). Reports the peak RSS (the map moves to its SQLite file past MEMORY_LINKS links, so
memory stays flat as N grows) and each pass's rate.

The target: 10M distinct anonymous ids under 300 MB RSS. Measured (2 shared cores, load ~10):
10M ids, peak RSS 73 MB; learn 20k lines/s, rewrite 24k lines/s.

Usage: python benchmarks/identities.py [--ids 10000000] [--memory-links 200000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdpcli.importing.identities import MEMORY_LINKS, IdentityMap  # noqa: E402

CHUNK_LINES = 4096  # sources.ITERABLE_CHUNK_LINES


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=10_000_000)
    parser.add_argument("--memory-links", type=int, default=MEMORY_LINKS)
    args = parser.parse_args()
    users = max(args.ids // 10, 1)
    start_rss = peak_rss_mb()
    with IdentityMap(memory_links=args.memory_links) as ids:
        began = time.perf_counter()
        for n in range(args.ids):  # pass 1: one identify line linking each anonymous id
            ids.learn_line(b'{"type":"identify","userId":"user-%08d","anonymousId":"anon-%010d"}' % (n % users, n))
        learned = time.perf_counter()
        # pass 2, a chunk of lines at a time as the reader hands them over, in an order that
        # is not the links' (a prime stride visits every id once)
        step = 7_919
        for at in range(0, args.ids, CHUNK_LINES):
            chunk = [
                b'{"type":"track","event":"E","anonymousId":"anon-%010d"}' % ((k * step) % args.ids)
                for k in range(at, min(at + CHUNK_LINES, args.ids))
            ]
            ids.rewrite_lines(chunk)
        rewritten = time.perf_counter()
        stats = ids.stats.as_dict()
    print(
        f"ids={args.ids:,} links={stats['links']:,} rewritten={stats['rewritten']:,} "
        f"unresolved={stats['unresolved']:,}\n"
        f"learn: {args.ids / (learned - began):,.0f} links/s ({learned - began:.1f} s); "
        f"rewrite: {args.ids / (rewritten - learned):,.0f} calls/s ({rewritten - learned:.1f} s)\n"
        f"peak RSS: {peak_rss_mb():.0f} MB (at start {start_rss:.0f} MB)"
    )


if __name__ == "__main__":
    main()

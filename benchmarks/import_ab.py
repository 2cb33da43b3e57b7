"""`cdp import` of this tree against another tree (a baseline), side by side in one run.

Both import the same realistic file (import_throughput.realistic_line) into one receiver in this
process, as whole subprocesses (start-up and exit included), interleaved round by round, so the
VM's swings (±20-30 % between rounds here) hit both alike. Prints each side's median events/s,
the median of the per-round ratios (this / baseline), and the median client CPU seconds.

Usage: git worktree add /tmp/cdp-base <commit>
       python benchmarks/import_ab.py --baseline /tmp/cdp-base [--events 100000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_throughput import API_KEY, run, write_inputs  # noqa: E402

from cdpcli.serve import SERVE_COLLECT_EVERY, Receiver  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a source tree of cdp to compare with (e.g. a git worktree)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    trees = {"this": str(Path(__file__).resolve().parents[1]), "baseline": str(Path(args.baseline).resolve())}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plain, _ = write_inputs(tmp, args.events)
        receiver = Receiver(
            api_key=None, keep=False, latency_ms=args.latency_ms, collect_every=SERVE_COLLECT_EVERY
        ).start()
        rates: dict[str, list[float]] = {name: [] for name in trees}
        cpu: dict[str, list[float]] = {name: [] for name in trees}
        try:
            for round_no in range(args.rounds):
                order = list(trees) if round_no % 2 == 0 else list(reversed(trees))
                for name in order:
                    env = {
                        **os.environ,
                        "PYTHONPATH": trees[name],
                        "CDP_API_KEY": API_KEY,
                        "CDP_ENDPOINT": receiver.url,
                        "CDP_CONFIG_DIR": str(tmp / "cfg"),
                    }
                    cmd = [
                        sys.executable,
                        "-m",
                        "cdpcli",
                        "import",
                        str(plain),
                        "-q",
                        "--no-progress",
                        "--rejects",
                        str(tmp / f"rejects-{name}.ndjson"),
                    ]
                    seconds, _, cpu_seconds = run(cmd, env)
                    rates[name].append(args.events / seconds)
                    cpu[name].append(cpu_seconds)
                print(
                    f"round {round_no + 1}: this {rates['this'][-1]:,.0f} ev/s, baseline {rates['baseline'][-1]:,.0f} ev/s",
                    flush=True,
                )
        finally:
            receiver.stop()
    ratios = [a / b for a, b in zip(rates["this"], rates["baseline"], strict=True)]
    for name in trees:
        print(
            f"{name:>8}: median {statistics.median(rates[name]):,.0f} ev/s, client CPU {statistics.median(cpu[name]):.2f} s"
        )
    print(f"this/baseline: median {statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()

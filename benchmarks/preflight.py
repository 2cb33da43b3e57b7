"""`cdp import FILE --preflight` against `cdp import FILE --dry-run` on the same file: wall
time, CPU (user + system; median of rounds, interleaved) and peak RSS of each, as whole
subprocesses. The goals: preflight's CPU at most 1.5x the dry run's, its memory under 200 MB
for any input size.

The file is import_throughput's realistic calls, with every line a different userId by default
(the worst case for memory: each one is a distinct profile to count; past 1,000,000 the count
becomes an estimate and memory stops growing).

Measured (1,000,000 lines, 225 MB, 1,000,000 userIds; 3 interleaved rounds on the shared
2-core machine, load 6-7, --before = the code of commit 1c0000b): CPU of the dry run 8.4 s
(55 MB peak); preflight 11.2 s, 1.33x (146 MB peak); before 14.1 s, 1.81x (145 MB peak).
Three runs that hour, of intermediate commits (within 3k instructions a line of this one):
1.31x, 1.49x, 1.44x against 1.60-1.63x before: the machine's noise is ~0.15x;
callgrind's count, which has none (20,000 lines, benchmarks' realistic calls), gives preflight
20.5k instructions a line over the dry run's 45.6k (1.45x) against 38.9k (1.85x) before. The
worst case for memory, 1,000,000 userIds that all have an email: 145 MB peak. 1,500,000
userIds (earlier): 146 MB peak, the count estimated at 1,497,800 (-0.15 %).

Usage: python benchmarks/preflight.py [--events 1000000] [--users N] [--rounds 3] [--before DIR]
(--before DIR: also the preflight of the cdpcli package in DIR, e.g. an earlier commit's
`git archive REV cdpcli | tar -x -C DIR`, in the same interleaved rounds)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_throughput import cdp_command, realistic_line, run  # noqa: E402


def write_file(path: Path, count: int, users: int) -> None:
    rng = random.Random(42)
    with open(path, "w") as out:
        for i in range(count):
            call = realistic_line(i, rng)
            call["userId"] = f"user-{i % users:07d}"
            out.write(json.dumps(call, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=0, help="distinct userIds (default: one per line)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a directory holding an earlier cdpcli package")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "calls.ndjson"
        write_file(data, args.events, args.users or args.events)
        print(
            f"{args.events:,} lines, {data.stat().st_size / 1e6:.0f} MB, {args.users or args.events:,} distinct userIds"
        )
        # no key, and an endpoint where nothing listens: neither run may need or reach one
        env = {**os.environ, "CDP_CONFIG_DIR": str(tmp / "cfg"), "CDP_ENDPOINT": "http://127.0.0.1:9/v1"}
        env.pop("CDP_API_KEY", None)
        cdp = cdp_command()
        commands = {
            "dry-run": [
                *cdp,
                "import",
                str(data),
                "--dry-run",
                "-q",
                "--no-progress",
                "--rejects",
                str(tmp / "r.ndjson"),
            ],
            "preflight": [*cdp, "import", str(data), "--preflight", "--json"],
        }
        envs = dict.fromkeys(commands, env)
        if args.before:
            commands["preflight-before"] = commands["preflight"]
            envs["preflight-before"] = {**env, "PYTHONPATH": str(args.before.resolve())}
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, list[int]] = {name: [] for name in commands}
        for round_no in range(args.rounds):
            for name in commands if round_no % 2 == 0 else reversed(commands):
                seconds, peak_kb, cpu = run(commands[name], envs[name])
                times[name].append(seconds)
                cpus[name].append(cpu)
                peaks[name].append(peak_kb)
        for name in commands:
            print(
                f"{name:>16}: {statistics.median(times[name]):6.1f} s median, CPU {statistics.median(cpus[name]):6.1f} s, "
                f"{args.events / statistics.median(times[name]):>9,.0f} lines/s, peak RSS {max(peaks[name]) / 1024:.0f} MB"
            )
        for name in (name for name in commands if name != "dry-run"):
            ratio = statistics.median(p / d for p, d in zip(times[name], times["dry-run"], strict=True))
            cpu_ratio = statistics.median(p / d for p, d in zip(cpus[name], cpus["dry-run"], strict=True))
            print(f"{name} / dry-run: time {ratio:.2f}x, CPU {cpu_ratio:.2f}x (goal: CPU <= 1.5x, peak RSS < 200 MB)")


if __name__ == "__main__":
    main()

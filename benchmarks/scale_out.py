"""Sharded imports side by side (#15): 1, 2 and 4 shards over the same input into one receiver.

Each configuration runs its shards as concurrent `cdp import --shard K/N` processes, round after
round, interleaved. Checks that the union of the shards is the input (every derived messageId
once, none twice), and prints the total client CPU per call of each configuration against the
single process (target: within 10 %). On a 2-core machine wall time cannot scale with shards;
CPU per call shows that nothing is wasted by sharding. The shards of a configuration run one
after the other (each alone with the receiver, as on N machines); `--at-once` runs them
together, where 4 CPU-bound processes on 2 cores also pay for sharing them.

Usage: python benchmarks/scale_out.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_throughput import API_KEY, write_inputs  # noqa: E402

from cdpcli.serve import Receiver  # noqa: E402

SHARDS = (1, 2, 4)


def run_shards(count: int, source: Path, url: str, env: dict[str, str], at_once: bool = False) -> tuple[float, float]:
    """(wall seconds, total CPU seconds) of `count` shard processes, one after the other (each
    alone on the cores with the receiver: CPU per call is the work), or all at once."""
    if not at_once and count > 1:
        runs = [_shards(count, [k], source, url, env) for k in range(count)]
        return sum(r[0] for r in runs), sum(r[1] for r in runs)
    return _shards(count, range(count), source, url, env)


def _shards(count: int, which: range | list[int], source: Path, url: str, env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    procs = []
    for k in which:
        cmd = [sys.executable, "-m", "cdpcli", "import", str(source), "--endpoint", url, "--api-key", API_KEY]
        cmd += ["--no-progress", "-q", "--rejects", os.devnull]
        if count > 1:
            cmd += ["--shard", f"{k}/{count}"]
        procs.append(subprocess.Popen(cmd, env=env))
    cpu = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"a shard of {count} failed")
        cpu += usage.ru_utime + usage.ru_stime
    return time.perf_counter() - started, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--at-once", action="store_true", help="run a configuration's shards concurrently")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with tempfile.TemporaryDirectory() as tmp:
        plain, _ = write_inputs(Path(tmp), args.events)
        empty = Path(tmp) / "empty.ndjson"
        empty.write_text("")
        cpu: dict[int, list[float]] = collections.defaultdict(list)
        wall: dict[int, list[float]] = collections.defaultdict(list)
        resent: dict[int, int] = collections.defaultdict(int)
        # room for calls resent after a timeout: kept, not evicted (an eviction hid them once)
        with Receiver(api_key=API_KEY, keep=True, max_calls=args.events * 2) as receiver:
            # a process's start-up and exit, to tell what sharding costs beyond N start-ups
            startup = statistics.median(run_shards(1, empty, receiver.url, env)[1] for _ in range(5))
            for round_no in range(1, args.rounds + 1):
                for count in SHARDS:
                    receiver.calls.clear()
                    seconds, used = run_shards(count, plain, receiver.url, env, args.at_once)
                    ids = collections.Counter(call["messageId"] for call in receiver.calls)
                    # a batch resent after a client timeout arrives twice with the same ids (the API
                    # keeps one of each): counted, not an error; a missing id is
                    twice = sum(n - 1 for n in ids.values() if n > 1)
                    if len(ids) != args.events:
                        raise SystemExit(f"{count} shards: {len(ids):,} distinct ids of {args.events:,}")
                    resent[count] += twice
                    cpu[count].append(used / args.events * 1e6)
                    wall[count].append(seconds)
                    print(
                        f"round {round_no}: {count} shard(s): {seconds:.2f} s, {used / args.events * 1e6:.1f} µs CPU/call"
                    )
    base = statistics.median(cpu[1])
    per_startup = startup / args.events * 1e6
    print(f"start-up and exit of one process: {startup:.2f} s CPU ({per_startup:.1f} µs per call of this input)")
    for count in SHARDS:
        median = statistics.median(cpu[count])
        beyond = (median - count * per_startup) / (base - per_startup)
        print(
            f"{count} shard(s): median {statistics.median(wall[count]):.2f} s wall, {median:.1f} µs CPU/call "
            f"({median / base:.2f}× one process; beyond start-ups {beyond:.2f}×, target ≤ 1.10); "
            f"union = input; {resent[count]} calls resent (same ids) after timeouts"
        )


if __name__ == "__main__":
    main()

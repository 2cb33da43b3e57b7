"""`cdp serve`'s store: `cdp import` of N calls (default 200,000) into `cdp serve --out FILE` with
the store on (the default, --max-calls 100000: calls kept, counted and queryable) and off
(--max-calls 0: only counted), side by side.

Rounds alternate the two, so load from other work on the machine falls on both alike. It prints
the median wall time of the import, calls/s, the server's CPU µs per call while it ran, the
spread (min-max) across rounds, and the ratio store-on / store-off in calls/s (the target: at
least 0.8). Each run checks that --out holds every call, and with the store on that
/_cdp/summary counts them all.

Usage: python benchmarks/serve_store.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from benchmarks.import_throughput import API_KEY, write_inputs  # noqa: E402
from benchmarks.serve_throughput import cpu_seconds  # noqa: E402

MODES = {"store on": [], "store off": ["--max-calls", "0"]}


def one_run(mode: str, plain: Path, n: int, tmp: Path, env: dict[str, str]) -> tuple[float, float]:
    out = tmp / "serve-out.ndjson"
    out.unlink(missing_ok=True)
    proc, url = start_serve_with(MODES[mode], out, env)
    try:
        command = [sys.executable, "-m", "cdpcli", "import", str(plain), "--endpoint", url, "--api-key", API_KEY]
        before = cpu_seconds(proc.pid)
        started = time.perf_counter()
        run = subprocess.run(
            [*command, "--no-progress", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        wall = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid) - before
        if run.returncode != 0:
            raise SystemExit(f"import ({mode}) failed ({run.returncode}): {run.stderr[-2000:]}")
        if mode == "store on":
            request = urllib.request.Request(url.rsplit("/v1", 1)[0] + "/_cdp/summary")
            request.add_header("Authorization", "Bearer " + API_KEY)
            summary = json.loads(urllib.request.urlopen(request, timeout=30).read())
            if summary["accepted"] != n or summary["kept"] != min(n, 100_000):
                raise SystemExit(f"store on: summary {summary} does not count {n:,} calls")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc._drain.wait(timeout=30)  # type: ignore[attr-defined]
    with open(out, "rb") as handle:
        lines = sum(1 for _ in handle)
    if lines != n:
        raise SystemExit(f"{mode}: {lines:,} calls in --out, expected {n:,}")
    return wall, cpu


def start_serve_with(extra: list[str], out: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`cdp serve --port 0 --out FILE` with `extra` flags, its log drained (as serve_throughput does)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--out", str(out), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = proc.stderr.readline()
    match = re.search(r"(http://\S+/v1)", banner)
    if not match:
        proc.kill()
        raise SystemExit(f"cdp serve did not start: {banner}{proc.stderr.read()[-2000:]}")
    proc._drain = subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)  # type: ignore[attr-defined]
    proc.stderr.close()
    return proc, match.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = {"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin", "CDP_CONFIG_DIR": tempfile.mkdtemp()}
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        plain, _ = write_inputs(tmp, args.events)
        results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        for round_ in range(args.rounds):
            for mode in MODES if round_ % 2 == 0 else reversed(MODES):
                results[mode].append(one_run(mode, plain, args.events, tmp, env))
        print(f"cdp import of {args.events:,} calls into cdp serve --out FILE, {args.rounds} rounds (median, min-max)")
        rates = {}
        for mode, runs in results.items():
            walls = [wall for wall, _ in runs]
            cpus = [cpu / args.events * 1e6 for _, cpu in runs]
            rates[mode] = args.events / statistics.median(walls)
            print(
                f"  {mode:9}  {statistics.median(walls):6.2f} s ({min(walls):.2f}-{max(walls):.2f})"
                f"  {rates[mode]:9,.0f} calls/s  server {statistics.median(cpus):5.1f} µs/call"
                f" ({min(cpus):.1f}-{max(cpus):.1f})"
            )
        print(f"  store on / store off: {rates['store on'] / rates['store off']:.2f}x (target: at least 0.8x)")


if __name__ == "__main__":
    main()

"""`cdp serve` throughput: this tree's server against a baseline tree's, side by side.

For N generated calls (default 200,000; benchmarks/import_throughput.py's realistic_line), each
round starts `cdp serve --port 0 --out FILE` from each tree in turn (PYTHONPATH pointing at the
tree) and sends it the calls with

  import  `cdp import FILE` (this tree's client for every server: only the server differs)
  raw     8 keep-alive http.client threads posting ~475 KB /batch bodies (RAW_SENDER)

Rounds interleave the servers, so load from other work on the machine falls on both alike. For
each server and sender it prints the median wall time, calls/s and, the figure to trust on a busy
machine, the server's CPU µs per call (utime + stime from /proc while the sender ran), with the
spread across rounds (min-max) as a measure of noise. A third server, `new-nogc`, is this tree
with automatic garbage collection left on (SERVE_COLLECT_EVERY = None), to tell whether the
collection on a schedule still pays.

Usage: git worktree add /tmp/serve-base <commit>
       python benchmarks/serve_throughput.py --baseline /tmp/serve-base [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from benchmarks.import_throughput import API_KEY, RAW_SENDER, write_inputs  # noqa: E402

NO_GC = (
    "import sys, cdpcli.serve.run as s; s.SERVE_COLLECT_EVERY = None; from cdpcli.cli import main; "
    "sys.argv = ['cdp', *sys.argv[1:]]; main()"
)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_serve(tree: Path, out: Path, env: dict[str, str], no_gc: bool = False) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-c", NO_GC] if no_gc else [sys.executable, "-m", "cdpcli"]
    proc = subprocess.Popen(
        [*command, "serve", "--port", "0", "--out", str(out)],
        env={**env, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = proc.stderr.readline()
    match = re.search(r"(http://\S+/v1)", banner)
    if not match:
        proc.kill()
        raise SystemExit(f"{tree}: cdp serve did not start: {banner}{proc.stderr.read()[-2000:]}")
    # the per-request log lines go to stderr: drain it in the background so serve never blocks on it
    drain = subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
    proc.stderr.close()
    proc._drain = drain  # type: ignore[attr-defined]
    return proc, match.group(1)


def one_run(tree: Path, sender: str, files: dict, env: dict[str, str], tmp: Path, no_gc: bool) -> tuple[float, float]:
    """Wall seconds of the sender, server CPU seconds while it ran."""
    out = tmp / "serve-out.ndjson"
    out.unlink(missing_ok=True)
    proc, url = start_serve(tree, out, env, no_gc)
    try:
        if sender == "import":
            cmd = [
                sys.executable,
                "-m",
                "cdpcli",
                "import",
                str(files["plain"]),
                "--endpoint",
                url,
                "--api-key",
                API_KEY,
                "--no-progress",
                "-q",
            ]
        else:
            cmd = [sys.executable, str(files["raw_py"]), str(files["ids"]), url, "8", API_KEY]
        before = cpu_seconds(proc.pid)
        started = time.perf_counter()
        run = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid) - before
        if run.returncode != 0:
            raise SystemExit(f"{sender} into {tree} failed ({run.returncode}): {run.stderr[-2000:]}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc._drain.wait(timeout=30)  # type: ignore[attr-defined]
    with open(out, "rb") as handle:
        lines = sum(1 for _ in handle)
    if lines != files["n"]:
        raise SystemExit(f"{sender} into {tree}: {lines:,} calls recorded, expected {files['n']:,}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a worktree of the commit to compare against")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-gc-variant",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run this tree with automatic GC on (new-nogc)",
    )
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_") and k != "PYTHONPATH"}
    servers = {"base": (Path(args.baseline).resolve(), False), "new": (HERE, False)}
    if args.no_gc_variant:
        servers["new-nogc"] = (HERE, True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env["CDP_CONFIG_DIR"] = str(tmp)
        plain, with_ids = write_inputs(tmp, args.events)
        raw_py = tmp / "raw.py"
        raw_py.write_text(RAW_SENDER)
        files = {"plain": plain, "ids": with_ids, "raw_py": raw_py, "n": args.events}
        print(
            f"{args.events:,} calls, {plain.stat().st_size / args.events:.0f} bytes/line; {args.rounds} rounds; "
            f"servers: " + ", ".join(f"{k}={v[0]}" for k, v in servers.items())
        )
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for round_no in range(1, args.rounds + 1):
            for sender in ("import", "raw"):
                line = []
                for server, (tree, no_gc) in servers.items():
                    wall, cpu = one_run(tree, sender, files, env, tmp, no_gc)
                    results.setdefault((sender, server), []).append((wall, cpu))
                    line.append(f"{server} {wall:5.2f}s {cpu / args.events * 1e6:5.1f}µs")
                print(f"  round {round_no} {sender:6}: " + "   ".join(line), flush=True)
        print("\nmedians (spread min-max across rounds):")
        for sender in ("import", "raw"):
            for server in servers:
                runs = results[(sender, server)]
                walls = [w for w, _ in runs]
                cpus = [c / args.events * 1e6 for _, c in runs]
                print(
                    f"  {sender:6} into {server:8}: {statistics.median(walls):6.2f} s "
                    f"({args.events / statistics.median(walls):8,.0f} calls/s; {min(walls):.2f}-{max(walls):.2f} s)   "
                    f"serve CPU {statistics.median(cpus):5.1f} µs/call ({min(cpus):.1f}-{max(cpus):.1f})"
                )
            base_cpu = statistics.median(c for _, c in results[(sender, "base")])
            new_cpu = statistics.median(c for _, c in results[(sender, "new")])
            base_wall = statistics.median(w for w, _ in results[(sender, "base")])
            new_wall = statistics.median(w for w, _ in results[(sender, "new")])
            print(f"  {sender}: new/base serve CPU per call {new_cpu / base_cpu:.2f}, wall {new_wall / base_wall:.2f}")


if __name__ == "__main__":
    main()

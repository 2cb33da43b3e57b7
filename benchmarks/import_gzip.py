"""`cdp import file.gz` (native decompression in the reader thread) against
`zcat file.gz | cdp import` (decompression in another process), side by side.

Both import the same gzipped realistic file (import_throughput.realistic_line) into one receiver
in this process, as whole subprocesses, interleaved round by round so that the machine's swings
hit both alike. Prints each side's median events/s and the median per-round ratio
native / zcat (issue #14's target: at least 0.9).

Usage: python benchmarks/import_gzip.py [--events 200000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_throughput import API_KEY, cdp_command, run, write_inputs  # noqa: E402

from cdpcli.serve import SERVE_COLLECT_EVERY, Receiver  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if not shutil.which("zcat"):
        raise SystemExit("zcat is not on PATH")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plain, _ = write_inputs(tmp, args.events)
        packed = tmp / "calls.ndjson.gz"
        with open(plain, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst)
        print(
            f"{args.events:,} lines: {plain.stat().st_size / 1e6:.1f} MB, gzipped {packed.stat().st_size / 1e6:.1f} MB"
        )
        receiver = Receiver(api_key=None, keep=False, collect_every=SERVE_COLLECT_EVERY).start()
        env = {
            **os.environ,
            "CDP_API_KEY": API_KEY,
            "CDP_ENDPOINT": receiver.url,
            "CDP_CONFIG_DIR": str(tmp / "cfg"),
        }
        cdp = " ".join(shlex.quote(part) for part in cdp_command())
        common = f"-q --no-progress --rejects {shlex.quote(str(tmp / 'rejects.ndjson'))}"
        commands = {
            "native": ["bash", "-c", f"{cdp} import {shlex.quote(str(packed))} {common}"],
            "zcat": ["bash", "-o", "pipefail", "-c", f"zcat {shlex.quote(str(packed))} | {cdp} import {common}"],
        }
        rates: dict[str, list[float]] = {name: [] for name in commands}
        try:
            for round_no in range(args.rounds):
                order = list(commands) if round_no % 2 == 0 else list(reversed(commands))
                for name in order:
                    seconds, _, _ = run(commands[name], env)
                    rates[name].append(args.events / seconds)
                print(
                    f"round {round_no + 1}: native {rates['native'][-1]:,.0f} ev/s, zcat | {rates['zcat'][-1]:,.0f} ev/s",
                    flush=True,
                )
        finally:
            receiver.stop()
    ratios = [a / b for a, b in zip(rates["native"], rates["zcat"], strict=True)]
    for name in commands:
        print(f"{name:>7}: median {statistics.median(rates[name]):,.0f} ev/s")
    print(f"native/zcat: median {statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()

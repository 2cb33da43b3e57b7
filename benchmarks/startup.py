"""Start-up cost of cdp against the floor of its stack, measured side by side.

(a) `cdp track --user 42 --event E --dry-run`
(b) the same call really sent to a running `cdp serve` on loopback
(c) the floor: a minimal Typer app with one string option that also imports pydantic's
    BaseModel, run the same way with the same interpreter.

The three run interleaved, round after round; we print each one's median wall time and the
ratios a/c and b/c (targets: a/c <= 1.1, b/c <= 1.5).

Usage: python benchmarks/startup.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR_APP = """
import typer
from pydantic import BaseModel

app = typer.Typer()

@app.command()
def main(name: str = typer.Option(...)) -> None:
    print(name)

app()
"""


def cdp_command() -> list[str]:
    script = Path(sys.executable).with_name("cdp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cdpcli"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        floor = Path(tmp) / "floor.py"
        floor.write_text(FLOOR_APP)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
        env["CDP_CONFIG_DIR"] = tmp
        env["CDP_API_KEY"] = "bench-key-0000"
        # measure as installed: with .pyc files (some sandboxes set this to keep trees clean)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        server = subprocess.Popen(
            [*cdp_command(), "serve", "--port", "0", "--out", os.devnull],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = server.stderr.readline().split()[4]
            cdp = cdp_command()
            variants = {
                "a dry-run": [*cdp, "track", "--user", "42", "--event", "E", "--dry-run"],
                "b sent": [*cdp, "track", "--user", "42", "--event", "E", "--endpoint", url],
                "c floor": [sys.executable, str(floor), "--name", "x"],
            }
            for cmd in variants.values():  # warm the OS cache and .pyc files
                timed(cmd, env)
            times: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, cmd in variants.items():
                    times[name].append(timed(cmd, env))
        finally:
            server.terminate()
            server.wait()

    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    for name, value in med.items():
        print(f"{name:10s} median {value:7.1f} ms  (min {min(times[name]) * 1000:.1f})")
    print(f"a/c = {med['a dry-run'] / med['c floor']:.2f}   (target <= 1.1)")
    print(f"b/c = {med['b sent'] / med['c floor']:.2f}   (target <= 1.5)")


if __name__ == "__main__":
    main()

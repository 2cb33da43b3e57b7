"""CPU per call of `cdp import --dry-run` for each common input shape, as a ratio to the canonical one.

Each shape is the same realistic file (import_throughput.realistic_line: mixed track, identify,
page and group calls) with one field written another way: the timestamp as exporters and
languages write it, Unix seconds, a numeric userId, non-ASCII text, a Segment archive's
envelope. The canonical shape is what cdp writes itself: `"timestamp":"2024-03-01T01:02:03.000Z"`
and string ids.

Every run is a whole `cdp import FILE --dry-run` subprocess (its bodies go to /dev/null); a run on
an empty file measures start-up and exit, which is subtracted, so a figure is the CPU of the calls
alone. All shapes run interleaved, round by round, so the machine's swings hit them alike; a
ratio is the median over rounds of that round's shape / canonical.

Goal: every shape <= 1.5x canonical. `--baseline TREE` runs every shape from another source tree
too (e.g. `git archive main | tar -x -C /tmp/base`), round by round with this one: a before/after
table from one run. Each tree runs from a temporary directory (`python -m cdpcli` puts the working
directory first on sys.path: run from a source tree, both "trees" were that tree).

SHAPES maps a shape's name to how its lines are made and the import flags it needs: a converter
(`--from NAME`) adds its own rows there.

Measured (2-core VM shared with 6 other jobs, load 3.6-6.8; 40,000 lines, 5 rounds, one run with
--baseline = main before this work; ratios to each tree's own canonical shape):

| shape | before (main) | after | after / before, µs per call |
|---|---|---|---|
| canonical, µs per call | 7.2 | 9.2 | 1.28x (every line is read once more for duplicate keys) |
| no fraction | 1.47x | 1.23x | 0.96x |
| +00:00 | 1.45x | 1.55x | 1.27x |
| +01:00 | 1.93x | 1.39x | 0.90x |
| 1 fraction digit | 1.59x | 1.57x | 0.95x |
| microseconds | 1.51x | 1.64x | 1.14x |
| isoformat() | 1.56x | 1.68x | 1.17x |
| nanoseconds | 1.63x | 1.36x | 0.91x |
| space separator | 1.45x | 1.60x | 1.27x |
| date alone | 1.34x | 1.21x | 1.02x |
| Unix seconds | 1.27x | 1.29x | 1.08x |
| Unix seconds.ms | 1.60x | 1.25x | 0.93x |
| numeric userId | 0.97x | 1.09x | 1.18x |
| non-ASCII | 0.90x | 1.07x | 1.37x |
| non-ASCII escaped | 1.12x | 0.91x | 0.97x |
| --from segment | 4.41x | 2.86x | 0.86x |

On that machine a ratio moves by about ±0.15 from run to run (two earlier runs of 4 and 5 rounds:
timestamp shapes 1.26-1.62x after, 1.34-2.16x before). In-process (Preparer.prepare alone,
interleaved rounds, min of 5-7), steadier: canonical 4.96 µs (main's 3.76: the duplicate-key read
costs ~1.3 µs with jiter, now a dependency, ~3.5 µs without), timestamp shapes 1.49-1.61x,
numeric userId 1.30x, escaped non-ASCII 1.13x.

Again after every branch of that session was merged, on the machine with the other jobs done
(load 0.7-2; 40,000 lines, 5 rounds, --baseline = the tree before the session): canonical 9.5 µs
(baseline 7.3); vs canonical, this tree / baseline: no fraction 1.36/1.68, +00:00 1.22/1.61,
+01:00 1.21/2.14, 1 fraction digit 1.31/1.30, microseconds 1.31/1.59, isoformat() 1.75/1.66,
nanoseconds 1.43/2.04, space separator 1.41/1.37, date alone 1.06/1.28, Unix seconds 1.05/1.12,
Unix seconds.ms 1.03/1.42, numeric userId 0.85/1.18, non-ASCII 1.11/1.38, escaped 0.99/1.19,
--from segment 2.57/3.98; the vendors 3.2-6.1 (baseline 2.9-5.0: their records are now read
for duplicate keys too). farm-bench on 200,000 canonical lines, whole `cdp import --dry-run`
processes, 11 interleaved pairs: this tree / baseline CPU 1.11x median (1.01-1.28).

Counted with --instructions (callgrind: the same count on a busy or an idle machine; 4,000 lines,
ratios to each tree's own canonical shape; "filed" = the tree when the issue asking for this was
filed, 90ef1d2):

| shape | k instructions per call | vs canonical | filed: vs its canonical |
|---|---|---|---|
| canonical | 61.4 (filed: 46.3) | 1.00x | 1.00x |
| no fraction, +00:00, +01:00 | 83.6-87.8 | 1.36-1.43x | 6.52-6.61x |
| 1 fraction digit, microseconds, nanoseconds | 85.2-86.7 | 1.39-1.41x | 6.52-6.59x |
| isoformat() | 89.6 | 1.46x | 6.56x |
| space separator, date alone | 81.2-85.1 | 1.32-1.39x | 6.68-6.72x |
| Unix seconds, Unix seconds.ms | 85.6-90.2 | 1.39-1.47x | 6.33x |
| numeric userId | 75.6 | 1.23x | 5.83x |
| non-ASCII, escaped | 69.4-72.5 | 1.13-1.18x | 1.20-3.12x |
| --from segment | 136.0 | 2.21x | 4.69x |
| Segment call (same calls, no envelope) | 83.0 | 1.35x | 1.25x |

A Segment archive line is 2.4x the canonical line's bytes: the call alone costs 1.35x, and the
envelope (read refusing a key named twice, dropped, the call written again) 1.64x that. The
canonical shape executes 1.33x the instructions of the filed tree (the duplicate-key read of
every line), yet takes 1.09x its CPU time (farm-bench, 11 pairs of whole processes on 200,000
lines, range 0.95-1.34, load 5-6): Rust reading executes more instructions a cycle.

Usage: python benchmarks/input_shapes.py [--lines 40000] [--rounds 3] [--tree DIR] [--baseline DIR] [--only a,b] [--instructions]
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_throughput import realistic_line, run  # noqa: E402

Call = dict[str, Any]


@dataclass(frozen=True)
class Shape:
    """How one shape's lines are made: `rewrite` turns a canonical call into this shape's line
    (a dict is written as compact JSON; bytes are taken as they are)."""

    rewrite: Callable[[Call, int, random.Random], Call | bytes]
    args: tuple[str, ...] = ()  # extra `cdp import` flags (e.g. --from segment)
    example: str = ""


def _seconds(call: Call) -> float:
    """The call's canonical timestamp as Unix seconds (with its milliseconds)."""
    stamp = call["timestamp"]
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + int(stamp[20:23]) / 1000


def _stamp(call: Call, text: str) -> Call:
    return {**call, "timestamp": text}


def _iso(call: Call, fraction: str, zone: str, sep: str = "T", shift_hours: int = 0) -> Call:
    """The call's moment written as ISO-8601 with `fraction` digits after the seconds (or none),
    `zone` ("Z", "+01:00", "" for none) and `sep` between date and time."""
    seconds = _seconds(call) + shift_hours * 3600
    text = time.strftime(f"%Y-%m-%d{sep}%H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += "." + fraction
    return _stamp(call, text + zone)


def _fraction(call: Call, digits: int) -> str:
    millis = call["timestamp"][20:23]
    return (millis + "123456")[:digits]


def _numeric_id(call: Call, i: int, rng: random.Random) -> Call:
    return {**call, "userId": int(call["userId"].split("-")[1])}


# the same calls with their text in other languages (about as many characters as the ASCII)
_TRANSLATED = {
    "Item Purchased": "Artikel gekauft",
    "Signed Up": "Registriert ✓",
    "Video Played": "Vidéo lue",
    "Cart Viewed": "カートを見た",
    "EUR": "€",
    "Pricing": "Preisübersicht",
    "DE": "Österreich",
    "Acme Corp": "Acme Straße",
    "Europe/Berlin": "Europe/Zürich",
}


def _non_ascii(call: Call, escaped: bool) -> bytes:
    text = json.dumps(call, separators=(",", ":"), ensure_ascii=False)
    for english, other in _TRANSLATED.items():
        text = text.replace(f'"{english}"', f'"{other}"')
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=escaped).encode()


_SEGMENT_ENVELOPE = ("writeKey", "projectId", "receivedAt", "_metadata", "version")  # select.ENVELOPE_KEYS


def _segment(call: Call, i: int, rng: random.Random) -> Call:
    """A line of a Segment S3/GCS archive: the call as Segment stored it, with its envelope
    (projectId, receivedAt, _metadata, version, writeKey) around it; the shape of
    tests/test_import_inputs.py's segment_call (Segment's "full call" records)."""
    stamp = call["timestamp"]
    return {
        **call,
        "messageId": f"ajs-next-{i:012d}",
        "originalTimestamp": stamp,
        "sentAt": stamp,
        "receivedAt": stamp,
        "context": {**call.get("context", {}), "library": {"name": "analytics.js", "version": "next-1.53.0"}},
        "integrations": {},
        "projectId": "proj_4b8e2c",
        "version": 2,
        "writeKey": "wk_0123456789abcdef",
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }


SHAPES: dict[str, Shape] = {
    "canonical": Shape(lambda c, i, r: c, example="2024-03-01T01:02:03.000Z"),
    "no fraction": Shape(lambda c, i, r: _iso(c, "", "Z"), example="2024-03-01T01:02:03Z"),
    "+00:00": Shape(lambda c, i, r: _iso(c, "", "+00:00"), example="2024-03-01T01:02:03+00:00"),
    "+01:00": Shape(lambda c, i, r: _iso(c, "", "+01:00", shift_hours=1), example="2024-03-01T02:02:03+01:00"),
    "1 fraction digit": Shape(lambda c, i, r: _iso(c, _fraction(c, 1), "Z"), example="2024-03-01T01:02:03.1Z"),
    "microseconds": Shape(lambda c, i, r: _iso(c, _fraction(c, 6), "Z"), example="2024-03-01T01:02:03.123456Z"),
    "isoformat()": Shape(
        lambda c, i, r: _iso(c, _fraction(c, 6), "+00:00"), example="2024-03-01T01:02:03.123456+00:00"
    ),
    "nanoseconds": Shape(lambda c, i, r: _iso(c, _fraction(c, 9), "Z"), example="2024-03-01T01:02:03.123456789Z"),
    "space separator": Shape(
        lambda c, i, r: _iso(c, _fraction(c, 3), "", sep=" "), example="2024-03-01 01:02:03.123 (Amplitude)"
    ),
    "date alone": Shape(lambda c, i, r: _stamp(c, c["timestamp"][:10]), example="2024-03-01"),
    "Unix seconds": Shape(lambda c, i, r: _stamp(c, int(_seconds(c))), example="1709255000 (Mixpanel)"),
    "Unix seconds.ms": Shape(lambda c, i, r: _stamp(c, round(_seconds(c), 3)), example="1709255000.123"),
    "numeric userId": Shape(_numeric_id, example='"userId": 42'),
    "non-ASCII": Shape(lambda c, i, r: _non_ascii(c, escaped=False), example='"Münster" as UTF-8'),
    "non-ASCII escaped": Shape(lambda c, i, r: _non_ascii(c, escaped=True), example='"M\\u00fcnster"'),
    "--from segment": Shape(_segment, args=("--from", "segment"), example="Segment archive envelope"),
    # the same calls without the envelope (as Segment's SDKs post them): a Segment call is ~2x the
    # canonical line's bytes, so this row tells the envelope's own cost from that of the bigger call
    "Segment call": Shape(
        lambda c, i, r: {k: v for k, v in _segment(c, i, r).items() if k not in _SEGMENT_ENVELOPE},
        example="the same call, no envelope",
    ),
}


def _vendor_shape(vendor: str) -> Shape:
    """A vendor's export lines (vendor_shapes.py: its documented shape, ids and times varied), one
    for each canonical line; the calls differ from the canonical file's, so this row says what a
    migration costs per call; vendor_shapes.py compares each vendor with the same calls as NDJSON."""
    made: list[bytes] = []

    def rewrite(call: Call, i: int, rng: random.Random) -> bytes:
        if not made:
            from vendor_shapes import inputs  # cdpcli imported only when a vendor row is run

            made.extend(inputs(vendor, 4096, seed=7)[0])
        return made[i % len(made)]

    return Shape(rewrite, args=("--from", vendor), example=f"{vendor}'s export")


SHAPES.update({f"--from {vendor}": _vendor_shape(vendor) for vendor in ("mixpanel", "amplitude", "posthog", "ga4")})


def write_shape(path: Path, shape: Shape, lines: int) -> None:
    rng = random.Random(42)
    with open(path, "wb") as out:
        for i in range(lines):
            call = realistic_line(i, rng)
            made = shape.rewrite(call, i, rng)
            out.write((made if isinstance(made, bytes) else json.dumps(made, separators=(",", ":")).encode()) + b"\n")


# --instructions: each run under callgrind, which counts the instructions it executes; the count
# does not move with the machine's load (CPU seconds moved by ±0.15 of a ratio on a shared VM)
CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
COLLECTED = re.compile(r"Collected : (\d+)")


def dry_run_cpu(tree: str, path: Path, args: tuple[str, ...], tmp: Path, instructions: bool = False) -> float:
    """CPU seconds of one `cdp import PATH --dry-run` from source tree `tree` (or, with
    `instructions`, the instructions it executed); every line must be valid."""
    rejects = tmp / "rejects.ndjson"
    rejects.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": tree,
        "CDP_CONFIG_DIR": str(tmp / "cfg"),
        "CDP_ENDPOINT": "http://127.0.0.1:9/v1",
    }
    env.pop("CDP_API_KEY", None)
    cmd = [sys.executable, "-m", "cdpcli", "import", str(path), *args, "--dry-run", "-q", "--no-progress"]
    if instructions:
        done = subprocess.run([*CALLGRIND, *cmd, "--rejects", str(rejects)], env=env, capture_output=True, text=True)
        found = COLLECTED.search(done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"{path.name}: callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        cpu = float(found.group(1))
    else:
        _, _, cpu = run([*cmd, "--rejects", str(rejects)], env)
    if rejects.exists() and rejects.stat().st_size:
        raise SystemExit(f"{path.name}: lines were rejected:\n{rejects.read_text()[:1000]}")
    return cpu


Run = tuple[str, str, Path, tuple[str, ...]]  # (tree's label, shape, file, flags)


def measure(
    runs: list[Run], trees: dict[str, str], rounds: int, lines: int, tmp: Path, instructions: bool = False
) -> dict[tuple[str, str], list[float]]:
    """CPU seconds per call of every run, round by round (each round in the other order than
    the last, each tree's start-up measured in the round and subtracted)."""
    empty = tmp / "empty.ndjson"
    empty.write_bytes(b"")
    per_call: dict[tuple[str, str], list[float]] = {(label, name): [] for label, name, _, _ in runs}
    for round_no in range(rounds):
        order = runs if round_no % 2 == 0 else runs[::-1]
        start_up = {label: dry_run_cpu(tree, empty, (), tmp, instructions) for label, tree in trees.items()}
        for label, name, path, extra in order:
            cpu = dry_run_cpu(trees[label], path, extra, tmp, instructions)
            per_call[label, name].append((cpu - start_up[label]) / lines)
        print(f"round {round_no + 1}/{rounds} done", file=sys.stderr, flush=True)
    return per_call


def print_table(per_call: dict[tuple[str, str], list[float]], names: list[str], baseline: bool, scale: float) -> None:
    """One row a shape: µs per call and the ratio to the same tree's canonical shape (the median
    of the rounds' ratios); with a baseline, its figures and this tree's µs over the baseline's."""

    def figures(label: str, name: str) -> tuple[float, float]:
        values, canonical = per_call[label, name], per_call[label, "canonical"]
        ratio = statistics.median(v / c for v, c in zip(values, canonical, strict=True))
        return statistics.median(values) * scale, ratio

    unit = "µs" if scale > 1 else "k instructions"
    head = f"| shape | example | {unit} per call | vs canonical |"
    if baseline:
        head += f" baseline {unit} | baseline vs its canonical | this / baseline |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in names:
        micros, ratio = figures("tree", name)
        row = f"| {name} | `{SHAPES[name].example}` | {micros:.1f} | {ratio:.2f}× |"
        if baseline:
            base_micros, base_ratio = figures("baseline", name)
            this_over_base = statistics.median(
                a / b for a, b in zip(per_call["tree", name], per_call["baseline", name], strict=True)
            )
            row += f" {base_micros:.1f} | {base_ratio:.2f}× | {this_over_base:.2f}× |"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]), help="the cdp source tree to run")
    parser.add_argument("--baseline", help="another cdp source tree: every shape is run from it too")
    parser.add_argument("--only", help="comma-separated shape names (canonical is always run)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind's callgrind instead of CPU seconds (steady on a busy machine; "
        "~50x slower: use --lines 4000 --rounds 1)",
    )
    args = parser.parse_args()
    names = ["canonical", *[n for n in SHAPES if n != "canonical" and (not args.only or n in args.only.split(","))]]
    trees = {"tree": str(Path(args.tree).resolve())}
    if args.baseline:
        trees["baseline"] = str(Path(args.baseline).resolve())
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # `python -m cdpcli` puts the working directory first on sys.path: run from a source
        # tree, every run would import that tree's cdpcli, whatever PYTHONPATH says
        os.chdir(tmp)
        try:
            files = {name: tmp / f"shape-{number}.ndjson" for number, name in enumerate(names)}
            for name, path in files.items():
                write_shape(path, SHAPES[name], args.lines)
            runs = [(label, name, files[name], SHAPES[name].args) for label in trees for name in names]
            per_call = measure(runs, trees, args.rounds, args.lines, tmp, args.instructions)
        finally:
            os.chdir(here)
    what = "instructions (thousands)" if args.instructions else "CPU"
    print(
        f"{args.lines:,} lines a shape, {args.rounds} rounds, {what} per call of `cdp import --dry-run` (start-up excluded)"
    )
    print_table(per_call, names, bool(args.baseline), 1e-3 if args.instructions else 1e6)


if __name__ == "__main__":
    main()

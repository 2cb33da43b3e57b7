"""CPU per call of `--from VENDOR` against canonical NDJSON of the same calls, side by side.

For each vendor, `--events` lines in that vendor's export shape: the golden fixture lines
(tests/data/vendors/VENDOR/input.jsonl, each following the vendor's documented export shape;
see that folder's README) that map to a call, as templates, with their ids, times and numeric
property values varied by a seeded random (ids replaced consistently within a line, so an
anonymous id stays anonymous and a device id stays the user's device). The canonical input is
the calls those lines become (the mapping's own output, one compact JSON object a line).

Both run in this process through `import_lines(..., dry_run=True)` (what `cdp import --from
VENDOR --dry-run` runs, without the process start-up and the CLI's printing, which are the
same for both and would only dilute the ratio): the reader, the vendor's line converter, the
preparer and the batcher. CPU is process time (all threads), interleaved round by round
(canonical and vendor in alternating order, so the machine's swings hit both alike); the table
shows the median µs per call and the median of the per-round ratios.

Measured (40,000 lines, 3 rounds, median; 2 cores shared, load ~7), µs CPU per call:
  input       canonical  --from   ratio   (before this file's first optimisations: ratio)
  mixpanel       6.4      18.5    2.92×   3.20×
  amplitude      6.9      17.7    2.68×   3.91×
  posthog        6.6      18.9    3.02×   3.31×
  ga4            8.5      32.2    3.59×   4.49×
The mapping alone (vendor_chunk, callgrind, instructions a line, before -> after): mixpanel
135k -> 108k, amplitude 140k -> 99k, posthog 124k -> 100k, ga4 227k -> 200k.
The converted lines take the preparer's fast path; what is left is the mapping itself, in the
reader thread: pydantic-core's parse and dump (3-5 µs a line) and the per-key Python work.

Duplicate keys: a record naming a key twice is an invalid line; pydantic-core's reader keeps
the last value silently, so each line also passes `vendors.may_repeat_a_key` (its colons against
the parsed record's written back), and only a line it doubts is read again by the exact reader.
`--check-cost` runs --from VENDOR with and without that check, interleaved. Measured on 2 shared
cores (load 3-4; two runs, 20,000 lines, 5 rounds, median µs CPU a call, the ratio of medians
of the per-round ratios), and the mapping alone (vendor_chunk, 8,000 lines, best of 11):
  input      e2e without  with  ratio  (2nd run)   mapping alone: none  pre-check  jsontext.loads
  mixpanel        28.3    31.4  1.11×  (1.04×)                    10.8    12.7       16.5
  amplitude       17.7    20.0  1.13×  (1.21×)                    10.3    13.3       18.5
  posthog         22.0    24.8  1.13×  (1.01×)                    11.1    13.2       16.9
  ga4             40.6    46.6  1.13×  (1.16×)                    20.7    25.8       37.3
Reading every line with jsontext.loads instead would cost 2-3 times the pre-check.

Usage: python benchmarks/vendor_shapes.py [--events 40000] [--rounds 3] [--vendor mixpanel] [--check-cost]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cdpcli  # noqa: E402
import cdpcli.importing.vendors as vendors  # noqa: E402
from cdpcli.importing.vendors import vendor_line  # noqa: E402

FIXTURES = ROOT / "tests" / "data" / "vendors"
VENDORS = ("mixpanel", "amplitude", "posthog", "ga4")
ID_KEYS = frozenset(
    {
        "distinct_id",
        "$user_id",
        "$device_id",
        "$insert_id",
        "$identified_id",
        "$anon_id",
        "$anon_distinct_id",
        "user_id",
        "device_id",
        "insert_id",
        "uuid",
        "user_pseudo_id",
    }
)
TIME_KEYS = frozenset({"time", "event_time", "client_event_time", "timestamp", "event_timestamp"})
# 2023-01-01 .. 2024-12-31, seconds
FIRST, LAST = 1_672_531_200, 1_735_603_200


def templates(vendor: str) -> list[dict[str, Any]]:
    """The fixture records that become calls (not skips, invalid lines or pass-throughs)."""
    found = []
    lines = (FIXTURES / vendor / "input.jsonl").read_text().splitlines()
    wanted = (FIXTURES / vendor / "expected.jsonl").read_text().splitlines()
    for line, expected in zip(lines, wanted, strict=True):
        if "type" in json.loads(expected):
            found.append(json.loads(line))
    return found


def vary(vendor: str, record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    record = copy.deepcopy(record)
    new_ids: dict[str, str] = {}

    def new_id(old: str) -> str:
        prefix = "$device:" if old.startswith("$device:") else ""
        bare = old[len(prefix) :]
        if bare not in new_ids:
            new_ids[bare] = f"{rng.getrandbits(64):016x}-{rng.randrange(10**6)}"
        return prefix + new_ids[bare]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ID_KEYS and isinstance(value, str):
                    node[key] = new_id(value)
                elif key in TIME_KEYS:
                    node[key] = new_time(vendor, value, rng)
                else:
                    node[key] = walk(value)
        elif isinstance(node, list):
            return [walk(item) for item in node]
        elif isinstance(node, bool):
            return node
        elif isinstance(node, int):
            return rng.randrange(1000)
        elif isinstance(node, float):
            return round(rng.random() * 100, 2)
        return node

    walk(record)
    return record


def new_time(vendor: str, old: Any, rng: random.Random) -> Any:
    seconds = rng.randrange(FIRST, LAST)
    micros = rng.randrange(10**6)
    if vendor == "mixpanel":
        return seconds * 1000 + micros // 1000 if isinstance(old, int) and old >= 10**11 else seconds
    if vendor == "ga4":
        value = seconds * 10**6 + micros
        return str(value) if isinstance(old, str) else value
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    if vendor == "posthog":  # ISO-8601 with a zone, as the batch export writes it
        return stamp.replace(" ", "T") + f".{micros // 1000:03d}Z"
    return f"{stamp}.{micros:06d}"  # Amplitude: a space, microseconds, no zone


def inputs(vendor: str, events: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    """The vendor's lines and the canonical lines of the same calls."""
    rng = random.Random(seed)
    shapes = templates(vendor)
    lines = [json.dumps(vary(vendor, rng.choice(shapes), rng)).encode() for _ in range(events)]
    canonical = [vendor_line(vendor, line) for line in lines]
    assert all(line.startswith(b"{") for line in canonical), "every generated line must map to a call"
    return lines, canonical


def cpu_per_call(lines: list[bytes], archive: str | None, target: cdpcli.Target) -> float:
    started = time.process_time()
    if archive:
        result = cdpcli.import_lines(lines, target=target, dry_run=True, source="bench", archive=archive)
    else:
        result = cdpcli.import_lines(lines, target=target, dry_run=True, source="bench")
    seconds = time.process_time() - started
    if sum(result.by_type.values()) != len(lines) or result.invalid:
        raise SystemExit(f"{archive or 'canonical'}: {result.sent} of {len(lines)} calls valid ({result})")
    return seconds / len(lines) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--vendor", action="append", choices=VENDORS, help="default: all")
    parser.add_argument(
        "--check-cost", action="store_true", help="--from VENDOR with and without the duplicate-key check"
    )
    args = parser.parse_args()
    target = cdpcli.Target(api_key=None, endpoint="http://127.0.0.1:9")
    vendors = args.vendor or list(VENDORS)
    data = {vendor: inputs(vendor, args.events, args.seed) for vendor in vendors}
    for vendor in vendors:  # warm up: imports, caches and the first chunks' allocations
        lines, canonical = data[vendor]
        cpu_per_call(canonical[:2000], None, target)
        cpu_per_call(lines[:2000], vendor, target)
    if args.check_cost:
        check_cost(data, args.rounds, target)
        return
    times: dict[str, dict[str, list[float]]] = {vendor: {"canonical": [], "vendor": []} for vendor in vendors}
    for round_no in range(args.rounds):
        for vendor in vendors:
            lines, canonical = data[vendor]
            runs = [("canonical", canonical, None), ("vendor", lines, vendor)]
            for kind, batch, archive in runs if round_no % 2 == 0 else reversed(runs):
                times[vendor][kind].append(cpu_per_call(batch, archive, target))
        print(f"round {round_no + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    print(f"{'input':<12} {'canonical µs/call':>18} {'vendor µs/call':>15} {'ratio':>6}")
    for vendor in vendors:
        plain, mapped = times[vendor]["canonical"], times[vendor]["vendor"]
        ratio = statistics.median(b / a for a, b in zip(plain, mapped, strict=True))
        print(f"{vendor:<12} {statistics.median(plain):>18.1f} {statistics.median(mapped):>15.1f} {ratio:>5.2f}×")


def check_cost(data: dict[str, tuple[list[bytes], list[bytes]]], rounds: int, target: cdpcli.Target) -> None:
    """--from VENDOR with the duplicate-key pre-check and with it answering "no repeat"
    (what the converter cost before it), interleaved round by round."""
    checking = vendors.may_repeat_a_key
    kinds = {"without": lambda text, record: False, "with": checking}
    times: dict[str, dict[str, list[float]]] = {vendor: {kind: [] for kind in kinds} for vendor in data}
    try:
        for round_no in range(rounds):
            for vendor, (lines, _) in data.items():
                for kind in kinds if round_no % 2 == 0 else reversed(list(kinds)):
                    vendors.may_repeat_a_key = kinds[kind]
                    times[vendor][kind].append(cpu_per_call(lines, vendor, target))
            print(f"round {round_no + 1} of {rounds} done", file=sys.stderr, flush=True)
    finally:
        vendors.may_repeat_a_key = checking
    print(f"{'input':<12} {'without µs/call':>16} {'with µs/call':>13} {'ratio':>6}")
    for vendor, kind_times in times.items():
        ratio = statistics.median(b / a for a, b in zip(kind_times["without"], kind_times["with"], strict=True))
        without, with_check = statistics.median(kind_times["without"]), statistics.median(kind_times["with"])
        print(f"{vendor:<12} {without:>16.1f} {with_check:>13.1f} {ratio:>5.2f}×")


if __name__ == "__main__":
    main()

"""Throughput of `cdp import` against Customer.io's official Python SDK and the raw limit.

For N realistic mixed calls (default 100,000, ~250 bytes each) and a receiver on loopback
(`cdp serve`'s Receiver, set up as `cdp serve` runs it, in this process, which otherwise
only waits), it measures events/s of:

  (1) cdp import FILE, default flags
  (2) the official SDK (customerio-cdp-analytics): the same file replayed through
      analytics.track/identify/page/group, then flush()
  (3) the raw limit: the same lines joined into ~475 KB /batch bodies without parsing,
      posted by 8 keep-alive http.client threads
  (3*) not a target: the same raw sender posting the calls exactly as cdp sends them (derived
      messageId and context.library added), to separate cdp's own cost from those bytes

Each is a whole subprocess, start-up and exit included, timed as a user would see it. The three
run interleaved for several rounds; we print the median of each round's ratios (1)/(2) and
(1)/(3), on plain loopback and with the receiver adding 50 ms per request. Then the peak RSS
of `cdp import` on 1,000,000 lines.

Targets (default flags): (1)/(3) >= 0.8 loopback, >= 0.85 at 50 ms; (1)/(2) >= 5 loopback,
>= 30 at 50 ms; peak RSS < 150 MB on 1,000,000 lines. With the receiver on the same cores, (3*)/(3)
bounds (1)/(3): the receiver is what both raw senders wait on, and cdp's calls cost it more
(~75 bytes more each); the run prints that ceiling when both run.

With --split, one more `cdp import` of the same file on loopback says where its client CPU goes:
start-up (a one-line import's whole process), the main thread (reading, preparing, packing), the
senders, the reader, and the garbage collector, each in µs per call.

Usage: python benchmarks/import_throughput.py [--events 100000] [--rounds 5] [--sdk-events-slow 20000]
       [--rss-lines 1000000] [--latencies 0,50] [--variants cdp,sdk,raw,raw*] [--split]
Needs: pip install -e '.[bench]' (the SDK).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdpcli.serve import SERVE_COLLECT_EVERY, Receiver  # noqa: E402

API_KEY = "bench-key-0123456789"

RAW_SENDER = r"""
import http.client, sys, threading, base64
from urllib.parse import urlsplit
path, url, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = urlsplit(url)
auth = "Basic " + base64.b64encode(b"%s:" % sys.argv[4].encode()).decode()
bodies, batch, size = [], [], 0
with open(path, "rb") as handle:
    for line in handle:
        line = line.strip()
        if size + len(line) > 475_000:
            bodies.append(b'{"batch":[' + b",".join(batch) + b'],"sentAt":"2026-11-27T00:00:00.000Z"}')
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
bodies.append(b'{"batch":[' + b",".join(batch) + b'],"sentAt":"2026-11-27T00:00:00.000Z"}')
lock = threading.Lock()
def work():
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    while True:
        with lock:
            if not bodies:
                return
            body = bodies.pop()
        conn.request("POST", parts.path + "/batch", body=body,
                     headers={"Content-Type": "application/json", "Authorization": auth, "X-Strict-Mode": "1"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
workers = [threading.Thread(target=work) for _ in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
"""

SDK_SENDER = r"""
import json, sys
from datetime import datetime
from customerio import analytics
path, host, key = sys.argv[1], sys.argv[2], sys.argv[3]
analytics.write_key = key
analytics.host = host
analytics.max_queue_size = 10_000_000  # the default 10,000 would drop calls: compare delivery, not drops
with open(path, "rb") as handle:
    for line in handle:
        call = json.loads(line)
        kind = call["type"]
        common = dict(user_id=call.get("userId"), anonymous_id=call.get("anonymousId"),
                      context=call.get("context"),
                      timestamp=datetime.fromisoformat(call["timestamp"].replace("Z", "+00:00")))
        if kind == "track":
            analytics.track(event=call["event"], properties=call.get("properties"), **common)
        elif kind == "identify":
            analytics.identify(traits=call.get("traits"), **common)
        elif kind == "page":
            analytics.page(name=call.get("name"), properties=call.get("properties"), **common)
        elif kind == "group":
            analytics.group(group_id=call["groupId"], traits=call.get("traits"), **common)
analytics.flush()
analytics.shutdown()
"""


# `cdp import` run in a process that records each thread's CPU when it ends (by name: the
# senders are one "cdp-sender") and the CPU the garbage collector takes; the JSON goes to argv[1]
SPLIT_RUNNER = r"""
import gc, json, sys, threading, time
out, argv = sys.argv[1], sys.argv[2:]
cpu, lock, run_thread = {}, threading.Lock(), threading.Thread.run
def timed_run(self):
    try:
        run_thread(self)
    finally:
        name = self.name.rstrip("0123456789").rstrip("-")
        with lock:
            cpu[name] = cpu.get(name, 0.0) + time.thread_time()
threading.Thread.run = timed_run
collector = {"started": 0.0, "seconds": 0.0}
def on_collection(phase, info):
    if phase == "start":
        collector["started"] = time.thread_time()
    else:
        collector["seconds"] += time.thread_time() - collector["started"]
gc.callbacks.append(on_collection)
from cdpcli.cli import startup
startup.prepare_process()
from cdpcli.cli.run import run
code = run(argv)
cpu["main"] = time.thread_time()
with open(out, "w") as handle:
    json.dump({"threads": cpu, "gc": collector["seconds"], "process": time.process_time(), "code": code}, handle)
"""


def realistic_line(i: int, rng: random.Random) -> dict:
    kind = rng.choices(["track", "identify", "page", "group"], weights=[60, 20, 15, 5])[0]
    call: dict = {"type": kind, "userId": f"user-{rng.randrange(1_000_000):06d}"}
    second = rng.randrange(1_700_000_000, 1_760_000_000)
    call["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + f".{rng.randrange(1000):03d}Z"
    if kind == "track":
        call["event"] = rng.choice(["Item Purchased", "Signed Up", "Video Played", "Cart Viewed"])
        call["properties"] = {
            "sku": f"SKU-{rng.randrange(10**6)}",
            "price": round(rng.uniform(1, 500), 2),
            "currency": "EUR",
            "quantity": rng.randrange(1, 5),
            "coupon": rng.choice([None, "WINTER"]),
        }
    elif kind == "identify":
        call["traits"] = {
            "email": f"person{i}@example.com",
            "plan": rng.choice(["free", "pro", "team"]),
            "logins": rng.randrange(500),
            "created_at": "2024-01-01T00:00:00Z",
            "country": "DE",
        }
    elif kind == "page":
        call["name"] = "Pricing"
        call["properties"] = {
            "url": f"https://example.com/p/{rng.randrange(10**5)}",
            "title": "Pricing",
            "referrer": "https://www.google.com/",
            "path": "/pricing",
        }
    else:
        call["groupId"] = f"acct-{rng.randrange(10**4)}"
        call["traits"] = {
            "name": "Acme Corp",
            "plan": "enterprise",
            "seats": rng.randrange(5, 500),
            "object_type_id": "1",
        }
    if rng.random() < 0.3:
        call["context"] = {"ip": f"203.0.113.{rng.randrange(256)}", "locale": "en-US", "timezone": "Europe/Berlin"}
    return call


def write_inputs(directory: Path, count: int) -> tuple[Path, Path]:
    """The calls as users would have them (no messageIds) and, for raw, with short ids added."""
    rng = random.Random(42)
    plain, with_ids = directory / f"calls-{count}.ndjson", directory / f"calls-{count}-ids.ndjson"
    with open(plain, "w") as a, open(with_ids, "w") as b:
        for i in range(count):
            line = json.dumps(realistic_line(i, rng), separators=(",", ":"))
            a.write(line + "\n")
            b.write('{"messageId":"m-%d",' % i + line[1:] + "\n")
    return plain, with_ids


def calls_as_cdp_sends_them(plain: Path, tmp: Path, env: dict[str, str]) -> Path:
    """One call per line, exactly as `cdp import` puts them in its /batch bodies (from --dry-run)."""
    out = tmp / (plain.stem + "-as-sent.ndjson")
    dry = subprocess.run(
        [*cdp_command(), "import", str(plain), "--dry-run", "--json", "-q"], env=env, capture_output=True, check=True
    )
    with open(out, "w") as handle:
        for request in dry.stdout.splitlines()[:-1]:  # the last line is the summary
            for call in json.loads(request)["body"]["batch"]:
                handle.write(json.dumps(call, separators=(",", ":")) + "\n")
    return out


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KB) and CPU seconds of one subprocess."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = [0], threading.Event()
    watcher = threading.Thread(target=_watch_peak_rss, args=(proc.pid, done, peak), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({proc.returncode}):\n{err[-2000:]}")
    # ru_maxrss is no good here: Linux counts the parent's resident memory at fork time in the
    # child's peak (this process holds the receiver and the input: +30 MB and more)
    return elapsed, peak[0] or usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def _watch_peak_rss(pid: int, done: threading.Event, peak: list[int]) -> None:
    """The child's own peak (VmHWM, reset by exec), read every 20 ms until it is reaped."""
    path = f"/proc/{pid}/status"
    while not done.is_set():
        try:
            with open(path) as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError):  # no /proc (not Linux), or the child is gone
            return
        done.wait(0.02)


def cdp_command() -> list[str]:
    script = Path(sys.executable).with_name("cdp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cdpcli"]


def measure(latency_ms: int, rounds: int, files: dict, env: dict[str, str], tmp: Path, only: set[str]) -> None:
    receiver = Receiver(api_key=None, keep=False, latency_ms=latency_ms, collect_every=SERVE_COLLECT_EVERY).start()
    host = receiver.url[: -len("/v1")]
    raw_py, sdk_py = tmp / "raw.py", tmp / "sdk.py"
    raw_py.write_text(RAW_SENDER)
    sdk_py.write_text(SDK_SENDER)
    plain, with_ids, sdk_file = files["plain"], files["ids"], files["sdk"]
    n, n_sdk = files["n"], files["n_sdk"]
    variants = {
        "cdp": (
            [
                *cdp_command(),
                "import",
                str(plain),
                "--endpoint",
                receiver.url,
                "--api-key",
                API_KEY,
                "--no-progress",
                "-q",
            ],
            n,
        ),
        "sdk": ([sys.executable, str(sdk_py), str(sdk_file), host, API_KEY], n_sdk),
        "raw": ([sys.executable, str(raw_py), str(with_ids), receiver.url, "8", API_KEY], n),
        # not a target: the raw sender posting the very calls cdp sends (ids and context.library
        # added), to tell cdp's own cost apart from the bytes SPEC makes it add
        "raw*": ([sys.executable, str(raw_py), str(files["as_sent"]), receiver.url, "8", API_KEY], n),
    }
    variants = {name: variant for name, variant in variants.items() if name in only}
    rates: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}  # µs of CPU per call: client, receiver
    wire_bytes: dict[str, float] = {}  # request body bytes per call, as the receiver saw them
    ratio_sdk, ratio_raw, ratio_same = [], [], []
    # the ratios hold for a machine the run has to itself: on shared cores the client and the
    # receiver share what is left, and the run is bound by their CPU together, not either one
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== receiver latency {latency_ms} ms: {n:,} calls ({n_sdk:,} for the SDK), {rounds} rounds, load {load}")
    for round_no in range(1, rounds + 1):
        this = {}
        for name, (cmd, expected) in variants.items():
            before, bytes_before, sink_before = receiver.accepted, receiver.accepted_bytes, time.process_time()
            seconds, _, client_cpu = run(cmd, env)
            got = receiver.accepted - before
            wire_bytes[name] = (receiver.accepted_bytes - bytes_before) / expected
            cpu[name].append((client_cpu / expected * 1e6, (time.process_time() - sink_before) / expected * 1e6))
            if got != expected:
                raise SystemExit(f"{name}: the receiver accepted {got:,} calls, expected {expected:,}")
            this[name] = expected / seconds
            rates[name].append(this[name])
        for ratios, other in ((ratio_sdk, "sdk"), (ratio_raw, "raw"), (ratio_same, "raw*")):
            if other in this:
                ratios.append(this["cdp"] / this[other])
        print(
            f"  round {round_no}: "
            + "   ".join(f"{name} {rate:9,.0f} ev/s" for name, rate in this.items())
            + "".join(
                f"   cdp/{other} {ratios[-1]:.2f}"
                for ratios, other in ((ratio_sdk, "sdk"), (ratio_raw, "raw"), (ratio_same, "raw*"))
                if ratios
            )
        )
    receiver.stop()
    print("  median events/s: " + ", ".join(f"{name} {statistics.median(r):,.0f}" for name, r in rates.items()))
    print(
        "  CPU µs per call (client / receiver): "
        + ", ".join(
            f"{name} {statistics.median(c for c, _ in cpu[name]):.1f} / {statistics.median(r for _, r in cpu[name]):.1f}"
            for name in variants
        )
    )
    # cdp's calls are bigger than raw's (derived messageId, context.library): the receiver, which
    # raw keeps busy, parses those bytes too
    print("  body bytes per call: " + ", ".join(f"{name} {wire_bytes[name]:.0f}" for name in variants))
    target_sdk, target_raw = (5, 0.8) if latency_ms == 0 else (30, 0.85)
    print(f"  load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if ratio_sdk:
        print(f"  median (1)/(2) cdp/sdk = {statistics.median(ratio_sdk):.1f}   (target >= {target_sdk})")
    if ratio_raw:
        print(f"  median (1)/(3) cdp/raw = {statistics.median(ratio_raw):.2f}   (target >= {target_raw})")
    if ratio_same:
        print(f"  median cdp/raw* (raw posting cdp's own calls) = {statistics.median(ratio_same):.2f}")
    if ratio_raw and ratio_same:
        # raw*/raw: what the bytes SPEC adds (derived messageId, context.library) cost the receiver,
        # which both raw senders keep busy: cdp/raw cannot pass it with this receiver
        ceiling = statistics.median(raw / same for raw, same in zip(ratio_raw, ratio_same, strict=True))
        print(f"  median raw*/raw = {ceiling:.2f}   (the ceiling of cdp/raw with this receiver)")


def measure_rss(lines: int, env: dict[str, str], tmp: Path) -> None:
    plain, _ = write_inputs(tmp, lines)
    (tmp / f"calls-{lines}-ids.ndjson").unlink()
    receiver = Receiver(api_key=None, keep=False, collect_every=SERVE_COLLECT_EVERY).start()
    seconds, peak_kb, _ = run(
        [*cdp_command(), "import", str(plain), "--endpoint", receiver.url, "--api-key", API_KEY, "-q"], env
    )
    accepted = receiver.accepted
    receiver.stop()
    plain.unlink()
    assert accepted == lines, f"receiver accepted {accepted:,} of {lines:,}"
    print(
        f"\n== peak RSS of cdp import on {lines:,} lines: {peak_kb / 1024:.0f} MB (target < 150 MB); "
        f"{seconds:.1f}s, {lines / seconds:,.0f} ev/s"
    )


def measure_split(plain: Path, n: int, env: dict[str, str], tmp: Path) -> None:
    """Where one `cdp import` of `plain` (n calls, receiver on loopback) spends its client CPU."""
    one_line = tmp / "one-line.ndjson"
    with open(plain, "rb") as src:
        one_line.write_bytes(src.readline())
    receiver = Receiver(api_key=None, keep=False, collect_every=SERVE_COLLECT_EVERY).start()
    sending = ["--endpoint", receiver.url, "--api-key", API_KEY, "--no-progress", "-q"]
    start_up = statistics.median(run([*cdp_command(), "import", str(one_line), *sending], env)[2] for _ in range(5))
    runner, out = tmp / "split.py", tmp / "split.json"
    runner.write_text(SPLIT_RUNNER)
    run([sys.executable, str(runner), str(out), "import", str(plain), *sending], env)
    receiver.stop()
    split = json.loads(out.read_text())
    if split["code"] != 0:
        raise SystemExit(f"the split run exited {split['code']}")
    threads = dict(split["threads"])
    per_call = {
        "start-up (a one-line import)": start_up,
        "main thread after start-up (read, prepare, pack)": threads.pop("main") - start_up,
        "senders": threads.pop("cdp-sender", 0.0),
        "reader": threads.pop("cdp-reader", 0.0),
        "other threads": sum(threads.values()),
    }
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== client CPU split, µs per call of {n:,} (receiver on loopback, load {load})")
    print(f"  whole process {split['process'] / n * 1e6:.1f}")
    for what, seconds in per_call.items():
        print(f"  {what}: {seconds / n * 1e6:.2f}")
    print(f"  of which garbage collection, in any thread: {split['gc'] / n * 1e6:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--sdk-events-slow",
        type=int,
        default=20_000,
        help="calls for the SDK when the receiver adds latency (it sends 100 per request, one at a time)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latencies", default="0,50", help="receiver latencies in ms, comma-separated")
    parser.add_argument("--rss-lines", type=int, default=1_000_000, help="0 skips the memory run")
    parser.add_argument(
        "--variants", default="cdp,sdk,raw,raw*", help="which senders run, comma-separated (cdp is always one)"
    )
    parser.add_argument("--split", action="store_true", help="also split one cdp import's client CPU by thread")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: with .pyc files
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env["CDP_CONFIG_DIR"] = str(tmp)
        plain, with_ids = write_inputs(tmp, args.events)
        print(f"input: {args.events:,} calls, {plain.stat().st_size / args.events:.0f} bytes/line on average")
        as_sent = calls_as_cdp_sends_them(plain, tmp, env)
        for latency in (int(x) for x in args.latencies.split(",") if x):
            n_sdk = args.events if latency == 0 else min(args.events, args.sdk_events_slow)
            sdk_file = plain
            if n_sdk != args.events:
                sdk_file = tmp / f"sdk-{n_sdk}.ndjson"
                with open(plain) as src, open(sdk_file, "w") as dst:
                    for _, line in zip(range(n_sdk), src, strict=False):
                        dst.write(line)
            files = {
                "plain": plain,
                "ids": with_ids,
                "sdk": sdk_file,
                "n": args.events,
                "n_sdk": n_sdk,
                "as_sent": as_sent,
            }
            measure(latency, args.rounds, files, env, tmp, {"cdp", *args.variants.split(",")})
        if args.split:
            measure_split(plain, args.events, env, tmp)
        if args.rss_lines:
            measure_rss(args.rss_lines, env, tmp)


if __name__ == "__main__":
    main()

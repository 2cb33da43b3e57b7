"""`cdp import s3://BUCKET/segment-logs/` from a loopback S3 server against `cdp import
segment-logs/` of the same tree on local disk: CPU per call of each, and the peak RSS of a
1M-line import from the bucket.

The tree is Segment's S3 layout (segment-logs/SOURCE/RECEIVED-DAY-MS/FILE.gz) of realistic calls
(import_throughput.realistic_line), uploaded to moto's standalone server running in a process of
its own (tests/s3server.py), so the CPU counted is cdp's alone. Both sides run as whole
subprocesses into one receiver in this process, interleaved round by round. Prints each side's
median CPU µs per call and the median per-round ratio bucket / disk (issue's goal: at most 1.3),
then each one's peak RSS on 1,000,000 lines (import_throughput's target: < 150 MB).

Usage: python benchmarks/import_s3.py [--events 200000] [--objects 10] [--rounds 5] [--rss-events 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3  # noqa: E402
from import_throughput import API_KEY, cdp_command, run, write_inputs  # noqa: E402

from cdpcli.serve import SERVE_COLLECT_EVERY, Receiver  # noqa: E402
from tests.s3server import ACCESS_KEY, SECRET_KEY, MotoServer, aws_env  # noqa: E402

DAY_MS = 86_400_000
FIRST_DAY_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z


def segment_tree(plain: Path, root: Path, objects: int) -> list[Path]:
    """The lines of `plain` split into `objects` gzipped files, one folder per received day."""
    lines = plain.read_bytes().splitlines(keepends=True)
    per = -(-len(lines) // objects)
    paths = []
    for n in range(objects):
        day = FIRST_DAY_MS + (n // 4) * DAY_MS
        path = root / "segment-logs" / "src_bench" / str(day) / f"{day}.{n % 4}.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"".join(lines[n * per : (n + 1) * per]), compresslevel=6))
        paths.append(path)
    return paths


def upload(moto: MotoServer, bucket: str, root: Path, paths: list[Path]) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=bucket)
    for path in paths:
        client.upload_file(str(path), bucket, path.relative_to(root).as_posix())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-events", type=int, default=1_000_000, help="0: skip the RSS run")
    args = parser.parse_args()
    moto = MotoServer()
    receiver = Receiver(api_key=None, keep=False, collect_every=SERVE_COLLECT_EVERY).start()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            env = {
                **os.environ,
                **aws_env(moto.url),
                "CDP_API_KEY": API_KEY,
                "CDP_ENDPOINT": receiver.url,
                "CDP_CONFIG_DIR": str(tmp / "cfg"),
            }
            cdp = " ".join(shlex.quote(part) for part in cdp_command())
            common = f"-q --no-progress --rejects {shlex.quote(str(tmp / 'rejects.ndjson'))}"
            compare(args, tmp, moto, env, cdp, common)
            if args.rss_events:
                measure_rss(args, tmp, moto, env, cdp, common)
    finally:
        receiver.stop()
        moto.stop()


def compare(args: argparse.Namespace, tmp: Path, moto: MotoServer, env: dict, cdp: str, common: str) -> None:
    plain, _ = write_inputs(tmp, args.events)
    root = tmp / "tree"
    paths = segment_tree(plain, root, args.objects)
    upload(moto, "bench", root, paths)
    size = sum(p.stat().st_size for p in paths)
    print(f"{args.events:,} lines in {args.objects} gzipped objects, {size / 1e6:.1f} MB")
    commands = {
        "bucket": ["bash", "-c", f"{cdp} import s3://bench/segment-logs/ {common}"],
        "disk": ["bash", "-c", f"{cdp} import {shlex.quote(str(root / 'segment-logs'))} {common}"],
    }
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for round_no in range(args.rounds):
        for name in commands if round_no % 2 == 0 else reversed(commands):
            _, _, seconds = run(commands[name], env)
            cpu[name].append(seconds / args.events * 1e6)
        print(f"round {round_no + 1}: bucket {cpu['bucket'][-1]:.1f} µs/call, disk {cpu['disk'][-1]:.1f} µs/call")
    ratios = [a / b for a, b in zip(cpu["bucket"], cpu["disk"], strict=True)]
    for name in commands:
        print(f"{name:>6}: median {statistics.median(cpu[name]):.1f} µs CPU per call")
    print(f"bucket/disk CPU: median {statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


def measure_rss(args: argparse.Namespace, tmp: Path, moto: MotoServer, env: dict, cdp: str, common: str) -> None:
    plain, _ = write_inputs(tmp, args.rss_events)
    root = tmp / "big"
    paths = segment_tree(plain, root, 20)
    upload(moto, "rss", root, paths)
    plain.unlink()
    commands = {
        "bucket": ["bash", "-c", f"{cdp} import s3://rss/segment-logs/ {common}"],
        "disk": ["bash", "-c", f"{cdp} import {shlex.quote(str(root / 'segment-logs'))} {common}"],
    }
    for name, command in commands.items():
        seconds, peak_kb, cpu = run(command, env)
        print(
            f"{args.rss_events:,} lines from {name} (20 objects): peak RSS {peak_kb / 1024:.0f} MB "
            f"(target < 150 MB), {seconds:.1f} s, {cpu / args.rss_events * 1e6:.1f} µs CPU per call"
        )


if __name__ == "__main__":
    main()

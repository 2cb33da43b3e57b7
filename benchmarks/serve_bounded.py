"""`cdp serve` under the loads that once made it unbounded, over loopback only, each bounded in
count and time. A real `cdp serve` process each; its RSS is read from /proc.

  rejects      N refused requests (default 1,500) of a 63 KB `[{},{},…]` batch: RSS, and what
               /_cdp/summary says the kept rejects cost (--max-reject-bytes bounds it)
  names        N calls (default 200,000) each with an event name of its own: RSS, by_event size
  stalled      batches of 100 calls posted one after another, with 0 and then with 30 event-stream
               clients that never read: batches/s each and the ratio (the target: at most 2x slower)
  descriptors  cdp serve started with a soft limit of 1,024: the soft limit it runs with; then,
               with a hard limit of 1,024 too, N clients at once (default 2,000): how many got
               200, 503 or nothing, and how many traceback lines its stderr holds

Usage: python benchmarks/serve_bounded.py [--only rejects,names,stalled,descriptors]
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
KEY = "bench-key"
AUTH = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()


class Serve:
    """`cdp serve --port 0` in a process of its own, its stderr read in the background."""

    def __init__(self, tmp: Path, *args: str, limits: tuple[int, int] | None = None) -> None:
        command = [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--out", os.devnull, *args]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=HERE,
            env={**os.environ, "CDP_CONFIG_DIR": str(tmp)},
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limits)) if limits else None,
        )
        banner = self.proc.stderr.readline()
        if not banner.startswith("cdp serve: listening on"):
            raise SystemExit(f"cdp serve did not start: {banner}{self.proc.stderr.read()[-2000:]}")
        self.url = banner.split()[4]
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self.log: list[str] = []
        self._reader = threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def soft_limit(self) -> int:
        limits = Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines()
        return int(next(line for line in limits if line.startswith("Max open files")).split()[3])

    def get(self, route: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("GET", route, headers={"Authorization": AUTH})
        answer = json.loads(conn.getresponse().read())
        conn.close()
        return answer

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._reader.join(10)


def post_many(port: int, path: str, bodies: list[bytes], threads: int = 4, strict: bool = True) -> collections.Counter:
    """POST each body (keep-alive connections, `threads` at once): the statuses."""
    statuses: collections.Counter = collections.Counter()
    lock = threading.Lock()
    headers = {"Authorization": AUTH, "Content-Type": "application/json", **({"X-Strict-Mode": "1"} if strict else {})}

    def work(share: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in share:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] += 1
        conn.close()

    workers = [threading.Thread(target=work, args=(bodies[n::threads],)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


def rejects(tmp: Path, n: int) -> None:
    body = json.dumps({"batch": [{}] * 15_700}).encode()  # ~63 KB
    serve = Serve(tmp)
    try:
        before = serve.rss_mb()
        started = time.perf_counter()
        statuses = post_many(serve.port, "/v1/batch", [body] * n)
        wall = time.perf_counter() - started
        summary = serve.get("/_cdp/summary")
        print(
            f"rejects: {n:,} x {len(body) / 1000:.0f} KB refused ({dict(statuses)}) in {wall:.1f} s; RSS {before:.0f} -> "
            f"{serve.rss_mb():.0f} MB; kept {summary['rejects_kept']:,} costing {summary['reject_bytes'] / 1e6:.1f} MB, "
            f"evicted {summary['rejects_evicted']:,}"
        )
    finally:
        serve.stop()


def names(tmp: Path, n: int) -> None:
    serve = Serve(tmp, "--max-calls", "0")
    try:
        before = serve.rss_mb()
        bodies = [
            json.dumps(
                {"batch": [{"type": "track", "userId": "1", "event": f"name-{i}"} for i in range(start, start + 2_500)]}
            ).encode()
            for start in range(0, n, 2_500)
        ]
        statuses = post_many(serve.port, "/v1/batch", bodies)
        summary = serve.get("/_cdp/summary")
        print(
            f"names: {n:,} distinct event names ({dict(statuses)}); RSS {before:.0f} -> {serve.rss_mb():.0f} MB; "
            f"by_event holds {len(summary['by_event']):,}, by_event_other {summary['by_event_other']:,}"
        )
    finally:
        serve.stop()


def stalled_readers(port: int, count: int) -> list[socket.socket]:
    readers = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /_cdp/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        readers.append(sock)
    return readers


def stalled(tmp: Path, batches: int, rounds: int) -> None:
    body = json.dumps(
        {"batch": [{"type": "track", "userId": "1", "event": "E", "properties": {"plan": "pro"}}] * 100}
    ).encode()
    rates: dict[int, list[float]] = {0: [], 30: []}
    for _ in range(rounds):
        for readers in (0, 30):  # alternated, so load from elsewhere falls on both alike
            serve = Serve(tmp, "--max-calls", "10000")
            try:
                socks = stalled_readers(serve.port, readers)
                post_many(serve.port, "/v1/batch", [body] * 20, threads=1)  # warm up
                started = time.perf_counter()
                post_many(serve.port, "/v1/batch", [body] * batches, threads=1)
                rates[readers].append(batches / (time.perf_counter() - started))
                for sock in socks:
                    sock.close()
            finally:
                serve.stop()
    alone, with_stalled = statistics.median(rates[0]), statistics.median(rates[30])
    print(
        f"stalled: {batches:,} batches of 100 calls, one at a time: {alone:,.0f} batches/s alone, "
        f"{with_stalled:,.0f} with 30 stalled event-stream readers: {alone / with_stalled:.2f}x slower "
        f"(rounds: {[round(r) for r in rates[0]]} / {[round(r) for r in rates[30]]})"
    )


def descriptors(tmp: Path, clients: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    serve = Serve(tmp, limits=(1024, hard))
    try:
        print(f"descriptors: started with a soft limit of 1,024 (hard {hard:,}): runs with {serve.soft_limit():,}")
    finally:
        serve.stop()
    serve = Serve(tmp, limits=(1024, 1024))
    body = b'{"userId": "1", "event": "E"}'
    request = (
        b"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (AUTH.encode(), len(body), body)
    )
    outcomes: collections.Counter = collections.Counter()
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, clients + 1024), hard))
        socks = []
        for _ in range(clients):
            try:
                socks.append(socket.create_connection(("127.0.0.1", serve.port), timeout=30))
            except OSError as exc:
                outcomes[f"connect: {exc.strerror}"] += 1
        for sock in socks:
            try:
                sock.sendall(request)
            except OSError:
                pass
        for sock in socks:
            try:
                answer = sock.recv(4096)
                outcomes[answer.split(b" ", 2)[1].decode() if answer else "closed"] += 1
            except OSError as exc:
                outcomes[type(exc).__name__] += 1
            sock.close()
    finally:
        serve.stop()
    tracebacks = sum("Traceback" in line for line in serve.log)
    overload_lines = sum("out of file descriptors" in line for line in serve.log)
    print(
        f"descriptors: {clients:,} clients at once, limit 1,024/1,024: {dict(outcomes)}; {tracebacks} tracebacks, "
        f"{overload_lines} overload line(s) in its log"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="rejects,names,stalled,descriptors")
    parser.add_argument("--rejects", type=int, default=1_500)
    parser.add_argument("--names", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2_000)
    options = parser.parse_args()
    chosen = options.only.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        if "rejects" in chosen:
            rejects(Path(tmp), options.rejects)
        if "names" in chosen:
            names(Path(tmp), options.names)
        if "stalled" in chosen:
            stalled(Path(tmp), options.batches, options.rounds)
        if "descriptors" in chosen:
            descriptors(Path(tmp), options.clients)


if __name__ == "__main__":
    main()

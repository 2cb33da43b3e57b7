"""`cdp serve` stays bounded: rejects by bytes, event names by count, the event stream by queue
(a reader that stalls is dropped, and each change is encoded once whatever the readers), and
descriptors (raised at start; past them 503 JSON and a line a burst, never a traceback).
Real HTTP over loopback."""

from __future__ import annotations

import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cdpcli.serve import Receiver, stream
from tests.conftest import post

pytestmark = pytest.mark.slow  # loads: stalled stream readers, thousands of rejects

ROOT = Path(__file__).resolve().parent.parent


def test_rejects_are_bounded_by_bytes():
    empties = json.dumps({"batch": [{}] * 15_000}).encode()  # ~60 KB that parses into 15,000 objects
    with Receiver(max_reject_bytes=1_000_000) as receiver:
        for _ in range(40):
            assert post(receiver, "/v1/batch", None, raw=empties, auth="Bearer k")[0] == 400
        summary = receiver.summary()
        kept = receiver.rejects()
    assert summary["rejected"] == 40 and summary["reject_bytes"] <= 1_000_000
    assert summary["rejects_kept"] == len(kept) < 40 and summary["rejects_evicted"] == 40 - len(kept)
    assert [reject["seq"] for reject in kept] == list(range(41 - len(kept), 41))  # the newest kept
    assert isinstance(kept[-1]["body"], dict)  # kept as text, given back parsed


def test_event_names_are_counted_for_the_most_frequent_only():
    with Receiver() as receiver:
        often = [{"type": "track", "userId": "1", "event": "Often"}] * 10
        assert post(receiver, "/v1/batch", {"batch": often}, auth="Bearer k")[0] == 200
        for start in range(0, 5_000, 2_500):
            batch = [{"type": "track", "userId": "1", "event": f"name-{n}"} for n in range(start, start + 2_500)]
            assert post(receiver, "/v1/batch", {"batch": batch}, auth="Bearer k")[0] == 200
        summary = receiver.summary()
    assert len(summary["by_event"]) == 1_000 and summary["by_event"]["Often"] == 10
    assert sum(summary["by_event"].values()) + summary["by_event_other"] == 5_010


def stalled_reader(receiver: Receiver) -> socket.socket:
    """A client that asks for the event stream and then never reads (a small receive buffer)."""
    parts = urlsplit(receiver.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET /_cdp/events HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    return sock


def test_a_stalled_reader_is_dropped_and_each_change_is_encoded_once(monkeypatch):
    encoded = []
    original = stream.encode
    monkeypatch.setattr(stream, "encode", lambda kind, items: encoded.append(kind) or original(kind, items))
    monkeypatch.setattr(stream, "DROP_GRACE", 0.2)
    with Receiver() as receiver:
        joined = threading.Semaphore(0)
        broadcast = receiver.application.control.broadcast
        join = broadcast.join
        monkeypatch.setattr(broadcast, "join", lambda close=None: joined.release() or join(close))
        stalled = [stalled_reader(receiver) for _ in range(5)]
        parts = urlsplit(receiver.url)
        live = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        live.request("GET", "/_cdp/events")
        response = live.getresponse()
        for _ in range(6):
            assert joined.acquire(timeout=10)
        batch = {"batch": [{"type": "track", "userId": "1", "event": "E", "properties": {"pad": "x" * 200}}] * 100}
        changes = stream.STREAM_QUEUE + 200
        received = []
        reader = threading.Thread(target=lambda: received.extend(read_events(response, changes * 100)))
        reader.start()
        for _ in range(changes):
            assert post(receiver, "/v1/batch", batch, auth="Bearer k")[0] == 200
        reader.join(60)
        for sock in stalled:  # cut off: reading now meets the end, well before every change
            sock.settimeout(30)
            got = b""
            while chunk := sock.recv(1 << 20):
                got += chunk
            assert got.count(b"event: call") < changes * 100
            sock.close()
        live.close()
    assert len(received) == changes * 100  # the reader that keeps up gets everything
    assert encoded == ["call"] * changes  # once a change, not once a reader


def read_events(response, wanted: int) -> list[str]:
    names = []
    while len(names) < wanted:
        line = response.fp.readline()
        if not line:
            break
        if line.startswith(b"event: "):
            names.append(line[7:].strip().decode())
    return names


def test_cdp_serve_raises_its_descriptor_limit(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip("needs a finite hard limit above 256")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--out", str(tmp_path / "out.ndjson")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CDP_CONFIG_DIR": str(tmp_path)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
    )
    try:
        assert proc.stderr.readline().startswith("cdp serve: listening on")
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert line.split()[3:5] == [str(hard), str(hard)]
    finally:
        proc.terminate()
        proc.wait(30)


OVERLOAD = """
import json, resource, socket, sys
from cdpcli.serve import Receiver
resource.setrlimit(resource.RLIMIT_NOFILE, (96, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
receiver = Receiver(log=lambda line: print(line, file=sys.stderr, flush=True)).start()
print(receiver.port, flush=True)
sys.stdin.readline()
receiver.stop()
"""


def test_out_of_descriptors_is_503_json_and_one_line_never_a_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-c", OVERLOAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        port = int(proc.stdout.readline())
        body = b'{"userId": "1", "event": "E"}'
        request = (
            b"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(250)]
        for client in clients:
            client.sendall(request)
        answers = []
        for client in clients:
            client.settimeout(30)
            answers.append(client.recv(4096))
            client.close()
        proc.stdin.write("\n")
        proc.stdin.flush()
        _, log = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    statuses = [answer.split(b" ", 2)[1] for answer in answers]
    assert set(statuses) <= {b"200", b"503"} and statuses.count(b"503") > 0 and statuses.count(b"200") > 0
    refused = next(answer for answer in answers if answer.split(b" ", 2)[1] == b"503")
    assert json.loads(refused.split(b"\r\n\r\n", 1)[1])["meta"]["errors"][0].startswith("cdp serve is out of file")
    assert "Traceback" not in log and log.count("out of file descriptors") == 1, log[-3000:]


def test_a_client_that_falls_behind_gets_a_last_dropped_event_and_is_cut_off():
    import asyncio

    closed = []

    async def scenario():
        client = stream.Client(3, lambda: closed.append(True))
        for _ in range(3):
            client.offer(b"event: call\ndata: {}\n\n")
        assert not client.dropped and len(client.chunks) == 3
        client.offer(b"event: call\ndata: {}\n\n")  # the fourth: too far behind
        client.offer(b"event: call\ndata: {}\n\n")  # nothing more is queued
        assert client.dropped and client.take() == stream.DROPPED and not client.chunks
        assert json.loads(stream.DROPPED.split(b"data: ", 1)[1])["reason"]
        assert closed == []  # the cut-off comes DROP_GRACE s later, if the client has not taken it

    asyncio.run(scenario())

"""`cdp serve` under load and abuse (issue 16): many clients at once, slow clients, oversized and
inflating bodies, malformed requests, IPv6 and non-loopback hosts. Loopback only, each bounded in
time: a server that fails a test makes it fail, never hang."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import pytest

from cdpcli.serve import MAX_RAW_BYTES, Receiver
from tests.conftest import API_KEY, BASIC, post
from tests.fakes import Scripted, ScriptedReceiver

pytestmark = pytest.mark.slow  # a thousand clients, gzip bombs, slow clients

TRACK = json.dumps({"userId": "1", "event": "E"}).encode()


def _request(body: bytes = TRACK, path: str = "/v1/track", extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {BASIC}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def _parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _exchange(
    port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer until the server closes (every answer here closes)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return _parse(b"".join(chunks))


def _json_error(status_headers_body) -> list[str]:
    status, headers, body = status_headers_body
    assert headers.get("content-type") == "application/json", (status, headers, body[:200])
    errors = json.loads(body)["meta"]["errors"]
    assert errors and all(isinstance(e, str) for e in errors)
    return errors


def _enough_files(count: int) -> None:
    try:
        import resource
    except ImportError:
        pytest.skip("needs the resource module")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"needs {count} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


# -- many clients at once --


def test_a_thousand_concurrent_posts_are_all_answered():
    """All connected first, then all send: 1,000 requests in flight at once, every one answered
    200 (the thread-per-connection server with a backlog of 5 left most of them timing out)."""
    clients = 1000
    _enough_files(2 * clients + 200)

    async def main(port):
        connected, go = [0], asyncio.Event()

        async def one():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            connected[0] += 1
            if connected[0] == clients:
                go.set()
            await go.wait()
            writer.write(_request(extra="Connection: close\r\n"))
            await writer.drain()
            data = await reader.read()
            writer.close()
            return _parse(data)[0]

        return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(clients))), 30)

    with Receiver(api_key=API_KEY, keep=False) as receiver:
        started = time.monotonic()
        statuses = asyncio.run(main(receiver.port))
        took = time.monotonic() - started
        assert statuses == [200] * clients
        assert receiver.accepted == clients
    assert took < 30


def test_latency_and_scripted_delays_hold_up_no_other_connection():
    with ScriptedReceiver(api_key=API_KEY) as receiver:
        receiver.script.append(Scripted(503, delay=5.0))
        slow = threading.Thread(target=post, args=(receiver, "/v1/track", {"userId": "1", "event": "E"}))
        slow.start()
        deadline = time.monotonic() + 10
        while receiver.script:  # until the slow request has taken the scripted answer
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        assert post(receiver, "/v1/track", {"userId": "2", "event": "E"})[0] == 200
        assert time.monotonic() - started < 4
    slow.join(10)
    with Receiver(api_key=API_KEY, latency_ms=1000) as receiver:
        results = []
        threads = [
            threading.Thread(
                target=lambda: results.append(post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0])
            )
            for _ in range(20)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert results == [200] * 20 and time.monotonic() - started < 5  # 20 s one after the other


def test_a_stop_does_not_wait_for_long_delays():
    with Receiver(api_key=API_KEY, latency_ms=60_000) as receiver:
        answers = []
        client = threading.Thread(
            target=lambda: answers.append(post(receiver, "/v1/track", {"userId": "1", "event": "E"}))
        )
        client.start()
        deadline = time.monotonic() + 10
        while not receiver.requests:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 3
    client.join(10)
    assert answers and answers[0][0] == 200


def test_connections_over_the_limit_get_a_json_503():
    with Receiver(api_key=API_KEY, max_connections=3) as receiver:
        held = [socket.create_connection(("127.0.0.1", receiver.port), timeout=10) for _ in range(3)]
        try:
            deadline = time.monotonic() + 10
            while receiver.connections < 3:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            answer = _exchange(receiver.port, _request())
            assert answer[0] == 503 and "connections open" in _json_error(answer)[0]
        finally:
            for sock in held:
                sock.close()
        _idle_and_serving(receiver, 10)


def _idle_and_serving(receiver: Receiver, seconds: float) -> None:
    """Every connection closed within `seconds`, and the receiver still answers."""
    deadline = time.monotonic() + seconds
    while receiver.connections:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] == 200


# -- slow clients --


def test_slow_clients_are_cut_off_not_accumulated():
    """Connections that send half a request line and headers, or headers and half a body, get a
    JSON 408 and are closed once the read timeout passes; silent ones are closed."""
    with Receiver(api_key=API_KEY, read_timeout=0.5) as receiver:
        head_only = [b"POST /v1/track HTTP/1.1\r\nHost: localhost\r\nAuthor"] * 40
        half_body = [_request(b'{"userId":"1","event":"E"}' + b" " * 1000)[:-600]] * 40
        silent = [b""] * 20
        socks = []
        for data in head_only + half_body + silent:
            sock = socket.create_connection(("127.0.0.1", receiver.port), timeout=10)
            if data:
                sock.sendall(data)
            socks.append(sock)
        started = time.monotonic()
        answers = []
        for sock in socks:
            chunks = []
            while chunk := sock.recv(65536):  # the server closes: b"" (a server that never does fails by timeout)
                chunks.append(chunk)
            sock.close()
            answers.append(b"".join(chunks))
        assert time.monotonic() - started < 8
        for answer in answers[:80]:
            parsed = _parse(answer)
            assert parsed[0] == 408 and "did not arrive within 0.5 s" in _json_error(parsed)[0]
        assert answers[80:] == [b""] * 20
        _idle_and_serving(receiver, 5)


# -- bodies --


def test_a_body_declared_over_the_limit_is_refused_without_being_read():
    with Receiver(api_key=API_KEY) as receiver:
        # nothing of it sent: the answer comes anyway, at once
        head = _request(b"")[: -len(b"\r\n")].replace(b"Content-Length: 0", b"Content-Length: 1000000000000") + b"\r\n"
        answer = _exchange(receiver.port, head, timeout=5)
        assert answer[0] == 413 and "limit is 500,000" in _json_error(answer)[0]
        # sent whole by a client that does not wait: it still gets its 413, not a broken pipe
        status, answer = post(receiver, "/v1/batch", None, raw=b" " * (MAX_RAW_BYTES + 1))
        assert status == 413 and "limit is 500,000" in answer["meta"]["errors"][0]
        assert receiver.calls == []


def test_a_chunked_body_is_cut_at_the_limit():
    with Receiver(api_key=API_KEY) as receiver:
        conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        conn.request(
            "POST",
            "/v1/batch",
            body=iter([b" " * 100_000] * 7),
            headers={"Authorization": BASIC, "Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413 and "limit is 500,000" in json.loads(response.read())["meta"]["errors"][0]
        conn.close()
        # and one under the limit is read as any other
        conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        conn.request(
            "POST",
            "/v1/track",
            body=iter([TRACK[:5], TRACK[5:]]),
            headers={"Authorization": BASIC},
            encode_chunked=True,
        )
        assert conn.getresponse().status == 200
        conn.close()


@pytest.fixture(scope="module")
def gzip_bomb():
    """1 MB of gzip that inflates to 1 GiB of zeros, made without holding either in memory:
    deflate blocks of 1 MiB of zeros after a full flush are all the same bytes."""
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(zeros, crc)
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        + block * 1024
        + deflate.flush()
        + struct.pack("<II", crc, (1 << 30) & 0xFFFFFFFF)
    )


def _peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the server's peak memory from /proc")
def test_gzip_bombs_and_big_partial_bodies_cost_the_server_about_the_limit(gzip_bomb, tmp_path):
    """A 1 MB gzip that inflates to 1 GiB (the old server reached 2.09 GB), the same sent in
    chunks with no length, one just under the raw limit that inflates to ~460 MB, and 60
    connections each part way through a 9.9 MB body (old: 621 MB): `cdp serve`'s peak
    memory grows by a few MB, never by the bodies."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdpcli",
            "serve",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--out",
            str(tmp_path / "calls.ndjson"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        banner = proc.stderr.readline().decode()
        port = int(re.search(r":(\d+)/v1", banner).group(1))
        gz = {"Content-Encoding": "gzip", "Authorization": BASIC}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/track", body=gzip.compress(TRACK), headers=gz)
        assert conn.getresponse().read() == b"{}"
        before = _peak_kb(proc.pid)

        for body, chunked in ((gzip_bomb, False), (gzip_bomb, True), (gzip_bomb[: MAX_RAW_BYTES - 50_000], False)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(
                "POST",
                "/v1/batch",
                body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body,
                headers=gz,
                encode_chunked=chunked,
            )
            response = conn.getresponse()
            assert response.status == 413, response.status
            assert "limit is 500,000" in json.loads(response.read())["meta"]["errors"][0]
            conn.close()

        partial = []
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(
                f"POST /v1/batch HTTP/1.1\r\nHost: localhost\r\nAuthorization: {BASIC}\r\nContent-Length: 9900000\r\n\r\n".encode()
            )
            sock.sendall(b" " * 5_000_000)
            partial.append(sock)
        for sock in partial:
            sock.close()
        grew_mb = (_peak_kb(proc.pid) - before) / 1024
        assert grew_mb < 40, f"peak memory grew by {grew_mb:.0f} MB"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/track", body=TRACK, headers={"Authorization": BASIC})
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- malformed requests: JSON answers, never HTML, never a hang --

LONG = "x" * 100_000


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "malformed"),  # TLS to a plain HTTP port
        (b"POST /v1/track HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "malformed"),
        (b"POST /v1/track HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "malformed"),
        (b"POST /v1/track HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "malformed"),
        (b"POST /v1/track HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "malformed"),
        (b"POST /v1/track HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "malformed"),
        (
            b"POST /v1/track HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\n{}",
            400,
            "does not switch",
        ),
        (f"POST /v1/{LONG} HTTP/1.1\r\n\r\n".encode(), 414, "request line is over"),
        (f"POST /v1/track HTTP/1.1\r\nX-Big: {LONG}\r\n\r\n".encode(), 431, "headers are over"),
        (b"POST /v1/track HTTP/1.1\r\n" + b"X-Many: 1234567890\r\n" * 5000 + b"\r\n", 431, "headers are over"),
        (b"GET /\r\n\r\n", 405, "POST only"),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, "POST only"),
        (b"BREW /v1/track HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, "POST only"),
        (b"POST /v1/track/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", 404, "no such path"),
    ],
    ids=[
        "garbage",
        "tls",
        "length-abc",
        "length-negative",
        "length-twice",
        "bad-chunk",
        "no-colon",
        "upgrade",
        "long-line",
        "long-header",
        "many-headers",
        "bare-get",
        "get",
        "brew",
        "trailing-slash",
    ],
)
def test_malformed_requests_get_a_json_error(receiver, data, status, error):
    if status == 404:  # well-formed: an answer on a connection kept open, so ask it to close
        data = data.replace(b"Host: localhost\r\n", b"Host: localhost\r\nConnection: close\r\n")
    answer = _exchange(receiver.port, data)
    assert answer[0] == status, answer
    assert error in _json_error(answer)[0]
    if status == 405:
        assert answer[1]["allow"] == "POST"


# -- where it listens --


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback_works(tmp_path):
    with Receiver("::1", api_key=API_KEY) as receiver:
        assert receiver.url == f"http://[::1]:{receiver.port}/v1"
        assert post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] == 200
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdpcli",
            "serve",
            "--host",
            "::1",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--out",
            str(tmp_path / "calls.ndjson"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stderr.readline()
        assert banner.startswith("cdp serve: listening on http://[::1]:"), banner
        run = subprocess.run(
            [sys.executable, "-m", "cdpcli", "track", "-u", "1", "-e", "E", "--endpoint", banner.split()[4]],
            env={**os.environ, "CDP_API_KEY": API_KEY, "CDP_CONFIG_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0, run.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_host_that_is_not_loopback_gets_a_warning():
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--host", "0.0.0.0", "--port", "0", "--api-key", API_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        warning, banner = proc.stderr.readline(), proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert warning.startswith("Warning: --host 0.0.0.0 listens on 0.0.0.0, not a loopback address"), warning
    assert banner.startswith("cdp serve: listening on http://0.0.0.0:"), banner


def test_uvicorn_stays_off_the_one_liner_path(tmp_path):
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cdpcli", "track", "--user", "1", "--event", "E", "--dry-run"],
        env={**os.environ, "CDP_API_KEY": API_KEY, "CDP_CONFIG_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "import time:" in run.stderr and "uvicorn" not in run.stderr and "httptools" not in run.stderr

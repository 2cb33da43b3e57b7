"""A real S3 protocol server on loopback for the object-storage tests and benchmark: moto's
standalone server in a process of its own (so its CPU is not the import's), and a loopback TCP
proxy in front of it that records every request head and can break a response off after N
bytes or answer a request with an S3 error itself."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# moto's ThreadedMotoServer on port 0 (the system picks a free port, no race), in a child that
# prints the port and serves until its stdin closes
_SERVE = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""

ACCESS_KEY = "AKIACDPTEST0EXAMPLE7"
SECRET_KEY = "cdp-test-secret/9q8w7e6r5t4y3u2i1o0p"  # distinctive: a leak would be unmistakable


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment an import against `endpoint` runs with: static test credentials, no
    shared config of the developer's."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-role lookup on a developer's machine
    }


class MotoServer:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # its request log
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"moto server did not start: {line!r}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while not self._answers():  # the port is bound; wait until it serves requests
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("moto server does not answer")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-cased


@dataclass
class Fault:
    """What the proxy does to requests whose path contains `path` (and `method`): answer
    `status` with an S3 error body itself (`times` times), or pass the request on and cut its
    response after `cut_after` bytes (`times` times), calling `on_cut` when it does."""

    path: str
    method: str = "GET"
    times: int = 1
    cut_after: int | None = None
    status: int | None = None
    code: str = ""
    body: str = ""
    on_cut: Callable[[], None] | None = None
    done: int = 0
    # matching requests let through first: an import without --from reads its first object's
    # first lines once before importing it (the Segment-archive note, vendors/sniff.py)
    after: int = 0


@dataclass
class Proxy:
    upstream_port: int
    faults: list[Fault] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def gets(self, fragment: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and fragment in r.path]

    def close(self) -> None:
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept() (close alone does not)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        cut: list[int | None] = [None]  # bytes of the response still to pass before the cut
        fault: list[Fault | None] = [None]
        threading.Thread(target=self._pump_back, args=(upstream, client, cut, fault), daemon=True).start()
        buffered = b""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buffered += data
                while b"\r\n\r\n" in buffered:  # the requests cdp sends have no body
                    head, buffered = buffered.split(b"\r\n\r\n", 1)
                    request = _parse(head)
                    self.requests.append(request)
                    chosen = self._fault_for(request)
                    if chosen is not None and chosen.status is not None:
                        client.sendall(_error_response(chosen))
                        continue
                    if chosen is not None:
                        cut[0], fault[0] = chosen.cut_after, chosen
                    upstream.sendall(head + b"\r\n\r\n")
        except OSError:
            pass
        finally:
            _close(upstream)
            _close(client)

    def _fault_for(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == request.method and fault.path in request.path and fault.done < fault.times:
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.done += 1
                    return fault
        return None

    def _pump_back(
        self, upstream: socket.socket, client: socket.socket, cut: list[int | None], fault: list[Fault | None]
    ) -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                left = cut[0]
                if left is not None and len(data) >= left:
                    client.sendall(data[:left])
                    chosen = fault[0]
                    if chosen is not None and chosen.on_cut is not None:
                        chosen.on_cut()
                    break  # the connection breaks off here, mid-response
                if left is not None:
                    cut[0] = left - len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)
            _close(client)


def _parse(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method, path, headers)


def _error_response(fault: Fault) -> bytes:
    """An S3 REST error: the XML <Error> document of the S3 API reference ("Error responses")."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{fault.code}</Code>{fault.body}<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()
    reason = {403: "Forbidden", 412: "Precondition Failed", 503: "Slow Down"}.get(fault.status or 0, "Error")
    head = f"HTTP/1.1 {fault.status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + (b"" if fault.method == "HEAD" else body)  # a HEAD answer has no body


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()

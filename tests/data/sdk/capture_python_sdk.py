"""Capture what Customer.io's Python SDK (pip customerio-cdp-analytics) sends, as golden data for
tests/test_serve_sdk.py: run it with that SDK installed (it is no dependency of cdp's):

    python -m venv /tmp/sdk && /tmp/sdk/bin/pip install customerio-cdp-analytics==1.1.0
    /tmp/sdk/bin/python tests/data/sdk/capture_python_sdk.py > tests/data/sdk/python-1.1.0-batch.json

One batch: each call type, and a track call of 32,500 bytes (compact JSON, as the API counts;
the SDK, counting its own spaced JSON, sends calls up to 32,768). The SDK posts to a loopback
server here that records the request's path, headers and body, byte for byte.
"""

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from customerio.analytics import Client
from customerio.analytics.version import VERSION

captured = []


class Capture(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = dict(self.headers.items())
        captured.append({"path": self.path, "headers": headers, "body": body.decode()})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def big_properties(size: int) -> dict:
    """Properties that make the track call below `size` bytes of compact JSON."""
    return {"pad": "x" * size}


server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = Client("golden-write-key", host=f"http://127.0.0.1:{server.server_port}", upload_interval=0.2, max_retries=0)
when = datetime(2026, 11, 27, 13, 36, 48, 608000, tzinfo=timezone.utc)
client.identify("42", {"email": "ada@example.com", "name": "Ada", "plan": "pro"}, timestamp=when, message_id="m-1")
client.track("42", "Signed Up", {"plan": "pro", "price": 9.5}, timestamp=when, message_id="m-2")
client.page("42", "Docs", "Install", {"path": "/docs"}, timestamp=when, message_id="m-3")
client.screen("42", "App", "Home", {"tab": "feed"}, timestamp=when, message_id="m-4")
client.group("42", "acme", {"name": "Acme Inc."}, timestamp=when, message_id="m-5")
client.alias("anon-7", "42", timestamp=when, message_id="m-6")
# the big call: 32,500 bytes of compact JSON once the SDK has added its fields
probe = {"pad": ""}
ok, message = Client("k", send=False).track("42", "Big Export", probe, timestamp=when, message_id="m-7")
compact = len(json.dumps(message, separators=(",", ":")))
client.track("42", "Big Export", big_properties(32_500 - compact), timestamp=when, message_id="m-7")
client.flush()
server.shutdown()
[request] = captured
print(json.dumps({"sdk": f"customerio-cdp-analytics {VERSION}", **request}, indent=1))

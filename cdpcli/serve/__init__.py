"""`cdp serve`: a local Data Pipelines-compatible receiver for development, CI and our tests.

Same paths, auth, strict-mode validation and size limits as the API; answers 200 `{}` and
appends every accepted call (with `receivedAt`) as NDJSON to a file or stdout.

It runs on uvicorn (its httptools HTTP/1.1 protocol on an asyncio loop; imported only when a
Receiver is made, never on the one-liner path), with the limits a server that strangers can reach
needs: a listen backlog and connection limit that take thousands of clients at once, a deadline
for a request's headers and one for its body (slow clients are cut off, not accumulated), bodies
refused by their declared length, gzip inflated as it arrives and only up to the limit, and a
JSON `{"meta": {"errors": [...]}}` body for every error, malformed requests included.

  judge.py     the verdict on one request: pure, body in, verdict out
  store.py     what was received: calls, requests, the NDJSON output
  rejects.py   what was refused, bounded by bytes; the counts by type and event, bounded
  asgi.py      each request: method, body read within limits, verdict, answer, log line
  control.py   the receiver's own routes, /_cdp/…: queries, waits, the event stream, the page
  stream.py    the event stream's fan-out: each change encoded once, bounded queues per client
  hosts.py     which Host it answers to, which browser requests may change its state
  protocol.py  Listener: uvicorn's Server and HTTP protocol with a receiver's limits (imported lazily)
  overload.py  out of file descriptors: 503 JSON and a line a burst; the limit raised at start
  receiver.py  Receiver (judge + store + application on a Listener), the GC schedule
  ui.py        the live view
  limits.py    every limit and timeout, with the figure behind it
  run.py       `cdp serve` itself: run_server
"""

from __future__ import annotations

from cdpcli.serve.hosts import is_loopback
from cdpcli.serve.judge import Body, Judge, Verdict
from cdpcli.serve.limits import (
    DRAIN_LIMIT,
    MAX_CONNECTIONS,
    MAX_HEAD_BYTES,
    MAX_RAW_BYTES,
    READ_TIMEOUT,
)
from cdpcli.serve.receiver import Receiver
from cdpcli.serve.run import SERVE_COLLECT_EVERY, run_server
from cdpcli.serve.store import Received, Store

__all__ = [
    "DRAIN_LIMIT",
    "MAX_CONNECTIONS",
    "MAX_HEAD_BYTES",
    "MAX_RAW_BYTES",
    "READ_TIMEOUT",
    "SERVE_COLLECT_EVERY",
    "Body",
    "Judge",
    "Received",
    "Receiver",
    "Store",
    "Verdict",
    "is_loopback",
    "run_server",
]

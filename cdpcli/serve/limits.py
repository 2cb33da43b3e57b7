"""A receiver's limits and timeouts, with the figure behind each: the numbers a server that
strangers can reach needs, in one place (imported by every part of `cdp serve`, and cheap)."""

from __future__ import annotations

from cdpcli.wire import MAX_REQUEST_BYTES

# seconds a request's request line and headers may take to arrive, and then its body: a client
# slower than that is answered 408 and cut off (a 500,000-byte body in 10 s is 400 kbit/s)
READ_TIMEOUT = 10.0
# seconds an idle keep-alive connection is kept (longer than clients' own idle expiry, httpx: 5 s,
# so that a client never reuses a connection the server is closing)
KEEP_ALIVE_TIMEOUT = 30.0
# queued connections the kernel may hold for us (capped by net.core.somaxconn), and connections
# served at once; beyond MAX_CONNECTIONS a new one is answered 503 and closed
BACKLOG = 4096
MAX_CONNECTIONS = 4096
# request line plus headers: a longer one is answered 414 (the line) or 431 (the headers)
MAX_HEAD_BYTES = 64 * 1024
# the largest body read: a valid request inflates to at most MAX_REQUEST_BYTES, and its gzip is
# never more than a few dozen bytes bigger than that (stored blocks); the margin is generous
MAX_RAW_BYTES = MAX_REQUEST_BYTES + 64 * 1024
# a body declared over MAX_RAW_BYTES is answered 413 at once; up to this size it is read and
# dropped first (never kept), so that a client busy sending it gets the 413 and not a broken pipe
DRAIN_LIMIT = 16 << 20
# seconds a stop waits for the requests in flight (delays are cut short) before closing them
STOP_GRACE = 5.0
# a call's size limit as Customer.io's Python and Node SDKs count the API's "32KB" (32 x 1024):
# serve accepts calls up to it, and warns of those over wire.MAX_CALL_BYTES (32,000, where cdp's
# own sender and the Go SDK stop)
MAX_SDK_CALL_BYTES = 32 * 1024
# bytes of refused requests (their bodies, cut to REJECT_BODY_BYTES each, and errors) kept for
# /_cdp/rejects at most (--max-reject-bytes); the oldest go first
MAX_REJECT_BYTES = 32 << 20

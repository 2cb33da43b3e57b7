"""-v / -vv (issue 11): each exchange on stderr, httpie-style; the key never shown; stdout unchanged."""

from __future__ import annotations

import base64
import json
import re

from conftest import API_KEY

BASIC_SECRET = base64.b64encode(f"{API_KEY}:".encode()).decode()


def no_key(run):
    assert API_KEY not in run.stdout + run.stderr and BASIC_SECRET not in run.stdout + run.stderr


def test_v_shows_request_line_status_latency_and_body(send, receiver):
    quiet = send("track", "-u", "1", "-e", "E", "--message-id", "m1")
    run = send("track", "-u", "1", "-e", "E", "--message-id", "m1", "-v")
    assert run.exit_code == 0 and run.stdout == quiet.stdout  # stdout unchanged
    assert re.search(r"^> POST http://127\.0\.0\.1:\d+/v1/track$", run.stderr, re.M)
    assert re.search(r"^< HTTP 200  \(\d+ ms\)$", run.stderr, re.M)
    assert re.search(r"^< \{.*\}$", run.stderr, re.M)  # the response body
    assert "Authorization" not in run.stderr  # headers only with -vv
    no_key(run)


def test_vv_adds_headers_with_the_key_redacted(send, receiver):
    run = send("track", "-u", "1", "-e", "E", "-vv", "--json")
    assert run.exit_code == 0 and json.loads(run.stdout)["ok"] is True
    assert re.search(r"^> Authorization: Basic \S+", run.stderr, re.M)
    assert re.search(r"^> Content-Type: application/json", run.stderr, re.M | re.I)
    assert re.search(r"^< content-type: ", run.stderr, re.M | re.I)
    no_key(run)


def test_v_on_connect_test_and_import(send, receiver, tmp_path):
    run = send("connect", "test", "-v")
    assert run.exit_code == 0 and "> POST " in run.stderr and "< HTTP 200" in run.stderr
    no_key(run)
    (tmp_path / "in.ndjson").write_text('{"type":"track","userId":"1","event":"E"}\n')
    plain = send("import", "in.ndjson", "--json")
    run = send("import", "in.ndjson", "--json", "-vv")
    assert run.exit_code == 0 and "/v1/batch" in run.stderr and "> Authorization: " in run.stderr
    assert json.loads(run.stdout).keys() == json.loads(plain.stdout).keys()
    no_key(run)

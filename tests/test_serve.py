"""`cdp serve`: the receiver's paths, auth, strict-mode validation and limits, over raw HTTP."""

from __future__ import annotations

import base64
import gc
import gzip
import http.client
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
import weakref
from urllib.parse import urlsplit

import pytest

from cdpcli.serve import Receiver
from tests.conftest import API_KEY, BASIC, post


def test_valid_call_is_accepted_and_recorded(receiver):
    status, body = post(receiver, "/v1/track", {"userId": "1", "event": "E", "sentAt": "2026-01-01T00:00:00.000Z"})
    assert (status, body) == (200, {})
    [call] = receiver.calls
    assert call["type"] == "track" and "sentAt" not in call and call["receivedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/v1/track", {"userId": "1"}, "event: Field required"),
        ("/v1/identify", {"traits": {}}, "identify needs userId or anonymousId"),
        ("/v1/alias", {"userId": "1"}, "previousId: Field required"),
        ("/v1/group", {"userId": "1"}, "groupId: Field required"),
        ("/v1/track", {"type": "identify", "userId": "1"}, "does not match the path"),
        ("/v1/track", ["not", "an", "object"], "body must be a JSON object"),
        ("/v1/batch", {"batch": [{"type": "track", "userId": "1"}]}, "batch[0]: event: Field required"),
        ("/v1/batch", {"batch": [{"userId": "1"}]}, "batch[0]: type: Field required"),
        ("/v1/batch", {"batch": {}}, "batch must be an array"),
        ("/v1/identify", {"userId": "1", "traits": "no"}, "traits: Input should be a valid dictionary"),
    ],
)
def test_strict_mode_rejects_invalid_calls_with_meta_errors(receiver, path, body, error):
    status, answer = post(receiver, path, body)
    assert status == 400
    assert any(error in e for e in answer["meta"]["errors"]), answer
    assert receiver.calls == []


def test_permissive_mode_answers_200_and_drops(receiver):
    status, _ = post(receiver, "/v1/track", {"userId": "1"}, strict=False)
    assert status == 200
    assert receiver.calls == []


@pytest.mark.parametrize(
    ("auth", "error"),
    [
        (None, "send Authorization"),
        ("Basic " + base64.b64encode(b"other:").decode(), "wrong API key"),
        ("Basic " + base64.b64encode(b":").decode(), "empty API key"),
        ("Basic !!!", "malformed"),
        (f"Bearer {API_KEY}x", "wrong API key"),
    ],
)
def test_auth_is_checked(receiver, auth, error):
    status, answer = post(receiver, "/v1/track", {"userId": "1", "event": "E"}, auth=auth)
    assert status == 401
    assert error in answer["meta"]["errors"][0]


def test_bearer_accepted():
    with Receiver(api_key="pk_us_abc") as receiver:
        status, _ = post(receiver, "/v1/track", {"userId": "1", "event": "E"}, auth="Bearer pk_us_abc")
        assert status == 200


def test_size_limits(receiver):
    big_call = {"userId": "1", "event": "E", "properties": {"x": "é" * 6_000}}  # 12 kB UTF-8, 36 kB escaped
    status, answer = post(receiver, "/v1/track", big_call)
    assert status == 400 and "limit is 32,768" in answer["meta"]["errors"][0]
    calls = [{"type": "track", "userId": "1", "event": "E", "properties": {"x": "y" * 25_000}}] * 21
    status, answer = post(receiver, "/v1/batch", {"batch": calls})
    assert status == 413 and "limit is 500,000" in answer["meta"]["errors"][0]
    status, answer = post(receiver, "/v1/batch", {"batch": [{"type": "track", "userId": "1", "event": "E"}] * 2501})
    assert status == 400 and "the limit is 2500" in answer["meta"]["errors"][0]


def test_gzip_and_bad_gzip(receiver):
    data = gzip.compress(json.dumps({"batch": [{"type": "identify", "userId": "1"}]}).encode())
    status, _ = post(receiver, "/v1/batch", None, raw=data, headers={"Content-Encoding": "gzip"})
    assert status == 200 and receiver.calls[0]["userId"] == "1"
    status, answer = post(receiver, "/v1/batch", None, raw=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert status == 400 and "gzip" in answer["meta"]["errors"][0]


def test_bad_json_and_unknown_path(receiver):
    status, answer = post(receiver, "/v1/track", None, raw=b"{nope")
    assert status == 400 and answer["meta"]["errors"][0].startswith("invalid JSON")
    status, _ = post(receiver, "/v1/nothing", {})
    assert status == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "TRACE", "BREW", "HEAD"])
def test_every_other_method_gets_a_json_405(receiver, method):
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, "/v1/track", body=b"{}", headers={"Authorization": BASIC})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    assert response.getheader("Content-Type") == "application/json"
    if method != "HEAD":
        assert "POST only" in json.loads(body)["meta"]["errors"][0]


def test_the_python_sdks_null_ids_are_read_as_absent(receiver):
    # customerio-cdp-analytics sends "anonymousId": null beside a userId (api-wire-facts.md §5)
    call = {
        "type": "track",
        "userId": "42",
        "anonymousId": None,
        "event": "Signed Up",
        "timestamp": "2026-11-27T13:36:48.608+00:00",
        "integrations": {},
    }
    status, _ = post(receiver, "/v1/batch", {"batch": [call], "sentAt": "2026-11-27T13:36:48.700+00:00"})
    assert status == 200 and len(receiver.calls) == 1
    status, answer = post(receiver, "/v1/batch", {"batch": [{**call, "userId": None}]})
    assert status == 400 and "needs userId or anonymousId" in answer["meta"]["errors"][0]


def test_batch_level_context_and_integrations_are_checked(receiver):
    call = {"type": "track", "userId": "1", "event": "E"}
    status, answer = post(receiver, "/v1/batch", {"batch": [call], "integrations": {"All": "yes"}})
    assert status == 400 and answer["meta"]["errors"] == ["integrations.All: Input should be a valid boolean"]
    status, answer = post(receiver, "/v1/batch", {"batch": [call], "context": {"active": 1}})
    assert status == 400 and answer["meta"]["errors"] == ["context.active: Input should be a valid boolean"]
    assert receiver.calls == []


def test_empty_batch_is_accepted_and_creates_nothing(receiver):
    status, _ = post(receiver, "/v1/batch", {"batch": []})
    assert status == 200 and receiver.calls == []


def test_fail_rate_injects_retryable_failures():
    with Receiver(api_key=API_KEY, fail_rate=1.0, seed=1) as receiver:
        statuses = {post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] for _ in range(30)}
        assert statuses <= {500, 503, 429} and len(statuses) >= 2
        assert receiver.calls == []


def test_seed_makes_the_fail_rate_repeat():
    def statuses(seed):
        with Receiver(api_key=API_KEY, fail_rate=0.5, seed=seed) as receiver:
            return [post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] for _ in range(24)]

    first = statuses(7)
    assert first == statuses(7)
    assert 200 in first and set(first) - {200}  # both answers occur, so the sequence says something
    assert first != statuses(8)


def test_collection_on_a_schedule_while_serving():
    """`cdp serve`'s set-up: automatic GC off while it serves, cycles still collected on a
    schedule, and the collector given back when it stops."""
    assert gc.isenabled()

    class Node:
        pass

    with Receiver(api_key=API_KEY, collect_every=0.05) as receiver:
        assert not gc.isenabled()
        assert post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] == 200
        cycle = Node()
        cycle.self = cycle
        collected = threading.Event()
        weakref.finalize(cycle, collected.set)
        del cycle  # unreachable now, and only a collection can free it
        assert collected.wait(5)
    assert gc.isenabled()


def test_cdp_serve_command_writes_ndjson(tmp_path):
    """The real `cdp serve` process: banner on stderr, accepted calls appended to --out."""
    out = tmp_path / "calls.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--api-key", API_KEY, "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stderr.readline()
        assert banner.startswith("cdp serve: listening on http://127.0.0.1:")
        url = banner.split()[4]
        run = subprocess.run(
            [sys.executable, "-m", "cdpcli", "identify", "-u", "9", "-t", "a=b", "--endpoint", url],
            env={"CDP_API_KEY": API_KEY, "PATH": "/usr/bin:/bin", "CDP_CONFIG_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0, run.stderr
        deadline = time.monotonic() + 5
        while not out.exists() or not out.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        [line] = out.read_text().splitlines()
        call = json.loads(line)
        assert call["userId"] == "9" and call["traits"] == {"a": "b"} and "receivedAt" in call
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert API_KEY not in proc.stderr.read()


def test_the_official_python_sdks_traffic_is_accepted_in_strict_mode(receiver):
    # what customerio-cdp-analytics 1.0 puts on the wire for a page call (api-wire-facts.md §5)
    call = {
        "integrations": {},
        "anonymousId": None,
        "properties": {"path": "/pricing"},
        "category": None,
        "timestamp": "2026-11-27T13:36:48.608412+00:00",
        "context": {"library": {"name": "analytics-python", "version": "1.0.2"}},
        "userId": "42",
        "type": "page",
        "name": None,
        "messageId": "2acb472a-6bcd-4d76-b3d8-9c62a65215d7",
    }
    status, answer = post(receiver, "/v1/batch", {"batch": [call], "sentAt": "2026-11-27T13:36:48.700+00:00"})
    assert (status, answer) == (200, {})
    assert receiver.calls[0]["messageId"] == call["messageId"]


# -- strict JSON bodies (issue 10 item 2, issue 16 item 9) --


def _nested(levels):
    """`levels` objects, one inside the other."""
    value = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
def logged():
    """A receiver whose log is kept: a handler's exception would show there as `host:port: …Error: …`."""
    lines = []
    with Receiver(api_key=API_KEY, log=lines.append) as server:
        server.log_lines = lines
        yield server
    assert not [line for line in lines if "Error:" in line or "Traceback" in line], lines


TRACK = b'{"userId":"1","event":"E","properties":{"v":%s}}'


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "permissive"])
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (TRACK % b"NaN", "NaN is not valid JSON"),
        (TRACK % b"Infinity", "Infinity is not valid JSON"),
        (TRACK % b"-Infinity", "-Infinity is not valid JSON"),
        (TRACK % b"1e400", "number 1e400 is too large"),
        (TRACK % b"-2.5E+308", "number -2.5E+308 is too large"),
        (TRACK % (b"9" * 400), "is too large for a JSON number"),
        (TRACK % b'"\\ud800"', "lone surrogate \\ud800"),
        (TRACK % b'{"k\\udfff":1}', "lone surrogate \\udfff"),
        (TRACK % json.dumps(_nested(200)).encode(), "nesting deeper than 200 levels"),  # 201 inside the call
        (TRACK % (b"[" * 100_000 + b"]" * 100_000), "nesting deeper than 200 levels"),
        (b'{"batch":[{"type":"track","userId":"1","event":"E","properties":{"v":NaN}}]}', "NaN is not valid JSON"),
        (
            b'{"batch":[{"type":"track","userId":"1","event":"E","properties":{"v":1e999}}]}',
            "number 1e999 is too large",
        ),
    ],
    ids=[
        "nan",
        "infinity",
        "-infinity",
        "1e400",
        "-2.5E+308",
        "400-digits",
        "lone-surrogate",
        "surrogate-in-key",
        "depth-201",
        "depth-100000",
        "batch-nan",
        "batch-1e999",
    ],
)
def test_bodies_that_are_not_strict_json_get_a_400_naming_the_problem(logged, body, error, strict):
    path = "/v1/batch" if body.startswith(b'{"batch"') else "/v1/track"
    status, answer = post(logged, path, None, raw=body, strict=strict)
    assert status == 400, answer
    [message] = answer["meta"]["errors"]
    assert message.startswith("invalid JSON") and error in message, message
    assert logged.calls == []


def test_nesting_is_counted_from_the_call_in_a_batch_too(logged):
    """200 levels inside a call pass, 201 do not, whether the call comes alone or in a batch
    (where the body adds 2 levels); the error names the call."""
    call = {"type": "track", "userId": "1", "event": "E"}
    status, _ = post(logged, "/v1/track", {**call, "properties": _nested(200)})  # properties is the first of the 200
    assert status == 200
    status, _ = post(logged, "/v1/batch", {"batch": [call, {**call, "properties": _nested(200)}]})
    assert status == 200
    status, answer = post(logged, "/v1/batch", {"batch": [call, {**call, "properties": _nested(201)}]})
    assert (status, answer["meta"]["errors"]) == (400, ["invalid JSON: batch[1]: nesting deeper than 200 levels"])
    assert len(logged.calls) == 3


@pytest.mark.parametrize(
    "literal",
    [
        b"1e308",
        b"-1.7976931348623157e308",
        b"1E+300",
        b"1e-400",
        b"0.5e-999",
        b"1" * 308,
        b"-" + b"9" * 200,
        b"1" * 200 + b".5e99",
        b'"1e400"',
        b'"3e451bcd-1e400,"',
        b'["f0e0001", 2e100]',
    ],
)
def test_numbers_near_the_limit_and_lookalikes_are_accepted_as_read(logged, literal):
    status, answer = post(logged, "/v1/track", None, raw=TRACK % literal)
    assert (status, answer) == (200, {})
    assert logged.calls[0]["properties"]["v"] == json.loads(literal)


def test_any_number_gets_the_verdict_the_strict_reader_gives(logged):
    """The fast path (pydantic-core's reader, then a look for overflowing numbers) and
    cdpcli.jsontext agree on every number literal, near the limits and far from them."""
    from cdpcli.jsontext import JSONTextError, loads

    rng = random.Random(10)
    literals = []
    for _ in range(300):
        mantissa = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 2, 17, 199, 200, 210, 308, 309])))
        mantissa = mantissa.lstrip("0") or "0"
        exponent = rng.choice(["", "e5", "E+99", "e307", "e308", "e309", "e-400", "e0400", "E1000"])
        literals.append(rng.choice(["", "-"]) + mantissa + rng.choice(["", ".25"]) + exponent)
    for literal in literals:
        body = TRACK % literal.encode()
        try:
            expected = (200, loads(body)["properties"]["v"])
        except JSONTextError:
            expected = (400, None)
        status, _ = post(logged, "/v1/track", None, raw=body)
        got = (status, logged.calls.pop()["properties"]["v"] if status == 200 else None)
        assert got == expected, literal


# -- the command line: usage errors, output that closes, --seed --


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (["--port", "70000"], "--port must be between 0 and 65535, not 70000", "free port"),
        (["--port", "-1"], "--port must be between 0 and 65535, not -1", "free port"),
        (
            ["--port", "0", "--out", "/nonexistent/dir/x"],
            "cannot open --out '/nonexistent/dir/x' for appending: No such file or directory",
            "directory does not exist",
        ),
        (["--latency-ms", "-5"], "--latency-ms must be 0 or more, not -5", "--latency-ms 50"),
        (["--fail-rate", "1.5"], "--fail-rate must be between 0 and 1, not 1.5", "--fail-rate 0.2"),
    ],
)
def test_bad_serve_options_are_usage_errors(args, error, hint):
    # a subprocess with a timeout: an option wrongly accepted starts a server that never ends
    run = subprocess.run([sys.executable, "-m", "cdpcli", "serve", *args], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith(f"Error: {error}\nHint: ") and hint in run.stderr, run.stderr


def _start_serve(*args):
    """`cdp serve` in a subprocess on a free port: (process, base URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--api-key", API_KEY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    banner = proc.stderr.readline().decode()
    assert banner.startswith("cdp serve: listening on http://127.0.0.1:"), banner
    return proc, banner.split()[4]


class _At:
    """Enough of a Receiver for `post`."""

    def __init__(self, url):
        self.url = url


def test_serve_stops_like_a_filter_when_its_reader_goes_away():
    """`cdp serve | head -1`: once stdout is closed, the next request gets a 503 (its calls were
    not recorded), serve stops listening and exits 0, saying why on stderr."""
    proc, url = _start_serve()
    try:
        assert post(_At(url), "/v1/track", {"userId": "1", "event": "First"})[0] == 200
        assert json.loads(proc.stdout.readline())["event"] == "First"
        proc.stdout.close()  # what head does after its first line
        status, answer = post(_At(url), "/v1/track", {"userId": "2", "event": "Second"})
        assert status == 503 and "output was closed by the reader" in answer["meta"]["errors"][0]
        assert proc.wait(timeout=10) == 0
        stderr = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert (
        "cdp serve: stopped: stdout was closed by its reader (1 call recorded; later requests were answered 503)"
        in stderr
    )
    assert "Traceback" not in stderr and API_KEY not in stderr
    with pytest.raises(ConnectionRefusedError):
        post(_At(url), "/v1/track", {"userId": "3", "event": "Third"})


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) for a write that fails")
def test_serve_exits_1_when_its_out_file_cannot_be_written():
    proc, url = _start_serve("--out", "/dev/full")
    try:
        status, answer = post(_At(url), "/v1/batch", {"batch": [{"type": "track", "userId": "1", "event": "E"}]})
        assert status == 503 and "No space left on device" in answer["meta"]["errors"][0]
        assert proc.wait(timeout=10) == 1
        stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert stdout == ""
    assert (
        "Error: cannot write to '/dev/full': No space left on device; cdp serve stopped (0 calls recorded)\nHint: "
        in stderr
    )
    assert "Traceback" not in stderr


def test_a_receiver_whose_output_fails_answers_503_never_200(tmp_path):
    """The Python API too: no request is answered 200 once its calls cannot be written, and
    the receiver stops listening."""
    out = open(tmp_path / "calls.ndjson", "a", encoding="utf-8")  # noqa: SIM115 (the receiver writes to it)
    with Receiver(api_key=API_KEY, out=out) as receiver:
        assert post(receiver, "/v1/track", {"userId": "1", "event": "E"})[0] == 200
        out.close()
        assert post(receiver, "/v1/track", {"userId": "2", "event": "E"}, strict=False)[0] == 503
        assert receiver.accepted == 1 and [c["userId"] for c in receiver.calls] == ["1"]
        deadline = time.monotonic() + 10
        while True:  # it stops listening on its own
            try:
                post(receiver, "/v1/track", {"userId": "3", "event": "E"})
            except (ConnectionRefusedError, ConnectionResetError):
                break
            assert time.monotonic() < deadline, "still listening"
            time.sleep(0.01)
    assert [json.loads(line)["userId"] for line in (tmp_path / "calls.ndjson").read_text().splitlines()] == ["1"]


def test_serve_seed_repeats_the_faults():
    def statuses():
        proc, url = _start_serve("--fail-rate", "0.5", "--seed", "42")
        try:
            return [post(_At(url), "/v1/track", {"userId": "1", "event": "E"})[0] for _ in range(16)]
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    first = statuses()
    assert first == statuses() and 200 in first and set(first) - {200}


def test_recorded_lines_carry_the_servers_received_at_once(tmp_path):
    """Written from the size check's JSON with receivedAt spliced in: a call that brings its
    own receivedAt is not written with the key twice, to a text stream or a file."""
    calls = [
        {"type": "track", "userId": "1", "event": "E", "properties": {"é": 1.5, "n": None}},
        {"type": "track", "userId": "2", "event": "E", "receivedAt": "then"},
    ]
    for out in (io.StringIO(), open(tmp_path / "calls.ndjson", "a", encoding="utf-8")):  # noqa: SIM115
        with Receiver(api_key=API_KEY, out=out) as receiver:
            assert post(receiver, "/v1/batch", {"batch": calls})[0] == 200
        text = out.getvalue() if isinstance(out, io.StringIO) else (tmp_path / "calls.ndjson").read_text()
        first, second = text.splitlines()
        assert first.startswith(
            '{"type":"track","userId":"1","event":"E","properties":{"é":1.5,"n":null},"receivedAt":"'
        )
        assert second.count("receivedAt") == 1 and json.loads(second)["receivedAt"] != "then"


# -- what the log says --


def test_permissive_drops_are_logged_with_their_reason(logged):
    status, _ = post(
        logged,
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "1"}, {"type": "track", "userId": "2", "event": "E"}]},
        strict=False,
    )
    assert status == 200 and [c["userId"] for c in logged.calls] == ["2"]
    assert (
        "POST /v1/batch: dropped batch[0]: event: Field required (no X-Strict-Mode: 1 header, so answered 200 as the API does)"
        in logged.log_lines
    )


def test_an_identify_by_email_is_accepted_and_logged_as_such(logged):
    """Issue 17: an empty or absent userId and anonymousId with a non-empty traits.email."""
    status, _ = post(logged, "/v1/identify", {"userId": "", "traits": {"email": "ada@example.com"}})
    assert status == 200
    status, _ = post(
        logged,
        "/v1/batch",
        {"batch": [{"type": "identify", "userId": "7"}, {"type": "identify", "traits": {"email": "bo@example.com"}}]},
    )
    assert status == 200 and len(logged.calls) == 3
    said = [line for line in logged.log_lines if "identified by email" in line]
    assert said == [
        "POST /v1/identify: identify: person identified by email 'ada@example.com' (no userId or anonymousId)",
        "POST /v1/batch: batch[1]: person identified by email 'bo@example.com' (no userId or anonymousId)",
    ]
    status, answer = post(logged, "/v1/identify", {"userId": "", "traits": {"email": ""}})
    assert status == 400 and "traits.email" in answer["meta"]["errors"][0]

"""`cdp serve` as a test oracle: the store's routes under /_cdp/ (calls, rejects, summary, reset,
wait), its Python API, and the faults --fail-first, --rate-limit and --status-for, over real HTTP."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest

from cdpcli.serve import Receiver
from cdpcli.serve.receiver import TokenBucket
from tests.conftest import API_KEY, BASIC, post


def get(receiver, route, auth=BASIC, method="GET", **params):
    """One request to a /_cdp/ route: (status, parsed JSON, headers)."""
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    query = ("?" + urlencode(params)) if params else ""
    headers = {"Authorization": auth} if auth else {}
    if method == "POST":  # a state change: never a simple (cross-site-able) request
        headers["Content-Type"] = "application/json"
    conn.request(method, f"/_cdp/{route}{query}", headers=headers)
    response = conn.getresponse()
    body = json.loads(response.read() or b"null")
    conn.close()
    return response.status, body, {name.title(): value for name, value in response.getheaders()}


def track(user, event="E", **extra):
    return {"type": "track", "userId": user, "event": event, **extra}


def test_calls_are_kept_numbered_and_filtered(receiver):
    post(receiver, "/v1/batch", {"batch": [track("1", "A"), track("2", "B"), track("1", "B", messageId="m-3")]})
    post(receiver, "/v1/identify", {"anonymousId": "anon-1", "traits": {"plan": "pro"}})
    status, body, _ = get(receiver, "calls")
    assert status == 200 and body["next"] is None
    assert [c["_seq"] for c in body["calls"]] == [1, 2, 3, 4]
    assert all(c["receivedAt"].endswith("Z") for c in body["calls"])
    assert [c["_seq"] for c in get(receiver, "calls", event="B")[1]["calls"]] == [2, 3]
    assert [c["_seq"] for c in get(receiver, "calls", userId="1", event="B")[1]["calls"]] == [3]
    assert [c["_seq"] for c in get(receiver, "calls", type="identify")[1]["calls"]] == [4]
    assert [c["_seq"] for c in get(receiver, "calls", anonymousId="anon-1")[1]["calls"]] == [4]
    assert [c["_seq"] for c in get(receiver, "calls", messageId="m-3")[1]["calls"]] == [3]
    assert [c["_seq"] for c in get(receiver, "calls", since="2")[1]["calls"]] == [3, 4]
    first = body["calls"][0]["receivedAt"]
    assert len(get(receiver, "calls", since=first)[1]["calls"]) == 4  # received at or after
    assert get(receiver, "calls", since="2999-01-01T00:00:00Z")[1]["calls"] == []
    # the Python API answers the same queries
    assert [c["userId"] for c in receiver.calls(event="B")] == ["2", "1"]
    assert receiver.calls(type="identify")[0]["traits"] == {"plan": "pro"}


def test_calls_page_with_a_cursor(receiver):
    post(receiver, "/v1/batch", {"batch": [track(str(n)) for n in range(1, 8)]})
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, body, _ = get(receiver, "calls", **params)
        assert status == 200 and len(body["calls"]) <= 3
        seen += [c["userId"] for c in body["calls"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == [str(n) for n in range(1, 8)] and pages == 3


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"limit": "0"}, "limit must be a whole number between 1"),
        ({"limit": "x"}, "limit must be a whole number"),
        ({"since": "yesterday-ish"}, "since must be a sequence number or a timestamp"),
        ({"colour": "red"}, "unknown parameter 'colour'"),
    ],
)
def test_bad_query_parameters_are_400_with_the_reason(receiver, params, error):
    status, body, _ = get(receiver, "calls", **params)
    assert status == 400 and error in body["meta"]["errors"][0], body


def test_unknown_route_and_wrong_method(receiver):
    status, body, _ = get(receiver, "nothing")
    assert status == 404 and "/_cdp/calls" in body["meta"]["errors"][0]
    status, body, headers = get(receiver, "calls", method="POST")
    assert status == 405 and headers["Allow"] == "GET"
    assert get(receiver, "reset")[0] == 405


def test_rejects_keep_errors_and_the_body_as_received(receiver):
    post(receiver, "/v1/batch", {"batch": [track("1"), {"type": "track", "userId": "2"}]})  # strict: 400
    post(receiver, "/v1/track", None, raw=b"{nope")
    post(receiver, "/v1/track", {"userId": "3"}, strict=False)  # dropped, answered 200
    post(receiver, "/v1/track", track("4"))  # accepted
    status, body, _ = get(receiver, "rejects")
    assert status == 200 and body["next"] is None
    strict, bad_json, dropped = body["rejects"]
    assert strict["status"] == 400 and strict["errors"] == ["batch[1]: event: Field required"]
    assert strict["body"]["batch"][1] == {"type": "track", "userId": "2"} and strict["path"] == "/v1/batch"
    assert bad_json["body"] == "{nope" and bad_json["errors"][0].startswith("invalid JSON")
    assert dropped["status"] == 200 and "event: Field required" in dropped["errors"][0]
    assert [r["seq"] for r in body["rejects"]] == [1, 2, 3]
    assert [r["seq"] for r in get(receiver, "rejects", since="2")[1]["rejects"]] == [3]
    assert len(receiver.rejects()) == 3 and [c["userId"] for c in receiver.calls] == ["4"]


def test_summary_counts_and_reset_empties(receiver):
    post(receiver, "/v1/batch", {"batch": [track("1", "A"), track("2", "A"), track("3", "B")]})
    post(receiver, "/v1/page", {"userId": "1", "name": "Home"})
    post(receiver, "/v1/track", {"userId": "1"})
    status, body, _ = get(receiver, "summary")
    assert status == 200
    assert body == {
        "accepted": 4,
        "rejected": 1,
        "evicted": 0,
        "kept": 4,
        "by_type": {"track": 3, "page": 1},
        "by_event": {"A": 2, "B": 1},
        "by_event_other": 0,
        "rejects_kept": 1,
        "rejects_evicted": 0,
        "reject_bytes": body["reject_bytes"],
    }
    status, body, _ = get(receiver, "reset", method="POST")
    assert (status, body) == (200, {"reset": True})
    assert get(receiver, "summary")[1]["accepted"] == 0 and get(receiver, "calls")[1]["calls"] == []
    assert receiver.calls == [] and receiver.rejects() == []
    post(receiver, "/v1/track", track("5"))
    assert get(receiver, "calls")[1]["calls"][0]["_seq"] == 5  # numbers are never reused


def test_the_oldest_calls_are_evicted_past_max_calls():
    with Receiver(max_calls=3) as receiver:
        for n in range(1, 6):
            post(receiver, "/v1/track", track(str(n)))
        assert [c["userId"] for c in receiver.calls] == ["3", "4", "5"]
        body = get(receiver, "calls")[1]
        assert [c["_seq"] for c in body["calls"]] == [3, 4, 5]
        assert receiver.summary()["evicted"] == 2 and receiver.summary()["accepted"] == 5


def test_the_routes_take_the_apis_auth_when_a_key_is_set(receiver):
    status, body, headers = get(receiver, "calls", auth=None)
    assert status == 401 and headers["Www-Authenticate"].startswith("Basic")
    assert get(receiver, "summary", auth="Bearer wrong")[0] == 401
    assert get(receiver, "calls", auth=f"Bearer {API_KEY}")[0] == 200


def test_without_a_key_the_routes_are_open():
    with Receiver() as receiver:
        assert get(receiver, "summary", auth=None)[0] == 200


def test_wait_answers_as_soon_as_the_calls_are_there(receiver):
    post(receiver, "/v1/track", track("1", "Signed Up"))
    answers = {}

    def waiter():
        answers["wait"] = get(receiver, "wait", event="Signed Up", count="2", timeout="20")
        answers["at"] = time.monotonic()

    thread = threading.Thread(target=waiter)
    thread.start()
    post(receiver, "/v1/track", track("2", "Other"))
    sent = time.monotonic()
    post(receiver, "/v1/track", track("3", "Signed Up"))
    thread.join(30)
    status, body, _ = answers["wait"]
    assert status == 200 and [c["userId"] for c in body["calls"]] == ["1", "3"]
    assert answers["at"] - sent < 0.5  # far below the 20 s timeout (the 50 ms figure: test below)


def test_wait_times_out_with_408_and_what_matched(receiver):
    post(receiver, "/v1/track", track("1", "Signed Up"))
    started = time.monotonic()
    status, body, _ = get(receiver, "wait", event="Signed Up", count="3", timeout="0.2")
    assert time.monotonic() - started >= 0.2
    assert status == 408 and body["count"] == 1 and body["calls"][0]["userId"] == "1"
    assert "1 of 3 matching calls arrived within 0.2 s" in body["meta"]["errors"][0]


def test_wait_answers_within_50_ms_of_the_matching_call():
    """The wait is registered (its subscription seen) before the call is sent, so the figure is
    the time from the call's arrival to the wait's answer; the median of 20 runs."""
    with Receiver() as receiver:
        delays = []
        for n in range(20):
            subscribed = threading.Event()
            unsubscribe_probe = _on_subscribe(receiver, subscribed)
            result = {}

            def waiter(n=n, result=result):
                result["answer"] = get(receiver, "wait", auth=None, event=f"E{n}", timeout="10")
                result["at"] = time.monotonic()

            thread = threading.Thread(target=waiter)
            thread.start()
            assert subscribed.wait(10)
            unsubscribe_probe()
            post(receiver, "/v1/track", track("1", f"E{n}"))
            arrived = receiver.store.last_record_at
            thread.join(10)
            assert result["answer"][0] == 200
            delays.append(result["at"] - arrived)
        delays.sort()
        assert delays[len(delays) // 2] < 0.05, delays


def _on_subscribe(receiver, event):
    """Set `event` when the next listener subscribes to the receiver's store (the wait's)."""
    store = receiver.store
    original = store.subscribe

    def subscribe(listener):
        unsubscribe = original(listener)
        event.set()
        return unsubscribe

    store.subscribe = subscribe
    return lambda: setattr(store, "subscribe", original)


def test_python_wait_returns_the_calls_or_raises_timeout(receiver):
    thread = threading.Thread(target=post, args=(receiver, "/v1/track", track("7", "Paid")))
    thread.start()
    [call] = receiver.wait(event="Paid", timeout=10)
    thread.join()
    assert call["userId"] == "7" and call["_seq"] == 1
    with pytest.raises(TimeoutError, match=r"0 of 1 calls \(event='Nope'\) arrived within 0.05 s"):
        receiver.wait(event="Nope", timeout=0.05)


# -- faults --


def test_fail_first_answers_the_first_requests_503():
    with Receiver(fail_first=2) as receiver:
        statuses = [post(receiver, "/v1/track", track("1"))[0] for _ in range(4)]
        assert statuses == [503, 503, 200, 200] and len(receiver.calls) == 2


def test_rate_limit_answers_the_excess_429_with_retry_after():
    with Receiver(rate_limit=0.001) as receiver:  # a burst of 1, then one every 1,000 s
        assert post(receiver, "/v1/track", track("1"))[0] == 200
        status, body, headers = post(receiver, "/v1/track", track("2"), response_headers=True)
        retry_after = {k.lower(): v for k, v in headers.items()}["retry-after"]
        assert status == 429 and int(retry_after) >= 1 and "--rate-limit" in body["meta"]["errors"][0]


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(2, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0, 0, 0.5]
    now[0] = 0.5
    assert bucket.take() == 0 and bucket.take() == 0.5


def test_status_for_answers_the_code_and_names_the_call():
    with Receiver(status_for={"Boom": 400, "Later": 503}) as receiver:
        status, body = post(receiver, "/v1/batch", {"batch": [track("1"), track("2", "Boom"), track("3")]})
        assert status == 400 and body["meta"]["errors"] == ["batch[1]: event 'Boom' is answered 400 (--status-for)"]
        status, _, headers = post(receiver, "/v1/track", track("4", "Later"), response_headers=True)
        assert status == 503 and {k.lower(): v for k, v in headers.items()}["retry-after"] == "1"
        assert receiver.calls == [] and [r["status"] for r in receiver.rejects()] == [400, 503]


def test_cdp_import_isolates_a_status_for_call_by_splitting(cli, tmp_path, monkeypatch):
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(track(f"u-{n}", "Boom" if n == 5 else "E")) + "\n" for n in range(1, 17)))
    with Receiver(status_for={"Boom": 400}) as receiver:
        monkeypatch.setenv("CDP_ENDPOINT", receiver.url)
        monkeypatch.setenv("CDP_API_KEY", API_KEY)
        run = cli("import", str(source), "--json")
        assert run.exit_code == 1
        assert sorted(c["userId"] for c in receiver.calls) == sorted(f"u-{n}" for n in range(1, 17) if n != 5)
    [reject] = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert reject["line"] == 5 and "--status-for" in reject["error"]
    assert json.loads(run.stdout.splitlines()[-1])["failed"] == 1


def test_serve_takes_the_fault_flags(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpcli", "serve", "--port", "0", "--out", str(tmp_path / "out.ndjson"),
         "--fail-first", "1", "--status-for", "Boom=422", "--max-calls", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        banner = proc.stderr.readline().decode()
        at = type("At", (), {"url": banner.split()[4]})()
        assert post(at, "/v1/track", track("1"))[0] == 503
        assert post(at, "/v1/track", track("1", "Boom"))[0] == 422
        for n in range(3):
            assert post(at, "/v1/track", track(str(n)))[0] == 200
        status, body, _ = get(at, "summary", auth=None)
        assert (body["accepted"], body["rejected"], body["evicted"], body["kept"]) == (3, 2, 1, 2)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--status-for", "Boom"], "--status-for takes EVENT=CODE"),
        (["--status-for", "Boom=999"], "--status-for takes EVENT=CODE"),
        (["--rate-limit", "0"], "--rate-limit must be more than 0"),
        (["--fail-first", "-1"], "--fail-first must be 0 or more"),
        (["--max-calls", "-1"], "--max-calls must be 0 or more"),
    ],
)
def test_bad_fault_flags_are_usage_errors(args, error):
    run = subprocess.run([sys.executable, "-m", "cdpcli", "serve", *args], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(f"Error: {error}") and "\nHint: " in run.stderr, run.stderr


def test_user_matches_either_id_and_rejects_take_a_tail():
    """The live view's queries: `user` is the userId or the anonymousId, and `rejects?tail=N`
    is the last N, so the page never loads the whole store."""
    import http.client
    from urllib.parse import urlsplit

    from cdpcli.serve import Receiver
    from tests.conftest import API_KEY, BASIC, post

    with Receiver(api_key=API_KEY) as receiver:
        post(receiver, "/v1/track", {"userId": "42", "event": "A"})
        post(receiver, "/v1/track", {"anonymousId": "42", "event": "B"})
        post(receiver, "/v1/track", {"userId": "7", "event": "C"})
        for n in range(5):
            post(receiver, "/v1/track", {"userId": str(n)})  # no event: rejected
        assert [c["event"] for c in receiver.calls(user="42")] == ["A", "B"]
        parts = urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/_cdp/rejects?tail=2", headers={"Authorization": BASIC})
        answer = json.loads(conn.getresponse().read())
        conn.close()
        assert [r["seq"] for r in answer["rejects"]] == [4, 5] and answer["next"] is None

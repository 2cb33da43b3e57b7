"""The SDK round trip: a batch exactly as Customer.io's Python SDK (customerio-cdp-analytics 1.1.0)
sent it (tests/data/sdk/python-1.1.0-batch.json, captured by capture_python_sdk.py there: its
spaced JSON, `"anonymousId": null`, `sentAt`, Basic auth, no X-Strict-Mode), holding every call
type and a 32,500-byte call, posted byte for byte the way the SDK posts it. cdp serve must take
all of it, without and with strict mode, and gzipped as `gzip=True` sends it."""

from __future__ import annotations

import gzip
import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cdpcli.serve import Receiver

GOLDEN = json.loads((Path(__file__).parent / "data" / "sdk" / "python-1.1.0-batch.json").read_text())
SENT_HEADERS = {name: value for name, value in GOLDEN["headers"].items() if name not in ("Host", "Content-Length")}


def sdk_post(base_url: str, body: bytes, **extra: str) -> tuple[int, bytes]:
    """POST {base_url}/v1/batch as the SDK does (`host` + '/v1/batch', its headers)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", parts.path + GOLDEN["path"], body=body, headers={**SENT_HEADERS, **extra})
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    return response.status, answer


def base_url(receiver: Receiver) -> str:
    return receiver.url.rsplit("/v1", 1)[0]


def test_the_golden_batch_is_what_the_sdk_sends():
    body = json.loads(GOLDEN["body"])
    assert list(body) == ["batch", "sentAt"] and GOLDEN["path"] == "/v1/batch"
    assert [call["type"] for call in body["batch"]] == [
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
        "track",
    ]
    big = body["batch"][-1]
    assert len(json.dumps(big, separators=(",", ":"))) == 32_500 and len(json.dumps(big)) <= 32 * 1024
    assert "X-Strict-Mode" not in GOLDEN["headers"] and GOLDEN["headers"]["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(("strict", "gzipped"), [(False, False), (True, False), (False, True), (True, True)], ids=str)
def test_serve_takes_the_sdks_batch(strict, gzipped):
    log: list[str] = []
    body = GOLDEN["body"].encode()
    extra = {"X-Strict-Mode": "1"} if strict else {}
    if gzipped:
        body, extra = gzip.compress(body), {**extra, "Content-Encoding": "gzip"}
    with Receiver(log=log.append) as receiver:
        assert sdk_post(base_url(receiver), body, **extra) == (200, b"{}")
        calls = receiver.calls(since=0)
        rejects = receiver.rejects()
    assert rejects == []
    assert [call["messageId"] for call in calls] == [f"m-{n}" for n in range(1, 8)]
    assert "_warnings" in calls[-1] and all("_warnings" not in call for call in calls[:-1])
    assert any("batch[6]: warning: call is 32,500 bytes" in line for line in log)


def test_a_wrong_key_as_the_sdk_sends_it_is_200_and_dropped_and_401_in_strict_mode():
    body = GOLDEN["body"].encode()
    with Receiver(api_key="the-right-key") as receiver:
        assert sdk_post(base_url(receiver), body) == (200, b"{}")
        assert sdk_post(base_url(receiver), body, **{"X-Strict-Mode": "1"})[0] == 401
        assert receiver.calls == []
        statuses = [reject["status"] for reject in receiver.rejects()]
    assert statuses == [200, 401]


def test_an_sdk_given_the_v1_url_gets_404_saying_so():
    with Receiver() as receiver:
        status, answer = sdk_post(receiver.url, GOLDEN["body"].encode())  # .url ends in /v1
    assert status == 404 and "holds /v1 twice" in json.loads(answer)["meta"]["errors"][0]

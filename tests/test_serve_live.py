"""`cdp serve`'s live side: the event stream (/_cdp/events, SSE) and the live view (/_cdp/ui),
the page checked in a real headless browser (Debian's chromium) when one is installed."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cdpcli.serve import Receiver
from tests.conftest import post

pytestmark = pytest.mark.slow  # headless Chromium

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def read_events(response, wanted):
    """SSE events from a streaming response until `wanted` have come: [(event, data)]."""
    events, name, data = [], None, None
    while len(events) < wanted:
        line = response.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and name is not None:
            events.append((name, data))
            name = data = None
    return events


def test_the_event_stream_sends_calls_rejects_and_resets():
    with Receiver() as receiver:
        subscribed = threading.Event()
        original = receiver.store.subscribe

        def subscribe(listener):
            unsubscribe = original(listener)
            subscribed.set()
            return unsubscribe

        receiver.store.subscribe = subscribe
        parts = urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/_cdp/events")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
        assert subscribed.wait(10)
        post(receiver, "/v1/batch", {"batch": [{"type": "track", "userId": "1", "event": "A"}]}, auth="Bearer k")
        post(receiver, "/v1/track", {"userId": "2"}, auth="Bearer k")  # strict: a 400
        post(receiver, "/_cdp/reset", {}, auth=None)
        (call, first), (reject, second), (reset, _) = read_events(response, 3)
        conn.close()
    assert (call, first["event"], first["_seq"]) == ("call", "A", 1)
    assert (reject, second["status"], second["errors"]) == ("reject", 400, ["event: Field required"])
    assert reset == "reset"


def test_the_page_is_one_self_contained_document():
    with Receiver() as receiver:
        parts = urlsplit(receiver.url)
        for path, accept in (("/_cdp/ui", "*/*"), ("/", "text/html,application/xhtml+xml")):
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", path, headers={"Accept": accept})
            response = conn.getresponse()
            page = response.read().decode()
            conn.close()
            assert response.status == 200 and response.getheader("Content-Type").startswith("text/html")
            assert 'EventSource("/_cdp/events")' in page
            # nothing fetched elsewhere: the one link is the server's own icon
            assert "src=" not in page and page.count("href=") == 1 and "@import" not in page
            assert 'href="/favicon.ico"' in page


def chromium() -> str | None:
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


class Browser:
    """Headless chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    commands on fd 3, answers on fd 4, each message ended by a NUL byte): no library needed."""

    def __init__(self, profile: Path) -> None:
        self._to_reader, to_browser = os.pipe()
        from_browser, self._from_writer = os.pipe()
        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--window-size=1280,800", "about:blank"],
            # kept open past close_fds (which runs after preexec_fn): the browser's fds 3 and 4
            pass_fds=(3, 4, self._to_reader, self._from_writer),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=self._pipes_at_3_and_4,
        )  # fmt: skip
        os.close(self._to_reader)
        os.close(self._from_writer)
        self._out = os.fdopen(to_browser, "wb")
        self._in = os.fdopen(from_browser, "rb")
        self._next = 0
        self.session = None

    def _pipes_at_3_and_4(self) -> None:
        reader, writer = os.dup(self._to_reader), os.dup(self._from_writer)  # neither is clobbered
        os.dup2(reader, 3)
        os.dup2(writer, 4)

    def send(self, method: str, **params):
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self._out.write(json.dumps(message).encode() + b"\0")
        self._out.flush()
        buffer = b""
        while True:  # answers and events come in order; skip the events
            chunk = self._in.read1(65536) if not buffer.count(b"\0") else b""
            if chunk == b"" and not buffer.count(b"\0"):
                raise RuntimeError(f"chromium closed its pipe during {method}")
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._next:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.navigate", url=url)  # answered once the page's document is the one evaluated

    def until(self, condition: str, timeout_ms: int = 20000):
        """The page's HTML once the JavaScript `condition` holds (checked on each DOM change)."""
        expression = f"""new Promise((resolve, reject) => {{
            const holds = () => {{ try {{ return Boolean({condition}); }} catch (e) {{ return false; }} }};  // body may not be parsed yet
            const done = () => {{ if (holds()) {{ observer.disconnect(); resolve(document.documentElement.outerHTML); return true; }} }};
            const observer = new MutationObserver(done);
            if (!done()) {{ observer.observe(document, {{subtree: true, childList: true, attributes: true, characterData: true}});
                setTimeout(() => reject(new Error("not within {timeout_ms} ms: " + (document.body ? document.body.innerText.slice(0, 500) : ""))), {timeout_ms}); }}
        }})"""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"].get("exception", {}).get("description", result))
        return result["result"]["value"]

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError, ValueError):
            pass
        self.proc.wait(30)


@pytest.mark.skipif(chromium() is None, reason="no chromium binary (.ci/run installs Debian's chromium)")
def test_the_live_view_in_a_headless_browser(tmp_path):
    """100,000 calls stored, the page opened in chromium (it shows only the newest hundred),
    then a call and a reject posted: both appear live (from the event stream), the reject in
    red with its error; the DOM and a screenshot are kept in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    with Receiver(max_calls=100_000) as receiver:
        batch = [{"type": "track", "userId": f"u-{n}", "event": "Bulk"} for n in range(2_500)]
        for _ in range(40):
            assert post(receiver, "/v1/batch", {"batch": batch}, auth="Bearer k")[0] == 200
        streaming = threading.Event()
        original = receiver.store.subscribe

        def subscribe(listener):  # the page's EventSource is connected
            unsubscribe = original(listener)
            streaming.set()
            return unsubscribe

        receiver.store.subscribe = subscribe
        browser = Browser(tmp_path / "profile")
        try:
            browser.open(receiver.url.rsplit("/v1", 1)[0] + "/_cdp/ui")
            first = browser.until('document.body.dataset.ready === "1"')
            assert streaming.wait(20)
            assert "u-2499" in first and first.count('class="call"') <= 500  # the page never holds the 100,000
            properties = {"plan": "pro"}
            post(
                receiver, "/v1/track", {"userId": "42", "event": "Signed Up", "properties": properties}, auth="Bearer k"
            )
            post(receiver, "/v1/track", {"userId": "43"}, auth="Bearer k")  # refused: no event
            dom = browser.until(
                'document.body.innerText.includes("Signed Up") && document.querySelector("tr.reject") !== null'
            )
            assert "event: Field required" in dom and "100001 accepted, 1 rejected" in dom
            color = browser.send(
                "Runtime.evaluate",
                expression='getComputedStyle(document.querySelector("tr.reject")).color',
                returnByValue=True,
            )["result"]["value"]
            assert color == "rgb(164, 0, 0)"  # red
            browser.send("Runtime.evaluate", expression='document.querySelector("tr.call").click()')  # the newest
            shown = browser.until('document.getElementById("json") !== null')
            assert "copy as curl" in shown and "&quot;plan&quot;: &quot;pro&quot;" in shown.replace('"', "&quot;")
            (ARTIFACTS / "live-view.html").write_text(shown)
            browser.screenshot(ARTIFACTS / "live-view.png")
        finally:
            browser.close()
    assert (ARTIFACTS / "live-view.png").stat().st_size > 1000

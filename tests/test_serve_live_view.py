"""The live view in headless Chromium: its first screen in the HTML (a `--dump-dom` shows the calls,
newest first), never blank on a reject whose body is not JSON, pause and resume, paging back,
type colours and counts, relative times, the icon, and clearing from its own origin."""

from __future__ import annotations

import html
import http.client
import re
import subprocess
from urllib.parse import urlsplit

import pytest

from cdpcli.serve import Receiver
from tests.conftest import post
from tests.test_serve_live import Browser, chromium

pytestmark = pytest.mark.slow  # headless Chromium

needs_chromium = pytest.mark.skipif(chromium() is None, reason="no chromium binary (apt-get install chromium)")
NAN_BODY = b'{"batch": [{"type": "track", "userId": "1", "event": "E", "properties": {"x": NaN}}]}'
AUTH = "Bearer k"


def page_url(receiver: Receiver) -> str:
    return receiver.url.rsplit("/v1", 1)[0] + "/_cdp/ui"


def evaluate(browser: Browser, expression: str):
    return browser.send("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def people(receiver: Receiver) -> None:
    post(receiver, "/v1/identify", {"userId": "42", "traits": {"email": "ada@example.com", "plan": "pro"}}, auth=AUTH)
    post(receiver, "/v1/group", {"userId": "42", "groupId": "acme", "traits": {"name": "Acme Inc."}}, auth=AUTH)
    post(receiver, "/v1/track", {"userId": "42", "event": "Signed Up"}, auth=AUTH)


def test_the_icon_is_served():
    with Receiver() as receiver:
        parts = urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/favicon.ico")
        response = conn.getresponse()
        data = response.read()
        conn.close()
    assert response.status == 200 and response.getheader("Content-Type") == "image/svg+xml" and b"<svg" in data


def test_the_first_screen_is_in_the_html_newest_first():
    with Receiver() as receiver:
        people(receiver)
        post(receiver, "/v1/track", {"userId": "43"}, auth=AUTH)  # refused: no event
        parts = urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/_cdp/ui")
        page = conn.getresponse().read().decode()
        conn.close()
    seqs = [int(seq) for seq in re.findall(r'<tr class="call" data-seq="(\d+)"', page)]
    assert seqs == [3, 2, 1]
    assert page.index('class="reject"') < page.index('data-seq="3"')  # the reject came last: on top
    assert "ada@example.com · plan=pro" in page and "acme (Acme Inc.)" in page
    assert "3 accepted, 1 rejected" in page and "identify <b>1</b>" in page


@needs_chromium
def test_a_plain_dump_dom_shows_the_calls(tmp_path):
    with Receiver() as receiver:
        people(receiver)
        run = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}", "--dump-dom",
             page_url(receiver)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    dom = html.unescape(run.stdout)
    assert dom.index("Signed Up") < dom.index("acme (Acme Inc.)") < dom.index("ada@example.com")
    assert "connecting…" not in dom or "3 accepted" in dom


@needs_chromium
def test_a_nan_reject_never_blanks_the_page(tmp_path):
    with Receiver() as receiver:
        assert post(receiver, "/v1/batch", None, raw=NAN_BODY, auth=AUTH)[0] == 400
        browser = Browser(tmp_path / "profile")
        try:
            browser.open(page_url(receiver))
            browser.until('document.body.dataset.ready === "1"')
            assert post(receiver, "/v1/batch", None, raw=NAN_BODY, auth=AUTH)[0] == 400  # live, too
            post(receiver, "/v1/track", {"userId": "7", "event": "After NaN"}, auth=AUTH)
            dom = browser.until('document.body.innerText.includes("After NaN")')
            assert dom.count('class="reject') == 2 and "1 accepted, 2 rejected" in dom
            evaluate(browser, 'document.querySelector("tr.reject").click()')
            shown = browser.until('document.getElementById("json") !== null')
            assert "NaN" in html.unescape(shown)  # the body shown as the text it was
        finally:
            browser.close()


@needs_chromium
def test_pause_resume_paging_colours_times_and_clear(tmp_path):
    with Receiver() as receiver:
        batch = [{"type": "track", "userId": f"u-{n}", "event": "Bulk"} for n in range(250)]
        assert post(receiver, "/v1/batch", {"batch": batch}, auth=AUTH)[0] == 200
        people(receiver)
        browser = Browser(tmp_path / "profile")
        try:
            browser.open(page_url(receiver))
            browser.until('document.body.dataset.ready === "1"')
            assert evaluate(browser, 'document.querySelectorAll("tr.call").length') == 100
            # colours per type, relative times with the absolute one on hover
            colours = evaluate(
                browser,
                '["identify", "track", "group"].map(t => getComputedStyle(document.querySelector("tr.call .t-" + t)).backgroundColor)',
            )
            assert len(set(colours)) == 3
            when = evaluate(
                browser, '[document.querySelector("td.when").textContent, document.querySelector("td.when").title]'
            )
            assert re.fullmatch(r"\d+s ago", when[0]) and when[1].endswith("Z")
            assert "identify 1" in evaluate(browser, 'document.getElementById("counts").innerText')
            # pause: new calls wait; resume: they come in on top
            evaluate(browser, 'document.getElementById("pause").click()')
            post(receiver, "/v1/track", {"userId": "42", "event": "While Paused"}, auth=AUTH)
            browser.until('document.getElementById("status").textContent.includes("paused (1 new)")')
            assert "While Paused" not in evaluate(browser, "document.getElementById('rows').innerText")
            evaluate(browser, 'document.getElementById("pause").click()')
            browser.until('document.querySelector("tr.call").innerText.includes("While Paused")')
            # paging back through everything stored
            evaluate(browser, 'document.getElementById("more").click()')
            browser.until('document.querySelectorAll("tr.call").length === 201')
            evaluate(browser, 'document.getElementById("more").click()')
            browser.until(
                'document.querySelectorAll("tr.call").length === 254 && document.getElementById("more").disabled'
            )
            seqs = evaluate(browser, '[...document.querySelectorAll("tr.call")].map(tr => Number(tr.dataset.seq))')
            assert seqs == list(range(254, 0, -1))
            # clear, from the page's own origin
            evaluate(browser, 'document.getElementById("clear").click()')
            browser.until('document.querySelectorAll("tr.call").length === 0')
            assert receiver.summary()["accepted"] == 0
        finally:
            browser.close()

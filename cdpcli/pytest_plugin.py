"""The pytest plugin cdp installs (entry point `pytest11`): the fixture `cdp_receiver`, a
`cdp serve` receiver on a free loopback port for one test, configured by the test's
`@pytest.mark.cdp_receiver(...)`; and `cdp_receiver_factory`, for a test that needs several.

    @pytest.mark.cdp_receiver(status_for={"Order Completed": 500}, fail_first=1)
    def test_sign_up_is_tracked(cdp_receiver):
        app = make_app(cdp_host=cdp_receiver.base_url)  # an SDK that adds /v1/batch itself
        app.sign_up(user_id="42", plan="pro")
        [call] = cdp_receiver.wait(event="Signed Up")   # waits for it, never polls
        assert call["properties"]["plan"] == "pro"
        [request, *_] = cdp_receiver.requests()
        assert request["path"] == "/v1/batch" and request["key"] == "my-write-key"

Nothing heavy is imported when pytest loads the plugin: the receiver (uvicorn) is imported by
the first test that uses the fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# what @pytest.mark.cdp_receiver(...) may set: the receiver's options of the same names
MARKER_OPTIONS = ("api_key", "status_for", "fail_first", "latency_ms", "rate_limit", "strict", "fail_rate", "seed")
MARKER = (
    "cdp_receiver(api_key=None, status_for=None, fail_first=0, latency_ms=0, rate_limit=None, strict=None, "
    "fail_rate=0.0, seed=None): configure the test's cdp_receiver (cdp serve's options of the same names; "
    "strict=True judges every request as if it carried X-Strict-Mode: 1, False as if it did not)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


class Key:
    """The API key a request carried: compares equal to the string it is, shown masked (an
    assertion that fails, an f-string or a log line shows `'****wxyz'`, never the key; pytest's
    diff of two strings would print a `str` subclass whole). `.value` is the key itself."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Key):
            return self.value == other.value
        return isinstance(other, str) and self.value == other

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return "****" + self.value[-4:] if len(self.value) > 8 else "****"

    def __repr__(self) -> str:
        return repr(str(self))

    def startswith(self, prefix: str) -> bool:
        return self.value.startswith(prefix)


if TYPE_CHECKING:
    from cdpcli.expect import Result
    from cdpcli.serve import Receiver


class CdpReceiver:
    """A receiver for one test: `.url` (ends in /v1: for clients that add /batch or /track, as
    cdp's own `--endpoint`) and `.base_url` (no /v1: for SDKs that add /v1/batch themselves, as
    Customer.io's Python, Node and Go SDKs do); any non-empty key is accepted unless `api_key`
    is set. `.calls(**filters)`, `.wait(count=1, timeout=5, **filters)`, `.requests()`,
    `.rejects()`, `.summary()`, `.expect(path)`, `.reset()`. Filters: type, event, userId,
    anonymousId, messageId, since."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    @property
    def url(self) -> str:
        return self.receiver.url

    @property
    def base_url(self) -> str:
        """The URL without /v1 (for SDKs that add the path themselves)."""
        return self.receiver.url.rsplit("/v1", 1)[0]

    def calls(self, **filters: Any) -> list[dict[str, Any]]:
        """The calls received so far that the filters take, oldest first."""
        return self.receiver.calls(**filters)

    def wait(self, count: int = 1, timeout: float = 5.0, **filters: Any) -> list[dict[str, Any]]:
        """Wait until `count` calls that the filters take have arrived, and return them; the
        test fails after `timeout` s, saying how many did arrive and what was received."""
        try:
            return self.receiver.wait(count, timeout, **filters)
        except TimeoutError as exc:
            received = [
                {k: call.get(k) for k in ("type", "event", "userId", "anonymousId") if k in call}
                for call in self.receiver.calls[-10:]
            ]
            raise AssertionError(f"{exc}; the last calls received: {received}") from None

    def requests(self) -> list[dict[str, Any]]:
        """Each request to an API path as it came, oldest first: `method`, `path` (with its query),
        `headers` (lowercase names, Authorization redacted), `gzip`, `bytes` (the body's size on
        the wire), `key` (the API key it carried, as received: compare it, it prints masked),
        `body` (parsed when it was JSON) and `status` (the answer)."""
        return [
            {
                "method": request.method,
                "path": request.path,
                "headers": _redacted(request.headers),
                "gzip": request.gzip,
                "bytes": request.raw_size,
                "key": None if request.key is None else Key(request.key),
                "body": request.body,
                "status": request.status,
            }
            for request in list(self.receiver.requests)
        ]

    def rejects(self) -> list[dict[str, Any]]:
        """The refused requests and dropped calls, each with `errors` and `body`."""
        return self.receiver.rejects()

    def summary(self) -> dict[str, Any]:
        return self.receiver.summary()

    def reset(self) -> None:
        self.receiver.reset()

    def expect(self, path: str | Path, timeout: float | None = None) -> list[Result]:
        """Check an expectations file (as `cdp expect` does) against what was received; the
        test fails with the report when any check fails."""
        from cdpcli import expect as core  # lazy: start-up (pytest loads the plugin in every run)
        from cdpcli.serve.store import Filters  # lazy: start-up

        spec = core.load(path)
        store = self.receiver.store

        def snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return [{**call, "_seq": seq} for seq, call in store.select(Filters())], list(store.rejects)

        def wait_for_more(last: int, seconds: float) -> None:
            store.wait(Filters(after_seq=last), 1, seconds)

        wait = timeout if timeout is not None else spec.timeout if spec.timeout is not None else core.DEFAULT_TIMEOUT
        results = core.settle(spec, snapshot, wait_for_more, wait)
        if not all(result.ok for result in results):
            raise AssertionError(f"expectations in {path} failed:\n{core.report(results)}")
        return results


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    shown = dict(headers)
    if "authorization" in shown:
        shown["authorization"] = shown["authorization"].split(" ", 1)[0] + " ****"
    return shown


def _options(marker: pytest.Mark | None) -> dict[str, Any]:
    """The receiver options a test's cdp_receiver marker sets (UsageError-like for unknown ones)."""
    if marker is None:
        return {}
    if marker.args:
        raise TypeError("@pytest.mark.cdp_receiver takes keyword arguments only: " + ", ".join(MARKER_OPTIONS))
    unknown = sorted(set(marker.kwargs) - set(MARKER_OPTIONS))
    if unknown:
        raise TypeError(f"@pytest.mark.cdp_receiver has no option {unknown[0]!r}; it takes {', '.join(MARKER_OPTIONS)}")
    return dict(marker.kwargs)


@pytest.fixture
def cdp_receiver_factory() -> Iterator[Callable[..., CdpReceiver]]:
    """Make receivers (each on a free loopback port, with the marker's options as keywords),
    all stopped when the test ends: `first, second = cdp_receiver_factory(), cdp_receiver_factory(api_key="k")`."""
    from cdpcli.serve import Receiver  # lazy: start-up (uvicorn, only for tests that use it)

    made: list[Receiver] = []

    def make(**options: Any) -> CdpReceiver:
        _options(pytest.mark.cdp_receiver(**options).mark)  # the same options as the marker
        receiver = Receiver("127.0.0.1", 0, **options).start()
        made.append(receiver)
        return CdpReceiver(receiver)

    try:
        yield make
    finally:
        for receiver in made:
            receiver.stop()


@pytest.fixture
def cdp_receiver(request: pytest.FixtureRequest, cdp_receiver_factory: Callable[..., CdpReceiver]) -> CdpReceiver:
    """A `cdp serve` receiver on a free loopback port for this test (see CdpReceiver),
    configured by the test's `@pytest.mark.cdp_receiver(...)`."""
    return cdp_receiver_factory(**_options(request.node.get_closest_marker("cdp_receiver")))

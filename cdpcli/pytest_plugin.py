"""The pytest plugin cdp installs (entry point `pytest11`): the fixture `cdp_receiver`, a
`cdp serve` receiver on a free loopback port for one test.

    def test_sign_up_is_tracked(cdp_receiver):
        app = make_app(cdp_endpoint=cdp_receiver.url)   # your app or SDK, pointed at it
        app.sign_up(user_id="42", plan="pro")
        [call] = cdp_receiver.wait(event="Signed Up")   # waits for it, never polls
        assert call["properties"]["plan"] == "pro"

Nothing heavy is imported when pytest loads the plugin: the receiver (uvicorn) is imported by
the first test that uses the fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cdpcli.expect import Result
    from cdpcli.serve import Receiver


class CdpReceiver:
    """A receiver for one test: `.url` (the endpoint to point an app or SDK at; any non-empty
    key is accepted), `.calls(**filters)`, `.wait(count=1, timeout=5, **filters)`,
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
        from cdpcli import expect as core
        from cdpcli.serve.store import Filters

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


@pytest.fixture
def cdp_receiver() -> Any:
    """A `cdp serve` receiver on a free loopback port for this test (see CdpReceiver)."""
    from cdpcli.serve import Receiver

    with Receiver("127.0.0.1", 0) as receiver:
        yield CdpReceiver(receiver)

"""Test doubles: a receiver whose next answers a test scripts, and whose judge refuses the calls a
test names (to drive a client's retries, splitting and rejects). The product has neither hook:
they are subclasses of cdp serve's own Receiver and Judge."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdpcli.serve import Body, Judge, Receiver, Verdict


@dataclass
class Scripted:
    """A canned answer for the next request (tests use these to drive retries)."""

    status: int
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class RefusingJudge(Judge):
    """The API's verdicts, and one more rule: `reject_when(call)` says why a call the API would
    accept is refused (None: it is not), like the API's own rules (400 in strict mode, naming
    the call in a batch; dropped and logged without it)."""

    reject_when: Callable[[dict[str, Any]], str | None] | None = None

    def check_calls(self, calls: list[Any]) -> tuple[list[str | None], list[bytes | None]]:
        verdicts, encodings = super().check_calls(calls)
        rule = self.reject_when
        if rule is not None:
            verdicts = [
                rule(call) if verdict is None else verdict for call, verdict in zip(calls, verdicts, strict=True)
            ]
        return verdicts, encodings


class ScriptedReceiver(Receiver):
    """A Receiver that gives the answers in `script` first, one a request, in order (after the
    path check, before any --fail-rate fault or verdict; their calls are not recorded), and
    whose judge applies `reject_when`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.script: deque[Scripted] = deque()
        self.judge = RefusingJudge(self.judge.api_key)

    @property
    def reject_when(self) -> Callable[[dict[str, Any]], str | None] | None:
        return self.judge.reject_when

    @reject_when.setter
    def reject_when(self, rule: Callable[[dict[str, Any]], str | None] | None) -> None:
        self.judge.reject_when = rule

    async def answer(self, kind: str, path: str, headers: dict[str, str], body: Body) -> Verdict:
        try:
            scripted = self.script.popleft()  # atomic: tests append from their own threads
        except IndexError:
            return await super().answer(kind, path, headers, body)
        if scripted.delay:
            await self.listener.pause(scripted.delay)
        return Verdict(scripted.status, scripted.body, scripted.headers)

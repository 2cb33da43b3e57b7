"""Expectations about the calls a receiver got, checked: the core of `cdp expect` and of the
pytest fixture's `expect()`. Pure: a file's text in, a Spec out (`parse`); a Spec and the calls
and rejects in, Results out (`check`). `settle` re-checks as calls arrive, until every check
holds, none can change any more, or the time is up; how calls are fetched and awaited is the
caller's (HTTP for `cdp expect`, the store itself for the fixture).

An expectations file (TOML or JSON):

    timeout = 5              # seconds to wait for calls that have not arrived yet
    no_rejects = true        # no request refused, no call dropped
    [[expect]]               # calls that match (partial, deep), count = / min = / max = / absent =
    name = "sign-up is tracked"
    match = { type = "track", event = "Signed Up", properties = { plan = "pro" } }
    count = 1
    [[sequence]]             # these events, in this order, for the same user
    user = "42"
    events = ["Signed Up", "Trial Started"]
    [plan.events."Signed Up"]   # a tracking plan for track calls
    required = ["plan"]
    properties = { plan = "string", seats = "integer" }
    additional = false

The plan reports RudderStack's four kinds of violation: Unplanned-Event, Required-Missing,
Datatype-Mismatch, Additional-Properties (`plan.allow_unplanned = true` lets other events be).

The package: `spec` (the file read), `match` (partial deep matching, the closest call),
`check` (Results, `check`, `settle`), `report` (words and JUnit XML), `remote` (against a
running receiver over HTTP).
"""

from cdpcli.expect.check import Result, check, settle
from cdpcli.expect.match import contains, differences
from cdpcli.expect.remote import check_against, receiver_base
from cdpcli.expect.report import junit, report, summary_line
from cdpcli.expect.spec import (
    DEFAULT_TIMEOUT,
    TYPES,
    EventPlan,
    Expect,
    ExpectFileError,
    Sequence,
    Spec,
    load,
    parse,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "TYPES",
    "EventPlan",
    "Expect",
    "ExpectFileError",
    "Result",
    "Sequence",
    "Spec",
    "check",
    "check_against",
    "contains",
    "differences",
    "junit",
    "load",
    "parse",
    "receiver_base",
    "report",
    "settle",
    "summary_line",
]

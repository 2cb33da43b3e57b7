"""A vendor's anonymous id that its line does not mark as anonymous: PostHog's `$identify`
names the anonymous id it merges (`$anon_distinct_id`), and "all past and future events made
with that anonymous ID are now associated with the distinct ID"
[https://posthog.com/docs/product-analytics/identify.md]; an event sent under that id by an
SDK that sets no `$device_id` (a server-side one) reads like a user's. Under
--resolve-identities it goes out as that anonymousId with the user's id; an alias's previousId
(which may be a user's own id) is not taken for an anonymous id."""

from __future__ import annotations

import json

import pytest

import cdpcli
from cdpcli.importing.identities import IdentityMap
from cdpcli.importing.vendors import map_record
from tests.conftest import API_KEY

# PostHog events-model rows [https://posthog.com/docs/data-pipelines/batch-exports/s3]: the
# `$identify` posthog-js sends on login (distinct_id the user's, $anon_distinct_id the
# browser's), then an order recorded under the anonymous id with no $device_id
IDENTIFY = {
    "uuid": "018fd3a2-0000-7000-8000-000000000001",
    "event": "$identify",
    "distinct_id": "u_8812",
    "properties": {"$anon_distinct_id": "018fd3a2-anon", "$set": {"email": "ada@example.com"}},
    "timestamp": "2024-06-01T12:05:00.000000Z",
}
ORDER = {
    "uuid": "018fd3a2-0000-7000-8000-000000000002",
    "event": "Order Placed",
    "distinct_id": "018fd3a2-anon",
    "properties": {"total": 12},
    "timestamp": "2024-06-01T12:04:00.000000Z",
}
# $create_alias: distinct_id u_8812 also known as ana@example.com [posthog.com/docs/data/events.md]
ALIAS = {
    "uuid": "018fd3a2-0000-7000-8000-000000000003",
    "event": "$create_alias",
    "distinct_id": "u_8812",
    "properties": {"alias": "ana@example.com"},
    "timestamp": "2024-06-01T12:06:00.000000Z",
}
LATER = {**ORDER, "uuid": "018fd3a2-0000-7000-8000-000000000004", "distinct_id": "u_8812"}


def call(record: dict) -> dict:
    verdict = map_record("posthog", record)
    assert verdict.call is not None, verdict
    return verdict.call


@pytest.mark.parametrize("memory_links", [200_000, 1])  # in memory, and moved to SQLite
def test_a_user_id_the_input_links_as_anonymous_goes_out_as_the_users(memory_links: int) -> None:
    with IdentityMap(memory_links=memory_links) as ids:
        for record in (ORDER, IDENTIFY, ALIAS, LATER):  # the link after the event it resolves
            ids.learn(call(record))
        order, later = call(ORDER), call(LATER)
        assert order == {**order, "userId": "018fd3a2-anon"} and "anonymousId" not in order  # its line alone
        assert ids.rewrite(order) and not ids.rewrite(later)
        # the chain's end (the alias's userId); the id it was sent with kept as its anonymousId
        assert (order["userId"], order["anonymousId"]) == ("ana@example.com", "018fd3a2-anon")
        assert later["userId"] == "u_8812" and "anonymousId" not in later  # a previousId is no anonymous id
        assert ids.stats.rewritten == 1
        line = json.dumps(call(ORDER)).encode()
        assert json.loads(ids.rewrite_line(line))["anonymousId"] == "018fd3a2-anon"
        nested = json.dumps({"properties": {"userId": "x"}, **call(ORDER)}).encode()  # read by the parsed call
        assert json.loads(ids.rewrite_line(nested))["userId"] == "ana@example.com"
        first, blank, again = ids.rewrite_lines([line, b"", line])
        assert blank == b"" and json.loads(first) == json.loads(again) == order


def test_an_event_naming_its_distinct_id_as_the_anonymous_one_is_anonymous_on_its_line() -> None:
    marked = {**ORDER, "properties": {"total": 12, "$anon_distinct_id": "018fd3a2-anon"}}
    assert call(marked)["anonymousId"] == "018fd3a2-anon" and "userId" not in call(marked)


def test_the_posthog_import_sends_the_order_as_the_users(receiver, tmp_path) -> None:
    target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)
    result = cdpcli.import_lines(
        [IDENTIFY, ORDER], target=target, archive="posthog", resolve_identities=True, rejects=str(tmp_path / "r")
    )
    assert result.identities == {"links": 1, "rewritten": 1, "unresolved": 0}
    (order,) = [sent for sent in receiver.calls if sent.get("event") == "Order Placed"]
    assert (order["userId"], order["anonymousId"]) == ("u_8812", "018fd3a2-anon")
    receiver.calls.clear()
    cdpcli.import_lines([IDENTIFY, ORDER], target=target, archive="posthog", rejects=str(tmp_path / "r2"))
    (order,) = [sent for sent in receiver.calls if sent.get("event") == "Order Placed"]
    assert order["userId"] == "018fd3a2-anon"  # without it, the line alone cannot tell


def test_mixpanel_original_id_merge_events_under_the_anon_id_go_out_as_the_users() -> None:
    """Original ID Merge: `$identify` carries `$identified_id` and `$anon_id`, and the events
    before it were sent with the anonymous UUID as distinct_id, no $device_id
    [docs.mixpanel.com/docs/tracking-methods/id-management/identifying-users-original.md]."""
    identify = {
        "event": "$identify",
        "properties": {
            "time": 1717243600,
            "distinct_id": "u_8812",
            "$identified_id": "u_8812",
            "$anon_id": "2a1c3f0e-6b7d-4e8f-9a0b-1c2d3e4f5a6b",
            "$insert_id": "ins-identify",
        },
    }
    event = {
        "event": "Plan Viewed",
        "properties": {
            "time": 1717243500,
            "distinct_id": "2a1c3f0e-6b7d-4e8f-9a0b-1c2d3e4f5a6b",
            "$insert_id": "ins-1",
        },
    }
    mapped = {name: map_record("mixpanel", record).call for name, record in (("identify", identify), ("event", event))}
    assert mapped["event"] is not None and mapped["identify"] is not None
    assert mapped["event"]["userId"] == "2a1c3f0e-6b7d-4e8f-9a0b-1c2d3e4f5a6b"  # its line alone
    with IdentityMap() as ids:
        ids.learn(mapped["identify"])
        assert ids.rewrite(mapped["event"])
    assert (mapped["event"]["userId"], mapped["event"]["anonymousId"]) == (
        "u_8812",
        "2a1c3f0e-6b7d-4e8f-9a0b-1c2d3e4f5a6b",
    )

"""`cdp serve`'s judge on its own: a body in, a verdict out, no server (cdpcli.serve.judge)."""

from __future__ import annotations

import base64
import json

import pytest

from cdpcli.serve import Body, Judge
from cdpcli.serve.judge import call_kind, not_found
from tests.conftest import API_KEY, BASIC

STRICT = {"authorization": BASIC, "x-strict-mode": "1"}
PERMISSIVE = {"authorization": BASIC}
TRACK = {"type": "track", "userId": "1", "event": "E"}


def judged(kind, body, headers=STRICT, api_key=API_KEY):
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Judge(api_key).verdict(kind, headers, Body(len(text), text))


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        ("Basic " + base64.b64encode(b"other-key:").decode(), "unauthorized: wrong API key"),
        (f"Bearer {API_KEY}x", "unauthorized: wrong API key"),
        ("Basic !!!", "unauthorized: malformed Basic credentials"),
        ("Basic " + base64.b64encode(b":").decode(), "unauthorized: empty API key"),
        ("", "unauthorized: send Authorization: Basic base64(<api key>:)"),
    ],
)
def test_a_wrong_or_missing_key_is_a_401_and_accepts_nothing(authorization, error):
    verdict = judged("track", TRACK, {"authorization": authorization, "x-strict-mode": "1"})
    assert (verdict.status, verdict.answer, verdict.calls) == (401, {"meta": {"errors": [error]}}, [])


def test_without_a_key_of_its_own_any_non_empty_key_passes():
    assert judged("track", TRACK, {"authorization": "Bearer anything"}, api_key=None).status == 200
    assert judged("track", TRACK, {"authorization": "Bearer "}, api_key=None).status == 401


def test_the_key_is_checked_before_the_body():
    strict = {"authorization": "Bearer wrong", "x-strict-mode": "1"}
    assert judged("track", b"{nope", strict).status == 401


def test_a_wrong_key_without_strict_mode_is_answered_200_and_dropped_as_the_api_does():
    verdict = judged("track", {"userId": "1", "event": "E"}, {"authorization": "Bearer wrong"})
    assert (verdict.status, verdict.calls) == (200, [])
    assert verdict.dropped == ["wrong key; answered 200 as the API does without strict mode"]
    # a missing key is not a wrong one: 401 in both modes
    assert judged("track", {"userId": "1", "event": "E"}, {}).status == 401


def test_a_valid_call_is_accepted_as_recorded():
    verdict = judged("track", {"userId": "1", "event": "E", "sentAt": "2026-01-01T00:00:00.000Z"})
    assert (verdict.status, verdict.answer, verdict.headers, verdict.notes) == (200, {}, {}, [])
    assert verdict.calls == [{"userId": "1", "event": "E", "type": "track"}]  # sentAt dropped, type from the path
    assert verdict.encoded == [None]  # a single call is written out with a fresh json encoding


def test_bad_json_is_a_400_that_says_so():
    verdict = judged("track", b"{nope")
    assert verdict.status == 400 and verdict.calls == []
    [message] = verdict.answer["meta"]["errors"]
    assert message.startswith("invalid JSON")


def test_a_number_that_overflows_a_double_is_bad_json():
    verdict = judged("track", b'{"userId":"1","event":"E","properties":{"v":1e999}}')
    assert verdict.status == 400
    assert verdict.answer["meta"]["errors"] == [
        "invalid JSON: number 1e999 is too large for a JSON number (it overflows a double)"
    ]


def test_nesting_is_counted_from_the_call_and_a_batch_names_the_call_too_deep():
    def nested(levels):
        value = "x"
        for _ in range(levels):
            value = {"a": value}
        return value

    assert judged("batch", {"batch": [TRACK, {**TRACK, "properties": nested(200)}]}).status == 200
    verdict = judged("batch", {"batch": [TRACK, {**TRACK, "properties": nested(201)}]})
    assert (verdict.status, verdict.answer["meta"]["errors"]) == (
        400,
        ["invalid JSON: batch[1]: nesting deeper than 200 levels"],
    )


def test_a_batch_with_one_bad_call_is_a_400_naming_it_in_strict_mode():
    verdict = judged("batch", {"batch": [TRACK, {"type": "track", "userId": "2"}, TRACK]})
    assert (verdict.status, verdict.calls) == (400, [])
    assert verdict.answer == {"meta": {"errors": ["batch[1]: event: Field required"]}}


def test_without_strict_mode_the_bad_call_is_dropped_and_noted_and_the_rest_accepted():
    verdict = judged("batch", {"batch": [TRACK, {"type": "track", "userId": "2"}]}, PERMISSIVE)
    assert (verdict.status, verdict.answer) == (200, {})
    assert verdict.calls == [TRACK]
    assert verdict.encoded == [json.dumps(TRACK, separators=(",", ":")).encode()]  # made by the size check
    assert verdict.notes == [
        "dropped batch[1]: event: Field required (no X-Strict-Mode: 1 header, so answered 200 as the API does)"
    ]


def test_strict_and_permissive_agree_on_everything_but_the_bad_calls():
    good = {"batch": [TRACK, {**TRACK, "userId": "2"}]}
    assert judged("batch", good).calls == judged("batch", good, PERMISSIVE).calls == good["batch"]
    bad = {"batch": [{"type": "track", "userId": "1"}]}
    assert judged("batch", bad).status == 400
    assert (judged("batch", bad, PERMISSIVE).status, judged("batch", bad, PERMISSIVE).calls) == (200, [])


def test_what_reading_found_is_the_answer():
    verdict = Judge(API_KEY).verdict("batch", STRICT, Body(8, None, (400, "body is not valid gzip")))
    assert (verdict.status, verdict.answer) == (400, {"meta": {"errors": ["body is not valid gzip"]}})


def test_a_body_inflated_past_the_limit_is_a_413():
    text = json.dumps({"batch": [{**TRACK, "properties": {"x": "y" * 25_000}}] * 21}).encode()
    verdict = Judge(API_KEY).verdict("batch", STRICT, Body(1_000, text))
    assert verdict.status == 413 and "the limit is 500,000" in verdict.answer["meta"]["errors"][0]


def test_a_person_identified_by_email_alone_is_accepted_and_noted():
    verdict = judged(
        "batch",
        {"batch": [{"type": "identify", "userId": "7"}, {"type": "identify", "traits": {"email": "bo@example.com"}}]},
    )
    assert verdict.status == 200 and len(verdict.calls) == 2
    assert verdict.notes == ["batch[1]: person identified by email 'bo@example.com' (no userId or anonymousId)"]


def test_the_judge_keeps_nothing_between_requests():
    judge = Judge(API_KEY)
    body = json.dumps({"batch": [TRACK]}).encode()
    first = judge.verdict("batch", STRICT, Body(len(body), body))
    assert judge.verdict("batch", STRICT, Body(len(body), body)) == first


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/track", "track"),
        ("/v1/batch/", None),
        ("/v1/batch?x=1", "batch"),
        ("/v1/v1/batch", None),
        ("/v1/x/y/track", None),
        ("/v1/identify/track", None),
        ("/v1/track/", None),
        ("/v1/identify", "identify"),
        ("/v2/track", None),
        ("/v1/nothing", None),
    ],
)
def test_paths_name_the_call_type_or_nothing(path, kind):
    assert call_kind(path) == kind


def test_an_unknown_path_is_a_404_listing_the_paths():
    verdict = not_found("/v1/nothing")
    assert verdict.status == 404
    assert verdict.answer["meta"]["errors"] == [
        "no such path /v1/nothing; the API's paths are /v1/identify|track|page|screen|group|alias|batch"
    ]
    [message] = not_found("/v1/track/").answer["meta"]["errors"]
    assert "without the trailing slash" in message


def test_a_doubled_v1_says_which_base_url_to_give():
    [message] = not_found("/v1/v1/batch", "127.0.0.1:8787").answer["meta"]["errors"]
    assert "holds /v1 twice" in message and "Give http://127.0.0.1:8787 (no /v1)" in message

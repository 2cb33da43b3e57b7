"""What the per-line choices (filters, shards, phases) make of lines that are not plain calls:
a rejects record fed back, a key named twice, a userId of 0. Each case was found by trying the
fast path against the plain path (tests/test_fast_audit.py) with a choice on."""

from __future__ import annotations

import json
import random

from tests.test_import import summary, write_lines


def _record(call: dict, line: int) -> dict:
    """A line of cdp's rejects file (its documented fields), holding `call` as `input`."""
    return {"source": "in.ndjson", "line": line, "error": "HTTP 400", "input": call}


def test_a_rejects_record_fed_back_goes_to_the_phase_of_its_call(send, receiver, tmp_path):
    """--order phased sends profiles first: a fed-back alias or track went out in the first
    phase, ahead of the identify it depends on, when the record (which has no type) was
    taken for phase 0."""
    calls = [
        {"type": "track", "userId": "u1", "event": "Bought"},
        {"type": "alias", "userId": "u1", "previousId": "anon-1"},
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
    ]
    source = write_lines(tmp_path / "rejects.ndjson", [_record(c, n) for n, c in enumerate(calls, 1)])
    run = send("import", str(source), "--order", "phased", "--json")
    assert run.exit_code == 0, run.stderr
    assert [c["type"] for c in receiver.calls] == ["identify", "track", "alias"]


def test_a_rejects_record_fed_back_keeps_its_id_whatever_the_filters(send, receiver, tmp_path):
    """A sample run, then a full run of the same rejects file, must not send a call twice under
    two ids: the derived messageId follows the call in the record, filter or not."""
    source = write_lines(tmp_path / "rejects.ndjson", [_record({"type": "track", "userId": "u1", "event": "E"}, 7)])
    assert send("import", str(source)).exit_code == 0
    assert send("import", str(source), "--types", "track").exit_code == 0
    assert send("import", str(source), "--sample", "1").exit_code == 0
    ids = [call["messageId"] for call in receiver.calls]
    assert len(ids) == 3 and len(set(ids)) == 1, ids


def test_a_key_named_twice_is_rejected_not_filtered_by_its_last_value(send, receiver, tmp_path):
    """`{"event":"Keep","event":"Drop"}` is an invalid line: a filter must not judge it by one of
    its values (a skip would hide it from the rejects file)."""
    line = '{"type":"track","userId":"u1","event":"Keep","event":"Drop"}'
    source = write_lines(tmp_path / "in.ndjson", [line])
    for choice in (["--events", "Keep"], ["--types", "identify"], ["--since", "2020-01-01"]):
        run = send("import", str(source), *choice, "--json")
        result = summary(run)
        assert result["invalid_reasons"] == {"duplicate key": 1}, (choice, result)
        assert result["skipped"] == 0 and receiver.calls == []


def test_a_user_id_of_0_is_the_person_its_calls_are_sharded_by(send, receiver, tmp_path):
    """userId 0 goes out as "0": every call of that person lands on one shard, whatever
    anonymousIds they carry (it was taken for no userId, and dealt by anonymousId)."""
    calls = [{"type": "track", "userId": 0, "anonymousId": f"anon-{i}", "event": "E"} for i in range(24)]
    source = write_lines(tmp_path / "in.ndjson", calls)
    sent = []
    for k in range(2):
        run = send("import", str(source), "--shard", f"{k}/2", "--shard-by", "user", "--json")
        assert run.exit_code == 0, run.stderr
        sent.append(summary(run)["sent"])
    assert sorted(sent) == [0, 24]
    assert {call["userId"] for call in receiver.calls} == {"0"}


def test_a_user_only_call_under_a_linked_anonymous_id_is_sharded_by_the_user_it_is_sent_as(send, receiver, tmp_path):
    """--resolve-identities sends a call whose only id is a userId that the input links as an
    anonymous id (PostHog's $anon_distinct_id, Mixpanel's $anon_id) as the user it resolves to:
    the shard must deal it by that user too, or a person's calls land on two shards."""
    rng = random.Random(7)  # device ids as SDKs make them; "anon-" + the userId would hash alike:
    # CRC-32 is linear, so equal-length ids with a common prefix land on the same shard
    people = {f"user-{i}": f"{rng.getrandbits(128):032x}" for i in range(12)}
    calls: list[dict] = [{"type": "identify", "userId": u, "anonymousId": a} for u, a in people.items()]
    calls += [{"type": "track", "userId": a, "event": "Viewed"} for a in people.values()]
    _each_person_on_one_shard(send, receiver, write_lines(tmp_path / "in.ndjson", calls), people, 24)


def test_a_call_its_resolved_user_makes_too_large_is_refused_as_the_api_counts_it(send, receiver, tmp_path):
    """The API counts a call's compact JSON with DEL (U+007F) escaped as \\u007f, 6 bytes: a call
    of ~5,300 raw DEL characters under 32,000 that its resolved userId takes over must be refused
    (its raw length, a sixth of that, was taken for its size)."""
    from cdpcli.wire import MAX_CALL_BYTES, call_size

    def anonymous_call(count: int) -> dict:
        return {"type": "track", "anonymousId": "device-1", "event": "E", "properties": {"s": "\x7f" * count}}

    probe = write_lines(tmp_path / "probe.ndjson", [anonymous_call(5000)])
    dry = send("import", str(probe), "--dry-run", "--json")
    size = call_size(json.loads(dry.stdout.splitlines()[0])["body"]["batch"][0])
    count = 5000 + (MAX_CALL_BYTES - size) // 6  # the call alone: within 6 bytes of the limit
    user = "u" * 40  # "userId":"uuu…", adds 51 bytes
    lines = [{"type": "identify", "userId": user, "anonymousId": "device-1"}, anonymous_call(count)]
    source = write_lines(tmp_path / "in.ndjson", lines)
    run = send("import", str(source), "--resolve-identities", "--json")
    result = summary(run)
    assert result["invalid_reasons"] == {"too large": 1}, result
    assert [call["type"] for call in receiver.calls] == ["identify"]


def test_a_numeric_anonymous_id_is_sharded_by_the_user_it_resolves_to(send, receiver, tmp_path):
    """An anonymousId written as a number is sent as its text, and resolved as that: the shard
    must deal its call by the user it is sent as (it dealt it by the number's text)."""
    people = {f"user-{i}": 1000 + i for i in range(16)}
    calls: list[dict] = [{"type": "identify", "userId": u, "anonymousId": str(a)} for u, a in people.items()]
    calls += [{"type": "track", "anonymousId": a, "event": "Viewed"} for a in people.values()]
    _each_person_on_one_shard(send, receiver, write_lines(tmp_path / "in.ndjson", calls), people, 32)


def _each_person_on_one_shard(send, receiver, source, people, calls: int) -> None:
    """Import `source` as 2 shards by user with --resolve-identities: every call sent once,
    and all of each person's calls (as sent) by one shard."""
    shards = []
    for k in range(2):
        receiver.calls.clear()
        run = send("import", str(source), "--resolve-identities", "--shard", f"{k}/2", "--shard-by", "user", "--json")
        assert run.exit_code == 0, run.stderr
        shards.append(list(receiver.calls))
    assert sum(len(sent) for sent in shards) == calls
    for user in people:
        holding = {k for k, sent in enumerate(shards) for call in sent if call["userId"] == user}
        assert len(holding) == 1, (user, holding)

"""--resolve-identities end to end into the loopback receiver: anonymous calls sent with the
userId the input links them to (even when the link comes later in the input), from files,
stdin and import_lines, and identically on a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

import cdpcli
from tests.conftest import API_KEY

DATA = Path(__file__).parent / "data" / "vendors"


def summary(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def ndjson(calls: list[dict]) -> bytes:
    return b"".join(json.dumps(call).encode() + b"\n" for call in calls)


def history() -> list[dict]:
    """Anonymous browsing first, the sign-up that links the device later; one device never
    signs up; one reaches its user through an alias chain."""
    calls: list[dict] = []
    for n in range(30):
        calls.append({"type": "page", "anonymousId": f"dev-{n % 3}", "name": "Pricing", "properties": {"n": n}})
    calls.append({"type": "identify", "userId": "ana", "anonymousId": "dev-0", "traits": {"plan": "pro"}})
    calls.append({"type": "alias", "previousId": "dev-1", "userId": "temp-1"})
    calls.append({"type": "track", "userId": "bo", "anonymousId": "temp-1", "event": "Signed Up"})
    return calls


def owners(calls: list[dict]) -> dict[int, str | None]:
    return {call["properties"]["n"]: call.get("userId") for call in calls if call["type"] == "page"}


def test_anonymous_calls_get_the_user_the_input_links_them_to(send, receiver, tmp_path):
    (tmp_path / "history.ndjson").write_bytes(ndjson(history()))
    run = send("import", "history.ndjson", "--resolve-identities", "--json")
    assert run.exit_code == 0, run.stderr
    result = summary(run)
    assert result["identities"] == {"links": 3, "rewritten": 20, "unresolved": 10}
    assert owners(receiver.calls) == {n: {0: "ana", 1: "bo", 2: None}[n % 3] for n in range(30)}
    assert all(call["anonymousId"] for call in receiver.calls if call["type"] == "page")  # kept
    assert "Identities: 3 links learned" in run.stderr


def test_stdin_is_read_twice_through_a_private_copy(send, receiver):
    run = send("import", "--resolve-identities", "--json", input=ndjson(history()).decode())
    assert run.exit_code == 0, run.stderr
    assert summary(run)["identities"]["rewritten"] == 20


def test_a_resumed_run_resolves_identically(send, receiver, tmp_path):
    (tmp_path / "history.ndjson").write_bytes(ndjson(history()))
    args = ("import", "history.ndjson", "--resolve-identities", "--json", "--checkpoint", "ck.json")
    first = send(*args, "--limit", "12")
    assert first.exit_code == 0, first.stderr
    second = send(*args)
    assert second.exit_code == 0, second.stderr
    ids = [call["messageId"] for call in receiver.calls]
    assert len(ids) == len(set(ids)) == 33  # every call once across the two runs
    assert owners(receiver.calls) == {n: {0: "ana", 1: "bo", 2: None}[n % 3] for n in range(30)}


def test_import_lines_resolves_a_posthog_export(receiver, tmp_path):
    target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)
    records = [json.loads(line) for line in (DATA / "posthog" / "input.jsonl").read_text().splitlines()]
    result = cdpcli.import_lines(
        records, target=target, archive="posthog", resolve_identities=True, rejects=str(tmp_path / "r.ndjson")
    )
    assert result.identities == {"links": 2, "rewritten": 1, "unresolved": 0}
    (signed_up,) = [call for call in receiver.calls if call.get("event") == "signed up"]
    # linked by the $identify after it, then by the $create_alias to the chain's end
    assert signed_up["userId"] == "ana@example.com"
    assert signed_up["anonymousId"] == "018f9b10-ffee-7c00-9d00-abcdefabcdef"


def test_preflight_reports_what_it_would_rewrite(send, receiver, tmp_path):
    (tmp_path / "history.ndjson").write_bytes(ndjson(history()))
    run = send("import", "history.ndjson", "--resolve-identities", "--preflight", "--json")
    assert run.exit_code == 0, run.stderr
    assert summary(run)["identities"] == {"links": 3, "rewritten": 20, "unresolved": 10}
    assert receiver.calls == []
    text = send("import", "history.ndjson", "--resolve-identities", "--preflight")
    shown = text.stdout + text.stderr
    assert "20 anonymous calls would be sent with a userId" in shown


def test_preflight_counts_old_anonymous_calls_as_the_input_has_them_and_says_so(send, tmp_path):
    """Beside the Identities line, "2 calls without a userId" read as a contradiction when one
    of them would be sent with a userId: the count is the input's, and the line says so."""
    old = "2020-01-02T00:00:00.000Z"
    calls = [
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": old},
        {"type": "page", "anonymousId": "a1", "name": "P", "timestamp": old},
        {"type": "page", "anonymousId": "nobody", "name": "P", "timestamp": old},
    ]
    (tmp_path / "old.ndjson").write_bytes(ndjson(calls))
    shown = send("import", "old.ndjson", "--resolve-identities", "--preflight").stderr
    assert "Anonymous: 2 calls without a userId older than 30 days in the input" in shown, shown
    assert "see Identities" in shown and "1 anonymous call would be sent with a userId, 1 stay anonymous" in shown
    plain = send("import", "old.ndjson", "--preflight").stderr
    assert "Anonymous: 2 calls without a userId older than 30 days (" in plain, plain


def test_shard_by_user_deals_a_call_by_the_user_it_resolves_to(send, receiver, tmp_path):
    (tmp_path / "history.ndjson").write_bytes(ndjson(history()))
    shards = []
    for k in range(2):
        receiver.calls.clear()
        run = send(
            "import", "history.ndjson", "--resolve-identities", "--shard", f"{k}/2", "--shard-by", "user", "--json"
        )
        assert run.exit_code == 0, run.stderr
        shards.append([json.loads(json.dumps(call)) for call in receiver.calls])
    # every call on exactly one shard, and all of a person's calls on the same one
    assert sum(len(calls) for calls in shards) == 33
    for user in ("ana", "bo"):
        holding = [k for k, calls in enumerate(shards) if any(call.get("userId") == user for call in calls)]
        assert len(holding) == 1, user


def test_rewriting_a_chunk_takes_an_empty_anonymous_id_as_an_id():
    """An identify named by email alone may carry `"anonymousId": ""` (valid): the chunk
    rewriter looked its id up as `anonymousId or userId` and raised KeyError."""
    from cdpcli.importing.identities import IdentityMap

    ids = IdentityMap()
    ids.learn({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    lines = [
        b'{"type":"identify","anonymousId":"","traits":{"email":"a@example.com"}}',
        b'{"type":"page","anonymousId":"a1","name":"P"}',
    ]
    out = ids.rewrite_lines(lines)
    assert out[0] == lines[0]
    assert json.loads(out[1])["userId"] == "u1"
    ids.close()

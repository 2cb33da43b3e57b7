"""Issue 17: an identify that names its person by email alone, as the API documents it.

The document: "when you use Customer.io as a destination, you can pass an empty `userId` or
`anonymousId`, and identify people by their `email` trait". cdp sends such a call with
`"userId": ""` (the documented form), from `cdp identify`, `cdp import` and to `cdp serve`.
Every other call type keeps requiring an id.
"""

from __future__ import annotations

import json

import pytest

from cdpcli import __version__, models
from tests.conftest import post

NEEDS = "identify needs userId or anonymousId, or a non-empty traits.email"
NEEDS_FLAGS = "identify needs --user or --anonymous-id, or --email (a non-empty traits.email)"
USAGE = f"Error: invalid identify call: {NEEDS_FLAGS}\nHint: see `cdp identify --help`\n"


# -- cdp identify ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--email", "ada@example.com", "-t", "plan=pro"],
        ["-t", "email=ada@example.com", "-t", "plan=pro"],
        ["--traits", '{"email":"ada@example.com","plan":"pro"}'],
        ["--traits", '{"plan":"pro"}', "--email", "ada@example.com"],
    ],
    ids=["--email", "-t email=", "--traits", "--traits and --email"],
)
def test_identify_by_email_alone_sends_an_empty_user_id(send, receiver, args):
    run = send("identify", *args)
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    [request] = receiver.requests
    assert request.path == "/v1/identify"
    body = request.body
    assert body["userId"] == ""
    assert "anonymousId" not in body
    assert body["traits"] == {"email": "ada@example.com", "plan": "pro"}
    assert run.stdout == f"identify accepted: HTTP 200, messageId {body['messageId']}\n"


def test_dry_run_body_byte_for_byte(cli, monkeypatch):
    monkeypatch.setattr("cdpcli.wire.now_timestamp", lambda: "2026-01-02T03:04:06.000Z")
    run = cli(
        "identify",
        "--email",
        "ada@example.com",
        "-t",
        "plan=pro",
        "--timestamp",
        "2026-01-02T03:04:05Z",
        "--message-id",
        "m-1",
        "--dry-run",
        "--endpoint",
        "http://127.0.0.1:9",
    )
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout == (
        "POST http://127.0.0.1:9/v1/identify\n"
        "Content-Type: application/json\n"
        f"User-Agent: cdpcli/{__version__}\n"
        "Authorization: Basic ****\n"
        "X-Strict-Mode: 1\n"
        "\n"
        '{"type":"identify","userId":"","messageId":"m-1","timestamp":"2026-01-02T03:04:05.000Z",'
        '"traits":{"plan":"pro","email":"ada@example.com"},'
        f'"context":{{"library":{{"name":"cdpcli","version":"{__version__}"}}}},'
        '"sentAt":"2026-01-02T03:04:06.000Z"}\n'
    )


def test_email_with_a_user_just_sets_the_trait(send, receiver):
    run = send("identify", "--user", "42", "--email", "ada@example.com")
    assert run.exit_code == 0, run.stderr
    [call] = receiver.calls
    assert call["userId"] == "42" and call["traits"] == {"email": "ada@example.com"}
    run = send("identify", "--anonymous-id", "a-1", "--email", "ada@example.com")
    assert run.exit_code == 0, run.stderr
    assert receiver.calls[1]["anonymousId"] == "a-1" and "userId" not in receiver.calls[1]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--email", ""],
        ["-t", "email="],
        ["--traits", '{"email":""}'],
        ["-t", "plan=pro"],
        ["--user", "", "--anonymous-id", ""],
    ],
    ids=["nothing", "--email ''", "-t email=", "--traits empty email", "traits without email", "empty ids"],
)
def test_no_id_and_no_email_is_a_usage_error_naming_the_three_ways(send, receiver, args):
    run = send("identify", *args)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr == USAGE
    assert receiver.requests == []


@pytest.mark.parametrize(
    "command",
    [
        ["track", "-e", "E", "-p", "email=a@e.com"],
        ["page", "-p", "email=a@e.com"],
        ["screen", "-p", "email=a@e.com"],
        ["group", "--group", "g", "-t", "email=a@e.com"],
    ],
)
def test_other_calls_still_need_an_id(send, receiver, command):
    run = send(*command)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.startswith(f"Error: invalid {command[0]} call: {command[0]} needs --user or --anonymous-id\n")
    assert receiver.requests == []


# -- cdp import -----------------------------------------------------------------------------


def test_the_strict_flavour_sends_email_only_identifies_to_the_plain_path():
    strict = models.adapter("any", "strict")
    line = b'{"type":"identify","traits":{"email":"a@e.com"}}'
    assert not models.strict_rules_hold(strict.validate_json(line))
    # an ordinary line stays on the fast path
    assert models.strict_rules_hold(strict.validate_json(b'{"type":"track","userId":"1","event":"E"}'))
    assert models.strict_rules_hold(
        strict.validate_json(b'{"type":"identify","userId":"1","traits":{"email":"a@e.com"}}')
    )


def test_import_sends_email_only_identifies_and_rejects_lines_with_neither(send, receiver, tmp_path):
    lines = [
        {"type": "identify", "traits": {"email": "a@e.com"}},  # ids absent
        {"type": "identify", "userId": "", "traits": {"email": "b@e.com", "plan": "pro"}},  # the documented form
        {"type": "identify", "userId": None, "anonymousId": None, "traits": {"email": "c@e.com"}},  # nulls: absent
        {
            "type": "identify",
            "userId": "",
            "anonymousId": "",
            "traits": {"email": "d@e.com"},
            "messageId": "m-4",
            "timestamp": "2026-01-02T03:04:05.000Z",
        },
        {"type": "identify", "traits": {"plan": "pro"}},  # neither
        {"type": "identify", "userId": "", "traits": {"email": ""}},  # an empty email is none
        {"type": "identify"},  # neither
        {"type": "track", "event": "E", "properties": {"email": "a@e.com"}},  # other types need an id
        {"type": "track", "userId": "1", "event": "E"},
    ]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = send("import", str(source), "--json")
    assert run.exit_code == 1
    summary = json.loads(run.stdout)
    assert (summary["read"], summary["sent"], summary["invalid"]) == (9, 5, 4)
    identifies = [call for call in receiver.calls if call["type"] == "identify"]
    assert [call["traits"]["email"] for call in identifies] == ["a@e.com", "b@e.com", "c@e.com", "d@e.com"]
    assert all(call["userId"] == "" for call in identifies)
    assert "anonymousId" not in identifies[2]  # null is absent
    assert identifies[3]["messageId"] == "m-4" and identifies[3]["anonymousId"] == ""
    assert [call["userId"] for call in receiver.calls if call["type"] == "track"] == ["1"]
    for line_no in (5, 6, 7):
        assert f"{source}:{line_no}: {NEEDS}\n" in run.stderr
    assert f"{source}:8: track needs userId or anonymousId\n" in run.stderr
    rejects = [json.loads(line) for line in (tmp_path / "cdp-rejects.ndjson").read_text().splitlines()]
    assert [(r["line"], r["error"]) for r in rejects] == [
        (5, NEEDS),
        (6, NEEDS),
        (7, NEEDS),
        (8, "track needs userId or anonymousId"),
    ]


# -- cdp serve ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        {"traits": {"email": "a@e.com"}},
        {"userId": "", "traits": {"email": "a@e.com"}},
        {"userId": None, "anonymousId": "", "traits": {"email": "a@e.com", "plan": "pro"}},
    ],
    ids=["ids absent", "empty userId", "null and empty ids"],
)
def test_serve_accepts_identifies_by_email(receiver, call):
    status, answer = post(receiver, "/v1/identify", call)
    assert (status, answer) == (200, {})
    status, answer = post(receiver, "/v1/batch", {"batch": [{"type": "identify", **call}]})
    assert (status, answer) == (200, {})
    assert [received["traits"] for received in receiver.calls] == [call["traits"]] * 2


@pytest.mark.parametrize(
    ("path", "call", "error"),
    [
        ("/v1/identify", {"traits": {"plan": "pro"}}, NEEDS),
        ("/v1/identify", {"userId": "", "traits": {"email": ""}}, NEEDS),
        ("/v1/identify", {"anonymousId": ""}, NEEDS),
        ("/v1/track", {"event": "E", "traits": {"email": "a@e.com"}}, "track needs userId or anonymousId"),
        ("/v1/track", {"event": "E", "properties": {"email": "a@e.com"}}, "track needs userId or anonymousId"),
        ("/v1/page", {"userId": "", "traits": {"email": "a@e.com"}}, "page needs userId or anonymousId"),
    ],
)
def test_serve_refuses_calls_with_neither(receiver, path, call, error):
    status, answer = post(receiver, path, call)
    assert (status, answer) == (400, {"meta": {"errors": [error]}})
    kind = path.rsplit("/", 1)[1]
    status, answer = post(receiver, "/v1/batch", {"batch": [{"type": kind, **call}]})
    assert (status, answer) == (400, {"meta": {"errors": [f"batch[0]: {error}"]}})
    assert receiver.calls == []


def test_email_given_twice_or_blank_is_a_usage_error(cli):
    run = cli("identify", "--email", "a@example.com", "-t", "email=b@example.com", "--dry-run")
    assert run.exit_code == 2 and "--email and -t email=… both give the email" in run.stderr and run.stdout == ""
    run = cli("identify", "--email", "   ", "--dry-run")
    assert run.exit_code == 2 and "--email" in run.stderr and run.stdout == ""

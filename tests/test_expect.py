"""`cdp expect`: the core (cdpcli.expect: parsing, every kind of check, passing and failing) and
the command against a real receiver over loopback (exit codes, text, --json, --junit)."""

from __future__ import annotations

import json
import os
import socket
import threading
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdpcli import expect as core
from cdpcli.errors import UsageError
from cdpcli.expect.lines import json_lines, toml_lines
from cdpcli.serve import Receiver
from tests.conftest import API_KEY, BASIC, post

FILE = """\
timeout = 2
no_rejects = true

[[expect]]
name = "sign-up is tracked"
match = { type = "track", event = "Signed Up", properties = { plan = "pro" } }
count = 1

[[expect]]
match = { event = "Debug Ping" }
absent = true

[[sequence]]
user = "42"
events = ["Signed Up", "Trial Started"]

[plan.events."Signed Up"]
required = ["plan"]
properties = { plan = "string", seats = "integer" }
additional = false

[plan.events."Trial Started"]
"""


def track(user, event, **properties):
    return {"type": "track", "userId": user, "event": event, "properties": properties}


GOOD = [track("42", "Signed Up", plan="pro", seats=3), track("42", "Trial Started")]


def checked(text, calls, rejects=()):
    return core.check(core.parse(text, "t.toml"), [dict(c, _seq=n) for n, c in enumerate(calls, 1)], list(rejects))


def test_every_check_holds_for_the_right_calls():
    results = checked(FILE, GOOD)
    assert [(r.kind, r.ok) for r in results] == [
        ("expect", True),
        ("absent", True),
        ("sequence", True),
        ("plan", True),
        ("plan", True),
        ("plan", True),
        ("no_rejects", True),
    ]


def test_a_failed_match_shows_the_closest_call_and_the_difference():
    [result, *_] = checked(FILE, [track("42", "Signed Up", plan="free"), track("7", "Other")])
    assert not result.ok and result.problem == "0 matched" and not result.final
    assert result.closest["properties"] == {"plan": "free"}
    assert result.differences == ['properties.plan: expected "pro", got "free"']
    text = core.report([result])
    assert "FAIL sign-up is tracked" in text and "expected: exactly 1 call matching" in text
    assert "closest call (#1)" in text and '- properties.plan: expected "pro", got "free"' in text


@pytest.mark.parametrize(
    ("entry", "count", "ok"),
    [
        ("count = 2", 2, True),
        ("count = 2", 3, False),
        ("min = 2", 3, True),
        ("min = 2", 1, False),
        ("max = 1", 1, True),
        ("max = 1", 2, False),
        ("min = 1\nmax = 2", 2, True),
    ],
)
def test_counts(entry, count, ok):
    text = f'[[expect]]\nmatch = {{ event = "E" }}\n{entry}\n'
    [result] = checked(text, [track("1", "E")] * count)
    assert result.ok is ok


def test_partial_deep_match():
    call = {"type": "track", "event": "E", "userId": "1", "properties": {"a": {"b": [1, {"c": True}]}, "x": 1}}
    assert core.contains(call, {"properties": {"a": {"b": [1, {"c": True}]}}})
    assert not core.contains(call, {"properties": {"a": {"b": [1]}}})  # arrays match whole
    assert not core.contains(call, {"properties": {"x": True}})  # true is not 1
    assert core.differences(call, {"properties": {"y": 2}}) == ["properties.y: missing (expected 2)"]


def test_absent_fails_on_a_matching_call():
    [_, absent, *_] = checked(FILE, [*GOOD, track("42", "Debug Ping")])
    assert not absent.ok and absent.closest["event"] == "Debug Ping" and absent.problem == "1 call matched"


def test_sequence_out_of_order_fails_naming_what_is_missing():
    [*_, sequence, _, _, _, _] = checked(FILE, list(reversed(GOOD)))
    assert not sequence.ok
    assert sequence.problem == "no 'Trial Started' after 'Signed Up'; user 42 has: Trial Started, Signed Up"


def test_plan_reports_the_four_kinds_of_violation():
    calls = [track("42", "Signed Up", seats="3", coupon="X"), track("42", "Trial Started"), track("1", "Surprise")]
    results = [r for r in checked(FILE, calls) if r.kind == "plan"]
    signed_up, trial, unplanned = results
    assert not signed_up.ok and signed_up.differences == [
        "Required-Missing: plan",
        'Datatype-Mismatch: seats must be integer, got "3"',
        "Additional-Properties: coupon is not in the plan",
    ]
    assert trial.ok
    assert not unplanned.ok and unplanned.problem == "Unplanned-Event: Surprise"


def test_no_rejects_names_the_first_reject():
    reject = {"path": "/v1/track", "status": 400, "errors": ["event: Field required"], "body": {}}
    [result] = [r for r in checked(FILE, GOOD, [reject]) if r.kind == "no_rejects"]
    assert not result.ok and result.problem == "1 rejected; the first: /v1/track 400: event: Field required"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("timeout = \n", "t.toml:1", "invalid TOML"),
        ("[[expect]]\nname = 'x'\n", "t.toml:1", "expect[0] needs match"),
        ("no_rejects = true\n\n[[expect]]\nmatch = {event='E'}\ncount = 1\nmin = 1\n", "t.toml:3", "count, or min"),
        ("[[expect]]\nmatch = {event='E'}\nabsent = 'yes'\n", "t.toml:3", "absent must be true or false"),
        ("[[sequence]]\nuser = '1'\nevents = ['A']\n", "t.toml:3", "two event names or more"),
        ('[plan.events."A"]\nproperties = { a = "text" }\n', "t.toml:2", "unknown type 'text'"),
        ("colour = 1\n", "t.toml:1", "unknown key 'colour'"),
        # the line of the key at fault, not of its table, nor the file's first line
        ("[[expect]]\nname = 'a'\nmatch = {event='E'}\ncount = -1\n", "t.toml:4", "count must be a whole number"),
        ("[[expect]]\nmatch = {event='E'}\n\n[[expect]]\nmatch = {event='F'}\ncolour = 1\n", "t.toml:6", "'colour'"),
        ("timeout = 5\nexpect = [{ match = { event = 'E' }, max = -2 }]\n", "t.toml:2", "expect[0].max"),
        ("[plan.events]\n'Signed Up' = { required = 'plan' }\n", "t.toml:2", "required must be a list"),
        ("[plan.events.\"Signed Up\"]\nrequired = []\n\n  additional = 'no'\n", "t.toml:4", "additional must be"),
        (
            "[[expect]]\n[expect.match]\nevent = 'E'\n[[expect]]\nmin = 'x'\n",
            "t.toml:4",
            "needs match",
        ),
        ("", "t.toml", "nothing to check"),
    ],
)
def test_bad_files_say_where(text, where, message):
    with pytest.raises(core.ExpectFileError) as caught:
        core.parse(text, "t.toml")
    assert caught.value.message.startswith(f"{where}: ") and message in caught.value.message
    assert caught.value.exit_code == 2


def test_json_file_errors_name_the_line_of_the_key():
    text = '{\n  "timeout": 5,\n  "expect": [\n    {"match": {"event": "E"}},\n    {"match": {"event": "F"},\n     "count": -1}\n  ]\n}\n'
    with pytest.raises(core.ExpectFileError, match=r"^t.json:6: expect\[1\]\.count must be a whole number"):
        core.parse(text, "t.json")
    with pytest.raises(core.ExpectFileError, match=r"^t.json:3: expect\[0\] needs match"):
        core.parse('{"timeout": 5,\n "no_rejects": false,\n "expect": [{"name": "x"}]}', "t.json")


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(_names, _values, max_size=4), st.sampled_from([None, 1, 2]))
def test_json_lines_name_the_line_each_key_is_written_on(document, indent):
    text = json.dumps(document, indent=indent)
    lines = json_lines(text)

    def walk(value, path):
        members = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
        for key, item in members:
            line = text.splitlines()[lines[(*path, key)] - 1]
            if isinstance(key, str):
                assert json.dumps(key) + ":" in line
            walk(item, (*path, key))

    walk(document, ())


def test_toml_lines_follow_arrays_of_tables_and_dotted_headers():
    text = '[[expect]]\nmatch = {}\n[[expect]]\n[expect.match]\nevent = "E"\n[plan.events."Signed Up"]\nx.y = 1\n'
    assert toml_lines(text) == {
        ("expect", 0): 1,
        ("expect", 0, "match"): 2,
        ("expect", 1): 3,
        ("expect", 1, "match"): 4,
        ("expect", 1, "match", "event"): 5,
        ("plan", "events", "Signed Up"): 6,
        ("plan", "events", "Signed Up", "x", "y"): 7,
    }


def test_json_files_and_their_errors():
    spec = core.parse('{"expect": [{"match": {"event": "E"}}]}', "t.json")
    assert spec.expects[0].match == {"event": "E"}
    with pytest.raises(core.ExpectFileError, match=r"^t.json:2: invalid JSON"):
        core.parse('{"expect":\n ]}', "t.json", json_format=True)


# -- the command, against a real receiver --


@pytest.fixture
def served():
    with Receiver(api_key=API_KEY) as receiver:
        yield receiver


def send_good(receiver):
    post(receiver, "/v1/batch", {"batch": GOOD})


def test_all_hold_exit_0(cli, served, tmp_path):
    send_good(served)
    (tmp_path / "t.toml").write_text(FILE)
    run = cli("expect", "t.toml", "--against", served.url, "--api-key", API_KEY)
    assert (run.exit_code, run.stderr) == (0, "")
    assert run.stdout.splitlines()[0] == "PASS sign-up is tracked"
    assert run.stdout.splitlines()[-1] == "7 of 7 checks held."


def test_failures_exit_1_with_json_and_junit(cli, served, tmp_path):
    post(served, "/v1/batch", {"batch": [track("42", "Signed Up", plan="free"), track("42", "Debug Ping")]})
    post(served, "/v1/track", {"userId": "1"})  # a reject
    (tmp_path / "t.toml").write_text(FILE)
    run = cli(
        "expect",
        "t.toml",
        "--against",
        served.url,
        "--api-key",
        API_KEY,
        "--timeout",
        "0",
        "--json",
        "--junit",
        "r.xml",
    )
    assert run.exit_code == 1 and run.stderr == ""
    result = json.loads(run.stdout)
    assert (result["ok"], result["passed"], result["failed"]) == (False, 2, 5)
    first = result["results"][0]
    assert first["differences"] == ['properties.plan: expected "pro", got "free"'] and first["closest"]["_seq"] == 1
    suite = ElementTree.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("7", "5")
    cases = suite.findall("testcase")
    assert cases[0].get("name") == "sign-up is tracked" and "properties.plan" in cases[0].find("failure").text
    passed = [c.get("name") for c in cases if c.find("failure") is None]
    assert passed == ["plan: Signed Up", "plan: Trial Started"]


def test_expect_waits_for_calls_that_arrive_later(cli, served, tmp_path):
    (tmp_path / "t.toml").write_text('timeout = 30\n[[expect]]\nmatch = { event = "Late" }\n')
    waiting = threading.Event()
    original = served.store.subscribe

    def subscribe(listener):  # the command's server-side wait has begun
        unsubscribe = original(listener)
        waiting.set()
        return unsubscribe

    served.store.subscribe = subscribe
    sender = threading.Thread(target=lambda: waiting.wait(30) and post(served, "/v1/track", track("1", "Late")))
    sender.start()
    run = cli("expect", "t.toml", "--against", served.url, "--api-key", API_KEY)
    sender.join(30)
    assert run.exit_code == 0 and run.stdout.splitlines()[-1] == "1 of 1 check held."


def test_bad_file_exit_2(cli, served, tmp_path):
    (tmp_path / "t.toml").write_text("[[expect]]\nmatch = 3\n")
    run = cli("expect", "t.toml", "--against", served.url)
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith("Error: t.toml:2: expect[0] needs match")
    run = cli("expect", "missing.toml", "--against", served.url, "--json")
    assert run.exit_code == 2 and json.loads(run.stdout)["exit_code"] == 2
    assert "cannot read missing.toml" in run.stderr


def test_unreachable_receiver_exit_6(cli, tmp_path):
    (tmp_path / "t.toml").write_text(FILE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        run = cli("expect", "t.toml", "--against", f"http://127.0.0.1:{port}")
    assert run.exit_code == 6 and run.stdout == ""
    assert run.stderr.startswith(f"Error: cannot reach the receiver at http://127.0.0.1:{port}: connection refused")
    assert run.stderr.endswith("Hint: start it first (cdp serve), or check --against\n")


@pytest.mark.parametrize(
    ("against", "problem"),
    [
        ("notaurl", "'notaurl' is not a URL"),
        ("127.0.0.1:8787", "is not a URL"),
        ("ftp://127.0.0.1:8787", "http:// or https:// only"),
        ("http://:8787", "has no host"),
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://u:p@127.0.0.1:8787", "user name or password"),
    ],
)
def test_a_bad_against_url_is_a_usage_error_naming_the_flag(cli, tmp_path, against, problem):
    (tmp_path / "t.toml").write_text(FILE)
    run = cli("expect", "t.toml", "--against", against)
    assert (run.exit_code, run.stdout) == (2, "")
    first, hint = run.stderr.splitlines()
    assert first.startswith("Error: --against '") and problem in first
    assert hint == "Hint: give the URL that cdp serve prints when it starts, e.g. http://127.0.0.1:8787"
    assert ":p@" not in run.stderr
    run = cli("expect", "t.toml", "--against", against, "--json")
    assert json.loads(run.stdout)["exit_code"] == 2


def test_a_bad_against_url_speaks_the_parameter_to_python_callers():
    with pytest.raises(UsageError) as caught:
        core.check_against(core.parse(FILE, "t.toml"), "notaurl")
    assert caught.value.message == "against= 'notaurl' is not a URL" and caught.value.option == "against"


def test_wrong_key_exit_2_and_never_shown(cli, served, tmp_path):
    """A refused key is configuration: exit 2, one of expect's codes (SPEC: 0, 1, 2, 6)."""
    (tmp_path / "t.toml").write_text(FILE)
    run = cli("expect", "t.toml", "--against", served.url, "--api-key", "wrong-key-123", secret="wrong-key-123")
    assert run.exit_code == 2 and "refused the key (HTTP 401)" in run.stderr
    assert "Hint: it was started with an API key: give the same key (--api-key, or CDP_API_KEY)" in run.stderr
    assert BASIC not in run.stderr


def test_no_key_for_a_receiver_that_wants_one_exit_2(cli, served, tmp_path, monkeypatch):
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    (tmp_path / "t.toml").write_text(FILE)
    run = cli("expect", "t.toml", "--against", served.url, env={"CDP_CONFIG_DIR": str(tmp_path)})
    assert run.exit_code == 2 and "wants an API key (HTTP 401)" in run.stderr, run.stderr


@pytest.mark.parametrize("where", ["env", "profile"])
def test_the_key_is_found_as_every_command_finds_it(cli, served, tmp_path, monkeypatch, where):
    """README: `export CDP_API_KEY=…`, then cdp serve --api-key "$CDP_API_KEY" and cdp expect."""
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    monkeypatch.delenv("CDP_PROFILE", raising=False)
    send_good(served)
    (tmp_path / "t.toml").write_text(FILE)
    env = {"CDP_CONFIG_DIR": str(tmp_path)}
    if where == "env":
        env["CDP_API_KEY"] = API_KEY
    else:
        (tmp_path / "config.toml").write_text(f'[default]\napi-key = "{API_KEY}"\n')
        os.chmod(tmp_path / "config.toml", 0o600)
        os.chmod(tmp_path, 0o700)
    run = cli("expect", "t.toml", "--against", served.url, env=env)
    assert (run.exit_code, run.stderr) == (0, ""), run.stderr
    assert run.stdout.splitlines()[-1] == "7 of 7 checks held."


def test_a_setting_expect_never_uses_does_not_stop_it(cli, served, tmp_path, monkeypatch):
    """Only the key is looked for: a stray CDP_TIMEOUT or a broken config file (a CI job's) did
    stop a check against a keyless receiver with exit 2."""
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    send_good(served)
    (tmp_path / "t.toml").write_text(FILE)
    (tmp_path / "config.toml").write_text("this is [not toml\n")
    env = {"CDP_CONFIG_DIR": str(tmp_path), "CDP_TIMEOUT": "abc", "CDP_API_KEY": API_KEY}
    run = cli("expect", "t.toml", "--against", served.url, env=env)
    assert (run.exit_code, run.stderr) == (0, ""), run.stderr


def test_the_stored_key_goes_only_to_a_receiver_on_this_machine(monkeypatch, tmp_path):
    """$CDP_API_KEY and the profile hold the production key: sent to cdp serve on this machine
    (as tests run it), never to another host unless given as --api-key."""
    from cdpcli.cli.expect import _api_key

    monkeypatch.setenv("CDP_API_KEY", "production-key-1")
    monkeypatch.setenv("CDP_CONFIG_DIR", str(tmp_path))
    for url in ("http://127.0.0.1:8787", "http://localhost:9", "http://[::1]:8787/v1", "http://app.localhost"):
        assert _api_key(None, url) == "production-key-1", url
    for url in ("https://receiver.example.com", "http://10.0.0.5:8787", "http://127.0.0.1.example.com"):
        assert _api_key(None, url) is None, url
        assert _api_key("given", url) == "given"

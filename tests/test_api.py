"""The Python API (`import cdpcli`), driven without the CLI: real HTTP to a receiver on loopback."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdpcli
from cdpcli.importing import ImportEvents
from cdpcli.serve import Receiver
from tests.conftest import API_KEY


@pytest.fixture
def target(receiver):
    return cdpcli.Target(api_key=API_KEY, endpoint=receiver.url)


def rejects_in(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_send_delivers_one_call_and_says_what_became_of_it(target, receiver, capsys):
    result = cdpcli.send("track", {"userId": "42", "event": "Item Purchased", "properties": {"n": 1}}, target=target)
    assert result.ok and result.status == 200 and result.attempts == 1 and result.type == "track"
    [call] = receiver.calls
    assert call["messageId"] == result.message_id
    assert (call["userId"], call["event"], call["properties"]) == ("42", "Item Purchased", {"n": 1})
    assert call["context"]["library"]["name"] == "cdpcli"
    assert capsys.readouterr() == ("", "")  # the core never prints


def test_an_invalid_call_raises_a_usage_error_and_sends_nothing(target, receiver):
    with pytest.raises(cdpcli.InvalidCall) as caught:
        cdpcli.send("track", {"userId": "42"}, target=target)
    assert caught.value.exit_code == cdpcli.ExitCode.USAGE == 2
    assert caught.value.problems == ["event: Field required"]
    with pytest.raises(cdpcli.UsageError):
        cdpcli.send("purchase", {"userId": "42"}, target=target)
    assert receiver.requests == []


def test_a_rejected_key_raises_delivery_error_with_exit_code_3_or_comes_back_unchecked(receiver):
    wrong = cdpcli.Target(api_key="wrong-key-31337", endpoint=receiver.url)
    with pytest.raises(cdpcli.DeliveryError) as caught:
        cdpcli.send("track", {"userId": "42", "event": "E"}, target=wrong)
    assert caught.value.exit_code == 3 and caught.value.status == 401
    assert "wrong-key-31337" not in str(caught.value) + (caught.value.hint or "")
    assert isinstance(caught.value, cdpcli.CdpError)
    result = cdpcli.send("track", {"userId": "42", "event": "E"}, target=wrong, check=False)
    assert not result.ok and result.status == 401 and result.failure is not None
    with pytest.raises(cdpcli.DeliveryError):
        result.raise_for_failure()


def test_an_unreachable_endpoint_is_exit_code_6():
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        unused_port = sock.getsockname()[1]
    target = cdpcli.Target(api_key=API_KEY, endpoint=f"http://127.0.0.1:{unused_port}/v1", retries=0)
    with pytest.raises(cdpcli.DeliveryError) as caught:
        cdpcli.send("identify", {"userId": "42"}, target=target)
    assert caught.value.exit_code == 6 and caught.value.status is None
    # a Python caller is told the setting by its Target name (the CLI says --endpoint)
    assert caught.value.hint == "nothing listens there: check endpoint=, or start `cdp serve`"
    assert caught.value.option == "endpoint"


def test_target_resolve_takes_arguments_over_environment_over_profile(monkeypatch, tmp_path):
    (tmp_path / "config").mkdir(mode=0o700)
    (tmp_path / "config" / "config.toml").write_text(
        '[staging]\napi-key = "profile-key-123456"\nregion = "eu"\ntimeout = 3\n'
    )
    (tmp_path / "config" / "config.toml").chmod(0o600)
    from_profile = cdpcli.Target.resolve(profile="staging")
    assert (from_profile.api_key, from_profile.region, from_profile.timeout) == ("profile-key-123456", "eu", 3.0)
    assert from_profile.base.startswith("https://cdp-eu.customer.io")
    assert from_profile.sources["api-key"] == "profile staging"
    monkeypatch.setenv("CDP_REGION", "us")
    assert cdpcli.Target.resolve(profile="staging").region == "us"
    assert cdpcli.Target.resolve(profile="staging", region="eu").region == "eu"
    assert "profile-key-123456" not in repr(from_profile)


def test_target_resolve_cannot_be_called_on_an_instance():
    target = cdpcli.Target(api_key=API_KEY, endpoint="http://127.0.0.1:8787")
    # a classmethod would answer the production target, ignoring the instance's endpoint
    with pytest.raises(TypeError, match=r"^Target.resolve\(\) builds a new Target .* not on an instance"):
        target.resolve()
    assert hasattr(target, "resolve") and target.base == "http://127.0.0.1:8787/v1"

    class Staging(cdpcli.Target):
        pass

    assert type(Staging.resolve(api_key=API_KEY)) is Staging  # still a classmethod on the class


def test_core_errors_name_the_python_arguments_not_the_flags():
    from cdpcli import operations

    with pytest.raises(cdpcli.UsageError) as caught:
        cdpcli.Target().require_key()
    assert "looked at api_key=, $CDP_API_KEY" in caught.value.message and caught.value.option == "api_key"
    assert caught.value.hint.startswith("pass api_key=KEY, set CDP_API_KEY")
    with pytest.raises(cdpcli.UsageError) as caught:
        cdpcli.Target(api_key=API_KEY, endpoint="http://user:secret@127.0.0.1:8787")
    assert "the API key goes in api_key=, CDP_API_KEY" in caught.value.hint
    with pytest.raises(cdpcli.UsageError) as caught:
        operations.object_delete("acme")
    assert (caught.value.hint, caught.value.option) == ("give user_id= or anonymous_id=", "user_id")
    assert "--" not in caught.value.message + caught.value.hint


def test_target_checks_what_it_is_given():
    with pytest.raises(cdpcli.UsageError, match="region must be us or eu"):
        cdpcli.Target(api_key=API_KEY, region="asia")
    with pytest.raises(cdpcli.UsageError) as caught:
        cdpcli.Target(api_key="bad\nkey-123456")
    assert "bad" not in caught.value.message  # never shown, not even in part
    with pytest.raises(cdpcli.UsageError, match="endpoint"):
        cdpcli.Target(api_key=API_KEY, endpoint="ftp://example.com")
    with pytest.raises(cdpcli.UsageError, match="no API key"):
        cdpcli.send("track", {"userId": "1", "event": "E"}, target=cdpcli.Target())


def test_import_lines_delivers_bytes_str_and_dicts_and_rejects_the_rest(target, receiver, tmp_path, capsys):
    lines = [
        {"type": "track", "userId": "1", "event": "E"},
        '{"type": "identify", "userId": "2"}',
        b'{"type": "page", "userId": "3", "name": "Home"}\n',
        "not json",
        {"type": "track", "userId": "4"},  # no event
        {"type": "track", "userId": "5", "event": "E", "properties": {"at": object()}},  # not JSON
    ]
    result = cdpcli.import_lines(lines, target=target, source="orders-2024", rejects=str(tmp_path / "r.ndjson"))
    assert (result.read, result.sent, result.invalid, result.failed) == (6, 3, 3, 0)
    assert result.exit_code == 1 and not result.ok and result.error is None
    assert sorted(c["userId"] for c in receiver.calls) == ["1", "2", "3"]
    records = rejects_in(tmp_path / "r.ndjson")
    assert [(r["source"], r["line"]) for r in records] == [("orders-2024", 4), ("orders-2024", 5), ("orders-2024", 6)]
    assert "event" in records[1]["error"] and records[0]["input"] == "not json"
    with pytest.raises(cdpcli.DeliveryError, match="3 of 6 calls not delivered"):
        result.raise_for_failure()
    assert capsys.readouterr() == ("", "")


def test_import_lines_derives_message_ids_from_source_and_position(target, receiver, tmp_path):
    lines = [{"type": "track", "userId": str(n), "event": "E"} for n in range(3)]
    rejects = str(tmp_path / "r.ndjson")
    cdpcli.import_lines(lines, target=target, source="a", rejects=rejects)
    cdpcli.import_lines(lines, target=target, source="a", rejects=rejects)
    cdpcli.import_lines(lines, target=target, source="b", rejects=rejects)
    ids = [c["messageId"] for c in receiver.calls]
    assert ids[:3] == ids[3:6]  # a re-run sends the same ids: the API keeps one of each
    assert not set(ids[:3]) & set(ids[6:])  # another source, other ids
    assert len(set(ids[:3])) == 3


def test_import_lines_resumes_from_its_checkpoint(target, receiver, tmp_path):
    lines = [{"type": "track", "userId": str(n), "event": "E"} for n in range(10)]
    checkpoint = str(tmp_path / "ckpt.json")
    first = cdpcli.import_lines(lines, target=target, source="s", checkpoint=checkpoint, rejects=str(tmp_path / "r"))
    assert first.ok and first.sent == 10
    again = cdpcli.import_lines(lines, target=target, source="s", checkpoint=checkpoint, rejects=str(tmp_path / "r"))
    assert (again.read, again.skipped, again.sent) == (10, 10, 0)
    assert len(receiver.calls) == 10
    saved = json.loads(Path(checkpoint).read_text())
    assert saved["sources"] == {
        "<s>": {"settled": 10, "first_line_sha256": saved["sources"]["<s>"]["first_line_sha256"]}
    }


def test_import_lines_from_several_threads_at_once(target, receiver, tmp_path):
    results = {}

    def job(n: int) -> None:
        lines = ({"type": "track", "userId": f"{n}-{i}", "event": "E"} for i in range(200))
        results[n] = cdpcli.import_lines(
            lines,
            target=target,
            source=f"part-{n}",
            checkpoint=str(tmp_path / f"{n}.ckpt"),
            concurrency=2,
            rejects=str(tmp_path / f"{n}.rejects"),
            batch_events=50,
        )

    threads = [threading.Thread(target=job, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [0, 1, 2, 3]
    assert all(r.ok and r.sent == 200 for r in results.values())
    assert len({c["userId"] for c in receiver.calls}) == 800


def test_a_dry_run_shows_each_batch_to_the_events_and_sends_nothing(receiver, tmp_path):
    shown = []

    class Collect(ImportEvents):
        def dry_run(self, request):
            shown.append(json.loads(request.body_bytes()))

    lines = [{"type": "track", "userId": str(n), "event": "E"} for n in range(5)]
    result = cdpcli.import_lines(
        lines,
        target=cdpcli.Target(endpoint=receiver.url),
        source="s",
        dry_run=True,
        batch_events=2,
        observer=Collect(),
        rejects=str(tmp_path / "r"),
    )
    assert result.ok and result.sent == 0 and result.valid == 5 and result.batches == 3
    assert [len(body["batch"]) for body in shown] == [2, 2, 1]
    assert receiver.requests == []


def test_a_rejected_key_stops_the_import_with_exit_code_3(receiver, tmp_path):
    wrong = cdpcli.Target(api_key="wrong-key-31337", endpoint=receiver.url)
    lines = [{"type": "track", "userId": str(n), "event": "E"} for n in range(20)]
    result = cdpcli.import_lines(lines, target=wrong, source="s", rejects=str(tmp_path / "r"), batch_events=5)
    assert result.exit_code == 3 and isinstance(result.error, cdpcli.CdpError)
    assert "rejected the key" in result.error.message and result.sent == 0
    with pytest.raises(cdpcli.CdpError) as caught:
        result.raise_for_failure()
    assert caught.value.exit_code == 3


def test_bad_settings_raise_before_anything_is_sent(target, receiver, tmp_path):
    # the API names its own keywords (the CLI renders the same errors with its flags)
    with pytest.raises(cdpcli.UsageError, match="^concurrency= must be between 1 and 256") as caught:
        cdpcli.import_lines([], target=target, concurrency=0)
    assert caught.value.option == "concurrency" and "--" not in caught.value.message
    with pytest.raises(cdpcli.UsageError, match="^type='purchase'") as caught:
        cdpcli.import_lines([], target=target, type="purchase")
    assert caught.value.option == "type"
    with pytest.raises(cdpcli.UsageError, match="^events= needs at least one name"):
        cdpcli.import_lines([], target=target, events=[])
    with pytest.raises(cdpcli.UsageError, match="^batchsize= is not an import option"):
        cdpcli.import_lines([], target=target, batchsize=5)
    with pytest.raises(cdpcli.UsageError, match="source"):
        cdpcli.import_lines([], target=target, source="")
    assert receiver.requests == []


def test_old_keywords_still_work_with_a_deprecation_warning(receiver, tmp_path):
    target = cdpcli.Target(endpoint=receiver.url)
    seen = []

    class Collect(ImportEvents):
        def dry_run(self, request):
            seen.append(request)

    lines = [{"type": "track", "userId": "1", "event": e} for e in ("A", "B")] + [{"userId": "2", "event": "A"}]
    with pytest.warns(DeprecationWarning) as warned:
        result = cdpcli.import_lines(
            lines,
            target=target,
            dry_run=True,
            rejects=str(tmp_path / "r"),
            only_events=["A"],  # now events=
            default_type="track",  # now type=
            events=Collect(),  # the hooks: now observer=
        )
    assert sorted(str(w.message) for w in warned) == [
        "default_type= is deprecated: use type=",
        "events= for the hooks is deprecated: use observer=",
        "only_events= is deprecated: use events=",
    ]
    assert result.ok and result.valid == 2 and result.skipped_reasons == {"events": 1} and len(seen) == 1
    with pytest.warns(DeprecationWarning), pytest.raises(cdpcli.UsageError, match="only_events= and events= are"):
        cdpcli.import_lines([], target=target, dry_run=True, only_events=["A"], events=["B"])


ITEMS = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("track"), "userId": st.text(min_size=1, max_size=5), "event": st.text(max_size=5)}
    ),
    st.dictionaries(
        st.sampled_from(["type", "userId", "event", "traits"]), st.one_of(st.text(max_size=4), st.integers())
    ),
    st.text(max_size=20),
    st.binary(max_size=20),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(ITEMS, max_size=12))
def test_every_item_ends_delivered_or_rejected(target, receiver, tmp_path_factory, items):
    """Whatever a program hands import_lines, no item is lost or crashes it: each one is
    delivered, or in the rejects file with its position, and the counts say so."""
    receiver.calls.clear()
    rejects = tmp_path_factory.mktemp("p") / "r.ndjson"
    result = cdpcli.import_lines(items, target=target, source="prop", rejects=str(rejects))
    assert result.read == len(items) == result.sent + result.invalid + result.failed + result.blank
    assert result.unsettled == 0 and result.error is None
    assert len(receiver.calls) == result.sent
    lines = {r["line"] for r in rejects_in(rejects)} if result.invalid else set()
    assert len(lines) == result.invalid


def test_a_foreign_write_key_is_never_forwarded_by_any_import(target, receiver, tmp_path, cli):
    """A Segment writeKey left on a call (an archive, a relay) is dropped on every import, not
    only with --from segment: plain, escaped, in a dict, in a file."""
    secret = "segment-write-key-0123456789"
    escaped = secret[::-1]
    lines = [
        {"type": "track", "userId": "1", "event": "E", "writeKey": secret},
        '{"type": "track", "userId": "2", "event": "E", "write\\u004bey": "%s"}' % escaped,
        '{"type": "identify", "userId": "3", "traits": {"writeKey": "kept: not the envelope"}}',
    ]
    result = cdpcli.import_lines(lines, target=target, source="s", rejects=str(tmp_path / "r"))
    assert result.ok and result.sent == 3
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps({"type": "page", "userId": "4", "name": "P", "writeKey": secret}) + "\n")
    assert cli("import", str(source), "--endpoint", receiver.url, "--api-key", API_KEY, "-q").exit_code == 0
    bodies = json.dumps([request.body for request in receiver.requests])
    assert len(receiver.requests) == 2 and "Item" not in bodies and '"userId": "4"' in bodies
    assert secret not in bodies and escaped not in bodies
    assert [("writeKey" in call) for call in receiver.calls] == [False, False, False, False]
    assert receiver.calls[2]["traits"] == {"writeKey": "kept: not the envelope"}


def test_an_import_that_stops_early_releases_its_reader(tmp_path):
    """An import stopped while its reader waits on a full queue (here a rejected key, answered
    slowly while the reader ran ahead) must not leave that thread blocked, holding the caller's
    generator: a long-lived worker would leak one per import."""
    import itertools

    from tests.test_import import wait_for

    closed = threading.Event()

    def endless():
        try:
            for n in itertools.count():
                yield {"type": "track", "userId": str(n), "event": "E"}
        finally:
            closed.set()

    with Receiver(api_key=API_KEY, latency_ms=300) as slow:
        wrong = cdpcli.Target(api_key="wrong-key-31337", endpoint=slow.url)
        result = cdpcli.import_lines(endless(), target=wrong, source="s", rejects=str(tmp_path / "r"), concurrency=1)
    assert result.exit_code == 3
    wait_for(lambda: not any(t.name == "cdp-reader" and t.is_alive() for t in threading.enumerate()), 10)
    wait_for(closed.is_set, 10)


def test_rate_auto_fails_a_batch_the_api_never_stops_refusing(receiver, tmp_path):
    """An endpoint that only ever answers 429: --rate auto gives the batch up after
    MAX_THROTTLED answers, into the rejects file, instead of retrying it forever."""
    from cdpcli.importing.delivery import MAX_THROTTLED
    from tests.fakes import Scripted

    receiver.script.extend(Scripted(429, headers={"Retry-After": "0"}) for _ in range(MAX_THROTTLED))
    target = cdpcli.Target(api_key=API_KEY, endpoint=receiver.url, retries=0)
    lines = [{"type": "track", "userId": str(n), "event": "E"} for n in range(3)]
    result = cdpcli.import_lines(lines, target=target, source="s", rate="auto", rejects=str(tmp_path / "r"))
    assert (result.sent, result.failed, result.throttled) == (0, 3, MAX_THROTTLED)
    assert all("HTTP 429" in record["error"] for record in rejects_in(tmp_path / "r"))


def test_csv_the_csv_module_cannot_read_is_an_invalid_row_naming_the_line(cli, receiver, tmp_path):
    source = tmp_path / "people.csv"
    # one line with a cell past the csv module's limit (64 MB), then a row that is read on
    source.write_bytes(b'userId,email\n1,a@example.com\n2,"b' + b"x" * (65 << 20) + b'"\n3,c@example.com\n')
    run = cli("import", str(source), "--type", "identify", "--endpoint", receiver.url, "--api-key", API_KEY)
    assert run.exit_code == 1, run.stderr
    assert f"{source}:3: a quoted cell is not closed" in run.stderr and "unexpected" not in run.stderr
    assert [call["userId"] for call in receiver.calls] == ["1", "3"]


def test_import_lines_leaves_the_process_as_it_was(target, receiver, tmp_path):
    # the CLI freezes the garbage collector's long-lived objects for its one import; a program
    # (an Airflow or Dask worker) that imports many times keeps its own collector
    import gc
    import signal

    frozen, handler = gc.get_freeze_count(), signal.getsignal(signal.SIGINT)
    lines = [{"type": "track", "userId": str(n), "event": "E"} for n in range(5)]
    assert cdpcli.import_lines(lines, target=target, source="s", rejects=str(tmp_path / "r")).sent == 5
    # nothing newly frozen (objects frozen earlier by CLI runs in this process may be freed)
    assert gc.get_freeze_count() <= frozen and signal.getsignal(signal.SIGINT) is handler

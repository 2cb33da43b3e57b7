"""Pure functions: item parsing, timestamps, URLs, auth, Retry-After, the checkpoint's settled lines; and start-up settings."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpcli.cli.items import apply_items, parse_item
from cdpcli.errors import UsageError
from cdpcli.importing.batches import REF_SHIFT, Batch
from cdpcli.importing.checkpoint import Settlement
from cdpcli.importing.sources import Source
from cdpcli.transport import retry_after_seconds
from cdpcli.wire import auth_header, base_url, format_timestamp, mask_key, parse_timestamp


@pytest.mark.parametrize(
    ("raw", "key", "value"),
    [
        ("name=Ada", "name", "Ada"),
        ("age:=36", "age", 36),
        ("tags:=[1,2]", "tags", [1, 2]),
        ("ok:=true", "ok", True),
        (r"a\=b=c", "a=b", "c"),
        ("a:b=c", "a:b", "c"),
        ("url=http://x:=y", "url", "http://x:=y"),
        ("k=", "k", ""),
        ('nested:={"a":{"b":null}}', "nested", {"a": {"b": None}}),
    ],
)
def test_parse_item(raw, key, value):
    assert parse_item(raw, "-p") == (key, value)


@pytest.mark.parametrize("raw", ["oops", "=x", ":=1"])
def test_parse_item_rejects_missing_key_or_separator(raw):
    with pytest.raises(UsageError) as info:
        parse_item(raw, "-p")
    assert repr(raw) in info.value.message


def test_parse_item_bad_json_names_flag_and_input():
    with pytest.raises(UsageError) as info:
        parse_item("n:=abc", "-t")
    assert "-t 'n:=abc'" in info.value.message and "invalid JSON" in info.value.message


def test_dotted_items_nest_only_when_asked():
    assert apply_items({}, ["page.url=u", "page.title=t", "ip=1"], "-c", dotted=True) == {
        "page": {"url": "u", "title": "t"},
        "ip": "1",
    }
    assert apply_items({}, ["a.b=1"], "-p") == {"a.b": "1"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-11-27T13:31:42Z", "2026-11-27T13:31:42.000Z"),
        ("2026-11-27T13:31:42", "2026-11-27T13:31:42.000Z"),  # naive is UTC
        ("2026-11-27T14:31:42.123456+01:00", "2026-11-27T13:31:42.123Z"),
        ("2026-11-27", "2026-11-27T00:00:00.000Z"),
        ("1700000000", "2023-11-14T22:13:20.000Z"),
        (1700000000.5, "2023-11-14T22:13:20.500Z"),
    ],
)
def test_parse_timestamp(given, expected):
    assert parse_timestamp(given) == expected


def test_parse_timestamp_rejects_text():
    with pytest.raises(ValueError, match="not an ISO-8601"):
        parse_timestamp("yesterday")


def test_format_timestamp_has_milliseconds():
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.006Z"


@pytest.mark.parametrize(
    ("endpoint", "region", "expected"),
    [
        (None, "us", "https://cdp.customer.io/v1"),
        (None, "eu", "https://cdp-eu.customer.io/v1"),
        ("http://127.0.0.1:8787", "us", "http://127.0.0.1:8787/v1"),
        ("http://127.0.0.1:8787/", "us", "http://127.0.0.1:8787/v1"),
        ("http://h/custom/v1/", "eu", "http://h/custom/v1"),
        # an upper-case scheme is still https, so the sender checks certificates
        ("HTTPS://Proxy.example/V1", "us", "https://Proxy.example/V1"),
    ],
)
def test_base_url(endpoint, region, expected):
    assert base_url(endpoint, region) == expected


def test_auth_header_basic_keeps_the_colon_and_bearer_for_region_keys():
    assert auth_header("testsecret") == "Basic dGVzdHNlY3JldDo="
    assert base64.b64decode(auth_header("k")[6:]) == b"k:"
    assert auth_header("pk_eu_abc") == "Bearer pk_eu_abc"
    assert auth_header("sk_us_abc") == "Bearer sk_us_abc"
    assert auth_header("xk_us_abc").startswith("Basic ")


def test_mask_key_shows_only_last_four():
    assert mask_key("sk_us_1234567890abcd") == "****abcd"
    assert mask_key("short") == "****"


def test_retry_after_seconds_and_http_date_capped():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("9999") == 300.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(30.0)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(earlier, now=now.timestamp()) == 0.0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (rb'{"\u0063ontext":{}}', True),  # a key written with escapes
        (rb'{"a\"\u0041":1}', True),
        (rb'{"a":"\u00e9"}', False),  # escapes in values are fine
        (rb'{"a":"x\"\u00e9","b":1}', False),
        (rb'{"a":"\\u00e9"}', False),  # an escaped backslash, then "u"
        (rb'{"a\\\u00e9":1}', True),
        (rb'{"a":"' + rb"\u00e9" * 20_000 + rb'"}', False),  # linear, not catastrophic backtracking
        (rb'{"' + rb"\u00e9" * 20 + rb'":1}', True),
        (rb'{"' + rb"\u0063" * 7 + rb'ontext":1}', True),
    ],
)
def test_has_escaped_key(line, expected):
    from cdpcli.importing.prepare import has_escaped_key

    assert has_escaped_key(line) is expected


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"\s*(:?)')  # a string token, and the colon of a key


@settings(max_examples=300)
@given(
    value=st.recursive(
        st.text(max_size=6) | st.integers(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=8,
    ),
    ascii_only=st.booleans(),
)
def test_has_escaped_key_finds_every_short_key_with_escapes(value, ascii_only):
    """Against a walk over every string token of the line (the reference): every key of up to
    21 characters written with a \\u escape is found (the names the fast path relies on have 17
    at most); a false alarm needs an escaped quote in the line."""
    from cdpcli.importing.prepare import has_escaped_key

    line = json.dumps({"v": value}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    expected = any(match[1] and b"\\u" in match[0] for match in _JSON_STRING.finditer(line))
    if expected or line.find(b'\\"') < 0:
        assert has_escaped_key(line) is expected


def test_the_start_up_runs_no_collection_and_the_import_then_collects_as_before():
    """cdp's start-up leaves the garbage collector off its ~60,000 long-lived objects (88
    collections, 12-14 ms of an import's start); once started(), the interpreter's thresholds
    are back and the start-up's objects are frozen out of later collections."""
    probe = (
        "import gc; from cdpcli.cli import startup; before = gc.get_threshold(); "
        "startup.prepare_process(); collections = sum(s['collections'] for s in gc.get_stats()); "
        "import cdpcli.cli.import_, cdpcli.importing.engine, cdpcli.importing.delivery; "
        "from cdpcli.importing.prepare import Preparer; Preparer(None); "
        "ran = sum(s['collections'] for s in gc.get_stats()) - collections; "
        "startup.started(); "
        "print(ran, gc.get_threshold() == before, gc.get_freeze_count() > 10_000)"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["0", "True", "True"]


def test_pydantic_plugins_are_skipped_unless_the_user_set_the_variable():
    """cdp's start-up skips pydantic's plugin scan; the library leaves a program's pydantic alone."""
    probe = (
        "import sys, os; from cdpcli.cli import startup; startup.prepare_process(); "
        "from pydantic import TypeAdapter; TypeAdapter(int); "
        "print(os.environ['PYDANTIC_DISABLE_PLUGINS'], 'importlib.metadata' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    library = subprocess.run(
        [sys.executable, "-c", "import os, cdpcli; cdpcli.Target; print(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert library.stdout.split() == ["None"]
    ours = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert ours.stdout.split() == ["__all__", "False"]  # nothing scanned, importlib.metadata not loaded
    theirs = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "PYDANTIC_DISABLE_PLUGINS": "some_plugin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert theirs.stdout.split() == ["some_plugin", "True"]  # the user's choice: pydantic's own loader


def test_settled_prefix_per_source_when_a_batch_spans_two_sources():
    """The checkpoint's count per source stops before the first line of any open batch: a batch
    spanning two files holds back both, a batch of one file only that file."""
    sources = [Source("a", "a", b"a"), Source("b", "b", b"b")]
    settlement = Settlement(sources)

    def batch(seq: int, *origins: tuple[int, int]) -> Batch:
        made = Batch(seq=seq)
        for source, line_no in origins:
            made.add(b"{}", source << REF_SHIFT | line_no)
        return made

    spanning, later = batch(1, (0, 9), (0, 10), (1, 1)), batch(2, (1, 2), (1, 3))
    settlement.handled(0, 10)
    settlement.handled(1, 3)
    settlement.opened(spanning)
    settlement.opened(later)
    assert settlement.settled() == [8, 0]
    settlement.closed(spanning)
    assert settlement.settled() == [10, 1]
    settlement.closed(later)
    assert settlement.settled() == [10, 3]


def test_redaction_covers_escaped_forms_of_the_key():
    """A key holding a quote or a backslash comes back escaped when a server echoes it inside
    a JSON error object, or when Python shows it in a repr."""
    import json as _json

    from cdpcli.redaction import add_secret, redact

    key = 'sk_odd"key\\with-quote-99'
    add_secret(key)
    for text in (key, _json.dumps({"error": {"key": key}}), repr({"key": key}), str({"key": key})):
        shown = redact(text)
        assert "odd" not in shown and "with-quote" not in shown, shown


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"event":"a","event":"b"}', "event"),
        ('{"type":"track","properties":{"x":1,"y":2,"x":3}}', "x"),
        ('{"a":[{"k":1},{"k":2,"k":3}]}', "k"),
        ('{"é":1,"\\u00e9":2}', "é"),  # the same key, written escaped once
    ],
)
def test_a_duplicate_key_is_refused_in_any_object(text, key):
    from cdpcli import jsontext

    with pytest.raises(jsontext.JSONTextError, match=f'duplicate key "{key}"'):
        jsontext.loads(text)


def test_the_same_key_in_different_objects_is_fine():
    from cdpcli import jsontext

    assert jsontext.loads('{"name":"a","properties":{"name":"b"},"l":[{"name":1},{"name":2}]}')["name"] == "a"


def test_import_plain_path_rejects_a_duplicate_key():
    from cdpcli.importing.prepare import InvalidLine, Preparer

    preparer = Preparer(None)
    preparer.for_source(Source("in.ndjson", "in.ndjson", b"in.ndjson"))
    with pytest.raises(InvalidLine, match='duplicate key "event"') as caught:
        preparer._slow(1, b'{"type":"track","userId":"u","event":"a","event":"b"}')
    assert caught.value.reason == "duplicate key"

"""A key named twice in one JSON object is refused on import's fast path too: the line is
rejected with reason "duplicate key" whatever its depth and shape, as the plain path, single
calls and `cdp serve` refuse it (parsers disagree on which value wins). Lines without one are
not slowed to the plain path by look-alikes (`\\":` in a value, whitespace before a colon)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpcli.importing import prepare
from cdpcli.importing.prepare import InvalidLine, Preparer
from cdpcli.importing.sources import Source
from cdpcli.jsontext import loads as strict_loads
from tests.test_import_properties import JSON_VALUES, TEXT, calls


@pytest.fixture(autouse=True, params=["jiter", "colon count"])
def reader(request, monkeypatch):
    """Both ways of finding a duplicate: jiter's reader, and the fallback without it."""
    if request.param == "jiter":
        pytest.importorskip("jiter")
        monkeypatch.setattr(prepare, "read_refusing_duplicates", prepare._reader_refusing_duplicates())
    else:
        monkeypatch.setattr(prepare, "read_refusing_duplicates", prepare._read_counting_colons)
    return request.param


def _preparer(*, plain_allowed: bool) -> tuple[Preparer, list[bool]]:
    preparer = Preparer(None)
    preparer.for_source(Source("in.ndjson", "in.ndjson", b"in.ndjson"))
    plain = preparer._slow
    took_plain: list[bool] = []

    def slow(line_no: int, line: bytes) -> bytes:
        took_plain.append(True)
        if not plain_allowed:
            raise AssertionError("took the plain path")
        return plain(line_no, line)

    preparer._slow = slow  # type: ignore[method-assign]
    preparer.plain = plain  # type: ignore[attr-defined]
    return preparer, took_plain


def _objects(value: Any) -> list[dict[str, Any]]:
    """Every object in `value` at any depth (inside objects and inside arrays), outermost first."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _dump(value: Any, target: Any, extra: tuple[int, str, Any], *, ascii_only: bool, spaced: bool) -> str:
    """`value` as JSON, with the object `target` (by identity) given one more (key, value) pair at
    position extra[0]: the only way to write a duplicate key, which no dict holds."""
    comma, colon = (", ", ": ") if spaced else (",", ":")
    if isinstance(value, dict):
        pairs = list(value.items())
        if value is target:
            pairs.insert(extra[0] % (len(pairs) + 1), (extra[1], extra[2]))
        return (
            "{"
            + comma.join(
                json.dumps(key, ensure_ascii=ascii_only)
                + colon
                + _dump(item, target, extra, ascii_only=ascii_only, spaced=spaced)
                for key, item in pairs
            )
            + "}"
        )
    if isinstance(value, list):
        items = (_dump(item, target, extra, ascii_only=ascii_only, spaced=spaced) for item in value)
        return "[" + comma.join(items) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    call=calls(),
    data=st.data(),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
    position=st.integers(0, 50),
    again=JSON_VALUES,
)
def test_a_duplicate_key_anywhere_is_never_sent(call, data, ascii_only, spaced, position, again):
    """Any call of any shape, with a key of any of its objects (top level, traits, properties,
    context, objects in arrays) named a second time at any place, with any value: rejected
    with reason "duplicate key", the message naming the key; and the same call written without
    the duplicate goes out as the plain path sends it."""
    objects = _objects(call)
    target = data.draw(st.sampled_from(objects))
    key = data.draw(st.sampled_from(sorted(target)) if target else TEXT)
    if not target:  # an empty object: a key named twice in it
        target[key] = again
    line = _dump(call, target, (position, key, again), ascii_only=ascii_only, spaced=spaced).encode()
    preparer, _ = _preparer(plain_allowed=True)
    with pytest.raises(InvalidLine) as refused:
        preparer.prepare(7, line)
    assert refused.value.reason == "duplicate key"
    assert json.dumps(key, ensure_ascii=False) in str(refused.value)

    # without the duplicate: the two paths send the same call
    clean = _dump(call, None, (0, "", None), ascii_only=ascii_only, spaced=spaced).encode()
    preparer, _ = _preparer(plain_allowed=True)
    try:
        fast = preparer.prepare(7, clean)
    except InvalidLine as exc:
        with pytest.raises(InvalidLine) as again_refused:
            preparer.plain(7, clean)  # type: ignore[attr-defined]
        assert str(again_refused.value) == str(exc)
        return
    assert strict_loads(fast) == strict_loads(preparer.plain(7, clean))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "line",
    [
        # an escaped quote then a colon in a value, and in a key (the line's `":` count is not its keys')
        b'{"type":"track","userId":"u","event":"E","properties":{"q":"say \\":\\" twice \\":"}}',
        b'{"type":"track","userId":"u","event":"E","properties":{"a\\":b":1,"a":2}}',
        # whitespace before and after the colons, and around the commas
        b'{"type" : "track" , "userId" :"u",  "event":  "E", "properties" : {"a" : 1, "b"\t:\t"x:y"}}',
        # colons everywhere in values: times, URLs, IPv6
        b'{"type":"page","userId":"u","name":"x:y","properties":{"url":"https://e.com:8080/a:b",'
        b'"at":"2024-03-01T01:02:03Z"},"context":{"ip":"2001:db8::1"}}',
        # the same key in different objects is no duplicate
        b'{"type":"track","userId":"u","event":"E","properties":{"userId":"v","event":"F",'
        b'"items":[{"event":1},{"event":2}]},"context":{"page":{"event":"G"}}}',
        # escaped non-ASCII text, and the same text as UTF-8
        b'{"type":"identify","userId":"u","traits":{"city":"M\\u00fcnster","M\xc3\xbcnster":"M\\u00fcnster:"}}',
    ],
)
def test_look_alikes_stay_on_the_fast_path(line):
    preparer, _ = _preparer(plain_allowed=False)
    fast = preparer.prepare(3, line)
    assert strict_loads(fast) == strict_loads(preparer.plain(3, line))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        (b'{"type":"track","userId":"u","event":"a","event":"b"}', "event"),
        (b'{"type":"track","userId":"u","event":"a","properties":{"p":1,"q":2,"p":1}}', "p"),
        # the same key spelled two ways: read, they are one
        (b'{"type":"track","userId":"u","event":"a","properties":{"k":1,"\\u006b":2}}', "k"),
        (b'{"type":"track","userId":"u","event":"a","properties":{"a/b":1,"a\\/b":2}}', "a/b"),
        # whitespace before a colon cannot hide one; nor can an escaped quote and colon in a value
        (b'{"type":"track","userId":"u","event":"a","properties":{"k" :1,"k" : "\\":"}}', "k"),
        # a colon escaped as \\u003a in the kept value
        (b'{"type":"track","userId":"u","event":"a","properties":{"k":1,"k":"\\u003a"}}', "k"),
        (b'{"type":"identify","userId":"u","traits":{"a":[{"b":{"c":1,"c":2}}]}}', "c"),
        (b'{"type":"identify","userId":"u","context":{"ip":"1.2.3.4","ip":"1.2.3.5"}}', "ip"),
    ],
)
def test_duplicates_of_every_kind_are_refused(line, key):
    preparer, took_plain = _preparer(plain_allowed=True)
    with pytest.raises(InvalidLine, match=f"duplicate key {json.dumps(key)}") as refused:
        preparer.prepare(1, line)
    assert refused.value.reason == "duplicate key"
    assert took_plain  # the fast path handed it over: the plain path said why

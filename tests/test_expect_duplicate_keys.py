"""An expectations file in JSON that names a key twice: json.loads keeps the last value
silently (an `expect` entry with two `match` objects checked only the second), so cdp expect
refuses it (exit 2) naming the key, where it is and the line of the repeat. TOML refuses a
repeated key itself; its error names the line too."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdpcli.expect import spec as core
from cdpcli.expect.lines import json_lines

# the audit's file: one entry, two match objects
TWO_MATCHES = '{\n  "timeout": 1,\n  "expect": [\n    {"match": {"event": "A"}, "match": {"event":"B"}}\n  ]\n}\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TWO_MATCHES, 't.json:4: duplicate key "match" in expect[0]'),
        (
            '{"expect": [\n {"match": {"event": "A",\n  "event": "B"}}]}',
            't.json:3: duplicate key "event" in expect[0].match',
        ),
        ('{"timeout": 1,\n"no_rejects": true,\n"timeout": 9}', 't.json:3: duplicate key "timeout" ('),
        (
            '{"plan": {"events": {"Signed Up": {"required": []},\n "Signed Up": {"required": ["plan"]}}}}',
            't.json:2: duplicate key "Signed Up" in plan.events',
        ),
    ],
)
def test_a_json_key_named_twice_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(core.ExpectFileError) as caught:
        core.parse(text, "t.json", json_format=True)
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.exit_code == 2


def test_the_hint_for_two_matches_says_how_to_expect_both() -> None:
    with pytest.raises(core.ExpectFileError) as caught:
        core.parse(TWO_MATCHES, "t.json")
    assert "add an entry to expect" in (caught.value.hint or "")


def test_toml_refuses_a_repeated_key_with_its_line() -> None:
    with pytest.raises(core.ExpectFileError, match=r"^t.toml:4: invalid TOML"):
        core.parse("[[expect]]\nmatch = { event = 'A' }\ncount = 1\nmatch = { event = 'B' }\n", "t.toml")


def test_the_same_key_in_two_entries_is_no_repeat() -> None:
    spec = core.parse('{"expect": [{"match": {"event": "A"}}, {"match": {"event": "B"}}]}', "t.json")
    assert [expect.match for expect in spec.expects] == [{"event": "A"}, {"event": "B"}]


def test_cdp_expect_exits_2_on_the_file(cli, tmp_path) -> None:
    (tmp_path / "e.json").write_text(TWO_MATCHES)
    run = cli("expect", "e.json", "--against", "http://127.0.0.1:9")
    assert run.exit_code == 2 and 'e.json:4: duplicate key "match"' in run.stderr


_names = st.text('ab"é:', min_size=1, max_size=3)
_values = st.recursive(
    st.none() | st.integers() | _names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(_names, _values, max_size=4), st.sampled_from([None, 2]), st.data())
def test_json_lines_report_exactly_the_repeats(document, indent, data) -> None:
    """No repeat in a document json.dumps wrote; one, at the line of the second writing, when a
    member of the top object is written twice."""
    text = json.dumps(document, indent=indent)
    repeats: list = []
    json_lines(text, repeats)
    assert repeats == []
    if document:
        key = data.draw(st.sampled_from(sorted(document)))
        doubled = text[:-1].rstrip() + ",\n" + json.dumps(key) + ": null}"
        repeats = []
        json_lines(doubled, repeats)
        assert repeats[0] == ((key,), doubled.count("\n") + 1)

"""A key named twice in one JSON object is refused where cdp reads JSON in Python (single calls'
@file values, import's plain path): parsers disagree on which value wins."""

from __future__ import annotations


def test_a_properties_file_with_a_duplicate_key_is_refused(send, receiver, tmp_path):
    (tmp_path / "props.json").write_text('{"plan":"pro","seats":3,"plan":"free"}')
    run = send("track", "-u", "1", "-e", "E", "--properties", "@props.json")
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith('Error: --properties @props.json: duplicate key "plan"')
    assert receiver.requests == []

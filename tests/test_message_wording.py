"""Messages say values as the input wrote them and count in English (found by a user's trial)."""

from __future__ import annotations

import pytest

from cdpcli.errors import UsageError
from cdpcli.importing.shard import parse_shard
from cdpcli.importing.vendors.common import BadValue, shown, timestamp_from_ms


def test_a_shard_count_of_0_is_named_as_such():
    with pytest.raises(UsageError) as refused:
        parse_shard("1/0", "line")
    assert "N, the number of shards, must be at least 1" in str(refused.value)
    with pytest.raises(UsageError) as refused:
        parse_shard("4/4", "line")
    assert "the shards are 0/4 to 3/4" in str(refused.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (None, "null"), ("abc", '"abc"'), (1e300, "1e+300"), (10**300, "1" + "0" * 38 + "…")],
)
def test_a_value_is_shown_as_json_and_cut(value, text):
    assert shown(value) == text


def test_a_time_out_of_range_is_not_printed_in_full():
    with pytest.raises(BadValue) as refused:
        timestamp_from_ms(10**300)
    assert len(str(refused.value)) < 80


def test_a_file_named_like_an_option_is_shown_as_named_in_a_reject(cli, tmp_path, monkeypatch):
    """Rejects on the terminal show the core's option ids as flags in the reason only: the file
    `limit=1.ndjson` was shown as `--limit 1.ndjson`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "limit=1.ndjson").write_text('{"type":"track","userId":"1"}\n')
    run = cli("import", "limit=1.ndjson", "--dry-run")
    assert run.exit_code == 1
    assert "limit=1.ndjson:1: event: Field required" in run.stderr, run.stderr

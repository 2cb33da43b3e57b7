"""ImportOptions.build: the one place an import's raw settings (a command line's text, or a
program's values) are normalised and checked, under the CLI's names."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cdpcli.cli.output import OPTION_IDS
from cdpcli.errors import UsageError
from cdpcli.importing.options import BUILD_NAMES, ImportOptions
from cdpcli.importing.pacing import DEFAULT_RATE
from cdpcli.importing.rejects import DEFAULT_REJECTS
from cdpcli.importing.shard import Shard


def test_text_from_a_command_line_and_values_from_a_program_build_the_same_options():
    from_text = ImportOptions.build(
        types="identify, track",
        events="Signed Up,Order Completed",
        since="2024-01-02",
        until="2024-02-01T00:00:00Z",
        shard="1/4",
        shard_by="user",
        rate_budget=400,
        column=["id=userId", "E-mail=traits.email"],
    )
    from_values = ImportOptions.build(
        types=["identify", "track"],
        events=("Signed Up", "Order Completed"),
        since=datetime(2024, 1, 2),  # no zone: UTC
        until=datetime(2024, 2, 1, tzinfo=timezone.utc),
        shard=Shard(1, 4, "user"),
        rate_budget=400.0,
        column={"id": "userId", "E-mail": "traits.email"},
    )
    assert from_text == from_values
    assert from_text.types == ["identify", "track"] and from_text.since == datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert (from_text.rate, from_text.rate_auto) == (100.0, False)  # the budget's share of 4 shards


def test_defaults_and_the_rejects_file_named_or_not():
    plain = ImportOptions.build()
    assert plain == ImportOptions() and plain.rate == DEFAULT_RATE
    assert (plain.rejects, plain.rejects_explicit) == (DEFAULT_REJECTS, False)
    named = ImportOptions.build(rejects=DEFAULT_REJECTS)  # named, even as the default's name
    assert (named.rejects, named.rejects_explicit) == (DEFAULT_REJECTS, True)
    auto = ImportOptions.build(rate="auto")
    assert (auto.rate, auto.rate_auto) == (DEFAULT_RATE, True)


def test_a_base_keeps_what_the_overrides_do_not_set():
    base = ImportOptions.build(types="track", concurrency=4, rate="50")
    changed = ImportOptions.build(base, limit=10)
    assert (changed.types, changed.concurrency, changed.rate, changed.limit) == (["track"], 4, 50.0, 10)
    assert base.limit is None  # the base is not changed
    sharded = ImportOptions.build(shard="1/4")
    assert ImportOptions.build(sharded, shard_by="user").shard == Shard(1, 4, "user")  # K/N kept
    assert ImportOptions.build(sharded, shard=None).shard is None


@pytest.mark.parametrize(
    ("raw", "option", "message"),
    [
        ({"types": ""}, "types", "types= needs at least one name"),
        ({"types": "track,purchase"}, "types", "types='purchase': expected types among"),
        ({"type": "event"}, "type", "type='event': expected one of"),
        ({"concurrency": 0}, "concurrency", "concurrency= must be between 1 and 256, not 0"),
        ({"rate": "fast"}, "rate", "rate='fast': expected requests per second or auto"),
        ({"rate": "5", "rate_budget": 10}, "rate", "rate= and rate_budget= both set the rate"),
        ({"shard": "4/4"}, "shard", "shard='4/4': K must be at least 0 and less than N"),
        ({"shard": "0/4", "shard_by": "person"}, "shard_by", "shard_by='person': expected one of"),
        ({"since": "yesterday"}, "since", "since='yesterday': expected an ISO-8601 date or time"),
        ({"since": "2024-02-01", "until": "2024-01-01"}, "since", "since= must be before until="),
        ({"sample": 0}, "sample", "sample= must be a fraction above 0 and at most 1, not 0"),
        ({"limit": 5, "order": "phased"}, "limit", "limit= cannot be combined with order=phased"),
        ({"order": "random"}, "order", "order='random': expected one of"),
        ({"recent": "maybe"}, "recent", "recent='maybe': expected one of"),
        ({"archive": "heap"}, "archive", "archive='heap': expected one of"),
        ({"max_invalid": 0}, "max_invalid", "max_invalid= must be at least 1, not 0"),
        ({"batch_events": 2501}, "batch_events", "batch_events= must be between 1 and 2,500, not 2,501"),
    ],
)
def test_each_bad_setting_names_its_option_by_id_never_by_flag(raw, option, message):
    with pytest.raises(UsageError) as caught:
        ImportOptions.build(**raw)
    assert caught.value.option == option and caught.value.message.startswith(message)
    assert "--" not in caught.value.message + (caught.value.hint or "")


def test_unknown_names_are_refused_and_old_ones_warn():
    with pytest.raises(UsageError, match="^batchsize= is not an import option"):
        ImportOptions.build(batchsize=5)
    with pytest.warns(DeprecationWarning, match="only_events= is deprecated: use events=") as warned:
        options = ImportOptions.build(only_events=["A"])
    assert options.events == ["A"] and warned[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImportOptions.build(events=["A"])  # today's name: no warning


def test_every_build_name_is_a_field_or_a_raw_form_of_one():
    fields = set(ImportOptions.__dataclass_fields__)
    raw_forms = {"type": "default_type", "rate_budget": "rate", "shard_by": "shard", "column": "csv_columns"}
    assert {raw_forms.get(name, name) for name in BUILD_NAMES} <= fields


@pytest.mark.parametrize(
    ("flags", "error", "hint"),
    [
        (["--types", ","], "--types needs at least one name", None),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "--since must be before --until", None),
        (["--sample", "2"], "--sample must be a fraction above 0 and at most 1, not 2", "e.g. --sample 0.01 for 1 %"),
        (["--limit", "5", "--order", "phased"], "--limit cannot be combined with --order phased", None),
        (["--rate", "9", "--rate-budget", "90"], "--rate and --rate-budget both set the rate", None),
        (
            ["--types", "identify", "--events", "Signup"],  # identify calls alone would be sent, silently
            "--events chooses among track calls, and --types leaves them out",
            "add track to --types (e.g. --types identify,track), or drop --events",
        ),
        (
            ["--types", "page", "--exclude-events", "Test"],
            "--exclude-events chooses among track calls, and --types leaves them out",
            None,
        ),
    ],
)
def test_the_cli_shows_the_same_errors_with_its_flags(cli, tmp_path, flags, error, hint):
    source = tmp_path / "in.ndjson"
    source.write_text('{"type":"track","userId":"1","event":"E"}\n')
    run = cli("import", str(source), "--dry-run", "--json", *flags)
    assert run.exit_code == 2 and f"Error: {error}" in run.stderr
    shown = json.loads(run.stdout)
    assert shown["error"] == error and (hint is None or shown["hint"] == hint)


@given(st.text())
def test_text_without_an_option_form_is_shown_as_it_is(text):
    from cdpcli.cli.output import flagged

    assume("=" not in text)
    assert flagged(text) == text


@given(st.sampled_from(OPTION_IDS), st.sampled_from(["", " and more", ": why", "'x'", "5"]))
def test_every_option_form_becomes_its_flag(option, after):
    from cdpcli.cli.output import flag_of, flagged

    shown = flagged(f"{option}={after}")
    assert shown.startswith(flag_of(option)) and "=" not in shown and shown.endswith(after)


@pytest.mark.parametrize(
    ("given", "option"),
    [
        ({"concurrency": "x"}, "concurrency"),
        ({"batch_bytes": None}, "batch_bytes"),
        ({"limit": 1.5}, "limit"),
        ({"sample": "a third"}, "sample"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"shard_by": "user"}, "shard_by"),
    ],
)
def test_a_value_of_the_wrong_kind_is_a_usage_error_naming_its_option(given, option):
    """A Python caller's text or None where a number is wanted, or a shard_by with no shard to
    deal, is refused as the CLI refuses it, never a TypeError and never run unsharded."""
    with pytest.raises(UsageError) as caught:
        ImportOptions.build(**given)
    assert caught.value.option == option and "--" not in caught.value.message


def test_numbers_given_as_text_are_numbers():
    options = ImportOptions.build(concurrency="4", limit="10", sample="0.5", batch_bytes=100_000.0)
    assert (options.concurrency, options.limit, options.sample, options.batch_bytes) == (4, 10, 0.5, 100_000)
    assert type(options.batch_bytes) is int


@pytest.mark.parametrize(
    ("core", "shown"),
    [
        ("since='rate=5': expected an ISO-8601 date", "--since 'rate=5': expected an ISO-8601 date"),
        ("until='2024-01-01 format=x': bad", "--until '2024-01-01 format=x': bad"),
        (
            "checkpoint='type=track/c.json': cannot create 'type=track/c.json.lock'",
            "--checkpoint 'type=track/c.json': cannot create 'type=track/c.json.lock'",
        ),
        (
            "batch_bytes= must be at most 500,000 (the API's limit), not 5",
            "--batch-bytes must be at most 500,000 (the API's limit), not 5",
        ),
    ],
)
def test_quoted_input_in_a_message_is_never_rewritten_as_a_flag(core, shown):
    """Hive-style paths (`type=track/…`) and values holding `rate=5` are the user's input: the
    CLI shows them as typed; only the core's own option names become flags."""
    from cdpcli.cli.output import flagged

    assert flagged(core) == shown

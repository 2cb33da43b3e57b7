"""An import's options: `ImportOptions`, and `ImportOptions.build`, the one place raw values
(text from a command line, or a program's arguments) are normalised and checked.

Every front end (`cdp import`, the operations' `--from`, `import_lines`) builds its options
here, under one vocabulary: the names below are the option ids. Errors name the option by its
id (`UsageError(..., option="types")`) and write it in the Python form (`types=`); the CLI
renders the same text with its flags (`--types`).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cdpcli.errors import UsageError
from cdpcli.importing.csvrows import parse_columns
from cdpcli.importing.order import check_order
from cdpcli.importing.pacing import check_rate, resolve_rate
from cdpcli.importing.rejects import DEFAULT_REJECTS
from cdpcli.importing.select import ARCHIVES, RECENT_MODES, parse_time
from cdpcli.importing.shard import Shard, parse_shard
from cdpcli.importing.vendors import VENDORS
from cdpcli.wire import CALL_TYPES, DEFAULT_BATCH_BYTES, MAX_BATCH_CALLS, MAX_REQUEST_BYTES

if TYPE_CHECKING:
    from cdpcli.importing.prepare import Preparer
    from cdpcli.importing.source import Source


@dataclass
class ImportOptions:
    """An import's settings, normalised (build() makes them from raw values)."""

    default_type: str | None = None  # option id "type"
    concurrency: int = 16
    batch_bytes: int = DEFAULT_BATCH_BYTES
    batch_events: int = MAX_BATCH_CALLS
    rate: float = 1000.0
    rejects: str = DEFAULT_REJECTS
    rejects_explicit: bool = False  # the rejects path was named (a symlink there is followed)
    checkpoint: str | None = None
    dry_run: bool = False  # validate and batch; show each request (ImportEvents.dry_run), send none
    linger: float = 1.0  # seconds without new input before a partial batch goes
    max_invalid: int | None = None
    checkpoint_every: float = 1.0  # seconds between checkpoint saves
    # inputs
    # "segment" or "rudderstack": drop that archive's envelope keys; a vendor (VENDORS:
    # "mixpanel", "amplitude", …): each line is that tool's export record, mapped to its call
    archive: str | None = None
    csv_columns: dict[str, str] = field(default_factory=dict)  # CSV column -> destination (dotted)
    infer_types: bool = False  # CSV cells that look like numbers or booleans become them
    delimiter: str | None = None  # CSV: the cell separator (None: detected from the header line)
    # choosing what to send (select.py); lines left out are skipped, by reason (the option's id)
    types: list[str] | None = None
    events: list[str] | None = None
    exclude_events: list[str] | None = None
    since: datetime | None = None  # calls timestamped at or after this
    until: datetime | None = None  # and before this
    sample: float | None = None  # the share of calls kept, chosen by a hash of the messageId
    limit: int | None = None  # stop after this many calls
    # calls timestamped in the last 72 hours: "warn" (counted in ImportResult.recent), "skip"
    # (skipped, reason "recent"), "fail" (rejected, reason "recent"); None: not looked at
    recent: str | None = "warn"
    now: datetime | None = None  # the clock of `recent` (None: the time the import starts)
    write_rejects: bool = True  # False: invalid lines are counted, never written (preflight)
    # past one machine
    shard: Shard | None = None  # send only this shard's share (shard.py)
    rate_auto: bool = False  # adapt the rate to the API's 429s, starting at `rate` (delivery.py)
    # two passes: the first learns which anonymous ids belong to which user, the second gives
    # anonymous-only calls that userId (identities.py)
    resolve_identities: bool = False
    order: str = "none"  # or "phased" (order.py): identify/group, then track…, alias, deletes
    # makes the Preparer from default_type (None: Preparer itself); cdp's operations turn each
    # line of ids into its call first (cdpcli.operations.OperationPreparer)
    preparer: Callable[[str | None], Preparer] | None = None

    @classmethod
    def build(cls, base: ImportOptions | None = None, **raw: Any) -> ImportOptions:
        """Options from raw values, normalised and checked (UsageError naming the option).

        The names are BUILD_NAMES, the CLI's (`cdp import --batch-bytes` is `batch_bytes`):
        `type` (for lines without one), `rate` (a number, text, or "auto") with `rate_budget`
        (shared by the shards), `shard` ("K/N" or a Shard) with `shard_by`, `rejects` (None:
        the default file), `column` ("SRC=DEST" texts or a mapping), `types`/`events`/
        `exclude_events` (comma-separated text or names), `since`/`until` (ISO-8601 text or a
        datetime; UTC when no zone is named), and the fields of the same names. Values not
        given keep `base`'s (or the defaults)."""
        raw = renamed(raw)
        unknown = sorted(set(raw) - BUILD_NAMES)
        if unknown:
            raise UsageError(
                f"{unknown[0]}= is not an import option", hint=f"expected one of {', '.join(sorted(BUILD_NAMES))}"
            )
        options = dataclasses.replace(base) if base is not None else cls()
        # "line" is the default dealing: given alone it changes nothing; any other dealing
        # without a shard would send everything from every worker
        if raw.get("shard_by") not in (None, "line") and raw.get("shard", options.shard) is None:
            raise UsageError(
                f"shard_by={raw['shard_by']!r} needs shard=K/N", hint="e.g. shard='0/4'", option="shard_by"
            )
        if "shard" in raw or "shard_by" in raw:
            given = raw.get("shard", options.shard)  # a Shard keeps its mode unless shard_by says
            options.shard = _shard(given, raw.get("shard_by", given.by if isinstance(given, Shard) else "line"))
        if "rate" in raw or "rate_budget" in raw:
            options.rate, options.rate_auto = resolve_rate(raw.get("rate"), raw.get("rate_budget"), options.shard)
        if "rejects" in raw:
            options.rejects_explicit = raw["rejects"] is not None
            options.rejects = raw["rejects"] if raw["rejects"] is not None else DEFAULT_REJECTS
        if "type" in raw:
            options.default_type = raw["type"]
        if "column" in raw:
            options.csv_columns = _columns(raw["column"])
        for name in ("types", "events", "exclude_events"):
            if name in raw:
                setattr(options, name, _names(raw[name]))
        for name in ("since", "until"):
            if name in raw:
                setattr(options, name, _moment(raw[name], name))
        for name in raw.keys() & PLAIN_NAMES:
            setattr(options, name, _typed(name, raw[name]))
        options.check()
        return options

    def check(self) -> None:
        """What the settings must hold before an import starts (UsageError naming the option)."""
        if self.default_type is not None and self.default_type not in CALL_TYPES:
            raise UsageError(f"type={self.default_type!r}: expected one of {', '.join(CALL_TYPES)}", option="type")
        check_limits(self.batch_bytes, self.batch_events, self.concurrency, self.rate)
        if self.max_invalid is not None and self.max_invalid < 1:
            raise UsageError(f"max_invalid= must be at least 1, not {self.max_invalid}", option="max_invalid")
        if self.delimiter is not None:
            from cdpcli.importing.csvrows import check_delimiter  # lazy: start-up (the CSV reader)

            check_delimiter(self.delimiter)
        if self.archive is not None and self.archive not in ARCHIVES + VENDORS:
            raise UsageError(
                f"archive={self.archive!r}: expected one of {', '.join(ARCHIVES + VENDORS)}", option="archive"
            )
        self._check_selection()
        check_order(self.order)
        if self.order == "phased" and self.limit is not None:
            raise UsageError(
                "limit= cannot be combined with order=phased", hint="send a slice with sample= instead", option="limit"
            )

    def _check_selection(self) -> None:
        for name in ("types", "events", "exclude_events"):
            if getattr(self, name) == []:
                raise UsageError(f"{name}= needs at least one name", option=name)
        for kind in self.types or ():
            if kind not in CALL_TYPES:
                raise UsageError(f"types={kind!r}: expected types among {', '.join(CALL_TYPES)}", option="types")
        if self.types and "track" not in self.types and (self.events or self.exclude_events):
            # events choose among track calls, which types leaves out: the user meant something else
            name = "events" if self.events else "exclude_events"
            raise UsageError(
                f"{name}= chooses among track calls, and types= leaves them out",
                hint=f"add track to types= (e.g. types={','.join([*self.types, 'track'])}), or drop {name}=",
                option=name,
            )
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"limit= must be at least 1, not {self.limit}", option="limit")
        if self.sample is not None and not 0 < self.sample <= 1:  # NaN fails too
            raise UsageError(
                f"sample= must be a fraction above 0 and at most 1, not {self.sample:g}",
                hint="e.g. sample=0.01 for 1 %",
                option="sample",
            )
        if self.recent is not None and self.recent not in RECENT_MODES:
            raise UsageError(f"recent={self.recent!r}: expected one of {', '.join(RECENT_MODES)}", option="recent")
        if self.since and self.until and self.since >= self.until:
            raise UsageError("since= must be before until=", option="since")


# build()'s names: these are set as given; the others are normalised first
PLAIN_NAMES = frozenset(
    {
        "concurrency",
        "batch_bytes",
        "batch_events",
        "checkpoint",
        "dry_run",
        "linger",
        "max_invalid",
        "checkpoint_every",
        "archive",
        "infer_types",
        "delimiter",
        "sample",
        "limit",
        "recent",
        "now",
        "write_rejects",
        "order",
        "preparer",
        "resolve_identities",
    }
)
BUILD_NAMES = PLAIN_NAMES | {
    "type",
    "rate",
    "rate_budget",
    "shard",
    "shard_by",
    "rejects",
    "column",
    "types",
    "events",
    "exclude_events",
    "since",
    "until",
}
# the old names of the Python API, kept for one release (a DeprecationWarning each use)
RENAMED = {"only_events": "events", "default_type": "type"}


def check_limits(batch_bytes: int, batch_events: int, concurrency: int, rate: float) -> None:
    if not 1_000 <= batch_bytes <= MAX_REQUEST_BYTES:
        raise UsageError(
            f"batch_bytes= must be between 1,000 and {MAX_REQUEST_BYTES:,} (the API's limit), not {batch_bytes:,}",
            option="batch_bytes",
        )
    if not 1 <= batch_events <= MAX_BATCH_CALLS:
        raise UsageError(
            f"batch_events= must be between 1 and {MAX_BATCH_CALLS:,}, not {batch_events:,}", option="batch_events"
        )
    if not 1 <= concurrency <= 256:
        raise UsageError(f"concurrency= must be between 1 and 256, not {concurrency}", option="concurrency")
    check_rate(rate, "rate")


def check_options(options: ImportOptions, sources: list[Source]) -> None:
    """The settings' own checks, and none of the outputs is one of the inputs."""
    options.check()
    for name in ("rejects", "checkpoint"):
        path = getattr(options, name)
        if path and any(s.is_file and os.path.realpath(s.name) == os.path.realpath(path) for s in sources):
            raise UsageError(
                f"{path} is both an input and an output",
                hint="write rejects/checkpoint to another file (rejects=, checkpoint=)",
                option=name,
            )


def renamed(raw: dict[str, Any]) -> dict[str, Any]:
    """The old names of the Python API as today's, with a DeprecationWarning that points at
    the caller of the function that calls this one."""
    for old, new in RENAMED.items():
        if old in raw:
            warnings.warn(f"{old}= is deprecated: use {new}=", DeprecationWarning, stacklevel=3)
            if new in raw:
                raise UsageError(f"{old}= and {new}= are the same option: give {new}= only", option=new)
            raw = {(new if name == old else name): value for name, value in raw.items()}
    return raw


# What the plain options hold (a Python caller may pass text, as a command line does): the
# dataclass's annotations, read once.
_KINDS = {f.name: str(f.type) for f in dataclasses.fields(ImportOptions)}


def _typed(name: str, value: Any) -> Any:
    """A plain option's value as its field holds it: a whole number or a number from a number
    or its text, a boolean as a boolean; anything else is a UsageError naming the option."""
    kind = _KINDS[name]
    base = kind.removesuffix(" | None")
    if value is None and base != kind:
        return None
    if base == "bool":
        if isinstance(value, bool):
            return value
    elif base in ("int", "float"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if base == "float":
                return float(value)
            if float(value).is_integer():
                return int(value)
        elif isinstance(value, str):
            try:
                return int(value.strip()) if base == "int" else float(value.strip())
            except ValueError:
                pass
    else:
        return value
    wanted = {"int": "a whole number", "float": "a number", "bool": "True or False"}[base]
    raise UsageError(f"{name}={value!r}: expected {wanted}", option=name)


def _shard(value: str | Shard | None, by: str) -> Shard | None:
    """K/N (text, or a Shard's: str() gives K/N) dealt by `by`."""
    return parse_shard(str(value), by) if value is not None else None


def _names(value: str | Iterable[str] | None) -> list[str] | None:
    """Comma-separated text, or names, as a list (None when not given)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return list(value)


def _columns(value: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return parse_columns(list(value))


def _moment(value: datetime | str | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    return parse_time(value, name)

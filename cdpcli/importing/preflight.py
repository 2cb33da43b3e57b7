"""--preflight: an import's inputs read with the same reading, filters and validation, nothing
sent or written, and what the calls would do to a Customer.io workspace counted
(../shared/reference/customerio-jobs.md §1.1, §2):

- calls by type and event; invalid lines by reason;
- distinct userIds (the billed profiles the import may create) and how many never get an email;
- calls timestamped in the last 72 hours (campaign triggers), in the future, or with none;
  anonymous-only calls older than 30 days (anonymous history is kept 30 days);
- epoch timestamps of mixed or wrong magnitude (seconds, milliseconds, microseconds);
- trait and property names that differ only in case, `_`, `-` or spaces (first_name, firstName);
- userIds deleted or suppressed, then sent again later in the input (which re-creates them).

Memory is bounded for any input: userIds are counted exactly (by a 64-bit hash) up to
EXACT_LIMIT, then estimated with a HyperLogLog sketch (and marked so); names and events are
kept up to their own limits. The engine does the reading (a dry run whose batches go nowhere);
this module watches each line the preparer judges.
"""

from __future__ import annotations

import copy
import json
import re
from collections import _count_elements, deque  # type: ignore[attr-defined]  # Counter's counting loop, in C
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import compress, repeat
from operator import itemgetter, not_
from typing import TYPE_CHECKING, Any

from pydantic_core import SchemaValidator, from_json

from cdpcli.importing import select
from cdpcli.importing.events import ImportEvents
from cdpcli.importing.prepare import Preparer
from cdpcli.importing.select import RECENT_WINDOW, moment_of, stamp_value
from cdpcli.importing.shapes import fast_validator
from cdpcli.models.shapes import AnyObject, GroupTraits, IdentifyTraits, PageProperties
from cdpcli.wire import format_timestamp

if TYPE_CHECKING:
    from cdpcli.importing.options import ImportOptions
    from cdpcli.importing.source import Source

EXACT_LIMIT = 1_000_000  # distinct userIds counted exactly; past it, estimated
NAME_LIMIT = 100_000  # distinct trait/property names kept for the drift check
NAME_SETS_KEPT = 10_000  # distinct sets of names counted as sets before they are spread into names
EVENT_LIMIT = 10_000  # distinct event names counted; later new names go to "(other)"
EXAMPLES = 5
# fast-path calls counted together: kept few enough that they die before the garbage collector
# looks at them (its young generation: 700 objects; kept for a 1 MB chunk, it cost ~1.5k
# instructions a call), many enough that each pass in C is worth its set-up
FAST_BATCH = 128
INVALID_SHOWN = 20  # invalid lines listed by file:line in the report (as stderr shows at most)
ANONYMOUS_KEPT = timedelta(days=30)
DELETING = frozenset({"User Deleted", "User Suppressed"})
PERSON_EVENTS = DELETING | {"User Unsuppressed"}  # about a person, not creating one
HAS_EMAIL, DELETED, COUNTED = 1, 2, 4
_MASK = (1 << 64) - 1
# Unix time magnitudes (digits before any decimal point) of dates 2001-2286
EPOCH_UNITS = {10: "seconds", 13: "milliseconds", 16: "microseconds", 19: "nanoseconds"}
# where each type of call keeps its free-form names
SCOPES = {"identify": "traits", "group": "traits", "track": "properties", "page": "properties", "screen": "properties"}
# the typed dicts of traits and properties (cdpcli.models.shapes): names the fast path ignores
FREE_FORM = (AnyObject, IdentifyTraits, GroupTraits, PageProperties)
# a call of each type with names of every kind its traits or properties may hold
_NAMES = {"plan": "pro", "email": "a@example.com", "title": "T", "Total": 1, "nested": {"a": [1]}}
NAME_PROBES: tuple[dict[str, Any], ...] = (
    {"type": "identify", "userId": "u", "traits": _NAMES},
    {"type": "group", "userId": "u", "groupId": "g", "traits": _NAMES},
    {"type": "track", "userId": "u", "event": "E", "properties": _NAMES},
    {"type": "page", "userId": "u", "properties": _NAMES},
    {"type": "screen", "userId": "u", "properties": _NAMES},
)
# a line's one "timestamp" key, given a string with a `-` after four characters (2024-…): text
ISO_GIVEN = re.compile(rb'"timestamp":"....-', re.DOTALL)


class HyperLogLog:
    """A distinct-count sketch: 2**14 one-byte registers (16 KB), ~0.8 % standard error."""

    P = 14

    def __init__(self) -> None:
        self.m = 1 << self.P
        self.registers = bytearray(self.m)

    def add(self, hashed: int) -> None:
        """`hashed`: a well-mixed 64-bit hash (Python's str hash is SipHash)."""
        index = hashed >> (64 - self.P)
        rest = (hashed << self.P) & _MASK
        rank = 64 - self.P + 1 if rest == 0 else 65 - rest.bit_length()
        if rank > self.registers[index]:
            self.registers[index] = rank

    def count(self) -> int:
        m = self.m
        estimate = 0.7213 / (1 + 1.079 / m) * m * m / sum(2.0**-r for r in self.registers)
        zeros = self.registers.count(0)
        if estimate <= 2.5 * m and zeros:
            import math

            estimate = m * math.log(m / zeros)  # linear counting for small sets
        return round(estimate)


def _ceiling_text(moment: datetime) -> str:
    """`moment` rounded up to a whole millisecond, as canonical text."""
    if moment.microsecond % 1000:
        moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
    return format_timestamp(moment)


def normalized(name: str) -> str:
    """first_name, First_name, firstName, first-name and "First Name" are one name."""
    return name.replace("_", "").replace("-", "").replace(" ", "").lower()


def epoch_unit(value: Any) -> str | None:
    """ "seconds", "milliseconds", … for a timestamp that is Unix time (a number or a string of
    digits), by its magnitude; "other" for digits of no plausible magnitude; None for text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        digits = len(str(int(abs(value))))
    elif isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        digits = len(value.strip().split(".")[0])
    else:
        return None
    return EPOCH_UNITS.get(digits, "other")


class Analysis:
    """What --preflight counts, one judged line at a time (the fast path's calls FAST_BATCH at
    a time: see FastCalls)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.recent_from = now - RECENT_WINDOW
        self.anonymous_before = now - ANONYMOUS_KEPT
        # the same moments as canonical text, to compare sent timestamps (whole milliseconds) with:
        # t > now  <=>  t > now cut to ms;  t >= x  <=>  t >= x rounded up to ms (and so for <)
        self.now_text = format_timestamp(now)
        self.recent_text = _ceiling_text(self.recent_from)
        self.anonymous_text = _ceiling_text(self.anonymous_before)
        self.by_event: dict[str, int] = {}
        self.other_events = 0
        self.users: dict[int, int] = {}  # userId hash -> HAS_EMAIL flag (up to EXACT_LIMIT)
        self.sketch: HyperLogLog | None = None  # past EXACT_LIMIT: every userId hash
        self.untracked = 0  # calls of userIds past the limit (not in `users`)
        self.deleted: dict[int, int] = {}  # userId hash -> DELETED | COUNTED (up to EXACT_LIMIT)
        self.deleted_full = False
        self.resent = 0
        self.resent_examples: list[str] = []
        self.recent = 0
        self.future = 0
        self.missing = 0
        self.anonymous_old = 0
        self.epoch: dict[str, int] = {}
        self.iso = 0
        self.names: dict[str, dict[str, str]] = {"traits": {}, "properties": {}}  # name -> normalized
        self.spellings: dict[str, dict[str, dict[str, int]]] = {"traits": {}, "properties": {}}
        self.names_full = False
        self.name_sets: dict[str, dict[tuple[str, ...], int]] = {"traits": {}, "properties": {}}
        self.pending = FastCalls(self)

    # each judged line ------------------------------------------------------------------------

    def stamp(self, line: bytes, sent: str | None = None) -> bool:
        """Every judged line (valid or not): count the form of its timestamp; `sent`: the
        timestamp the call is sent with (None for an invalid line). True when it has one."""
        if sent is not None and line.find(b'"timestamp":"%s"' % sent.encode()) >= 0:
            if line.count(b'"timestamp"') == 1:
                self.iso += 1  # given as it is sent (the common case: no parse of the line)
                return True
        elif line.find(b'"timestamp"') < 0:
            return False
        self._form(line)
        return True

    def given(self, line: bytes) -> None:
        """A valid call's line that gave it a timestamp: count the form it was given in."""
        if line.count(b'"timestamp"') != 1 or ISO_GIVEN.search(line) is None:
            self._form(line)
        else:
            self.iso += 1

    def _form(self, line: bytes) -> None:
        value = stamp_value(line)
        unit = epoch_unit(value)
        if unit is not None:
            self.epoch[unit] = self.epoch.get(unit, 0) + 1
        elif isinstance(value, str):
            self.iso += 1

    def call(self, call: dict[str, Any], stamped: bool) -> None:
        """A valid call as it is sent (the plain path's); `stamped`: the input gave it a timestamp."""
        self.pending.flush()  # in the order read (deletes, limits)
        kind = call.get("type")
        event = call.get("event") if kind == "track" else None
        if event is not None:
            self.events({event: 1})
        user = call.get("userId")
        if stamped:
            self.when(call.get("timestamp"), user)
        else:
            self.missing += 1
        scope = SCOPES.get(kind)  # type: ignore[arg-type]
        if scope is not None:
            values = call.get(scope)
            if isinstance(values, dict) and values:
                self.count_names(scope, [tuple(values)])
        if isinstance(user, str) and user:
            hashed = hash(user)
            if not self.person(hashed, user, event):
                self.user(hashed, lambda: _has_email(call))

    def events(self, counted: dict[str, int]) -> None:
        """Track calls by event (in the order first seen), up to EVENT_LIMIT names."""
        counts = self.by_event
        for event, count in counted.items():
            if event in counts or len(counts) < EVENT_LIMIT:
                counts[event] = counts.get(event, 0) + count
            else:
                self.other_events += count

    def when(self, stamp: Any, user: Any) -> None:
        """Count a sent timestamp as recent, future or old-and-anonymous. A call is sent with a
        canonical timestamp (…T…:…:….mmmZ), which compares as text as the time it is: no parse."""
        if isinstance(stamp, str) and len(stamp) == 24:
            if stamp > self.now_text:
                self.future += 1
            elif stamp >= self.recent_text:
                self.recent += 1
            elif not user and stamp < self.anonymous_text:
                self.anonymous_old += 1
            return
        moment = moment_of(stamp)  # a year before 1000 (written shorter)
        if moment is not None:
            if moment > self.now:
                self.future += 1
            elif moment >= self.recent_from:
                self.recent += 1
            elif not user and moment < self.anonymous_before:
                self.anonymous_old += 1

    def person(self, hashed: int, user: str, event: Any) -> bool:
        """Deletes and suppressions, and calls of a userId deleted before; True for a call
        about a person (which creates no profile)."""
        if event in PERSON_EVENTS:
            if event in DELETING:
                if hashed in self.deleted or len(self.deleted) < EXACT_LIMIT:
                    self.deleted[hashed] = DELETED
                else:
                    self.deleted_full = True
            return True
        if self.deleted.get(hashed) == DELETED:  # sent again after its delete: re-created
            self.deleted[hashed] = DELETED | COUNTED
            self.resent += 1
            if len(self.resent_examples) < EXAMPLES:
                self.resent_examples.append(user)
        return False

    def user(self, hashed: int, has_email: Callable[[], bool]) -> None:
        """A userId's call (`hashed`: its hash); `has_email`: whether the call gives it an
        email (asked only when that matters)."""
        users = self.users
        flags = users.get(hashed)
        if flags is None:
            if self.sketch is None and len(users) < EXACT_LIMIT:
                users[hashed] = HAS_EMAIL if has_email() else 0
                return
            if self.sketch is None:
                self.sketch = HyperLogLog()
                for known in users:
                    self.sketch.add(known & _MASK)
            self.sketch.add(hashed & _MASK)
            self.untracked += 1
        elif not flags and has_email():
            users[hashed] = HAS_EMAIL

    def count_names(self, scope: str, name_sets: Any) -> None:
        """Count the names of calls' traits or properties (`name_sets`: each call's names, in
        a tuple). Calls of one kind mostly carry the same names: each set of names is counted
        as one (one lookup a call instead of four a name), and the sets are spread into names
        when too many pile up, and for the report."""
        sets = self.name_sets[scope]
        _count_elements(sets, name_sets)
        if len(sets) > NAME_SETS_KEPT:
            self._spread(scope)

    def _spread(self, scope: str) -> None:
        """Fold the counted sets of names into the counts of each name (in the order first seen)."""
        known = self.names[scope]
        spellings = self.spellings[scope]
        for names, count in self.name_sets[scope].items():
            for name in names:
                norm = known.get(name)
                if norm is None:
                    if len(known) >= NAME_LIMIT:
                        self.names_full = True
                        continue
                    norm = known[name] = normalized(name)
                group = spellings.get(norm)
                if group is None:
                    spellings[norm] = {name: count}
                else:
                    group[name] = group.get(name, 0) + count
        self.name_sets[scope] = {}

    # the report ------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        self.pending.flush()
        for scope in self.name_sets:
            self._spread(scope)
        users = self.users
        estimated = self.sketch is not None
        distinct = max(self.sketch.count(), len(users)) if self.sketch is not None else len(users)
        without = list(users.values()).count(0)  # (flags: 0 or HAS_EMAIL)
        if estimated and users:
            without = round(without * distinct / len(users))  # the first EXACT_LIMIT as a sample
        by_event = dict(sorted(self.by_event.items(), key=lambda item: (-item[1], item[0])))
        if self.other_events:
            by_event["(other)"] = self.other_events
        epoch_units = {unit for unit in self.epoch if unit != "other"}
        drift = {
            scope: {
                norm: dict(sorted(group.items(), key=lambda item: (-item[1], item[0])))
                for norm, group in sorted(spellings.items())
                if len(group) > 1
            }
            for scope, spellings in self.spellings.items()
        }
        return {
            "by_event": by_event,
            "users": {
                "distinct": distinct,
                "without_email": without,
                "estimated": estimated,
            },
            "timestamps": {
                "now": self.now.isoformat(timespec="seconds"),
                "recent": self.recent,
                "future": self.future,
                "missing": self.missing,
                "anonymous_older_than_30_days": self.anonymous_old,
                "iso": self.iso,
                "epoch": dict(sorted(self.epoch.items())),
                "epoch_mixed": len(epoch_units) > 1,  # seconds and milliseconds, …
                "epoch_suspect": sum(n for unit, n in self.epoch.items() if unit != "seconds"),
            },
            "name_drift": drift,
            "name_drift_truncated": self.names_full,
            "deleted_then_sent": {
                "users": self.resent,
                "examples": list(self.resent_examples),
                "truncated": self.deleted_full,
            },
        }


class FastCalls:
    """The fast path's calls, counted FAST_BATCH at a time: passes in C over lists (map,
    compress, Counter's counting loop, sums of comparisons, one split of the joined lines)
    instead of ~15k instructions of bytecode, method calls and byte scans a call (callgrind).
    Each call is kept as the strict models' dict of it (canonical userId and timestamp; the
    names of its traits or properties when `named`, see naming_validator), its input line
    (the call as sent but for those) and the call as sent."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.fasts: list[dict[str, Any]] = []
        self.lines: list[bytes] = []
        self.readys: list[bytes] = []
        self.default_type: str | None = None  # the type of a call whose strict dict has none
        # the validated calls hold every name of their traits and properties (naming_validator)
        self.named = True

    def flush(self) -> None:
        fasts = self.fasts
        if not fasts:
            return
        analysis = self.analysis
        counted: dict[str, int] = {}
        # (the strict models of other types have no "event": None for them, dropped)
        _count_elements(counted, filter(None, map(dict.get, fasts, repeat("event"))))
        analysis.events(counted)
        users = list(map(dict.get, fasts, repeat("userId")))
        stamps = list(map(dict.get, fasts, repeat("timestamp")))
        self._stamps(stamps, users)
        self._names()
        if PERSON_EVENTS.isdisjoint(counted) and self._users_at_once(users):
            pass
        else:  # deletes, calls of users deleted before, the limit reached: in the order read
            for index, user in enumerate(users):
                if user:
                    event = fasts[index].get("event")  # (a track's: other types' models have none)
                    hashed = hash(user)
                    if not analysis.person(hashed, user, event):
                        analysis.user(hashed, lambda i=index: self._has_email(i))  # type: ignore[misc]
        for kept in (fasts, self.lines, self.readys):
            kept.clear()

    def _stamps(self, stamps: list[Any], users: list[Any]) -> None:
        """Calls without a timestamp; the form each was given in; recent, future, old-and-anonymous."""
        analysis = self.analysis
        analysis.missing += stamps.count(None)
        given = list(compress(stamps, stamps))
        lines = list(compress(self.lines, stamps))
        # each line's one "timestamp" (a fast-path call has its own) given a date as text
        # (`:"` and `-` five bytes on: 2024-…): a third of the cost of a regex over the lines
        after = b"\n".join(lines).split(b'"timestamp"')[1:]
        if (
            len(after) == len(lines)
            and b"".join(map(itemgetter(slice(0, 2)), after)) == b':"' * len(after)
            and b"".join(map(itemgetter(slice(6, 7)), after)) == b"-" * len(after)
        ):
            analysis.iso += len(lines)
        else:
            for line in lines:
                analysis.given(line)
        if given and set(map(len, given)) == {24}:  # canonical: compared as text
            future = sum(map(analysis.now_text.__lt__, given))
            analysis.future += future
            analysis.recent += sum(map(analysis.recent_text.__le__, given)) - future
            anonymous = filter(None, compress(stamps, map(not_, users)))
            analysis.anonymous_old += sum(map(analysis.anonymous_text.__gt__, anonymous))
        else:
            for stamp, user in zip(stamps, users, strict=True):
                if stamp is not None:
                    analysis.when(stamp, user)

    def _names(self) -> None:
        """The names of each call's traits or properties: as validated (see naming_validator),
        else from its line parsed (one at a time: a batch's parsed calls kept together cost
        more in garbage collection than in parsing)."""
        values: Any
        if self.named:  # (each type's strict model has only its own scope: SCOPES)
            for scope in ("traits", "properties"):
                values = list(filter(None, map(dict.get, self.fasts, repeat(scope))))  # (none: no names)
                if values:
                    self.analysis.count_names(scope, map(tuple, values))
            return
        scopes: list[Any] = list(map(SCOPES.get, map(dict.get, self.fasts, repeat("type"), repeat(self.default_type))))
        holding = list(map(dict.__contains__, self.fasts, scopes))  # (a None scope: False)
        if not any(holding):
            return
        scopes = list(compress(scopes, holding))
        lines = list(compress(self.lines, holding))
        try:
            values = map(dict.get, map(from_json, lines), scopes)  # each an object (validated)
            name_sets: list[tuple[str, ...]] = list(map(tuple, values))
        except (ValueError, TypeError):  # a line that is not the call itself (see _parsed_one)
            wholes = map(_parsed_one, lines, compress(self.readys, holding))
            name_sets = [tuple(whole.get(scope) or ()) for whole, scope in zip(wholes, scopes, strict=True)]
        for scope in ("traits", "properties"):
            these = list(compress(name_sets, map(scope.__eq__, scopes)))
            if these:
                self.analysis.count_names(scope, compress(these, these))  # (none: no names)

    def _users_at_once(self, users: list[Any]) -> bool:
        """Count the userIds a batch at a time; False (nothing done) when they must be counted
        one by one: a userId deleted before, or the exact count's limit reached. Each userId
        is one int (its hash) with a flag: preflight's peak is 145 MB for 1,000,000 userIds
        that all have an email (a second set for those with one would add up to 70 MB)."""
        analysis = self.analysis
        known = analysis.users
        # near the limit (one batch away), one by one: which userIds the exact count keeps
        if analysis.sketch is not None or len(known) + len(users) > EXACT_LIMIT:
            return False
        hashes = list(map(hash, users))  # (None's too: left out below)
        if analysis.deleted and not analysis.deleted.keys().isdisjoint(compress(hashes, users)):
            return False
        deque(map(known.setdefault, compress(hashes, users), repeat(0)), maxlen=0)  # new: no email yet
        # an email is looked for in the calls that name one, of users with none yet
        mentions = map((-1).__lt__, map(bytes.find, self.lines, repeat(b'"email"')))
        for index in compress(range(len(users)), mentions):
            hashed = hashes[index]
            if users[index] and not known[hashed] and self._has_email(index):
                known[hashed] = HAS_EMAIL
        return True

    def _has_email(self, index: int) -> bool:
        traits = self.fasts[index].get("traits")  # identify's strict traits keep the email
        identify = self.fasts[index].get("type", self.default_type) == "identify"
        if (identify or self.named) and isinstance(traits, dict) and traits.get("email"):
            return True
        if self.lines[index].find(b'"email"') < 0:
            return False
        return _has_email(_parsed_one(self.lines[index], self.readys[index]))


def _keeping_names(preparer: Preparer) -> bool:
    """Give `preparer` the fast path's validators with every name of traits and properties
    kept (naming_validator); False (the preparer left as it is) when they cannot be made, or
    a probe finds the fast path's calls without them (the preparer changed)."""
    probe = Preparer(preparer.default_type)
    if not _swap_validators(probe):
        return False
    for call in NAME_PROBES:
        scope = SCOPES[call["type"]]
        given = {key: value for key, value in call.items() if key != "type" or value != probe.default_type}
        probe.fast_call = None
        try:
            probe.prepare(1, json.dumps(given).encode())
        except Exception:  # a probe refused: the fast path is not what it was
            return False
        if probe.fast_call is None or probe.fast_call.get(scope) != call[scope]:
            return False
    return _swap_validators(preparer)


def _swap_validators(preparer: Preparer) -> bool:
    naming = naming_validator("any")
    kind = preparer.default_type
    default = naming_validator(kind) if kind is not None and preparer.strict_default is not None else None
    if naming is None or (preparer.strict_default is not None and default is None):
        return False
    preparer.strict_any = naming
    if default is not None:
        preparer.strict_default = default
    return True


_naming: dict[str, SchemaValidator | None] = {}


def naming_validator(kind: str) -> SchemaValidator | None:
    """shapes.fast_validator(kind) with the keys of traits and properties kept instead of
    ignored: the same lines accepted, the same calls made (prepare.py reads neither), and the
    names preflight counts built by the validation (~4k instructions a call) instead of a
    second parse of the line (~14k; callgrind). None when its schema cannot be read, or a
    probe finds a name dropped (the models changed): then the lines are parsed."""
    if kind not in _naming:
        _naming[kind] = None
        try:
            reduced: Any = fast_validator(kind).__reduce__()  # (SchemaValidator, (schema, config))
            made, args = reduced[:2]
            schema = copy.deepcopy(args[0])
            _keep_names(schema)
            validator = made(schema, *args[1:])
        except (TypeError, ValueError, IndexError, KeyError):
            return None
        if all(_keeps_names(validator, probe) for probe in NAME_PROBES if kind in ("any", probe["type"])):
            _naming[kind] = validator
    return _naming[kind]


def _keep_names(schema: Any) -> None:
    """Every typed dict of free-form names in a core schema (nested anywhere) keeps its other keys."""
    if isinstance(schema, dict):
        if schema.get("type") == "typed-dict" and schema.get("cls") in FREE_FORM:
            schema["extra_behavior"] = "allow"
            if isinstance(schema.get("config"), dict):
                schema["config"]["extra_fields_behavior"] = "allow"
        for value in schema.values():
            _keep_names(value)
    elif isinstance(schema, list):
        for value in schema:
            _keep_names(value)


def _keeps_names(validator: SchemaValidator, probe: dict[str, Any]) -> bool:
    scope = SCOPES[probe["type"]]
    try:
        call = validator.validate_json(json.dumps(probe), context=[])
    except ValueError:
        return False
    return isinstance(call, dict) and call.get(scope) == probe[scope]


def _has_email(call: dict[str, Any]) -> bool:
    """An email in the call's traits or in its context's."""
    traits = call.get("traits")
    if isinstance(traits, dict) and traits.get("email"):
        return True
    context = call.get("context")
    if isinstance(context, dict):
        traits = context.get("traits")
        return isinstance(traits, dict) and bool(traits.get("email"))
    return False


def _parsed_one(line: bytes, ready: bytes) -> dict[str, Any]:
    try:
        whole = from_json(line)
    except ValueError:
        whole = None
    return whole if isinstance(whole, dict) else from_json(ready)


def watching(factory: Callable[[str | None], Preparer], analysis: Analysis) -> Callable[[str | None], Preparer]:
    """A preparer factory whose preparers report each judged line to `analysis`: the fast
    path's calls FAST_BATCH at a time (FastCalls)."""
    pending = analysis.pending
    fasts, lines, readys = pending.fasts, pending.lines, pending.readys

    def make(default_type: str | None) -> Preparer:
        preparer = factory(default_type)
        pending.named = pending.named and _keeping_names(preparer)
        pending.default_type = default_type
        inner = preparer.prepare

        def prepare(line_no: int, line: bytes) -> bytes:
            preparer.fast_call = None
            try:
                ready = inner(line_no, line)
            except Exception:  # InvalidLine: counted by the engine, by reason
                analysis.stamp(line)
                raise
            fast = preparer.fast_call
            if fast is not None:  # the common case: what the fast path validated, kept as it is
                fasts.append(fast)
                lines.append(line)
                readys.append(ready)
                if len(fasts) >= FAST_BATCH:
                    pending.flush()
            else:  # made by the plain path: the call as sent, parsed
                call = from_json(ready)
                # False: the input gave no timestamp (the call is sent with the time of import)
                analysis.call(call, analysis.stamp(line, call.get("timestamp")))
            return ready

        preparer.prepare = prepare  # type: ignore[method-assign]
        return preparer

    return make


class _FirstInvalid(ImportEvents):
    """The first INVALID_SHOWN invalid lines, as `file:line: reason` (so that one run shows
    where to look, without a rejects file)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def rejected(self, text: str) -> None:
        if len(self.lines) < INVALID_SHOWN:
            self.lines.append(text)


class _Nowhere:
    """The target of a preflight: batches are made (as a dry run's) and shown to no one."""

    base = ""
    gzip = False

    def headers(self) -> dict[str, str]:
        return {}


def preflight(sources: list[Source], options: ImportOptions, now: datetime | None = None) -> dict[str, Any]:
    """Read `sources` as an import with `options` would (filters included), send nothing, write
    nothing (no rejects, no checkpoint: every line is read), and return the report (a dict of
    plain values; `error` says why reading stopped early, else None). `now`: the clock."""
    from cdpcli.importing.engine import Importer

    moment = now or options.now or select.utc_now()
    analysis = Analysis(moment)
    options = replace(
        options,
        dry_run=True,
        checkpoint=None,
        write_rejects=False,
        recent=None,  # counted here, whatever --recent says
        preparer=watching(options.preparer or Preparer, analysis),
        max_invalid=None,
    )
    invalid = _FirstInvalid()
    result = Importer(_Nowhere(), sources, options, invalid).run()  # type: ignore[arg-type]
    report: dict[str, Any] = {
        "read": result.read,
        "calls": result.valid,
        "invalid": result.invalid,
        "skipped": result.skipped,
        "blank": result.blank,
        "by_type": result.by_type,
        **analysis.report(),
        "invalid_reasons": result.invalid_reasons,
        "invalid_lines": invalid.lines,
        "skipped_reasons": result.skipped_reasons,
        # resolve_identities: links learned; anonymous calls that would get a userId, or not
        **({"identities": result.identities} if result.identities is not None else {}),
        "error": result.error.message if result.error else None,
        "exit_code": result.exit_code if result.error else 0,
    }
    return report

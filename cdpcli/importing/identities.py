"""Identity stitching for imports (`resolve_identities`): two passes over the input.

Why: Customer.io attaches earlier anonymous activity to a person when an identify carries
its anonymous id, and keeps anonymous events for a limited time only
[docs.customer.io/journeys/merge-anonymous.md, docs.customer.io/messaging/profiles/anonymous.md],
so years-old anonymous events that an export links to a user stay orphaned unless they are
rewritten with the user's id before they are sent.

Pass 1 (`IdentityMap.learn` / `learn_line`) learns links: an alias (`previousId` → `userId`),
and any call carrying both `anonymousId` and `userId` (an identify, or any event). Each
vendor's merge records arrive as such calls from its mapping (importing/vendors): PostHog's
`$identify` with `$anon_distinct_id`, Mixpanel rows with `$device_id` and `$user_id`,
Amplitude rows with `device_id` and `user_id`. The first link an id gets is the one kept (the
input's order decides, so a resumed run that learns from the whole input again resolves
identically).

Pass 2 (`rewriting`, around Preparer.prepare; `rewrite` / `rewrite_line` for one call) gives
each anonymous-only call the user its anonymous id resolves to (its anonymousId kept), and a
call whose only id is a userId the input names elsewhere as a linked anonymousId (a vendor's
anonymous id that the mapping could not tell from a user's on its line: a PostHog event sent
with the `$anon_distinct_id` an `$identify` names, a Mixpanel one (Original ID Merge) with an
`$identify`'s `$anon_id`) the user that id resolves to, its id
becoming the anonymousId (an alias's previousId is not such an id: it may be a user's), after
the line is prepared: derived messageIds and the checkpoint's first-line check are the same with
or without it. Chains resolve (a → b → user); a cycle resolves to nothing. With a shard by
user, the resolved user decides the shard (select.Selector.resolve).

The map is a dict up to `memory_links` links, then an SQLite file in a private temporary
directory (0700, the file 0600, no journal), removed by `close()`: 10M distinct anonymous ids
stay under 300 MB of memory (benchmarks/identities.py).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pydantic_core import from_json

from cdpcli.importing.csvrows import CsvMapping
from cdpcli.importing.prepare import InvalidLine
from cdpcli.importing.source import Chunk, Source
from cdpcli.importing.sources import read_sources
from cdpcli.wire import MAX_CALL_BYTES, call_size, dumps, may_count_over

# links kept in a dict before the map moves to SQLite: ~150 bytes a link (two short strings
# and a dict slot) makes 200k about 30 MB
MEMORY_LINKS = 200_000
# links buffered before one executemany: SQLite's per-statement overhead is paid once a batch
WRITE_BATCH = 50_000
# ids a query looks up at once: under SQLite's default 32,766 bound parameters, and large
# enough that the per-query cost is paid once per chunk of calls
SQL_BATCH = 4_096
RESOLVED_CACHE = 100_000  # resolved ids remembered for pass 2 (a device's events repeat)
_MISSING = ""


@dataclass
class IdentityStats:
    links: int = 0  # anonymous ids linked to another id
    rewritten: int = 0  # anonymous-only calls given a userId
    unresolved: int = 0  # anonymous-only calls whose id links to no user

    def as_dict(self) -> dict[str, int]:
        return {"links": self.links, "rewritten": self.rewritten, "unresolved": self.unresolved}


class AnonymousIds:
    """The ids the input names as the anonymousId of a call that links it to a userId: a set,
    moved into the map's SQLite file when the map moves there (`spill`)."""

    def __init__(self) -> None:
        self.memory: set[str] = set()
        self.pending: set[str] = set()  # ids not yet written to the database
        self.db: sqlite3.Connection | None = None
        self._known: dict[str, bool] = {}  # answers from the database, for pass 2

    def add(self, anonymous: str) -> None:
        if self.db is None:
            self.memory.add(anonymous)
            return
        self._known.clear()
        self.pending.add(anonymous)
        if len(self.pending) >= WRITE_BATCH:
            self.flush()

    def __contains__(self, anonymous: str) -> bool:
        if self.db is None:
            return anonymous in self.memory
        known = self._known.get(anonymous)
        if known is None:
            self.flush()
            known = self.db.execute("SELECT 1 FROM anonymous WHERE id = ?", (anonymous,)).fetchone() is not None
            if len(self._known) >= RESOLVED_CACHE:
                self._known.clear()
            self._known[anonymous] = known
        return known

    def spill(self, db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE anonymous (id TEXT PRIMARY KEY) WITHOUT ROWID")
        self.db, self.pending, self.memory = db, self.memory, set()
        self.flush()

    def flush(self) -> None:
        if self.db is not None and self.pending:
            self.db.executemany("INSERT OR IGNORE INTO anonymous VALUES (?)", ((id_,) for id_ in self.pending))
            self.pending = set()

    def close(self) -> None:
        self.memory, self.pending, self._known, self.db = set(), set(), {}, None


class IdentityMap:
    """anonymous id → the id it was linked to (see the module docstring)."""

    def __init__(self, memory_links: int = MEMORY_LINKS) -> None:
        self.memory_links = memory_links
        self.memory: dict[str, str] = {}
        self.pending: dict[str, str] = {}  # links not yet written to the database
        self.db: sqlite3.Connection | None = None
        self.directory: str | None = None
        self.stats = IdentityStats()
        self.anonymous = AnonymousIds()
        self._resolved: dict[str, str] = {}

    def __enter__(self) -> IdentityMap:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- pass 1 ----------------------------------------------------------------------------------

    def link(self, anonymous: str, target: str) -> None:
        """`anonymous` belongs to `target` (a user id, or another id that leads to one)."""
        if not anonymous or not target or anonymous == target:
            return
        if self._resolved:
            self._resolved.clear()  # a link learned after a lookup may change its answer
        if self.db is None:
            if anonymous not in self.memory:
                self.memory[anonymous] = target
                self.stats.links += 1
                if len(self.memory) > self.memory_links:
                    self._spill()
            return
        self.pending.setdefault(anonymous, target)
        if len(self.pending) >= WRITE_BATCH:
            self._flush()

    def learn(self, call: dict[str, Any]) -> None:
        """The links one call states (see the module docstring)."""
        if call.get("type") == "alias":
            previous, user = call.get("previousId"), call.get("userId")
            if isinstance(previous, str) and isinstance(user, str):
                self.link(previous, user)
            return
        anonymous, user = call.get("anonymousId"), call.get("userId")
        if isinstance(anonymous, str) and isinstance(user, str):
            self.link(anonymous, user)
            if anonymous and anonymous != user:
                self.anonymous.add(anonymous)

    def learn_line(self, line: bytes) -> None:
        """`learn` for one line of calls; lines that cannot state a link are not parsed."""
        if line.startswith(b"\0") or (line.find(b'"previousId"') < 0 and line.find(b'"anonymousId"') < 0):
            return
        if line.find(b'"userId"') < 0:
            return
        call = _object(line)
        if call is not None:
            self.learn(call)

    # -- pass 2 ----------------------------------------------------------------------------------

    def resolve(self, anonymous: str) -> str | None:
        """The id at the end of `anonymous`'s chain of links; None when it has no link or the
        chain is a cycle."""
        cached = self._resolved.get(anonymous)
        if cached is not None:
            return cached or None
        self._flush()
        seen = {anonymous}
        current = self._target(anonymous)
        while current is not None:
            following = self._target(current)
            if following is None:
                break
            if following in seen:
                current = None  # a cycle: no id in it is the user
                break
            seen.add(current)
            current = following
        if len(self._resolved) >= RESOLVED_CACHE:
            self._resolved.clear()
        self._resolved[anonymous] = current or _MISSING
        return current

    def resolve_many(self, anonymous_ids: set[str]) -> dict[str, str]:
        """`resolve` for many ids at once (those that resolve to a user): on disk, one query a
        batch of SQL_BATCH ids answers the first two links of each chain (a chain's usual
        length), instead of two queries an id."""
        found: dict[str, str] = {}
        if self.db is None:
            for anonymous in anonymous_ids:
                user = self.resolve(anonymous)
                if user is not None:
                    found[anonymous] = user
            return found
        self._flush()
        ids = list(anonymous_ids)
        for at in range(0, len(ids), SQL_BATCH):
            part = ids[at : at + SQL_BATCH]
            rows = self.db.execute(
                "SELECT l1.id, l1.target, l2.target FROM links l1 LEFT JOIN links l2 ON l2.id = l1.target "
                f"WHERE l1.id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
            for anonymous, target, further in rows:
                user = target if further is None else self.resolve(anonymous)  # longer: walk it
                if user is not None:
                    found[anonymous] = user
        return found

    def rewrite_lines(self, lines: list[bytes]) -> list[bytes]:
        """`rewrite_line` for a chunk of lines, its lookups made together (resolve_many)."""
        calls: dict[int, tuple[dict[str, Any], str]] = {}
        for index, text in enumerate(lines):
            if not self._may_rewrite(text):
                continue
            call = _object(text)
            named = self._named(call) if call is not None else None
            if call is not None and named is not None:
                calls[index] = call, named
        if not calls:
            return lines
        users = self.resolve_many({named for _, named in calls.values()})
        out = list(lines)
        for index, (call, named) in calls.items():
            if self._give(call, users.get(named)):
                out[index] = dumps(call).encode()
        return out

    def rewrite_chunk(self, data: bytes) -> bytes:
        """`rewrite_lines` for a chunk of newline-separated lines (the reader's convert hook)."""
        return b"\n".join(self.rewrite_lines(data.split(b"\n")))

    def rewrite(self, call: dict[str, Any]) -> bool:
        """Give an anonymous-only call its user, and a call named only by a linked id the user
        that id resolves to (see the module docstring); True when it was changed."""
        named = self._named(call)
        return named is not None and self._give(call, self.resolve(named))

    def user_of(self, call: dict[str, Any]) -> str | None:
        """The userId `rewrite` gives `call` (None: it keeps its own), counting nothing: what a
        shard by user deals the call by, as it will be sent."""
        named = self._named(call)
        return self.resolve(named) if named is not None else None

    def _named(self, call: dict[str, Any]) -> str | None:
        """The id whose user `call` is sent as: an anonymous-only call's anonymousId, or the
        userId of a call named only by an id the input links as anonymous; None for the others."""
        if _anonymous_only(call):
            return call["anonymousId"]
        if _user_only(call) and call["userId"] in self.anonymous:
            return call["userId"]
        return None

    def _give(self, call: dict[str, Any], user: str | None) -> bool:
        """`call` (one `_named` names) sent as `user`, what its named id resolves to (None: no
        link), and counted; True when it was changed."""
        if _user_only(call):
            changed = _claim(call, user)
        elif user is None:
            self.stats.unresolved += 1
            return False
        else:
            call["userId"] = user
            changed = True
        self.stats.rewritten += changed
        return changed

    def rewrite_line(self, line: bytes) -> bytes:
        """`rewrite` for one line of calls: the line as it was, or the rewritten call."""
        if not self._may_rewrite(line):
            return line
        call = _object(line)
        if call is None or not self.rewrite(call):
            return line
        return dumps(call).encode()

    def _may_rewrite(self, line: bytes) -> bool:
        """Whether a line of calls may need a rewrite: it names an anonymousId, or a userId
        while some anonymous id was learned; the others are not parsed."""
        if line.startswith(b"\0"):
            return False
        if line.find(b'"anonymousId"') >= 0:
            return True
        named = self.anonymous
        at = line.find(b'"userId"')
        if at < 0 or not (named.memory or named.db is not None):
            return False
        found = _USER_ID.match(line, at)
        if found is None or b"\\" in found[1] or line.find(b'"userId"', at + 8) >= 0:
            return True  # an escape, a nested userId, not a string: the parsed call decides
        # the userId read from the text: parsing every such line cost 5-9 µs a line more, this 1-2
        return found[1].decode("utf-8", "surrogateescape") in named

    # -- storage ---------------------------------------------------------------------------------

    def _target(self, anonymous: str) -> str | None:
        if self.db is None:
            return self.memory.get(anonymous)
        row = self.db.execute("SELECT target FROM links WHERE id = ?", (anonymous,)).fetchone()
        return row[0] if row else None

    def _spill(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="cdp-identities-")  # 0700
        path = os.path.join(self.directory, "links.sqlite")
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # a scratch map, rebuilt by any re-run: no journal, no fsync
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-32000")  # 32 MB of pages
        self.db.execute("CREATE TABLE links (id TEXT PRIMARY KEY, target TEXT NOT NULL) WITHOUT ROWID")
        self.pending, self.memory = self.memory, {}
        self.stats.links -= len(self.pending)  # counted again as they are written
        self._flush()
        self.anonymous.spill(self.db)

    def _flush(self) -> None:
        if self.db is None or not self.pending:
            return
        cursor = self.db.executemany("INSERT OR IGNORE INTO links VALUES (?, ?)", self.pending.items())
        self.stats.links += cursor.rowcount
        self.pending = {}

    def close(self) -> None:
        """Drop the map and remove its database, if it has one."""
        self.anonymous.close()
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        self.memory, self.pending, self._resolved = {}, {}, {}


def rewriting(prepare: Callable[[int, bytes], bytes], ids: IdentityMap) -> Callable[[int, bytes], bytes]:
    """Preparer.prepare with its call's userId resolved (pass 2). The line is prepared as it
    is, so its derived messageId and the checkpoint's first-line check do not depend on what
    the map learned; the prepared call is rewritten, and refused if that makes it too large."""

    def prepare_and_rewrite(line_no: int, line: bytes) -> bytes:
        ready = prepare(line_no, line)
        rewritten = ids.rewrite_line(ready)
        if rewritten is not ready and len(rewritten) > MAX_CALL_BYTES // 6 and may_count_over(rewritten):
            size = call_size(from_json(rewritten))
            if size > MAX_CALL_BYTES:
                raise InvalidLine(
                    f"call is {size:,} bytes with its resolved userId; the API accepts at most {MAX_CALL_BYTES:,}",
                    "too large",
                )
        return rewritten

    return prepare_and_rewrite


def learn_sources(
    ids: IdentityMap,
    sources: list[Source],
    convert: Callable[[bytes], bytes] | None = None,
    csv_mapping: CsvMapping | None = None,
) -> None:
    """Pass 1: every line of `sources` (as the import reads them, `convert` applied: a vendor
    mapping), settled or not, learned from. The sources must be readable again (files;
    stdin and iterables spooled first, as order=phased does)."""
    chunks: queue.Queue = queue.Queue(maxsize=8)  # bounded: the reader waits for this pass
    stop = threading.Event()
    reader = threading.Thread(
        target=read_sources,
        args=(sources, chunks, stop, lambda count: None, csv_mapping, convert),
        name="cdp-identities-reader",
        daemon=True,
    )
    reader.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            if not isinstance(item, Chunk):
                return  # the reader's end marker
            for line in item.data.split(b"\n"):
                ids.learn_line(line)
    finally:
        stop.set()
        while reader.is_alive():  # let a reader blocked on a full queue finish
            try:
                chunks.get(timeout=0.05)
            except queue.Empty:
                pass
        reader.join()


_USER_ID = re.compile(rb'"userId":\s*"([^"]*)"')


def _user_only(call: dict[str, Any]) -> bool:
    """A call named by a userId only (no anonymousId), which an alias is not."""
    return isinstance(call.get("userId"), str) and call.get("anonymousId") is None and call.get("type") != "alias"


def _claim(call: dict[str, Any], user: str | None) -> bool:
    """A userId-only call whose userId resolves to `user` (another id) sent as that user's,
    its own id kept as the anonymousId (Customer.io attaches that id's activity to the user)."""
    if user is None or user == call["userId"]:
        return False
    call["anonymousId"], call["userId"] = call["userId"], user
    return True


def _anonymous_only(call: dict[str, Any]) -> bool:
    return isinstance(call.get("anonymousId"), str) and call.get("userId") is None and call.get("type") != "alias"


def _object(line: bytes) -> dict[str, Any] | None:
    try:
        value = from_json(line)  # pydantic-core's reader: a third of json.loads' time on bytes
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

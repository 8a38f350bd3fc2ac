"""The buffer's schema as named migrations, each applied once in its own transaction and recorded.

``_migrations(name, applied_ms)`` lists what has been applied; :func:`pending` only reads. Add a
migration by appending a function decorated with ``@MIGRATIONS.register("NNN_what")``; never edit
one that has shipped.

Design notes (see docs/buffer.md for the full table reference):

* ``readings``/``events``/``waveforms``/``quarantine`` use ``INTEGER PRIMARY KEY AUTOINCREMENT``:
  the rowid is the arrival order, is the cursor of every scan, and is never reused, even when the
  table empties (plain rowid tables may hand out max(rowid)+1 again after deletes).
* A reading row is ~30 bytes: series id (interned), ts_ms, value, and small integers that SQLite
  stores in zero bytes when 0 or 1 (quality, state, version).
* ``readings_queue(state, priority DESC, id)`` serves the outbox (state=0 in priority-then-arrival
  order) and eviction (state=2, priority=0 in arrival order) with pure index range scans.
* Batches reference their rows as runs of ids in ``batch_groups`` (a batch split on 413 keeps its
  group), so no per-row batch column and no extra index are needed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosqlite

MigrationFn = Callable[[aiosqlite.Connection], Awaitable[None]]


@dataclass(slots=True, frozen=True)
class Migration:
    name: str
    fn: MigrationFn


class Migrations:
    """An ordered registry of named migrations."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._items: list[Migration] = []

    def register(self, name: str) -> Callable[[MigrationFn], MigrationFn]:
        def deco(fn: MigrationFn) -> MigrationFn:
            if any(m.name == name for m in self._items):
                raise ValueError(f"{self.label}: migration {name!r} registered twice")
            self._items.append(Migration(name, fn))
            return fn

        return deco

    @property
    def all(self) -> tuple[Migration, ...]:
        return tuple(self._items)


MIGRATIONS = Migrations("edge_agent.buffer")

_CREATE_LOG = "CREATE TABLE IF NOT EXISTS _migrations(name TEXT PRIMARY KEY, applied_ms INTEGER NOT NULL)"


async def applied(db: aiosqlite.Connection) -> list[str]:
    rows = await db.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='_migrations'"
    )
    if not list(rows):
        return []
    return [r[0] for r in await db.execute_fetchall("SELECT name FROM _migrations ORDER BY rowid")]


async def pending(db: aiosqlite.Connection, registry: Migrations = MIGRATIONS) -> list[str]:
    """Names of migrations not yet applied (reads only)."""
    done = set(await applied(db))
    return [m.name for m in registry.all if m.name not in done]


async def migrate(db: aiosqlite.Connection, registry: Migrations = MIGRATIONS) -> list[str]:
    """Apply pending migrations, each in one ``BEGIN IMMEDIATE`` transaction; return their names.

    The connection must be in autocommit mode (``isolation_level=None``).
    """
    todo = await pending(db, registry)
    for m in registry.all:
        if m.name not in todo:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(_CREATE_LOG)
            await m.fn(db)
            await db.execute(
                "INSERT INTO _migrations(name, applied_ms) VALUES (?, ?)", (m.name, int(time.time() * 1000))
            )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
    return todo


_V1 = (
    """CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID""",
    """CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE series(
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL, metric TEXT NOT NULL, unit TEXT NOT NULL, profile TEXT NOT NULL,
        agg TEXT NOT NULL, window_s INTEGER NOT NULL,
        UNIQUE(device, metric, unit, profile, agg, window_s))""",
    """CREATE TABLE readings(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        series INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL,
        quality INTEGER NOT NULL, priority INTEGER NOT NULL, state INTEGER NOT NULL,
        version INTEGER NOT NULL DEFAULT 0)""",
    """CREATE INDEX readings_queue ON readings(state, priority DESC, id)""",
    """CREATE TABLE events(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        series INTEGER NOT NULL, ts_ms INTEGER NOT NULL, attrs BLOB NOT NULL,
        quality INTEGER NOT NULL, priority INTEGER NOT NULL, state INTEGER NOT NULL)""",
    """CREATE INDEX events_queue ON events(state, priority DESC, id)""",
    """CREATE TABLE waveforms(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        series INTEGER NOT NULL, ts_ms INTEGER NOT NULL, rate_hz REAL NOT NULL,
        n INTEGER NOT NULL, samples BLOB NOT NULL)""",
    """CREATE TABLE quarantine(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_ms INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
        payload_len INTEGER NOT NULL, profile TEXT, device TEXT, reason TEXT NOT NULL,
        detail TEXT NOT NULL)""",
    """CREATE INDEX quarantine_received ON quarantine(received_ms)""",
    """CREATE TABLE batch_groups(id INTEGER PRIMARY KEY, r_runs BLOB NOT NULL, e_runs BLOB NOT NULL)""",
    """CREATE TABLE batches(
        seq INTEGER PRIMARY KEY, grp INTEGER NOT NULL, priority INTEGER NOT NULL,
        created_ms INTEGER NOT NULL, n_readings INTEGER NOT NULL, n_events INTEGER NOT NULL,
        size INTEGER NOT NULL, crc INTEGER NOT NULL, body BLOB NOT NULL)""",
    """CREATE INDEX batches_order ON batches(priority, seq)""",
    """CREATE INDEX batches_grp ON batches(grp)""",
    """CREATE TABLE dead_letter(
        seq INTEGER PRIMARY KEY, priority INTEGER NOT NULL, created_ms INTEGER NOT NULL,
        n_readings INTEGER NOT NULL, n_events INTEGER NOT NULL, size INTEGER NOT NULL,
        crc INTEGER NOT NULL, body BLOB NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL,
        dead_ms INTEGER NOT NULL)""",
)


@MIGRATIONS.register("001_initial")
async def _m001_initial(db: aiosqlite.Connection) -> None:
    for stmt in _V1:
        await db.execute(stmt)

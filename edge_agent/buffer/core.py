"""Shared internals of the buffer: the connection, its lock, transactions, caches and persisted counters.

One :class:`Core` per open buffer file. Every public operation takes ``core.lock`` for its whole
duration so that the statements of one transaction never interleave with another task's on the
single aiosqlite connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite

from edge_agent.buffer.records import BufferConfig, SeriesKey, State
from edge_agent.errors import BackPressure, BufferError_
from edge_agent.model import ProfileRef

Clock = Callable[[], int]  # epoch milliseconds

UPSERT_COUNTER = (
    "INSERT INTO counters(name, value) VALUES (?, ?) "
    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"
)


class SeriesCache:
    """Interned series: ``SeriesKey`` ↔ small integer id, all held in memory (one entry per series).

    New ids are handed out by the cache and stay *pending* until the transaction that inserts them
    commits (:meth:`commit`) or is rolled back (:meth:`rollback`).
    """

    def __init__(self) -> None:
        self._ids: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._fast: dict[tuple[str, str, str, ProfileRef], int] = {}
        self._pending: list[tuple[int, SeriesKey]] = []
        self._pending_fast: list[tuple[str, str, str, ProfileRef]] = []
        self._next = 1

    def load(self, rows: Iterable[tuple[int, str, str, str, str, str, int]]) -> None:
        for sid, device, metric, unit, profile, agg, window_s in rows:
            key = SeriesKey(device, metric, unit, profile, agg, int(window_s))
            self._ids[key] = int(sid)
            self._keys[int(sid)] = key
            self._next = max(self._next, int(sid) + 1)

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, sid: int) -> SeriesKey:
        return self._keys[sid]

    def intern(self, key: SeriesKey) -> int:
        sid = self._ids.get(key)
        if sid is None:
            sid = self._next
            self._next += 1
            self._ids[key] = sid
            self._keys[sid] = key
            self._pending.append((sid, key))
        return sid

    def raw_id(self, device: str, metric: str, unit: str, profile: ProfileRef) -> int:
        """Hot path for readings: one dict lookup once the series is known."""
        k = (device, metric, unit, profile)
        sid = self._fast.get(k)
        if sid is None:
            # one 'id@version' string per profile, not one per series (10,000 devices: 50,000 copies)
            sid = self.intern(SeriesKey(device, metric, unit, sys.intern(str(profile))))
            self._fast[k] = sid
            self._pending_fast.append(k)
        return sid

    def pending_rows(self) -> list[tuple[int, str, str, str, str, str, int]]:
        return [(sid, k.device, k.metric, k.unit, k.profile, k.agg, k.window_s) for sid, k in self._pending]

    def commit(self) -> None:
        self._pending.clear()
        self._pending_fast.clear()

    def rollback(self) -> None:
        for sid, key in self._pending:
            self._ids.pop(key, None)
            self._keys.pop(sid, None)
        for k in self._pending_fast:
            self._fast.pop(k, None)
        if self._pending:
            self._next = min(sid for sid, _ in self._pending)
        self.commit()


@dataclass(slots=True)
class RowCounts:
    """Rows per (table, state), kept in memory so /status never scans the backlog.

    Recounted exactly on open (one index scan) and adjusted by every statement's rowcount.
    """

    n: dict[tuple[str, int], int] = field(default_factory=dict)

    def add(self, table: str, state: int, delta: int) -> None:
        if delta:
            self.n[(table, state)] = self.n.get((table, state), 0) + delta

    def move(self, table: str, src: int, dst: int, k: int) -> None:
        self.add(table, src, -k)
        self.add(table, dst, k)

    def get(self, table: str, state: int) -> int:
        return self.n.get((table, state), 0)

    def by_state(self, table: str) -> dict[str, int]:
        return {s.name.lower(): self.get(table, s) for s in State}


@dataclass(slots=True)
class Core:
    db: aiosqlite.Connection
    path: Path
    config: BufferConfig
    clock: Clock
    page_size: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    series: SeriesCache = field(default_factory=SeriesCache)
    counts: RowCounts = field(default_factory=RowCounts)
    back_pressure: bool = False
    lock_fd: int = -1  # flock on <path>.lock, released on close

    @asynccontextmanager
    async def txn(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on any error and translates SQLite's errors."""
        try:
            await self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self.translate(what, exc) from exc
        try:
            yield self.db
            await self.db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):  # COMMIT may already have ended the transaction
                await self.db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self.translate(what, exc) from exc
            raise

    def translate(self, what: str, exc: sqlite3.Error) -> BufferError_:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(exc):
            return BackPressure(f"{self.path}: {what}: the disk is full ({exc}); stop acknowledging")
        return BufferError_(f"{self.path}: {what}: {exc}")

    async def fetchall(self, sql: str, params: Iterable[object] = ()) -> list[tuple[object, ...]]:
        return [tuple(r) for r in await self.db.execute_fetchall(sql, tuple(params))]

    async def scalar(self, sql: str, params: Iterable[object] = ()) -> object:
        rows = await self.fetchall(sql, params)
        return rows[0][0] if rows else None

    async def meta_int(self, key: str, default: int = 0) -> int:
        v = await self.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return default if v is None else int(str(v))

    async def add_counters(self, counters: Mapping[str, int]) -> None:
        """Add to persisted counters inside the caller's transaction."""
        items = [(k, int(v)) for k, v in counters.items() if v]
        if items:
            await self.db.executemany(UPSERT_COUNTER, items)

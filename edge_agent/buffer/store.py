"""The durable buffer of the edge agent: one SQLite file in WAL mode, ``synchronous=FULL``.

Usage::

    buf = await Buffer.open(state_dir / "buffer.db", BufferConfig(budget_bytes=1 << 30))
    stats = await buf.commit_burst(results)    # returns after COMMIT: now acknowledge the messages
    ...
    await buf.close()

Every method is a coroutine and holds the buffer's lock for its whole duration, so concurrent tasks
never interleave statements of different transactions. Each public write is one transaction: after a
SIGKILL at any point, reopening gives either all of it or none of it. Policy details: docs/buffer.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Container, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from edge_agent.buffer import budget, ingest, maintenance, outbox, schema
from edge_agent.buffer.core import Clock, Core
from edge_agent.buffer.errors import BufferCorrupt
from edge_agent.buffer.opening import acquire_lock, connect, release_lock
from edge_agent.buffer.records import (
    AggregateRow,
    BacklogStats,
    BatchPart,
    BudgetStatus,
    BufferConfig,
    CommitStats,
    DeadLetter,
    Pending,
    QuarantineRecord,
    ReadingChunk,
    RecoveryReport,
    StoredBatch,
    StoredWaveform,
)
from edge_agent.buffer.recover import finish_interrupted, salvage
from edge_agent.errors import BackPressure
from edge_agent.model import DecodeResult, ProfileRef

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Buffer:
    """Durable buffer: bursts in, batches out. Create with :meth:`open`."""

    def __init__(self, core: Core, recovery: RecoveryReport | None = None) -> None:
        self._core = core
        self.recovery = recovery  # set when the file was salvaged by ``open(recover=True)``

    async def _write(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(core, *args)`` under the lock, to completion even if the caller is cancelled.

        In-memory state (series ids, row counts) must follow what was committed; a cancellation that
        landed between COMMIT and that bookkeeping would make them drift. The caller still sees its
        ``CancelledError`` (and, for a burst, does not acknowledge: the broker redelivers).
        """
        core = self._core

        async def run() -> T:
            async with core.lock:
                return await fn(core, *args)

        task = asyncio.ensure_future(run())
        task.add_done_callback(_report_orphan)
        return await asyncio.shield(task)

    # -- life cycle ---------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        config: BufferConfig | None = None,
        *,
        recover: bool = False,
        clock: Clock = wall_clock_ms,
    ) -> Buffer:
        """Open (or create) the buffer at ``path``.

        Raises :class:`BufferCorrupt` (file damaged, truncated or not SQLite; the message names the file
        and what was found) and :class:`BufferNotWal`. With ``recover=True`` a damaged file is moved to
        ``<path>.damaged-<ms>``, what can be read is copied into a new file at ``path`` and
        :attr:`recovery` reports what was salvaged and lost.
        """
        cfg = config or BufferConfig()
        p = Path(path)
        report: RecoveryReport | None = None
        fd = acquire_lock(p)
        try:
            finish_interrupted(p)
            try:
                core = await _open_core(p, cfg, clock)
            except BufferCorrupt as exc:
                if not recover:
                    raise
                _LOGGER.error("%s; recovering", exc)
                report = await salvage(p, exc.found, cfg, clock)
                core = await _open_core(p, cfg, clock)
        except BaseException:
            release_lock(fd)
            raise
        core.lock_fd = fd
        return cls(core, report)

    async def close(self) -> None:
        async with self._core.lock:
            await self._core.db.close()
            release_lock(self._core.lock_fd)
            self._core.lock_fd = -1

    async def __aenter__(self) -> Buffer:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self._core.path

    @property
    def config(self) -> BufferConfig:
        return self._core.config

    @property
    def back_pressure(self) -> bool:
        """True while the budget is full and nothing can be evicted (commit_burst raises BackPressure)."""
        return self._core.back_pressure

    # -- ingest --------------------------------------------------------------------------------------

    async def commit_burst(
        self,
        results: Sequence[DecodeResult],
        *,
        aggregates: Sequence[AggregateRow] = (),
        counters: Mapping[str, int] | None = None,
        local_profiles: Container[ProfileRef] | None = None,
    ) -> CommitStats:
        """Write a whole burst (readings, events, waveforms, quarantine records) in ONE transaction.

        Returns only after COMMIT, so the caller may then acknowledge the messages. ``aggregates``
        (reducer output) and ``counters`` (added to the persisted counters) go into the same
        transaction. Raw readings whose profile is in ``local_profiles`` are kept for local reduction
        only (never uploaded raw). Raises :class:`BackPressure` without writing anything when the disk
        budget is full and nothing can be evicted.
        """
        return await self._write(_commit_burst, results, aggregates, counters, local_profiles)

    async def add_counters(self, counters: Mapping[str, int]) -> None:
        """Add to persisted counters now (e.g. ``late.dropped`` from the reducer)."""
        await self._write(_add_counters, counters)

    async def counters(self) -> dict[str, int]:
        """All persisted counters (``quarantined.<reason>``, ``evicted.<class>.<table>``, …)."""
        async with self._core.lock:
            rows = await self._core.fetchall("SELECT name, value FROM counters ORDER BY name")
        return {str(k): int(str(v)) for k, v in rows}

    # -- outbox --------------------------------------------------------------------------------------

    async def next_seq(self) -> int:
        """A new batch sequence number, durable before it is returned: never reused, even after a crash."""
        return (await self._write(outbox.next_seqs, 1))[0]

    async def next_seqs(self, n: int) -> range:
        """``n`` consecutive new sequence numbers (one transaction)."""
        return await self._write(outbox.next_seqs, n)

    async def take_unbatched(self, max_readings: int, max_events: int) -> Pending:
        """Up to the given numbers of unbatched rows, priority descending then arrival; marks nothing."""
        async with self._core.lock:
            return await outbox.take_unbatched(self._core, max_readings, max_events)

    async def store_batch(
        self, seq: int, priority: int, body: bytes, n_readings: int, n_events: int,
        reading_ids: Collection[int] | npt.NDArray[np.int64] = (),
        event_ids: Collection[int] | npt.NDArray[np.int64] = (),
        *, created_ms: int | None = None,
    ) -> None:
        """Store an encoded batch and mark its rows batched, in one transaction.

        ``seq`` must come from :meth:`next_seq` and not be stored yet; the ids come from a
        :class:`Pending`. Raises :class:`BufferError_` when the seq or the rows are already used.
        """
        created = self._core.clock() if created_ms is None else created_ms
        await self._write(outbox.store_batch, seq, priority, body, n_readings, n_events, reading_ids,
                          event_ids, created)

    async def next_batches(self, limit: int, *, now_ms: int | None = None,
                           exclude: Collection[int] = ()) -> list[StoredBatch]:
        """Unsent batches to upload next: priority descending; within a priority, oldest first, except
        that batches younger than ``fresh_window_ms`` get every ``fresh_every``-th slot (slot 0 first)
        while older ones drain. ``exclude``: seqs already in flight.
        """
        now = self._core.clock() if now_ms is None else now_ms
        return await self._write(outbox.next_batches, limit, now, frozenset(exclude))

    async def mark_sent(self, seq: int) -> bool:
        """The server acknowledged batch ``seq`` (2xx): delete its body; its rows become uploaded once
        every piece of its group is sent (or are deleted when ``uploaded_retention_s`` is 0).
        False if the batch is not stored (already sent, replaced or evicted)."""
        return await self._write(outbox.mark_sent, seq)

    async def dead_letter(self, seq: int, status: int, reason: str) -> bool:
        """Move batch ``seq`` to the dead-letter table (kept forever, counted)."""
        return await self._write(outbox.dead_letter, seq, status, reason)

    async def replace_batch(self, seq: int, parts: Sequence[BatchPart]) -> None:
        """Atomically replace batch ``seq`` by ``parts`` (e.g. halves after a 413), each with a NEW seq
        from :meth:`next_seqs`; parts keep the original priority, age and rows."""
        await self._write(outbox.replace_batch, seq, parts)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with self._core.lock:
            return await maintenance.dead_letters(self._core, limit)

    # -- budget, retention, status -------------------------------------------------------------------

    async def space(self, *, evict: bool = False) -> BudgetStatus:
        """Disk use against the budget. With ``evict=True`` also evicts if over budget and updates
        :attr:`back_pressure` (so the daemon can resume acknowledging without waiting for a burst)."""
        return await self._write(_space, evict)

    async def apply_retention(self, *, now_ms: int | None = None) -> dict[str, int]:
        now = self._core.clock() if now_ms is None else now_ms
        return await self._write(maintenance.apply_retention, now)

    async def backlog(self, *, now_ms: int | None = None, exact: bool = False) -> BacklogStats:
        """Backlog for /status: rows per state, unsent batches and bytes, oldest unsent age, disk use.

        Row counts are kept in memory (no scan); ``exact=True`` recounts them first."""
        core = self._core
        async with core.lock:
            if exact:
                await maintenance.recount(core)
            return await maintenance.backlog(core, core.clock() if now_ms is None else now_ms)

    async def recent_quarantine(self, limit: int = 50) -> list[QuarantineRecord]:
        async with self._core.lock:
            return await maintenance.recent_quarantine(self._core, limit)

    # -- reducer support -----------------------------------------------------------------------------

    async def scan_readings(self, after_id: int = 0, limit: int = 10_000, *,
                            priority: int | None = None) -> ReadingChunk:
        """Readings in arrival order after ``after_id`` (cursor), for recomputing windows."""
        async with self._core.lock:
            return await maintenance.scan_readings(self._core, after_id, limit, priority)

    async def read_waveforms(self, after_id: int = 0, limit: int = 100) -> list[StoredWaveform]:
        async with self._core.lock:
            return await maintenance.read_waveforms(self._core, after_id, limit)

    async def mark_reduced(self, through_ts_ms: int) -> None:
        """Raw data with ``ts_ms < through_ts_ms`` has been reduced (its windows are final): it becomes
        the first to be evicted once uploaded. The watermark only moves forward."""
        await self._write(_mark_reduced, int(through_ts_ms))

    async def get_meta(self, key: str) -> int | float | str | bytes | None:
        """A small durable value of another component (e.g. ``reducer.cursor``)."""
        async with self._core.lock:
            v = await self._core.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return v if v is None or isinstance(v, int | float | str | bytes) else str(v)

    async def set_meta(self, key: str, value: int | float | str | bytes) -> None:
        if key in ("next_seq", "reduced_through_ms", "created_ms"):
            raise ValueError(f"meta key {key!r} is owned by the buffer")
        await self._write(_set_meta, key, value)


def _report_orphan(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a write whose caller was cancelled (else asyncio warns)."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _LOGGER.debug("buffer write ended with %r", exc)


async def _commit_burst(
    core: Core, results: Sequence[DecodeResult], aggregates: Sequence[AggregateRow],
    counters: Mapping[str, int] | None, local_profiles: Container[ProfileRef] | None,
) -> CommitStats:
    try:
        rows = ingest.build_rows(results, aggregates, core.series, core.config.quarantine_payload_cap,
                                 local_profiles, core.clock())
        for k, v in (counters or {}).items():
            rows.counters[k] = rows.counters.get(k, 0) + int(v)
        n_new = len(core.series.pending_rows())
        evicted = await budget.ensure_room(core, rows.estimate_bytes(n_new))
        async with core.txn("commit burst"):
            await ingest.write_rows(core, rows)
    except BaseException:
        core.series.rollback()
        raise
    core.series.commit()
    ingest.count_rows(core, rows)
    return CommitStats(
        messages=rows.messages, readings=len(rows.readings) - rows.aggregates, events=len(rows.events),
        waveforms=len(rows.waveforms), aggregates=rows.aggregates, quarantined=len(rows.quarantine),
        new_series=n_new, evicted=evicted,
    )


async def _add_counters(core: Core, counters: Mapping[str, int]) -> None:
    async with core.txn("add counters"):
        await core.add_counters(counters)


async def _space(core: Core, evict: bool) -> BudgetStatus:
    if evict:
        with contextlib.suppress(BackPressure):
            await budget.ensure_room(core, 0)
    return await budget.measure(core)


async def _mark_reduced(core: Core, through_ts_ms: int) -> None:
    async with core.txn("mark reduced"):
        await core.db.execute(
            "INSERT INTO meta(key, value) VALUES ('reduced_through_ms', ?) ON CONFLICT(key) "
            "DO UPDATE SET value = max(value, excluded.value)", (through_ts_ms,))


async def _set_meta(core: Core, key: str, value: int | float | str | bytes) -> None:
    async with core.txn(f"set meta {key}"):
        await core.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


async def _open_core(path: Path, cfg: BufferConfig, clock: Clock) -> Core:
    db = await connect(path, cfg)
    try:
        await schema.migrate(db)
        page_size = int(str(next(iter(await db.execute_fetchall("PRAGMA page_size")))[0]))
        core = Core(db=db, path=path, config=cfg, clock=clock, page_size=page_size)
        async with core.txn("initialise meta"):
            now = clock()
            await db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('created_ms', ?)", (now,))
            await db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('next_seq', ?)",
                             (max(1, now * 1000),))
        core.series.load(
            (int(str(r[0])), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), int(str(r[6])))
            for r in await db.execute_fetchall(
                "SELECT id, device, metric, unit, profile, agg, window_s FROM series")
        )
        await maintenance.recount(core)
    except BaseException:
        await db.close()
        raise
    return core

"""Eviction classes, in the order they are emptied when the disk budget is exceeded (docs/buffer.md).

Each step deletes at most ``chunk`` rows (or one batch group) in one transaction, oldest first, and
adds what it deleted to the persisted counters ``evicted.<class>.<table>`` and
``evicted.priority.<raw|aggregate|event|alarm>`` in the same transaction.

1. ``raw_reduced``      raw readings already uploaded (or local-only) *and* reduced (ts before the reducer's
                        watermark), and reduced waveform blocks
2. ``uploaded``         any other uploaded reading or event (the cloud has it), raw first
3. ``quarantine``       oldest quarantine records
4. ``raw_unsent``       oldest unsent raw: stored raw batches (whole group), then unbatched raw rows,
                        local-only raw rows not yet reduced, unreduced waveform blocks
5. ``aggregate_unsent`` oldest unsent aggregates: aggregate batches, then unbatched aggregate rows
6. ``event_unsent``, ``alarm_unsent``  only with ``BufferConfig.evict_events``; otherwise never
Never evicted: dead letters, meta, counters, series.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge_agent.buffer.core import Core
from edge_agent.buffer.records import State
from edge_agent.buffer.runs import decode_runs
from edge_agent.model import Priority

_LOGGER = logging.getLogger(__name__)

Step = Callable[[Core, int], Awaitable[int]]


def _pname(p: int) -> str:
    try:
        return Priority(p).name.lower()
    except ValueError:
        return f"p{p}"


async def reduced_watermark(core: Core) -> int:
    return await core.meta_int("reduced_through_ms", 0)


async def _delete_rows(core: Core, cls: str, table: str, where: str, params: tuple[object, ...],
                       chunk: int, state: int) -> int:
    """Delete the oldest ``chunk`` rows of ``table`` matching ``where`` (which fixes one state)."""
    sel = f"SELECT id, priority FROM {table} WHERE {where} ORDER BY id LIMIT ?"
    async with core.txn(f"evict {cls} from {table}") as db:
        rows = await core.fetchall(sel, (*params, chunk))
        if not rows:
            return 0
        await db.executemany(f"DELETE FROM {table} WHERE id = ?", [(r[0],) for r in rows])
        by_p: dict[str, int] = {}
        for _, p in rows:
            key = f"evicted.priority.{_pname(int(str(p)))}"
            by_p[key] = by_p.get(key, 0) + 1
        await core.add_counters({f"evicted.{cls}.{table}": len(rows), **by_p})
    core.counts.add(table, state, -len(rows))
    return len(rows)


async def _delete_plain(core: Core, cls: str, table: str, where: str, params: tuple[object, ...],
                        chunk: int) -> int:
    """Same for tables without priority/state (waveforms, quarantine)."""
    async with core.txn(f"evict {cls} from {table}") as db:
        cur = await db.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT ?)",
            (*params, chunk),
        )
        n = max(cur.rowcount, 0)
        await core.add_counters({f"evicted.{cls}.{table}": n})
    core.counts.add(table, 0, -n)
    return n


async def evict_group(core: Core, cls: str, priority: int) -> int:
    """Delete the oldest unsent batch of ``priority`` with its whole group (split siblings and rows)."""
    async with core.txn(f"evict {cls} batch") as db:
        grp = await core.scalar(
            "SELECT grp FROM batches WHERE priority = ? ORDER BY seq LIMIT 1", (priority,))
        if grp is None:
            return 0
        runs = await core.fetchall("SELECT r_runs, e_runs FROM batch_groups WHERE id = ?", (grp,))
        nb = (await db.execute("DELETE FROM batches WHERE grp = ?", (grp,))).rowcount
        await db.execute("DELETE FROM batch_groups WHERE id = ?", (grp,))
        counters: dict[str, int] = {f"evicted.{cls}.batches": nb}
        total = 0
        deleted: dict[str, int] = {}
        for table, blob in zip(("readings", "events"), runs[0] if runs else (b"", b""), strict=True):
            for a, b in decode_runs(blob if isinstance(blob, bytes) else b""):
                rng = (a, b, int(State.BATCHED))
                for p, n in await core.fetchall(
                    f"SELECT priority, count(*) FROM {table} WHERE id BETWEEN ? AND ? AND +state = ? "
                    "GROUP BY priority", rng,
                ):
                    key = f"evicted.priority.{_pname(int(str(p)))}"
                    counters[key] = counters.get(key, 0) + int(str(n))
                cur = await db.execute(f"DELETE FROM {table} WHERE id BETWEEN ? AND ? AND +state = ?", rng)
                deleted[table] = deleted.get(table, 0) + max(cur.rowcount, 0)
        for table, n in deleted.items():
            counters[f"evicted.{cls}.{table}"] = n
            total += n
        await core.add_counters(counters)
    for table, n in deleted.items():
        core.counts.add(table, State.BATCHED, -n)
    _LOGGER.warning("evicted unsent batch group %s (%s rows) to stay within the disk budget", grp, total,
                    extra={"batch_group": grp})
    return total + nb


def _rows(cls: str, table: str, state: State, priority: int | None, reduced: bool = False) -> Step:
    async def step(core: Core, chunk: int) -> int:
        where = "state = ?"
        params: list[object] = [int(state)]
        if priority is not None:
            where += " AND priority = ?"
            params.append(priority)
        if reduced:
            where += " AND ts_ms < ?"
            params.append(await reduced_watermark(core))
        return await _delete_rows(core, cls, table, where, tuple(params), chunk, int(state))

    return step


def _waveforms(cls: str, reduced: bool) -> Step:
    async def step(core: Core, chunk: int) -> int:
        if reduced:
            return await _delete_plain(core, cls, "waveforms", "ts_ms < ?", (await reduced_watermark(core),),
                                       chunk)
        return await _delete_plain(core, cls, "waveforms", "1", (), chunk)

    return step


def _quarantine(core: Core, chunk: int) -> Awaitable[int]:
    return _delete_plain(core, "quarantine", "quarantine", "1", (), chunk)


def _groups(cls: str, priority: int) -> Step:
    async def step(core: Core, chunk: int) -> int:
        return await evict_group(core, cls, priority)

    return step


@dataclass(slots=True, frozen=True)
class EvictionClass:
    name: str
    steps: tuple[Step, ...]


RAW, AGG, EVT, ALM = (int(p) for p in (Priority.RAW, Priority.AGGREGATE, Priority.EVENT, Priority.ALARM))

BASE_CLASSES: tuple[EvictionClass, ...] = (
    EvictionClass("raw_reduced", (
        _rows("raw_reduced", "readings", State.UPLOADED, RAW, reduced=True),
        _rows("raw_reduced", "readings", State.LOCAL, RAW, reduced=True),
        _waveforms("raw_reduced", reduced=True),
    )),
    EvictionClass("uploaded", tuple(
        _rows("uploaded", table, State.UPLOADED, p)
        for p in (RAW, AGG, EVT, ALM) for table in ("readings", "events")
    )),
    EvictionClass("quarantine", (_quarantine,)),
    EvictionClass("raw_unsent", (
        _groups("raw_unsent", RAW),
        _rows("raw_unsent", "readings", State.NEW, RAW),
        _rows("raw_unsent", "events", State.NEW, RAW),
        _rows("raw_unsent", "readings", State.LOCAL, RAW),
        _waveforms("raw_unsent", reduced=False),
    )),
    EvictionClass("aggregate_unsent", (
        _groups("aggregate_unsent", AGG),
        _rows("aggregate_unsent", "readings", State.NEW, AGG),
        _rows("aggregate_unsent", "events", State.NEW, AGG),
    )),
)
EVENT_CLASSES: tuple[EvictionClass, ...] = tuple(
    EvictionClass(name, (
        _groups(name, p),
        _rows(name, "events", State.NEW, p),
        _rows(name, "readings", State.NEW, p),
    ))
    for name, p in (("event_unsent", EVT), ("alarm_unsent", ALM))
)


def classes(evict_events: bool) -> tuple[EvictionClass, ...]:
    return BASE_CLASSES + (EVENT_CLASSES if evict_events else ())

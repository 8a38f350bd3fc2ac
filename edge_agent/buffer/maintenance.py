"""Retention, backlog statistics and read-only views (quarantine, dead letters, reducer cursors).

Retention walks rows in arrival order in chunks (bounded memory and transaction size). A chunk in
which nothing is old enough ends the walk: rows arrive roughly in time order, so the rest is younger.
"""

from __future__ import annotations

import numpy as np

from edge_agent.buffer.budget import measure
from edge_agent.buffer.core import Core
from edge_agent.buffer.records import (
    BacklogStats,
    DeadLetter,
    QuarantineRecord,
    ReadingChunk,
    State,
    StoredWaveform,
)

_H = 3_600_000


async def _retire_old(core: Core, table: str, state: State, cutoff: int, chunk: int) -> int:
    total = 0
    for priority in range(4):  # one index range (state, priority) each, walked in id order
        after = 0
        while True:
            async with core.txn(f"retention on {table}") as db:
                rows = await core.fetchall(
                    f"SELECT id, ts_ms FROM {table} WHERE state = ? AND priority = ? AND id > ? "
                    "ORDER BY id LIMIT ?", (int(state), priority, after, chunk))
                old = [(r[0],) for r in rows if int(str(r[1])) < cutoff]
                if old:
                    await db.executemany(f"DELETE FROM {table} WHERE id = ?", old)
                    await core.add_counters({f"retention.{table}": len(old)})
            core.counts.add(table, state, -len(old))
            total += len(old)
            if not old or len(rows) < chunk:
                break
            after = int(str(rows[-1][0]))
    return total


async def apply_retention(core: Core, now_ms: int) -> dict[str, int]:
    """Delete uploaded rows older than ``uploaded_retention_s``, local-only raw rows and waveforms that
    are older *and* reduced, and quarantine records older than ``quarantine_retention_s``.

    Returns rows deleted per table (also added to the ``retention.<table>`` counters).
    """
    cfg = core.config
    chunk = cfg.eviction_chunk
    cutoff = now_ms - int(cfg.uploaded_retention_s * 1000)
    reduced = await core.meta_int("reduced_through_ms", 0)
    out = {
        "readings": await _retire_old(core, "readings", State.UPLOADED, cutoff, chunk)
        + await _retire_old(core, "readings", State.LOCAL, min(cutoff, reduced), chunk),
        "events": await _retire_old(core, "events", State.UPLOADED, cutoff, chunk),
    }
    for table, col, limit in (("waveforms", "ts_ms", min(cutoff, reduced)),
                              ("quarantine", "received_ms", now_ms - int(cfg.quarantine_retention_s * 1000))):
        n = 0
        while True:
            async with core.txn(f"retention on {table}") as db:
                cur = await db.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {col} < ? LIMIT ?)",
                    (limit, chunk))
                k = max(cur.rowcount, 0)
                await core.add_counters({f"retention.{table}": k})
            core.counts.add(table, 0, -k)
            n += k
            if k < chunk:
                break
        out[table] = n
    return out


async def recount(core: Core) -> None:
    """Exact row counts per state (one index scan per table); done on open."""
    core.counts.n.clear()
    for table in ("readings", "events"):
        for state, n in await core.fetchall(f"SELECT state, count(*) FROM {table} GROUP BY state"):
            core.counts.add(table, int(str(state)), int(str(n)))
    for table in ("waveforms", "quarantine"):
        core.counts.add(table, 0, int(str(await core.scalar(f"SELECT count(*) FROM {table}"))))


async def _oldest_unsent(core: Core, table: str) -> int | None:
    """ts of the earliest-arrived unsent row (one index seek per state and priority)."""
    best: tuple[int, int] | None = None
    for state in (State.NEW, State.BATCHED):
        for p in range(4):
            rows = await core.fetchall(
                f"SELECT id, ts_ms FROM {table} WHERE state = ? AND priority = ? ORDER BY id LIMIT 1",
                (int(state), p))
            if rows:
                cand = (int(str(rows[0][0])), int(str(rows[0][1])))
                best = cand if best is None or cand[0] < best[0] else best
    return best[1] if best else None


async def backlog(core: Core, now_ms: int) -> BacklogStats:
    c = core.counts
    ((nb, nbytes),) = await core.fetchall("SELECT count(*), coalesce(sum(size), 0) FROM batches")
    oldest = [t for t in (await _oldest_unsent(core, "readings"), await _oldest_unsent(core, "events"))
              if t is not None]
    oldest_ms = min(oldest) if oldest else None
    return BacklogStats(
        readings_by_state=c.by_state("readings"),
        events_by_state=c.by_state("events"),
        waveforms=c.get("waveforms", 0),
        quarantine=c.get("quarantine", 0),
        unsent_readings=c.get("readings", State.NEW) + c.get("readings", State.BATCHED),
        unsent_events=c.get("events", State.NEW) + c.get("events", State.BATCHED),
        batches=int(str(nb)),
        batch_bytes=int(str(nbytes)),
        dead_letters=int(str(await core.scalar("SELECT count(*) FROM dead_letter"))),
        oldest_unsent_ms=oldest_ms,
        oldest_unsent_age_s=None if oldest_ms is None else max(0.0, (now_ms - oldest_ms) / 1000),
        budget=await measure(core),
    )


async def scan_readings(core: Core, after_id: int, limit: int, priority: int | None) -> ReadingChunk:
    where, params = "id > ?", [after_id]
    if priority is not None:
        where += " AND priority = ?"
        params.append(priority)
    rows = await core.fetchall(
        f"SELECT id, series, ts_ms, value, quality FROM readings WHERE {where} ORDER BY id LIMIT ?",
        (*params, limit))
    cols = list(zip(*rows, strict=True)) if rows else [()] * 5
    r_series = np.array(cols[1], dtype=np.uint32)
    sids: list[int] = np.unique(r_series).tolist()
    return ReadingChunk(
        r_id=np.array(cols[0], dtype=np.int64), r_series=r_series,
        r_ts_ms=np.array(cols[2], dtype=np.int64), r_value=np.array(cols[3], dtype=np.float64),
        r_quality=np.array(cols[4], dtype=np.uint16), series={s: core.series.key(s) for s in sids},
    )


async def read_waveforms(core: Core, after_id: int, limit: int) -> list[StoredWaveform]:
    rows = await core.fetchall(
        "SELECT id, series, ts_ms, rate_hz, samples FROM waveforms WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit))
    out = []
    for i, s, ts, rate, blob in rows:
        assert isinstance(blob, bytes)
        samples = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        out.append(StoredWaveform(int(str(i)), core.series.key(int(str(s))), int(str(ts)), float(str(rate)),
                                  samples))
    return out


async def recent_quarantine(core: Core, limit: int) -> list[QuarantineRecord]:
    rows = await core.fetchall(
        "SELECT id, received_ms, topic, payload, payload_len, profile, device, reason, detail "
        "FROM quarantine ORDER BY id DESC LIMIT ?", (limit,))
    return [QuarantineRecord(*r) for r in rows]  # type: ignore[arg-type]


async def dead_letters(core: Core, limit: int) -> list[DeadLetter]:
    rows = await core.fetchall(
        "SELECT seq, priority, created_ms, n_readings, n_events, size, status, reason, dead_ms "
        "FROM dead_letter ORDER BY seq DESC LIMIT ?", (limit,))
    return [DeadLetter(*r) for r in rows]  # type: ignore[arg-type]

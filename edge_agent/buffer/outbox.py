"""Outbox: unbatched rows out, encoded batches in, upload outcome back — each step one transaction.

Sequence numbers come from ``meta.next_seq``, advanced and committed *before* the number is handed
out, so a number is never reused even if the process dies before the batch is stored (it is then
skipped). A new buffer file starts at ``clock_ms × 1000``, so even a buffer recreated from scratch
continues above every number its predecessor could have issued (fewer than 1000 batches per ms).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt
import orjson

from edge_agent.buffer.core import Core
from edge_agent.buffer.records import BatchPart, Pending, State, StoredBatch
from edge_agent.buffer.runs import count_ids, decode_runs, encode_runs, to_runs
from edge_agent.errors import BufferError_

_LOGGER = logging.getLogger(__name__)


async def next_seqs(core: Core, n: int) -> range:
    if n < 1:
        raise ValueError(f"next_seqs: n has value {n}, must be >= 1")
    async with core.txn("allocate sequence numbers"):
        end = await core.scalar(
            "UPDATE meta SET value = value + ? WHERE key = 'next_seq' RETURNING value", (n,)
        )
    if end is None:
        raise BufferError_(f"{core.path}: meta.next_seq is missing")
    return range(int(str(end)) - n, int(str(end)))


async def take_unbatched(core: Core, max_readings: int, max_events: int) -> Pending:
    """Oldest unbatched rows, highest priority first; reads at most the requested number of rows."""
    r = await core.fetchall(
        "SELECT id, series, ts_ms, value, quality, priority, version FROM readings "
        "WHERE state = 0 ORDER BY priority DESC, id LIMIT ?", (max(0, max_readings),),
    ) if max_readings > 0 else []
    e = await core.fetchall(
        "SELECT id, series, ts_ms, attrs, quality, priority FROM events "
        "WHERE state = 0 ORDER BY priority DESC, id LIMIT ?", (max_events,),
    ) if max_events > 0 else []
    rc: list[Sequence[object]] = list(zip(*r, strict=True)) if r else [()] * 7
    ec: list[Sequence[object]] = list(zip(*e, strict=True)) if e else [()] * 6
    r_series = np.array(rc[1], dtype=np.uint32)
    e_series = np.array(ec[1], dtype=np.uint32)
    sids: list[int] = np.unique(np.concatenate((r_series, e_series))).tolist()
    return Pending(
        r_id=np.array(rc[0], dtype=np.int64),
        r_series=r_series,
        r_ts_ms=np.array(rc[2], dtype=np.int64),
        r_value=np.array(rc[3], dtype=np.float64),  # NULL (a NaN that SQLite stored as NULL) → NaN
        r_quality=np.array(rc[4], dtype=np.uint16),
        r_priority=np.array(rc[5], dtype=np.uint8),
        r_version=np.array(rc[6], dtype=np.uint16),
        e_id=np.array(ec[0], dtype=np.int64),
        e_series=e_series,
        e_ts_ms=np.array(ec[2], dtype=np.int64),
        e_quality=np.array(ec[4], dtype=np.uint16),
        e_priority=np.array(ec[5], dtype=np.uint8),
        e_attrs=tuple(orjson.loads(a) for a in ec[3]),  # type: ignore[arg-type]
        series={sid: core.series.key(sid) for sid in sids},
    )


async def _check_new_seq(core: Core, seq: int) -> None:
    issued = await core.meta_int("next_seq")
    if seq >= issued:
        raise BufferError_(f"{core.path}: batch seq {seq} was not issued by next_seq() (next is {issued})")
    for table in ("batches", "dead_letter"):
        if await core.scalar(f"SELECT 1 FROM {table} WHERE seq = ?", (seq,)) is not None:
            raise BufferError_(f"{core.path}: batch seq {seq} is already stored in {table}")


async def _mark(core: Core, table: str, runs: npt.NDArray[np.int64]) -> int:
    if runs.shape[0] == 0:
        return 0
    cur = await core.db.executemany(
        f"UPDATE {table} SET state = 1 WHERE id BETWEEN ? AND ? AND +state = 0",
        [(int(a), int(b)) for a, b in runs],
    )
    return max(cur.rowcount, 0)


async def _foreign(core: Core, table: str, runs: npt.NDArray[np.int64]) -> int:
    """Rows among ``runs`` that exist but are not NEW (a caller error: they belong to another batch)."""
    n = 0
    for a, b in runs:
        n += int(str(await core.scalar(
            f"SELECT count(*) FROM {table} WHERE id BETWEEN ? AND ? AND state != 0", (int(a), int(b)))))
    return n


async def store_batch(
    core: Core, seq: int, priority: int, body: bytes, n_readings: int, n_events: int,
    reading_ids: Collection[int] | npt.NDArray[np.int64], event_ids: Collection[int] | npt.NDArray[np.int64],
    created_ms: int,
) -> None:
    r_runs, e_runs = to_runs(reading_ids), to_runs(event_ids)
    async with core.txn(f"store batch {seq}") as db:
        await _check_new_seq(core, seq)
        nr = await _mark(core, "readings", r_runs)
        ne = await _mark(core, "events", e_runs)
        want_r, want_e = count_ids([(int(a), int(b)) for a, b in r_runs]), count_ids(
            [(int(a), int(b)) for a, b in e_runs])
        if nr != want_r or ne != want_e:
            bad = await _foreign(core, "readings", r_runs) + await _foreign(core, "events", e_runs)
            if bad:
                raise BufferError_(
                    f"{core.path}: batch {seq}: {bad} of its rows are already in another batch")
            _LOGGER.warning("batch %s: %s readings and %s events were evicted after take_unbatched",
                            seq, want_r - nr, want_e - ne, extra={"batch_seq": seq})
        await db.execute("INSERT INTO batch_groups(id, r_runs, e_runs) VALUES (?, ?, ?)",
                         (seq, encode_runs(r_runs), encode_runs(e_runs)))
        await db.execute(
            "INSERT INTO batches(seq, grp, priority, created_ms, n_readings, n_events, size, crc, body) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (seq, seq, int(priority), created_ms, n_readings, n_events, len(body), zlib.crc32(body), body),
        )
        await core.add_counters({"batches.stored": 1})
    core.counts.move("readings", State.NEW, State.BATCHED, nr)
    core.counts.move("events", State.NEW, State.BATCHED, ne)


def fair_order(backlog: Sequence[int], fresh: Sequence[int], limit: int, fresh_every: int) -> list[int]:
    """Interleave two seq-ascending queues of one priority: slot 0, k, 2k… go to fresh, the rest to backlog.

    Either queue fills the other's slots when that one is empty, so nothing idles.
    """
    out: list[int] = []
    b, f = list(backlog), list(fresh)
    i = 0
    while len(out) < limit and (b or f):
        out.append(f.pop(0) if f and (not b or i % fresh_every == 0) else b.pop(0))
        i += 1
    return out


async def next_batches(core: Core, limit: int, now_ms: int, exclude: Collection[int]) -> list[StoredBatch]:
    cfg = core.config
    cutoff = now_ms - cfg.fresh_window_ms
    want = limit + len(exclude)
    chosen: list[int] = []
    prios = [int(str(r[0])) for r in await core.fetchall(
        "SELECT DISTINCT priority FROM batches ORDER BY priority DESC")]
    for p in prios:
        if len(chosen) >= limit:
            break
        q = "SELECT seq FROM batches WHERE priority = ? AND created_ms {} ? ORDER BY seq LIMIT ?"
        backlog = [int(str(r[0])) for r in await core.fetchall(q.format("<"), (p, cutoff, want))]
        fresh = [int(str(r[0])) for r in await core.fetchall(q.format(">="), (p, cutoff, want))]
        backlog = [s for s in backlog if s not in exclude]
        fresh = [s for s in fresh if s not in exclude]
        chosen += fair_order(backlog, fresh, limit - len(chosen), cfg.fresh_every)
    out: list[StoredBatch] = []
    for seq in chosen:
        rows = await core.fetchall(
            "SELECT priority, created_ms, body, n_readings, n_events, crc FROM batches WHERE seq = ?", (seq,))
        pri, created, body, nr, ne, crc = rows[0]
        assert isinstance(body, bytes)
        if zlib.crc32(body) != int(str(crc)):
            await _drop_damaged(core, seq)
            continue
        out.append(StoredBatch(seq, int(str(pri)), int(str(created)), body, int(str(nr)), int(str(ne))))
    return out


async def _drop_damaged(core: Core, seq: int) -> None:
    """A stored body fails its CRC: keep it as a dead letter and give its rows back to the outbox."""
    _LOGGER.error("batch %s in %s fails its checksum: dead-lettered, rows re-queued", seq, core.path,
                  extra={"batch_seq": seq})
    await _retire(core, seq, 0, "local checksum mismatch: body damaged on disk", State.NEW)


async def _finish_group(core: Core, grp: int, to_state: State) -> None:
    """When a group has no batch left: its rows become ``to_state`` (or are deleted, retention 0)."""
    left = await core.scalar("SELECT count(*) FROM batches WHERE grp = ?", (grp,))
    if int(str(left)):
        return
    rows = await core.fetchall("SELECT r_runs, e_runs FROM batch_groups WHERE id = ?", (grp,))
    await core.db.execute("DELETE FROM batch_groups WHERE id = ?", (grp,))
    if not rows:
        return
    delete = to_state == State.UPLOADED and core.config.uploaded_retention_s == 0
    for table, blob in zip(("readings", "events"), rows[0], strict=True):
        runs = decode_runs(blob if isinstance(blob, bytes) else b"")
        if not runs:
            continue
        # '+state': seek the id range by primary key. Without the '+' SQLite picks the readings_queue index
        # on state and visits every batched row for each run: O(backlog) per batch, quadratic to drain one.
        sql = (f"DELETE FROM {table} WHERE id BETWEEN ? AND ? AND +state = 1" if delete
               else f"UPDATE {table} SET state = {int(to_state)} WHERE id BETWEEN ? AND ? AND +state = 1")
        n = max((await core.db.executemany(sql, runs)).rowcount, 0)
        if delete:
            core.counts.add(table, State.BATCHED, -n)
        else:
            core.counts.move(table, State.BATCHED, to_state, n)


async def mark_sent(core: Core, seq: int) -> bool:
    async with core.txn(f"mark batch {seq} sent"):
        rows = await core.fetchall("SELECT grp, n_readings, n_events FROM batches WHERE seq = ?", (seq,))
        if not rows:
            _LOGGER.info("mark_sent: batch %s is not stored (already sent, replaced or evicted)", seq,
                         extra={"batch_seq": seq})
            return False
        grp, nr, ne = (int(str(v)) for v in rows[0])
        await core.db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        await _finish_group(core, grp, State.UPLOADED)
        await core.add_counters({"uploaded.batches": 1, "uploaded.readings": nr, "uploaded.events": ne})
    return True


async def _retire(core: Core, seq: int, status: int, reason: str, rows_to: State) -> bool:
    async with core.txn(f"dead-letter batch {seq}") as db:
        rows = await core.fetchall("SELECT grp, n_readings, n_events FROM batches WHERE seq = ?", (seq,))
        if not rows:
            return False
        grp, nr, ne = (int(str(v)) for v in rows[0])
        await db.execute(
            "INSERT INTO dead_letter(seq, priority, created_ms, n_readings, n_events, size, crc, body, "
            "status, reason, dead_ms) "
            "SELECT seq, priority, created_ms, n_readings, n_events, size, crc, body, "
            "?, ?, ? FROM batches WHERE seq = ?", (status, reason, core.clock(), seq))
        await db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        if rows_to == State.NEW:
            # damaged: which rows were in this piece of a split group is unknown, so all of the group's
            # rows go back to the outbox now and the sibling pieces are detached (their rows may be
            # uploaded twice; the cloud de-duplicates; none is lost)
            for (sib,) in await core.fetchall("SELECT seq FROM batches WHERE grp = ?", (grp,)):
                await db.execute("INSERT INTO batch_groups(id, r_runs, e_runs) VALUES (?, x'', x'')", (sib,))
                await db.execute("UPDATE batches SET grp = seq WHERE seq = ?", (sib,))
        await _finish_group(core, grp, rows_to)
        await core.add_counters({"dead_lettered.batches": 1, "dead_lettered.readings": nr,
                                 "dead_lettered.events": ne})
    return True


async def dead_letter(core: Core, seq: int, status: int, reason: str) -> bool:
    done = await _retire(core, seq, status, reason, State.UPLOADED)
    if done:
        _LOGGER.error("batch %s dead-lettered: HTTP %s %s", seq, status, reason[:256],
                      extra={"batch_seq": seq})
    return done


async def replace_batch(core: Core, seq: int, parts: Sequence[BatchPart]) -> None:
    if not parts:
        raise ValueError(f"replace_batch({seq}): no parts given")
    async with core.txn(f"replace batch {seq}") as db:
        rows = await core.fetchall("SELECT grp, priority, created_ms FROM batches WHERE seq = ?", (seq,))
        if not rows:
            raise BufferError_(f"{core.path}: replace_batch: batch {seq} is not stored")
        grp, pri, created = (int(str(v)) for v in rows[0])
        for part in parts:
            await _check_new_seq(core, part.seq)
        await db.executemany(
            "INSERT INTO batches(seq, grp, priority, created_ms, n_readings, n_events, size, crc, body) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(p.seq, grp, pri, created, p.n_readings, p.n_events, len(p.body), zlib.crc32(p.body), p.body)
             for p in parts],
        )
        await db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        await core.add_counters({"batches.split": 1})

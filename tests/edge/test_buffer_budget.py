"""Disk budget: eviction order and counts, back-pressure raised and cleared."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.buffer import AggregateRow, BackPressure, Buffer, BufferConfig
from edge_agent.model import Priority
from tests.edge.test_buffer_helpers import (
    BASE,
    P,
    burst,
    event_burst,
    quarantine_result,
    scalar,
    ts_of,
)

KIB = 1024


async def upload_all(buf: Buffer, n_readings: int, n_events: int = 0) -> int:
    p = await buf.take_unbatched(n_readings, n_events)
    seq = await buf.next_seq()
    await buf.store_batch(seq, p.priority, b"body", p.n_readings, p.n_events, p.r_id, p.e_id)
    await buf.mark_sent(seq)
    return seq


async def fill_every_class(path: Path) -> int:
    """One block of rows per eviction class; returns the reducer watermark used."""
    watermark = ts_of(1, 0, 0)
    async with await Buffer.open(path) as b:
        await b.commit_burst(burst(0))  # A: raw, uploaded and reduced
        await upload_all(b, 500)
        await b.commit_burst(burst(1))  # B: raw, uploaded, not reduced
        await upload_all(b, 500)
        await b.mark_reduced(watermark)
        await b.commit_burst([quarantine_result(i, b"q" * 1000) for i in range(50)])  # Q
        await b.commit_burst(burst(2))  # C1: raw in a stored, unsent batch
        p = await b.take_unbatched(500, 0)
        seq = await b.next_seq()
        await b.store_batch(seq, p.priority, b"raw batch", 500, 0, p.r_id)
        await b.commit_burst(burst(3))  # C2: raw, unbatched
        aggs = [AggregateRow(f"dev{i % 7}", "m0", "u", P, "mean", 60, BASE + i * 60_000, 1.0)
                for i in range(500)]
        await b.commit_burst([], aggregates=aggs)  # D: unsent aggregates
        await b.commit_burst(event_burst(4, 200))  # E: unsent events (never evicted by default)
    return watermark


def remaining(path: Path, watermark: int) -> dict[str, int]:
    q = lambda sql: scalar(path, sql)  # noqa: E731
    return {
        "raw_reduced": q("SELECT count(*) FROM readings WHERE state = 2 AND priority = 0 "
                         f"AND ts_ms < {watermark}"),
        "uploaded": q(f"SELECT count(*) FROM readings WHERE state = 2 AND ts_ms >= {watermark}"),
        "quarantine": q("SELECT count(*) FROM quarantine"),
        "raw_unsent": q("SELECT count(*) FROM readings WHERE state IN (0, 1) AND priority = 0")
        + q("SELECT count(*) FROM batches WHERE priority = 0"),
        "aggregate_unsent": q("SELECT count(*) FROM readings WHERE priority = 1"),
        "events": q("SELECT count(*) FROM events"),
    }


async def test_eviction_follows_the_class_order_and_counts_every_row(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    watermark = await fill_every_class(path)
    initial = remaining(path, watermark)
    assert initial == {"raw_reduced": 500, "uploaded": 500, "quarantine": 50, "raw_unsent": 1001,
                       "aggregate_unsent": 500, "events": 200}
    order = list(initial)
    async with await Buffer.open(path) as b:
        used = (await b.space()).used_bytes
    stuck = False
    for _ in range(40):
        budget = max(64 * KIB, int(used * 0.7))
        async with await Buffer.open(path, BufferConfig(budget_bytes=budget)) as b:
            st = await b.space(evict=True)
            stuck = b.back_pressure
        now = remaining(path, watermark)
        touched = [i for i, name in enumerate(order) if now[name] < initial[name]]
        for i in touched:  # a class is only touched when every earlier class is empty
            assert all(now[order[j]] == 0 for j in range(i)), (order[i], now)
        assert now["events"] == 200  # unsent events are never evicted by default
        if stuck:
            break
        used = st.used_bytes
    assert stuck, "the budget never got small enough to exhaust the evictable classes"
    assert remaining(path, watermark) == {name: 0 for name in order[:-1]} | {"events": 200}
    async with await Buffer.open(path) as b:
        c = await b.counters()
    assert c["evicted.raw_reduced.readings"] == 500
    assert c["evicted.uploaded.readings"] == 500
    assert c["evicted.quarantine.quarantine"] == 50
    assert c["evicted.raw_unsent.batches"] == 1
    assert c["evicted.raw_unsent.readings"] == 1000
    assert c["evicted.aggregate_unsent.readings"] == 500
    assert c["evicted.priority.raw"] == 2000
    assert c["evicted.priority.aggregate"] == 500
    assert c["back_pressure.episodes"] == 1
    assert not any(k.startswith("evicted.event") for k in c)


async def fill_until_refused(b: Buffer, start: int) -> tuple[int, BackPressure]:
    """Commit bursts of 50 events until the buffer refuses; return the refused burst's number."""
    for k in range(start, start + 1000):
        try:
            await b.commit_burst(event_burst(k, 50))
        except BackPressure as exc:
            return k, exc
    raise AssertionError("the buffer never refused")


async def test_back_pressure_when_nothing_can_be_evicted_then_cleared(tmp_path: Path) -> None:
    cfg = BufferConfig(budget_bytes=256 * KIB)
    async with await Buffer.open(tmp_path / "b.db", cfg) as b:
        k, err = await fill_until_refused(b, 0)
        assert "nothing more can be evicted" in str(err)
        assert b.back_pressure
        stored = scalar(b.path, "SELECT count(*) FROM events")
        assert stored == 50 * k  # the refused burst wrote nothing
        with pytest.raises(BackPressure):
            await b.commit_burst(event_burst(k, 50))
        assert (await b.counters())["back_pressure.episodes"] == 1  # one episode, however many refusals
        assert (await b.space(evict=True)).back_pressure

        # the uploader keeps working under back-pressure; uploaded events become evictable
        await upload_all(b, 0, stored)
        assert (await b.space(evict=True)).used_bytes <= cfg.budget_bytes
        assert not b.back_pressure
        await b.commit_burst(event_burst(k, 50))
        c = await b.counters()
        assert c["evicted.uploaded.events"] > 0
        assert scalar(b.path, "SELECT count(*) FROM events WHERE state = 0") == 50

        await fill_until_refused(b, k + 1)
        assert (await b.counters())["back_pressure.episodes"] == 2


async def test_events_are_evicted_last_when_allowed(tmp_path: Path) -> None:
    cfg = BufferConfig(budget_bytes=256 * KIB, evict_events=True)
    async with await Buffer.open(tmp_path / "b.db", cfg) as b:
        await b.commit_burst(event_burst(0, 100, priority=Priority.ALARM))
        for k in range(1, 60):
            await b.commit_burst(event_burst(k, 50))
        c = await b.counters()
        assert c["evicted.event_unsent.events"] > 0
        assert "evicted.alarm_unsent.events" not in c
        assert scalar(b.path, "SELECT count(*) FROM events WHERE priority = 3") == 100
        assert not b.back_pressure


async def test_unsent_raw_batches_are_evicted_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with await Buffer.open(path) as b:
        await b.commit_burst(burst(0))
        p = await b.take_unbatched(500, 0)
        seq = await b.next_seq()
        await b.store_batch(seq, 0, b"x" * 20_000, 500, 0, p.r_id)
    async with await Buffer.open(path) as b:  # measured after a clean close: no WAL left
        used = (await b.space()).used_bytes
    async with await Buffer.open(path, BufferConfig(budget_bytes=max(64 * KIB, used - 8 * KIB))) as b:
        await b.commit_burst(burst(1, 10))
        assert not await b.mark_sent(seq)  # evicted: a late 2xx for it is harmless
        c = await b.counters()
        assert (c["evicted.raw_unsent.batches"], c["evicted.raw_unsent.readings"]) == (1, 500)
        assert scalar(path, "SELECT count(*) FROM batch_groups") == 0
        assert (await b.backlog()).readings_by_state == (await b.backlog(exact=True)).readings_by_state


async def test_a_burst_larger_than_the_budget_is_refused(tmp_path: Path) -> None:
    async with await Buffer.open(tmp_path / "b.db", BufferConfig(budget_bytes=128 * KIB)) as b:
        with pytest.raises(BackPressure, match="does not fit"):
            await b.commit_burst(burst(0, 2000))
        assert scalar(b.path, "SELECT count(*) FROM readings") == 0
        assert b.back_pressure
        await b.commit_burst(burst(0, 2))
        assert not b.back_pressure


async def test_used_bytes_count_the_wal(tmp_path: Path) -> None:
    async with await Buffer.open(tmp_path / "b.db") as b:
        await b.commit_burst(burst(0, 500))
        st = await b.space()
        assert st.wal_bytes > 0
        assert st.used_bytes == st.db_bytes + st.wal_bytes
        assert st.budget_bytes == BufferConfig().budget_bytes

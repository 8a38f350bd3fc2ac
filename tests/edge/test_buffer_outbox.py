"""Outbox: sequence numbers, take/store, ordering and fairness, sent, dead letters, re-cut batches."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from edge_agent.buffer import BatchPart, Buffer, BufferConfig, BufferError_, Pending
from edge_agent.buffer.outbox import fair_order
from edge_agent.model import Priority
from tests.edge.test_buffer_helpers import burst, event_burst, rows, scalar


@pytest.fixture
async def buf(tmp_path: Path) -> AsyncIterator[Buffer]:
    b = await Buffer.open(tmp_path / "buffer.db")
    yield b
    await b.close()


async def cut(buf: Buffer, n_readings: int, n_events: int = 0, *, created_ms: int | None = None,
              body: bytes | None = None) -> tuple[int, Pending]:
    """What the outbox does: take, allocate a seq, encode (here: a fake body), store."""
    p = await buf.take_unbatched(n_readings, n_events)
    seq = await buf.next_seq()
    await buf.store_batch(seq, p.priority, body if body is not None else f"batch {seq}".encode(),
                          p.n_readings, p.n_events, p.r_id, p.e_id, created_ms=created_ms)
    return seq, p


async def test_seq_is_monotonic_and_durable_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    seen: list[int] = []
    for _ in range(3):
        async with await Buffer.open(path) as b:
            seen.append(await b.next_seq())
            seen += list(await b.next_seqs(3))
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    assert seen == list(range(seen[0], seen[0] + 12))  # issued numbers are durable: none reused


async def test_new_buffer_starts_above_any_predecessor(tmp_path: Path) -> None:
    """A buffer recreated from scratch continues above its predecessor (seq floor = clock_ms * 1000)."""
    async with await Buffer.open(tmp_path / "a.db", clock=lambda: 1_000) as a:
        old = list(await a.next_seqs(500))
    async with await Buffer.open(tmp_path / "b.db", clock=lambda: 1_001) as b:
        assert await b.next_seq() > old[-1]


async def test_take_orders_by_priority_then_arrival_and_respects_limits(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 4))  # raw, arrives first
    await buf.commit_burst(burst(1, 2, priority=Priority.ALARM))
    await buf.commit_burst(burst(2, 2, priority=Priority.AGGREGATE))
    p = await buf.take_unbatched(12, 0)
    assert p.n_readings == 12
    assert list(p.r_priority) == [3] * 10 + [1] * 2
    assert np.all(np.diff(p.r_id[:10]) > 0)
    _seq, _ = await cut(buf, 12)
    rest = await buf.take_unbatched(100, 0)
    assert list(rest.r_priority) == [1] * 8 + [0] * 20
    assert not set(rest.r_id) & set(p.r_id)


async def test_store_batch_marks_rows_and_rejects_reuse(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 10))
    p = await buf.take_unbatched(20, 0)
    with pytest.raises(BufferError_, match="not issued"):
        await buf.store_batch(10**18, 0, b"x", 20, 0, p.r_id)
    seq = await buf.next_seq()
    await buf.store_batch(seq, 0, b"x", 20, 0, p.r_id)
    assert scalar(buf.path, "SELECT count(*) FROM readings WHERE state = 1") == 20
    with pytest.raises(BufferError_, match="already stored"):
        await buf.store_batch(seq, 0, b"x", 20, 0, ())
    seq2 = await buf.next_seq()
    with pytest.raises(BufferError_, match="already in another batch"):
        await buf.store_batch(seq2, 0, b"y", 20, 0, p.r_id)  # same rows again: refused, nothing changed
    assert scalar(buf.path, "SELECT count(*) FROM batches") == 1
    assert (await buf.backlog(exact=True)).readings_by_state["batched"] == 20


async def test_mark_sent_makes_rows_uploaded_and_deletes_the_body(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 10) + event_burst(0, 4))
    seq, _ = await cut(buf, 50, 4)
    assert [b.seq for b in await buf.next_batches(10)] == [seq]
    assert await buf.mark_sent(seq)
    assert not await buf.mark_sent(seq)  # a second 2xx (or a stale one) is harmless
    assert await buf.next_batches(10) == []
    assert rows(buf.path, "SELECT DISTINCT state FROM readings") == [(2,)]
    assert rows(buf.path, "SELECT DISTINCT state FROM events") == [(2,)]
    c = await buf.counters()
    assert (c["uploaded.batches"], c["uploaded.readings"], c["uploaded.events"]) == (1, 50, 4)


async def test_zero_retention_deletes_rows_on_upload(tmp_path: Path) -> None:
    async with await Buffer.open(tmp_path / "b.db", BufferConfig(uploaded_retention_s=0)) as b:
        await b.commit_burst(burst(0, 10))
        seq, _ = await cut(b, 30)
        await b.mark_sent(seq)
        assert scalar(b.path, "SELECT count(*) FROM readings") == 20
        assert (await b.backlog()).readings_by_state == {"new": 20, "batched": 0, "uploaded": 0, "local": 0}


async def test_next_batches_priority_first_then_seq(buf: Buffer) -> None:
    now = 10_000_000
    await buf.commit_burst(burst(0, 10))
    raw1, _ = await cut(buf, 10, created_ms=now)
    raw2, _ = await cut(buf, 10, created_ms=now)
    await buf.commit_burst(event_burst(1, 3, priority=Priority.ALARM))
    alarm, _ = await cut(buf, 0, 3, created_ms=now)
    got = [b.seq for b in await buf.next_batches(10, now_ms=now)]
    assert got == [alarm, raw1, raw2]
    assert [b.seq for b in await buf.next_batches(10, now_ms=now, exclude={alarm})] == [raw1, raw2]
    assert [b.seq for b in await buf.next_batches(1, now_ms=now)] == [alarm]
    b0 = (await buf.next_batches(1, now_ms=now))[0]
    assert (b0.priority, b0.n_events, b0.body) == (Priority.ALARM, 3, f"batch {alarm}".encode())


async def test_fresh_data_is_not_starved_by_a_draining_backlog(buf: Buffer) -> None:
    now = 100_000_000
    await buf.commit_burst(burst(0, 200))
    backlog = [(await cut(buf, 10, created_ms=now - 3_600_000 + i))[0] for i in range(20)]
    fresh = [(await cut(buf, 10, created_ms=now - 1_000 + i))[0] for i in range(3)]
    got = [b.seq for b in await buf.next_batches(9, now_ms=now)]
    # slot 0, 4, 8 go to fresh data; the backlog gets the rest, oldest first
    assert got == [fresh[0], *backlog[:3], fresh[1], *backlog[3:6], fresh[2]]
    # a one-at-a-time uploader: fresh goes first, then the backlog drains (fresh is produced slower)
    sent: list[int] = []
    for _ in range(5):
        (b,) = await buf.next_batches(1, now_ms=now)
        await buf.mark_sent(b.seq)
        sent.append(b.seq)
    assert sent == [fresh[0], fresh[1], fresh[2], backlog[0], backlog[1]]


def test_fair_order_rules() -> None:
    assert fair_order([1, 2, 3, 4, 5], [10, 11], 10, 4) == [10, 1, 2, 3, 11, 4, 5]
    assert fair_order([1, 2], [], 10, 4) == [1, 2]
    assert fair_order([], [7, 8, 9], 2, 4) == [7, 8]
    assert fair_order([1, 2, 3], [9], 2, 2) == [9, 1]
    assert fair_order([1, 2, 3], [8, 9], 5, 2) == [8, 1, 9, 2, 3]


async def test_dead_letter_is_kept_and_counted(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 4))
    seq, _ = await cut(buf, 20)
    assert await buf.dead_letter(seq, 400, "malformed: r_ts length mismatch")
    assert not await buf.dead_letter(seq, 400, "again")
    assert await buf.next_batches(10) == []
    (dl,) = await buf.dead_letters()
    assert (dl.seq, dl.status, dl.n_readings, dl.size) == (seq, 400, 20, len(f"batch {seq}".encode()))
    assert rows(buf.path, "SELECT body FROM dead_letter") == [(f"batch {seq}".encode(),)]
    c = await buf.counters()
    assert (c["dead_lettered.batches"], c["dead_lettered.readings"]) == (1, 20)
    await buf.apply_retention(now_ms=2**60)  # retention never touches dead letters
    assert len(await buf.dead_letters()) == 1


async def test_replace_batch_recuts_with_new_seqs_atomically(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 8))
    seq, _p = await cut(buf, 40, created_ms=5_000)
    with pytest.raises(BufferError_, match="not issued"):
        await buf.replace_batch(seq, [BatchPart(10**18, b"a", 20, 0)])
    assert [b.seq for b in await buf.next_batches(5, now_ms=5_000)] == [seq]  # failed replace changed nothing
    s1, s2 = await buf.next_seqs(2)
    await buf.replace_batch(seq, [BatchPart(s1, b"half 1", 20, 0), BatchPart(s2, b"half 2", 20, 0)])
    got = await buf.next_batches(5, now_ms=5_000)
    assert [(b.seq, b.body, b.created_ms) for b in got] == [(s1, b"half 1", 5_000), (s2, b"half 2", 5_000)]
    assert not await buf.mark_sent(seq)
    assert await buf.mark_sent(s1)
    assert scalar(buf.path, "SELECT count(*) FROM readings WHERE state = 1") == 40  # group not complete
    assert await buf.mark_sent(s2)
    assert scalar(buf.path, "SELECT count(*) FROM readings WHERE state = 2") == 40
    assert (await buf.counters())["batches.split"] == 1


async def test_damaged_body_is_never_served(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 4))
    seq, _ = await cut(buf, 20)
    con = sqlite3.connect(str(buf.path))
    con.execute("UPDATE batches SET body = ? WHERE seq = ?", (b"bit rot!", seq))  # simulate damage on disk
    con.commit()
    con.close()
    assert await buf.next_batches(5) == []
    (dl,) = await buf.dead_letters()
    assert dl.seq == seq
    assert "checksum" in dl.reason
    # its rows go back to the outbox to be batched again
    assert (await buf.take_unbatched(100, 0)).n_readings == 20


async def test_a_damaged_piece_of_a_split_batch_requeues_the_whole_group(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 8))
    seq, _ = await cut(buf, 40)
    s1, s2 = await buf.next_seqs(2)
    await buf.replace_batch(seq, [BatchPart(s1, b"half 1", 20, 0), BatchPart(s2, b"half 2", 20, 0)])
    con = sqlite3.connect(str(buf.path))
    con.execute("UPDATE batches SET body = ? WHERE seq = ?", (b"rot", s1))
    con.commit()
    con.close()
    assert [b.seq for b in await buf.next_batches(5)] == [s2]  # the damaged half is never served
    assert (await buf.take_unbatched(100, 0)).n_readings == 40  # every row of the group is re-queued
    assert await buf.mark_sent(s2)  # the intact half, sent: its rows were re-queued, so nothing changes
    assert scalar(buf.path, "SELECT count(*) FROM readings WHERE state = 0") == 40
    assert (await buf.backlog()).readings_by_state == (await buf.backlog(exact=True)).readings_by_state

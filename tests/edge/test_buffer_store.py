"""commit_burst: one transaction per burst, every kind of record, counters, reopen."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from edge_agent.buffer import AggregateRow, Buffer, BufferConfig, BufferError_, State
from edge_agent.model import DecodeResult, Message, Priority, ProfileRef, Reading, Reason
from tests.edge.test_buffer_helpers import (
    BASE,
    P,
    burst,
    bursts_present,
    event_result,
    quarantine_result,
    rows,
    scalar,
    waveform_result,
)


@pytest.fixture
async def buf(tmp_path: Path) -> AsyncIterator[Buffer]:
    b = await Buffer.open(tmp_path / "buffer.db")
    yield b
    await b.close()


async def test_commit_burst_writes_every_kind_in_one_go(buf: Buffer) -> None:
    results = [*burst(0, 20), event_result(0, 1), waveform_result(0), quarantine_result(1)]
    stats = await buf.commit_burst(results)
    got = (stats.messages, stats.readings, stats.events, stats.waveforms, stats.quarantined)
    assert got == (23, 100, 1, 1, 1)
    assert stats.new_series == 7 * 5 + 1 + 1  # 7 devices x 5 metrics, one event kind, one waveform series
    assert scalar(buf.path, "SELECT count(*) FROM readings") == 100
    assert scalar(buf.path, "SELECT count(*) FROM events") == 1
    assert scalar(buf.path, "SELECT count(*) FROM quarantine") == 1
    c = await buf.counters()
    assert c["committed.readings"] == 100
    assert c["committed.messages"] == 23
    assert c["quarantined.malformed"] == 1

    pending = await buf.take_unbatched(1000, 10)
    assert pending.n_readings == 100
    assert pending.n_events == 1
    assert pending.e_attrs == ({"card": "h1", "ok": True},)
    ev_key = pending.series[int(pending.e_series[0])]
    assert (ev_key.device, ev_key.metric, ev_key.agg) == ("door1", "door_open", "event")
    key = pending.series[int(pending.r_series[0])]
    assert (key.device, key.metric, key.unit, key.profile) == ("dev0", "m0", "u", "test.sensor@1")
    assert pending.r_value[0] == 0.0
    assert pending.r_ts_ms[0] == BASE

    (wf,) = await buf.read_waveforms()
    assert wf.samples.dtype == np.float32
    assert wf.samples.shape == (256,)
    np.testing.assert_allclose(wf.samples, np.arange(256) / 7, rtol=1e-6)
    assert scalar(buf.path, "SELECT length(samples) FROM waveforms") == 256 * 4


async def test_burst_is_all_or_nothing(buf: Buffer) -> None:
    """A failure on the last statement of a burst leaves no row, no counter and no series behind."""
    # a counter name SQLite cannot bind fails the last statement of the transaction, after every insert
    poison = {object(): 1}
    with pytest.raises(BufferError_, match="commit burst"):
        await buf.commit_burst([*burst(0, 50), event_result(0, 0), quarantine_result(0)],
                               counters=poison)  # type: ignore[dict-item]
    for table in ("readings", "events", "quarantine", "series", "counters"):
        assert scalar(buf.path, f"SELECT count(*) FROM {table}") == 0, table
    # the in-memory series cache was rolled back too: the same series are created again, densely
    stats = await buf.commit_burst(burst(1, 50))
    assert stats.new_series == 35
    assert [r[0] for r in rows(buf.path, "SELECT id FROM series ORDER BY id")] == list(range(1, 36))
    assert bursts_present(buf.path) == {1: 250}
    assert (await buf.backlog()).readings_by_state["new"] == 250


async def test_a_record_that_cannot_be_stored_is_quarantined_not_fatal(buf: Buffer) -> None:
    """A decoder bug (a value that is not a number) must not block the burst forever."""
    bad = Reading("dev9", "m0", BASE, "twenty", "u", P)  # type: ignore[arg-type]
    bad_msg = DecodeResult(Message("campus/dev9", b'{"t": "twenty"}', BASE), P, "dev9", readings=(bad,))
    stats = await buf.commit_burst([*burst(0, 10), bad_msg])
    assert (stats.readings, stats.quarantined) == (50, 1)
    (q,) = await buf.recent_quarantine()
    assert q.reason == Reason.DECODER_BUG
    assert "twenty" in q.detail
    assert q.payload == b'{"t": "twenty"}'
    assert (await buf.counters())["quarantined.decoder_bug"] == 1


async def test_quarantine_payload_is_capped_with_original_length(tmp_path: Path) -> None:
    async with await Buffer.open(tmp_path / "b.db", BufferConfig(quarantine_payload_cap=100)) as b:
        await b.commit_burst([quarantine_result(0, b"x" * 10_000, Reason.PAYLOAD_TOO_LARGE),
                              quarantine_result(1, b"short", Reason.NO_PROFILE)])
        recent = await b.recent_quarantine()
    assert [q.reason for q in recent] == ["no_profile", "payload_too_large"]
    big = recent[1]
    assert (len(big.payload), big.payload_len) == (100, 10_000)
    assert big.topic == "campus/bad/0"
    assert big.detail.startswith("payload:")
    assert recent[0].payload == b"short"
    assert recent[0].payload_len == 5


async def test_default_cap_is_4_kib(buf: Buffer) -> None:
    await buf.commit_burst([quarantine_result(0, bytes(range(256)) * 64)])
    (q,) = await buf.recent_quarantine()
    assert len(q.payload) == 4096
    assert q.payload_len == 16_384
    assert q.payload == (bytes(range(256)) * 16)


async def test_reopen_keeps_data_series_and_counters(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with await Buffer.open(path) as b:
        await b.commit_burst(burst(0, 10))
    async with await Buffer.open(path) as b:
        stats = await b.commit_burst(burst(1, 10))
        assert stats.new_series == 0
        assert (await b.counters())["committed.readings"] == 100
        assert (await b.backlog()).unsent_readings == 100
    assert bursts_present(path) == {0: 50, 1: 50}


async def test_durability_pragmas(buf: Buffer) -> None:
    assert rows(buf.path, "PRAGMA journal_mode") == [("wal",)]
    assert buf._core.db is not None
    got = await buf._core.fetchall("PRAGMA synchronous")
    assert got == [(2,)]  # FULL


async def test_nan_is_returned_as_nan(buf: Buffer) -> None:
    r = Reading("d", "m", BASE, math.nan, "u", P)
    await buf.commit_burst([DecodeResult(Message("t", b"", BASE), P, "d", readings=(r,))])
    pending = await buf.take_unbatched(10, 0)
    assert math.isnan(pending.r_value[0])


async def test_local_profiles_are_kept_but_never_batched(buf: Buffer) -> None:
    local = ProfileRef("vib.local", 2)
    r = Reading("pump", "accel_rms", BASE, 1.0, "m/s2", local)
    local_result = DecodeResult(Message("t", b"", BASE), local, "pump", readings=(r,))
    await buf.commit_burst([local_result, *burst(0, 2)], local_profiles={local})
    assert (await buf.take_unbatched(100, 0)).n_readings == 10
    assert (await buf.backlog()).readings_by_state["local"] == 1
    chunk = await buf.scan_readings(0, 100)
    assert chunk.r_id.shape == (11,)
    assert chunk.series[int(chunk.r_series[0])].profile == "vib.local@2"


async def test_aggregates_have_their_own_series_and_go_first(buf: Buffer) -> None:
    agg = AggregateRow("dev0", "m0", "u", P, "mean", 300, BASE, 21.5, version=1)
    stats = await buf.commit_burst(burst(0, 2), aggregates=[agg], counters={"late.dropped": 3})
    assert stats.aggregates == 1
    assert stats.readings == 10
    pending = await buf.take_unbatched(100, 0)
    first = pending.series[int(pending.r_series[0])]
    assert (first.agg, first.window_s) == ("mean", 300)
    assert pending.r_priority[0] == Priority.AGGREGATE
    assert pending.r_version[0] == 1
    assert pending.priority == Priority.AGGREGATE
    assert (await buf.counters())["late.dropped"] == 3


async def test_meta_for_other_components(buf: Buffer) -> None:
    await buf.set_meta("reducer.cursor", 1234)
    assert await buf.get_meta("reducer.cursor") == 1234
    assert await buf.get_meta("absent") is None
    with pytest.raises(ValueError, match="owned by the buffer"):
        await buf.set_meta("next_seq", 1)


async def test_in_memory_counts_match_a_recount(buf: Buffer) -> None:
    await buf.commit_burst(burst(0, 40) + [event_result(0, i) for i in range(5)])
    p = await buf.take_unbatched(120, 3)
    seq = await buf.next_seq()
    await buf.store_batch(seq, p.priority, b"body", p.n_readings, p.n_events, p.r_id, p.e_id)
    p2 = await buf.take_unbatched(30, 0)
    seq2 = await buf.next_seq()
    await buf.store_batch(seq2, p2.priority, b"b2", p2.n_readings, 0, p2.r_id)
    await buf.mark_sent(seq)
    fast = await buf.backlog()
    exact = await buf.backlog(exact=True)
    assert fast.readings_by_state == exact.readings_by_state == {
        "new": 50, "batched": 30, "uploaded": 120, "local": 0}
    assert fast.events_by_state == exact.events_by_state
    assert exact.batches == 1
    assert exact.batch_bytes == 2
    assert exact.oldest_unsent_ms is not None
    assert rows(buf.path, "SELECT state, count(*) FROM readings GROUP BY state") == [
        (State.NEW, 50), (State.BATCHED, 30), (State.UPLOADED, 120)]


async def test_a_cancelled_caller_leaves_consistent_state(buf: Buffer) -> None:
    """Cancelling the caller mid-burst: the write still finishes (or not) as a whole, and the in-memory
    series ids and counts follow what was committed."""
    for delay in (0.0, 0.001, 0.003, 0.01):
        task = asyncio.ensure_future(buf.commit_burst(burst(int(delay * 1000) + 10, 500)))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await buf.commit_burst(burst(99, 5))  # the same series again: no id clash
    present = bursts_present(buf.path)
    assert all(n == 2500 for k, n in present.items() if k != 99)
    assert present[99] == 25 * 4
    assert (await buf.backlog()).readings_by_state == (await buf.backlog(exact=True)).readings_by_state
    assert [r[0] for r in rows(buf.path, "SELECT id FROM series ORDER BY id")] == list(range(1, 36))

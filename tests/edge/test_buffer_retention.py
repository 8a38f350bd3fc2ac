"""Retention, bounded reads, and the pure helpers (id runs)."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.buffer import Buffer, BufferConfig
from edge_agent.buffer.runs import count_ids, decode_runs, encode_runs, to_runs
from edge_agent.model import DecodeResult, Message, ProfileRef, Reading
from tests.edge.test_buffer_helpers import (
    BASE,
    burst,
    bursts_present,
    quarantine_result,
    scalar,
    ts_of,
    waveform_result,
)


async def upload(buf: Buffer, n: int) -> None:
    p = await buf.take_unbatched(n, 0)
    seq = await buf.next_seq()
    await buf.store_batch(seq, p.priority, b"b", p.n_readings, 0, p.r_id)
    await buf.mark_sent(seq)


async def test_retention_deletes_only_old_uploaded_rows(tmp_path: Path) -> None:
    cfg = BufferConfig(uploaded_retention_s=600, quarantine_retention_s=3600, eviction_chunk=70)
    local = ProfileRef("local.only", 1)
    async with await Buffer.open(tmp_path / "b.db", cfg) as b:
        await b.commit_burst(burst(0, 40))
        await upload(b, 200)  # old and uploaded: goes
        await b.commit_burst(burst(1, 40))
        await upload(b, 200)  # uploaded but young: stays
        await b.commit_burst(burst(2, 10))  # not uploaded: never deleted by retention
        old_local = Reading("pump", "rms", BASE, 1.0, "u", local)
        await b.commit_burst([DecodeResult(Message("t", b"", BASE), local, "pump", readings=(old_local,))],
                             local_profiles={local})
        await b.commit_burst([quarantine_result(i, received_ms=BASE) for i in range(3)])
        now = ts_of(1, 0, 0) + 300_000
        got = await b.apply_retention(now_ms=now)
        assert got == {"readings": 200, "events": 0, "waveforms": 0, "quarantine": 0}
        assert bursts_present(b.path) == {0: 1, 1: 200, 2: 50}  # burst 0 keeps only the local reading
        await b.mark_reduced(BASE + 1)  # the local reading is reduced: now it may go too
        got = await b.apply_retention(now_ms=BASE + 2 * 3_600_000)
        assert got["readings"] == 1 + 200
        assert got["quarantine"] == 3
        assert bursts_present(b.path) == {2: 50}
        c = await b.counters()
        assert (c["retention.readings"], c["retention.quarantine"]) == (401, 3)
        assert (await b.backlog()).readings_by_state == (await b.backlog(exact=True)).readings_by_state


async def test_reads_are_bounded_whatever_the_backlog(tmp_path: Path) -> None:
    """take_unbatched / scan_readings read at most what was asked; backlog() scans nothing."""
    async with await Buffer.open(tmp_path / "b.db") as b:
        for k in range(40):
            await b.commit_burst(burst(k, 1000))  # 200,000 readings
        tracemalloc.start()
        try:
            p = await b.take_unbatched(5000, 100)
            chunk = await b.scan_readings(0, 5000)
            stats = await b.backlog()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert p.n_readings == 5000
        assert chunk.r_id.shape == (5000,)
        assert chunk.last_id == 5000
        assert stats.unsent_readings == 200_000
        assert peak < 8 * 1024 * 1024  # a few MB for 10k rows, not proportional to 200k
        nxt = await b.scan_readings(chunk.last_id, 10)
        assert int(nxt.r_id[0]) == 5001


async def test_waveforms_follow_the_reduced_watermark(tmp_path: Path) -> None:
    cfg = BufferConfig(uploaded_retention_s=60)
    async with await Buffer.open(tmp_path / "b.db", cfg) as b:
        await b.commit_burst([waveform_result(0), waveform_result(5)])
        assert (await b.apply_retention(now_ms=ts_of(9, 0, 0)))["waveforms"] == 0  # not reduced yet
        await b.mark_reduced(ts_of(1, 0, 0))
        assert (await b.apply_retention(now_ms=ts_of(9, 0, 0)))["waveforms"] == 1
        (left,) = await b.read_waveforms()
        assert left.ts_ms == ts_of(5, 0, 0)
        assert scalar(b.path, "SELECT count(*) FROM waveforms") == 1


@given(st.sets(st.integers(min_value=1, max_value=10_000), max_size=300))
def test_runs_round_trip(ids: set[int]) -> None:
    runs = to_runs(np.array(sorted(ids), dtype=np.int64))
    back = decode_runs(encode_runs(runs))
    assert count_ids(back) == len(ids)
    assert {i for a, b in back for i in range(a, b + 1)} == ids
    assert all(b2 > a1 for (_, a1), (b2, _) in itertools.pairwise(back))  # disjoint, sorted


def test_runs_are_compact_for_consecutive_ids() -> None:
    assert to_runs(range(100, 10_100)).tolist() == [[100, 10_099]]
    assert len(encode_runs(to_runs([1, 2, 3, 7, 8, 10]))) == 3 * 16

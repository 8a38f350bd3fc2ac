"""Outbox against real parts: SQLite buffer → wire batches → real ingest API on loopback → DuckDB ODS."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.buffer import Buffer, BufferConfig
from edge_agent.model import DecodeResult, Event, Message, Priority, ProfileRef, Reading
from edge_agent.outbox import Drainer, cut_batches
from edge_agent.upload import Uploader
from tests.cloud.api_fixtures import GATEWAYS, api_on_warehouse, open_test_warehouse

PROFILE = ProfileRef("z2m_th", 2)
T0 = 1_764_000_000_000


def results(n_msgs: int, start: int = 0) -> list[DecodeResult]:
    out = []
    for i in range(start, start + n_msgs):
        msg = Message(f"zigbee2mqtt/room-{i % 7}", b"{}", T0 + i * 1000)
        dev = f"room-{i % 7}"
        readings = (
            Reading(dev, "temperature_air", T0 + i * 1000, 20 + (i % 50) / 10, "Cel", PROFILE),
            Reading(dev, "humidity_rel", T0 + i * 1000, 40 + (i % 30) / 10, "%RH", PROFILE),
        )
        events = (Event(dev, "card_swipe", T0 + i * 1000, PROFILE, (("card", f"p1:{i:016x}"),)),) \
            if i % 10 == 0 else ()
        out.append(DecodeResult(msg, PROFILE, dev, readings, events))
    return out


@pytest.fixture
async def buffer(tmp_path: Path) -> Buffer:
    buf = await Buffer.open(tmp_path / "buffer.sqlite", BufferConfig(budget_bytes=64 << 20))
    yield buf
    await buf.close()


async def test_cut_and_drain_lands_every_reading_once(buffer: Buffer, tmp_path: Path) -> None:
    burst = results(500)
    await buffer.commit_burst(burst)
    made = await cut_batches(buffer, "gw-a", max_readings=300, max_events=1000)
    assert made == 4  # 1000 readings / 300 per batch (events travel in the first)
    wh = open_test_warehouse(tmp_path)
    try:
        with api_on_warehouse(wh) as api:
            async with Uploader(api.url, "gw-a", GATEWAYS["gw-a"]) as up:
                drainer = Drainer(buffer, up)
                for _ in range(10):
                    if await drainer.run_once() > 0 and not await buffer.next_batches(1):
                        break
        assert drainer.stats.sent == 4
        assert drainer.stats.readings_sent == 1000
        assert await buffer.next_batches(10) == []
        _, rows = wh.query("SELECT count(*), count(DISTINCT (device_id, metric_code, ts_ms)), sum(value) "
                           "FROM ods_iot_reading_di", ())
        expected_sum = sum(r.value for m in burst for r in m.readings)
        assert rows[0][0] == 1000
        assert rows[0][1] == 1000
        assert rows[0][2] == pytest.approx(expected_sum, abs=0.01 * 1000)
        _, ev = wh.query("SELECT count(*) FROM ods_iot_event_di", ())
        assert ev[0][0] == 50
        _, seqs = wh.query("SELECT batch_seq FROM ods_iot_batch_di ORDER BY batch_seq", ())
        got = [s[0] for s in seqs]
        assert got == list(range(got[0], got[0] + 4))  # consecutive, increasing per gateway
    finally:
        wh.close()


async def test_cut_does_not_chase_rows_committed_meanwhile(buffer: Buffer) -> None:
    """Rows keep arriving while a cut runs (the ingest loop commits between its takes): one batch per
    cut, not a batch of a message or two per take until ``max_batches``."""
    await buffer.commit_burst(results(50))
    take = buffer.take_unbatched
    arrived = iter(range(50, 10_000, 2))

    async def take_then_more_arrive(max_readings: int, max_events: int):  # type: ignore[no-untyped-def]
        pending = await take(max_readings, max_events)
        await buffer.commit_burst(results(2, start=next(arrived) * 10 + 1))  # events only on multiples of 10
        return pending

    buffer.take_unbatched = take_then_more_arrive  # type: ignore[method-assign]
    assert await cut_batches(buffer, "gw-a", max_readings=20_000) == 1
    assert await cut_batches(buffer, "gw-a", max_readings=20_000) == 1  # the rows that came meanwhile
    (first, second) = await buffer.next_batches(10)
    assert (first.n_readings, second.n_readings) == (100, 4)


async def test_priorities_events_go_first(buffer: Buffer) -> None:
    await buffer.commit_burst(results(30))
    await cut_batches(buffer, "gw-a", max_readings=10, max_events=1000)
    batches = await buffer.next_batches(20)
    assert batches[0].priority == Priority.EVENT
    assert batches[0].n_events == 3


async def test_server_down_keeps_batches_and_backs_off(buffer: Buffer) -> None:
    await buffer.commit_burst(results(10))
    await cut_batches(buffer, "gw-a", max_readings=1000)
    async with Uploader("http://127.0.0.1:9", "gw-a", "x") as up:  # port 9 (discard): refused
        drainer = Drainer(buffer, up)
        wait = await drainer.run_once()
    assert wait > 0
    assert drainer.stats.retries == 1
    assert len(await buffer.next_batches(10)) == 1  # nothing deleted without a 2xx


async def test_413_splits_into_new_sequences(buffer: Buffer, tmp_path: Path) -> None:
    from cloud_ingest.api import ApiSettings

    await buffer.commit_burst(results(400))
    await cut_batches(buffer, "gw-a", max_readings=100_000)
    (only,) = await buffer.next_batches(10)
    wh = open_test_warehouse(tmp_path)
    try:
        with api_on_warehouse(wh, ApiSettings(max_body_bytes=len(only.body) - 1)) as api:
            async with Uploader(api.url, "gw-a", GATEWAYS["gw-a"]) as up:
                drainer = Drainer(buffer, up)
                for _ in range(20):
                    await drainer.run_once()
                    if not await buffer.next_batches(1):
                        break
        assert drainer.stats.splits >= 1
        _, rows = wh.query("SELECT count(*) FROM ods_iot_reading_di", ())
        assert rows[0][0] == 800
        _, seqs = wh.query("SELECT min(batch_seq) FROM ods_iot_batch_di", ())
        assert seqs[0][0] > only.seq  # halves carry new sequence numbers
    finally:
        wh.close()

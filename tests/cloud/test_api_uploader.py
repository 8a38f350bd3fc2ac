"""The real edge Uploader against the real ingest API (uvicorn on 127.0.0.1) and a real DuckDB warehouse.

Each server answer must map to the outcome the outbox drainer expects: SENT (stored or duplicate),
DEAD_LETTER, SPLIT, RETRY_LATER (with the server's Retry-After) and AUTH_FAILED.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx

from cloud_ingest.api import ApiSettings
from cloud_ingest.warehouse import LandResult, Warehouse
from edge_agent.upload import Backoff, Outcome, Uploader
from edge_agent.wire import Batch
from tests.cloud.api_fixtures import (
    GATEWAYS,
    ApiServer,
    ManualClock,
    api_on_warehouse,
    auth,
    big_batch,
    make_batch,
    open_test_warehouse,
)


def _uploader(api: ApiServer, gateway: str = "gw-a", token: str | None = None, **kw: Any) -> Uploader:
    return Uploader(api.url, gateway, token or GATEWAYS[gateway], http2=False,
                    backoff=Backoff(base=0.01, cap=0.05), **kw)


async def test_stored_duplicate_and_conflict(wh: Warehouse) -> None:
    with api_on_warehouse(wh) as api:
        async with _uploader(api) as up:
            first = await up.upload_batch(make_batch(1, events=1))
            again = await up.upload_batch(make_batch(1, events=1))
            other = await up.upload_batch(make_batch(1, offset=3.0))
            older = await up.upload_batch(make_batch(0))
    assert (first.outcome, first.status, first.duplicate) == (Outcome.SENT, 201, False)
    assert first.response is not None
    assert first.response["readings"] == 10
    assert (again.outcome, again.status, again.duplicate) == (Outcome.SENT, 200, True)
    assert (other.outcome, other.status, other.reason) == (Outcome.DEAD_LETTER, 409, "sequence_conflict")
    assert older.outcome is Outcome.SENT
    _, rows = wh.query("SELECT COUNT(*) FROM ods_iot_batch_di WHERE gateway_id = 'gw-a'")
    assert rows == [(2,)]


async def test_too_large_for_the_server_is_split(wh: Warehouse) -> None:
    with api_on_warehouse(wh, ApiSettings(max_body_bytes=4096)) as api:
        async with _uploader(api) as up:
            result = await up.upload_batch(big_batch(1, 5_000))
    assert (result.outcome, result.status, result.reason) == (Outcome.SPLIT, 413, "body_too_large")


async def test_a_split_batch_lands_in_halves(wh: Warehouse) -> None:
    batch = big_batch(1, 2_000)
    with api_on_warehouse(wh, ApiSettings(max_body_bytes=12_000)) as api:
        async with _uploader(api) as up:
            assert (await up.upload_batch(batch)).outcome is Outcome.SPLIT
            a, b = batch.halves()
            results = [await up.upload_batch(Batch(**{**_fields(a), "seq": 2})),
                       await up.upload_batch(Batch(**{**_fields(b), "seq": 3}))]
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    _, rows = wh.query("SELECT COUNT(*) FROM ods_iot_reading_di")
    assert rows == [(2_000,)]


def _fields(batch: Batch) -> dict[str, Any]:
    return {name: getattr(batch, name) for name in Batch.__dataclass_fields__}


async def test_bad_tokens_are_auth_failures(wh: Warehouse) -> None:
    with api_on_warehouse(wh) as api:
        async with _uploader(api, token="not-the-token") as up:
            bad = await up.upload_batch(make_batch(1))
            blocked = await up.upload_batch(make_batch(2))
        async with _uploader(api, "gw-a", token=GATEWAYS["gw-b"]) as up:
            other = await up.upload_batch(make_batch(1))
    assert (bad.outcome, bad.status, bad.reason) == (Outcome.AUTH_FAILED, 401, "invalid_token")
    assert (blocked.outcome, blocked.reason) == (Outcome.AUTH_FAILED, "auth_blocked")
    assert (other.outcome, other.status, other.reason) == (Outcome.AUTH_FAILED, 403, "gateway_mismatch")


class _HeldWarehouse:
    """Landing held until released: a saturated writer, a fault we cannot otherwise cause on demand."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = threading.Event()

    def land_batch(self, batch: Batch, *, body_checksum: str, received_ms: int) -> LandResult:
        self.entered.set()
        assert self.release.wait(30)
        return self.inner.land_batch(batch, body_checksum=body_checksum, received_ms=received_ms)

    def query(self, sql: str, params: Any = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self.inner.query(sql, params)


async def test_saturation_is_retry_later_with_the_servers_retry_after(wh: Warehouse) -> None:
    held = _HeldWarehouse(wh)
    settings = ApiSettings(max_requests=1, max_in_flight=1, retry_after_s=3)
    with api_on_warehouse(held, settings) as api:
        async with _uploader(api) as up:
            first = asyncio.create_task(up.upload_batch(make_batch(1)))
            assert await asyncio.to_thread(held.entered.wait, 10)
            busy = await up.upload_batch(make_batch(2))
            held.release.set()
            assert (await first).outcome is Outcome.SENT
            later = await up.upload_batch(make_batch(2))
    assert (busy.outcome, busy.status, busy.reason) == (Outcome.RETRY_LATER, 429, "saturated")
    assert busy.after == 3.0
    assert later.outcome is Outcome.SENT


async def test_a_landing_failure_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    wh = open_test_warehouse(tmp_path)
    with api_on_warehouse(wh) as api:
        async with _uploader(api) as up:
            wh.close()  # a real warehouse failure under the running API
            failed = await up.upload_batch(make_batch(1))
    assert (failed.outcome, failed.status, failed.reason) == (Outcome.RETRY_LATER, 503, "landing_failed")
    assert failed.after == 5.0
    wh = open_test_warehouse(tmp_path)
    try:
        with api_on_warehouse(wh) as api:
            async with _uploader(api) as up:
                assert (await up.upload_batch(make_batch(1))).outcome is Outcome.SENT
    finally:
        wh.close()


async def test_server_down_is_retry_later() -> None:
    async with Uploader("http://127.0.0.1:9", "gw-a", GATEWAYS["gw-a"], http2=False) as up:
        result = await up.upload_batch(make_batch(1))
    assert (result.outcome, result.reason) == (Outcome.RETRY_LATER, "connect_error")


async def test_heartbeat_reaches_the_fleet(wh: Warehouse) -> None:
    clock = ManualClock()
    with api_on_warehouse(wh, clock_ms=clock) as api:
        async with _uploader(api, wall_clock=lambda: (clock.now_ms + 1500) / 1000) as up:
            ack = await up.send_heartbeat({"interval_s": 30, "backlog_batches": 2, "devices_online": 5,
                                           "devices_silent": 1})
            assert (await up.upload_batch(make_batch(8))).outcome is Outcome.SENT
        with httpx.Client(base_url=api.url) as c:
            state = c.get("/v1/fleet/gw-a", headers=auth("operator")).json()
    assert ack.outcome is Outcome.SENT
    assert ack.response is not None
    assert ack.response["clock_offset_ms"] == 1500
    assert state["state"] == "online"
    assert (state["backlog_batches"], state["devices_online"], state["devices_silent"]) == (2, 5, 1)
    assert state["clock_offset_ms"] == 1500
    assert state["last_seq"] == 8

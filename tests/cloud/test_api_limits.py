"""Size, time and concurrency limits of POST /v1/batches: 413, 408, 429, decompression bombs, memory.

Memory is measured on a real ``campus-cloud serve`` subprocess: its peak resident set (``VmHWM``) must not
grow by anything like the size of what a client sends or what a bomb would expand to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard

from cloud_ingest.api import ApiSettings
from cloud_ingest.warehouse import LandResult, Warehouse
from edge_agent.wire import FORMAT_VERSION, MAGIC, Batch, encode
from tests.cloud.api_fixtures import (
    ApiServer,
    api_on_warehouse,
    batch_headers,
    big_batch,
    body_of,
    open_test_warehouse,
    rss_kib,
    running_api_process,
)

MIB = 1024 * 1024


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_test_warehouse(tmp_path)
    yield wh
    wh.close()


def _code(resp: Any) -> tuple[int, str, str | None]:
    err = resp.json()["error"]
    return resp.status_code, err["code"], err["field"]


def _chunks(total: int, sent: list[int], chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A chunked (no Content-Length) body of ``total`` bytes; ``sent[0]`` counts what was handed over."""
    block = b"\xab" * chunk
    while sent[0] < total:
        sent[0] += chunk
        yield block


def _bomb(*, expands_to: int, plen: int, content_size: bool = True, gateway: str = "gw-a") -> bytes:
    """A wire body whose zstd frame expands to ``expands_to`` zero bytes; the header declares ``plen``."""
    header = msgpack.packb({"v": FORMAT_VERSION, "gw": gateway, "seq": 1, "created": 1_750_000_000_000,
                            "counts": {"readings": 1, "events": 0, "series": 1}, "plen": plen,
                            "checksum": b"\0" * 16}, use_bin_type=True)
    cobj = zstandard.ZstdCompressor(level=1, write_content_size=content_size).compressobj(
        size=expands_to if content_size else -1)
    zeros = bytes(min(16 * MIB, expands_to))
    frame = [cobj.compress(zeros) for _ in range(expands_to // len(zeros))]
    frame.append(cobj.flush())
    return MAGIC + bytes([FORMAT_VERSION]) + header + b"".join(frame)


# ---------------------------------------------------------------------------------------- in-process server


def test_413_from_content_length_before_reading(wh: Warehouse) -> None:
    with api_on_warehouse(wh, ApiSettings(max_body_bytes=64 * 1024)) as api, api.client() as c:
        resp = c.post("/v1/batches", content=b"\0" * (MIB), headers=batch_headers())
        after = c.post("/v1/batches", content=body_of(1), headers=batch_headers())
    assert _code(resp) == (413, "body_too_large", "Content-Length")
    assert after.status_code == 201


def test_413_while_streaming_a_chunked_body(wh: Warehouse) -> None:
    sent = [0]
    with api_on_warehouse(wh, ApiSettings(max_body_bytes=64 * 1024)) as api, api.client() as c:
        resp = c.post("/v1/batches", content=_chunks(20 * MIB, sent), headers=batch_headers())
    assert _code(resp) == (413, "body_too_large", "body")
    assert sent[0] < 20 * MIB  # the server stopped reading; the client did not have to send it all


def test_413_when_the_declared_payload_is_over_the_decoder_cap(wh: Warehouse) -> None:
    body = encode(big_batch(1, 20_000))
    with api_on_warehouse(wh, ApiSettings(max_decompressed_bytes=50_000)) as api, api.client() as c:
        resp = c.post("/v1/batches", content=body, headers=batch_headers())
    assert _code(resp) == (413, "payload_too_large", "plen")


def test_408_when_the_body_is_too_slow(wh: Warehouse) -> None:
    def slow() -> Iterator[bytes]:
        yield body_of(1)[:10]
        time.sleep(1.5)
        yield b"x"

    with api_on_warehouse(wh, ApiSettings(body_timeout_s=0.3)) as api, api.client() as c:
        resp = c.post("/v1/batches", content=slow(), headers=batch_headers())
    assert _code(resp) == (408, "body_timeout", "body")


class GatedWarehouse:
    """The real warehouse, with landing held until ``release`` is set.

    A fault we cannot otherwise cause on demand: a writer slow enough that every landing slot stays busy.
    """

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def land_batch(self, batch: Batch, *, body_checksum: str, received_ms: int) -> LandResult:
        self.entered.release()
        assert self.release.wait(30)
        return self.inner.land_batch(batch, body_checksum=body_checksum, received_ms=received_ms)

    def query(self, sql: str, params: Any = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self.inner.query(sql, params)


def test_429_with_retry_after_when_the_writer_is_saturated(wh: Warehouse) -> None:
    gated = GatedWarehouse(wh)
    settings = ApiSettings(max_in_flight=2, max_requests=8, queue_wait_s=0.2, retry_after_s=7)
    with api_on_warehouse(gated, settings) as api, api.client() as c, ThreadPoolExecutor(4) as pool:
        busy = [pool.submit(c.post, "/v1/batches", content=body_of(s), headers=batch_headers())
                for s in (1, 2)]
        assert gated.entered.acquire(timeout=10)
        assert gated.entered.acquire(timeout=10)
        t0 = time.monotonic()
        waited = c.post("/v1/batches", content=body_of(3), headers=batch_headers())  # waits queue_wait_s
        assert time.monotonic() - t0 >= 0.2
        metrics = c.get("/metrics").text
        gated.release.set()
        assert [f.result().status_code for f in busy] == [201, 201]
        retried = c.post("/v1/batches", content=body_of(3), headers=batch_headers())
    assert _code(waited) == (429, "saturated", None)
    assert waited.headers["retry-after"] == "7"
    assert "campus_ingest_in_flight 2.0" in metrics
    assert "campus_ingest_admitted 2.0" in metrics
    assert retried.status_code == 201


def test_429_at_once_when_admission_is_full(wh: Warehouse) -> None:
    gated = GatedWarehouse(wh)
    settings = ApiSettings(max_requests=1, max_in_flight=1, queue_wait_s=5.0)
    with api_on_warehouse(gated, settings) as api, api.client() as c, ThreadPoolExecutor(2) as pool:
        busy = pool.submit(c.post, "/v1/batches", content=body_of(1), headers=batch_headers())
        assert gated.entered.acquire(timeout=10)
        t0 = time.monotonic()
        resp = c.post("/v1/batches", content=body_of(2), headers=batch_headers())
        elapsed = time.monotonic() - t0
        gated.release.set()
        assert busy.result().status_code == 201
    assert _code(resp) == (429, "saturated", None)
    assert "retry-after" in resp.headers
    assert elapsed < 2.0


def test_a_slow_sender_does_not_hold_a_landing_slot(wh: Warehouse) -> None:
    body = body_of(1)

    def slow() -> Iterator[bytes]:
        yield body[:20]
        time.sleep(1.5)
        yield body[20:]

    settings = ApiSettings(max_requests=4, max_in_flight=1)
    with api_on_warehouse(wh, settings) as api, api.client() as c, ThreadPoolExecutor(1) as pool:
        slow_resp = pool.submit(c.post, "/v1/batches", content=slow(), headers=batch_headers())
        time.sleep(0.2)
        t0 = time.monotonic()
        fast = c.post("/v1/batches", content=body_of(2), headers=batch_headers())
        fast_s = time.monotonic() - t0
        assert slow_resp.result().status_code == 201
    assert fast.status_code == 201
    assert fast_s < 1.0


# ------------------------------------------------------------------------------- subprocess: memory bounds


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    env = {"CAMPUS_API_MAX_BODY_BYTES": str(MIB), "CAMPUS_API_MAX_DECOMPRESSED_BYTES": str(8 * MIB)}
    with running_api_process(tmp_path_factory.mktemp("serve"), env=env,
                             args=["--transform-every", "0"]) as server:
        with server.client() as c:  # warm up: imports, first landing, first decode
            assert c.post("/v1/batches", content=body_of(1_000), headers=batch_headers()).status_code == 201
        yield server


def _peak_growth_mib(server: ApiServer, before_kib: int) -> float:
    assert server.proc is not None
    return (rss_kib(server.proc.pid, "VmHWM") - before_kib) / 1024


def test_50mb_body_refused_without_the_server_growing(served: ApiServer) -> None:
    assert served.proc is not None
    before = rss_kib(served.proc.pid, "VmHWM")
    with served.client() as c:
        t0 = time.monotonic()
        declared = c.post("/v1/batches", content=b"\0" * (50 * MIB), headers=batch_headers())
        sent = [0]
        chunked = c.post("/v1/batches", content=_chunks(50 * MIB, sent), headers=batch_headers())
        elapsed = time.monotonic() - t0
        ok = c.post("/v1/batches", content=body_of(2_000), headers=batch_headers())
    assert _code(declared) == (413, "body_too_large", "Content-Length")
    assert _code(chunked) == (413, "body_too_large", "body")
    assert sent[0] < 50 * MIB
    assert _peak_growth_mib(served, before) < 10
    assert elapsed < 10
    assert ok.status_code == 201


@pytest.mark.parametrize(("variant", "expected"), [
    ({"expands_to": 4 << 30, "plen": 4 << 30}, (413, "payload_too_large", "plen")),
    ({"expands_to": 4 << 30, "plen": 1000}, (400, "malformed_batch", "plen")),
    ({"expands_to": 4 << 30, "plen": 1000, "content_size": False}, (400, "malformed_batch", "plen")),
    ({"expands_to": 2 << 30, "plen": 8 * MIB}, (400, "malformed_batch", "plen")),
    ({"expands_to": 8 * MIB, "plen": 8 * MIB}, (400, "malformed_batch", "checksum")),  # decoded to the cap
])
def test_zstd_bomb_refused_quickly_with_bounded_memory(served: ApiServer, variant: dict[str, Any],
                                                       expected: tuple[int, str, str]) -> None:
    body = _bomb(**variant)
    assert len(body) < 300 * 1024  # a small body...
    assert served.proc is not None
    before = rss_kib(served.proc.pid, "VmHWM")
    with served.client() as c:
        t0 = time.monotonic()
        resp = c.post("/v1/batches", content=body, headers=batch_headers())
        elapsed = time.monotonic() - t0
    assert _code(resp) == expected
    assert elapsed < 2.0
    assert _peak_growth_mib(served, before) < 8 + 4  # at most the decoder cap, never the expansion

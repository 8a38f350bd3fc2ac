"""Uploader against a real HTTP server on 127.0.0.1 (uvicorn in a thread), scripted per request."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from edge_agent import wire
from edge_agent.model import ProfileRef, Reading
from edge_agent.upload import Backoff, Outcome, Timeouts, Uploader
from tests.support.procs import free_port

GW = "campus-a-gw1"
TOKEN = "s3cret-token-never-logged-0123456789"
P = ProfileRef("p", 1)


def body_for(seq: int, n: int = 20) -> bytes:
    readings = [Reading(f"dev-{i % 3}", "temperature", 1_760_000_000_000 + 1000 * i, 20 + i / 10, "Cel", P)
                for i in range(n)]
    return wire.encode(wire.build_batch(GW, seq, 1_760_000_100_000, readings, [], {"temperature": 0.1}))


@dataclass
class Step:
    """One scripted answer: status, headers, JSON (or raw bytes) body, and a delay before answering."""

    status: int = 201
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # > 0: stream the body one byte every ``drip`` seconds for ``delay`` seconds


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int
    at: float  # time.monotonic() when the request arrived


class ScriptedServer:
    """A real uvicorn server answering from a script; records every request it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.steps: deque[Step] = deque()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off",
                                interface="asgi3", timeout_graceful_shutdown=1, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="scripted-http", daemon=True)

    def script(self, *steps: Step) -> None:
        with self._lock:
            self.steps.extend(steps)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        with self._lock:
            self.seen.append(Seen(request.url.path, dict(request.headers), body,
                                  request.client.port if request.client else 0, time.monotonic()))
            step = self.steps.popleft() if self.steps else Step(201, {"status": "stored"})
        if step.drip:
            response: Response = StreamingResponse(self._drip(step), status_code=step.status)
        else:
            if step.delay:
                await asyncio.sleep(step.delay)
            content = step.json if isinstance(step.json, bytes) else orjson.dumps(step.json or {})
            response = Response(content, step.status, headers=step.headers, media_type="application/json")
        await response(scope, receive, send)

    @staticmethod
    async def _drip(step: Step) -> AsyncIterator[bytes]:
        deadline = time.monotonic() + step.delay
        while time.monotonic() < deadline:
            yield b" "
            await asyncio.sleep(step.drip)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("scripted server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def uploader(url: str, **kw: Any) -> Uploader:
    kw.setdefault("timeouts", Timeouts(connect=2, read=5, write=5, pool=2, total=10))
    kw.setdefault("backoff", Backoff(base=0.05, cap=0.4))
    return Uploader(url, GW, TOKEN, **kw)


async def test_headers_body_and_connection_reuse(server: ScriptedServer) -> None:
    bodies = [body_for(seq) for seq in (1, 2, 3)]
    async with uploader(server.url) as up:
        results = [await up.upload(b) for b in bodies]
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert [r.seq for r in results] == [1, 2, 3]
    assert [s.body for s in server.seen] == bodies
    for seq, seen in enumerate(server.seen, start=1):
        assert seen.path == "/v1/batches"
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["content-type"] == wire.CONTENT_TYPE
        assert seen.headers["x-gateway-id"] == GW
        assert seen.headers["x-batch-seq"] == str(seq)
        assert "content-encoding" not in seen.headers  # zstd is inside the format
    assert len({s.client_port for s in server.seen}) == 1  # one kept-alive connection
    assert results[0].response == {"status": "stored"}
    assert up.stats.sent == 3
    assert up.stats.bytes_sent == sum(map(len, bodies))


async def test_500_then_200_retries_with_backoff(server: ScriptedServer) -> None:
    server.script(Step(500, {"error": {"code": "boom", "detail": "oops"}}), Step(201, {"status": "stored"}))
    body = body_for(7)
    outcomes = []
    async with uploader(server.url) as up:
        for _ in range(5):  # bounded drain loop for one batch
            r = await up.upload(body)
            outcomes.append(r)
            if r.outcome is not Outcome.RETRY_LATER:
                break
            assert 0.0 <= r.after <= 0.05  # first failure: full jitter under the base
            await asyncio.sleep(r.after)
        assert up.backoff.failures == 0  # a success resets the backoff
    assert [r.outcome for r in outcomes] == [Outcome.RETRY_LATER, Outcome.SENT]
    assert (outcomes[0].status, outcomes[0].reason) == (500, "boom")
    assert len(server.seen) == 2


async def test_consecutive_failures_back_off_exponentially_up_to_the_cap(server: ScriptedServer) -> None:
    server.script(*(Step(s) for s in (500, 502, 504, 500, 599)))
    async with uploader(server.url, backoff=Backoff(base=0.05, cap=0.4, jitter=0.0)) as up:
        afters = [(await up.upload(body_for(1))).after for _ in range(5)]
    assert afters == [0.05, 0.1, 0.2, 0.4, 0.4]


async def test_429_retry_after_seconds_is_honoured(server: ScriptedServer) -> None:
    server.script(Step(429, {"error": {"code": "saturated", "detail": "busy"}}, {"Retry-After": "2"}))
    body = body_for(8)
    async with uploader(server.url) as up:
        first = await up.upload(body)
        assert first.outcome is Outcome.RETRY_LATER
        assert (first.status, first.after, first.reason) == (429, 2.0, "saturated")
        await asyncio.sleep(first.after)
        second = await up.upload(body)
    assert second.outcome is Outcome.SENT
    assert server.seen[1].at - server.seen[0].at >= 2.0 - 0.05


async def test_503_retry_after_http_date(server: ScriptedServer) -> None:
    now = 1_760_000_000.0
    server.script(Step(503, {}, {"Retry-After": formatdate(now + 30, usegmt=True)}))
    async with uploader(server.url, wall_clock=lambda: now) as up:
        r = await up.upload(body_for(9))
    assert (r.outcome, r.status, r.after) == (Outcome.RETRY_LATER, 503, 30.0)


async def test_413_asks_for_a_split_and_the_halves_go_through(server: ScriptedServer) -> None:
    server.script(Step(413, {"error": {"code": "payload_too_large", "field": "plen", "detail": "too big"}}))
    readings = [Reading("d", "m", 1000 * i, float(i), "u", P) for i in range(10)]
    batch = wire.build_batch(GW, 10, 0, readings, [])
    async with uploader(server.url) as up:
        r = await up.upload_batch(batch)
        assert (r.outcome, r.reason, r.detail) == (Outcome.SPLIT, "payload_too_large", "plen: too big")
        a, b = batch.halves()
        halves = [await up.upload_batch(dataclasses.replace(h, seq=s)) for h, s in ((a, 11), (b, 12))]
    assert [h.outcome for h in halves] == [Outcome.SENT, Outcome.SENT]
    assert [s.headers["x-batch-seq"] for s in server.seen] == ["10", "11", "12"]


async def test_body_over_max_body_is_split_without_sending(server: ScriptedServer) -> None:
    async with uploader(server.url, max_body=100) as up:
        r = await up.upload(body_for(1, n=200))
    assert (r.outcome, r.reason) == (Outcome.SPLIT, "too_large")
    assert server.seen == []


@pytest.mark.parametrize("status", [400, 409, 415, 422])
async def test_rejected_batches_are_dead_lettered(server: ScriptedServer, status: int) -> None:
    server.script(Step(status, {"error": {"code": "malformed_batch", "field": "s.n", "detail": "counts"}}))
    async with uploader(server.url) as up:
        r = await up.upload(body_for(3))
        assert up.stats.dead_letters == 1
    assert (r.outcome, r.status, r.reason) == (Outcome.DEAD_LETTER, status, "malformed_batch")
    assert "s.n" in r.detail


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure_stops_requests_until_the_cool_down(server: ScriptedServer, status: int) -> None:
    now = [100.0]
    server.script(Step(status, {"error": {"code": "invalid_token", "detail": "no"}}))
    async with uploader(server.url, clock=lambda: now[0], auth_cooldown=60) as up:
        first = await up.upload(body_for(1))
        assert (first.outcome, first.status, first.after) == (Outcome.AUTH_FAILED, status, 60)
        for _ in range(5):  # no hammering: nothing reaches the server
            blocked = await up.upload(body_for(2))
            assert (blocked.outcome, blocked.reason) == (Outcome.AUTH_FAILED, "auth_blocked")
        hb = await up.send_heartbeat({"interval_s": 30})
        assert hb.outcome is Outcome.AUTH_FAILED
        assert len(server.seen) == 1
        now[0] += 59
        assert (await up.upload(body_for(2))).after == pytest.approx(1.0)
        now[0] += 2  # the cool-down is over: one probe goes out and succeeds
        assert (await up.upload(body_for(2))).outcome is Outcome.SENT
        assert up.auth_blocked_for == 0
    assert len(server.seen) == 2


async def test_set_token_lifts_the_block(server: ScriptedServer) -> None:
    server.script(Step(401))
    async with uploader(server.url) as up:
        assert (await up.upload(body_for(1))).outcome is Outcome.AUTH_FAILED
        up.set_token("new-token")
        assert (await up.upload(body_for(1))).outcome is Outcome.SENT
    assert server.seen[-1].headers["authorization"] == "Bearer new-token"


async def test_hanging_server_times_out_within_the_read_timeout(server: ScriptedServer) -> None:
    server.script(Step(201, delay=10))
    timeouts = Timeouts(connect=1, read=0.3, write=1, pool=1, total=5)
    async with uploader(server.url, timeouts=timeouts) as up:
        started = time.monotonic()
        r = await up.upload(body_for(4))
        took = time.monotonic() - started
    assert (r.outcome, r.status, r.reason) == (Outcome.RETRY_LATER, None, "timeout")
    assert 0.25 <= took < 1.5
    assert 0 <= r.after <= 0.05


async def test_dripping_server_hits_the_total_deadline(server: ScriptedServer) -> None:
    server.script(Step(200, delay=10, drip=0.05))  # a byte every 50 ms: never a read timeout
    timeouts = Timeouts(connect=1, read=0.5, write=1, pool=1, total=0.8)
    async with uploader(server.url, timeouts=timeouts) as up:
        started = time.monotonic()
        r = await up.upload(body_for(4))
        took = time.monotonic() - started
    assert (r.outcome, r.reason) == (Outcome.RETRY_LATER, "timeout")
    assert 0.7 <= took < 2.0


async def test_connection_refused_is_retry_later() -> None:
    async with uploader(f"http://127.0.0.1:{free_port()}") as up:
        started = time.monotonic()
        r = await up.upload(body_for(5))
    assert (r.outcome, r.status, r.reason) == (Outcome.RETRY_LATER, None, "connect_error")
    assert time.monotonic() - started < 2
    assert up.stats.retries == 1


async def test_duplicate_is_sent(server: ScriptedServer) -> None:
    server.script(Step(200, {"status": "duplicate", "gateway": GW, "seq": 6, "readings": 0, "events": 0}))
    async with uploader(server.url) as up:
        r = await up.upload(body_for(6))
    assert (r.outcome, r.status, r.duplicate) == (Outcome.SENT, 200, True)
    assert up.stats.duplicates == 1


async def test_heartbeat_posts_json_and_returns_the_ack(server: ScriptedServer) -> None:
    server.script(Step(200, {"status": "ok", "gateway": GW, "received_ms": 5, "clock_offset_ms": -12}))
    async with uploader(server.url, wall_clock=lambda: 1_760_000_000.5) as up:
        r = await up.send_heartbeat({"interval_s": 30.0, "backlog_batches": 2})
    assert r.outcome is Outcome.SENT
    assert r.response is not None
    assert r.response["clock_offset_ms"] == -12
    seen = server.seen[0]
    assert (seen.path, seen.headers["content-type"]) == ("/v1/heartbeats", "application/json")
    assert orjson.loads(seen.body) == {"gateway": GW, "sent_at_ms": 1_760_000_000_500, "interval_s": 30.0,
                                       "backlog_batches": 2}


async def test_token_never_appears_in_logs_or_results(server: ScriptedServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    server.script(Step(500), Step(400), Step(401))
    caplog.set_level(logging.DEBUG)
    results = []
    async with uploader(server.url) as up:
        results = [await up.upload(body_for(i)) for i in range(3)]
    async with uploader(f"http://127.0.0.1:{free_port()}") as up:
        results.append(await up.upload(body_for(4)))
    assert [r.outcome for r in results] == [Outcome.RETRY_LATER, Outcome.DEAD_LETTER, Outcome.AUTH_FAILED,
                                            Outcome.RETRY_LATER]
    assert TOKEN not in caplog.text
    assert all(TOKEN not in repr(r) for r in results)

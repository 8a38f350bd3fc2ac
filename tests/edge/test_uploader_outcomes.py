"""Uploader outcome table, backoff and Retry-After, through the transport seam (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from email.utils import formatdate

import httpx
import pytest

from edge_agent import wire
from edge_agent.model import ProfileRef, Reading
from edge_agent.upload import (
    MAX_RETRY_AFTER,
    Backoff,
    BackoffState,
    Outcome,
    Timeouts,
    Uploader,
    parse_retry_after,
)

GW = "gw-1"
P = ProfileRef("p", 1)


def batch(seq: int, n: int = 8, gateway: str = GW) -> wire.Batch:
    readings = [Reading("d", "m", 1000 * i, float(i), "u", P) for i in range(n)]
    return wire.build_batch(gateway, seq, 0, readings, [])


def mock(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> Uploader:
    kw.setdefault("backoff", Backoff(base=1.0, cap=8.0, jitter=0.0))
    return Uploader("http://ingest.test", GW, "tok", transport=httpx.MockTransport(handler), **kw)  # type: ignore[arg-type]


# ---- Backoff -------------------------------------------------------------------------------------------

def test_backoff_schedule_and_cap() -> None:
    b = Backoff(base=0.5, cap=60)
    assert [b.ceiling(n) for n in range(9)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    assert b.ceiling(10**9) == 60  # no overflow after a very long outage
    assert b.delay(3, 0.0) == 0.0  # full jitter by default: anywhere in [0, ceiling]
    assert b.delay(3, 0.999) == pytest.approx(3.996)
    assert Backoff(jitter=0.0).delay(3, 0.7) == 4.0
    assert Backoff(jitter=0.5).delay(3, 0.0) == 2.0


@pytest.mark.parametrize("kw", [{"base": 0}, {"base": float("nan")}, {"cap": 0.1}, {"factor": 0.5},
                                {"jitter": 1.5}, {"jitter": -0.1}])
def test_backoff_refuses_bad_settings(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**kw)


def test_backoff_state_counts_resets_and_spreads() -> None:
    state = BackoffState(Backoff(base=1, cap=100), random.Random(42))
    waits = [state.failure() for _ in range(6)]
    assert state.failures == 6
    assert all(0 <= w <= 2**i for i, w in enumerate(waits))
    state.success()
    assert state.failures == 0
    assert state.peek() == 1
    spread = [BackoffState(Backoff(base=1, cap=100), random.Random(seed)).failure() for seed in range(200)]
    assert min(spread) < 0.1
    assert max(spread) > 0.9  # a fleet does not retry in lock-step


@pytest.mark.parametrize(("value", "expected"), [
    ("2", 2.0), (" 120 ", 120.0), ("0", 0.0), (None, None), ("", None), ("soon", None), ("-5", None),
    ("1.5", None), ("99999999999999999999", MAX_RETRY_AFTER),
    (formatdate(1_000_030, usegmt=True), 30.0),  # IMF-fixdate
    (formatdate(999_000, usegmt=True), 0.0),  # in the past
    ("Sun Nov  6 08:49:37 1994", 7.0),  # asctime, relative to now = 784111770
    ("Sunday, 06-Nov-94 08:49:37 GMT", 7.0),  # RFC 850
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 784111770.0 if value and "94" in value else 1_000_000.0
    assert parse_retry_after(value, now) == expected


# ---- outcome table ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.SENT), (201, Outcome.SENT), (204, Outcome.SENT),
    (301, Outcome.RETRY_LATER), (404, Outcome.RETRY_LATER), (408, Outcome.RETRY_LATER),
    (429, Outcome.RETRY_LATER), (500, Outcome.RETRY_LATER), (502, Outcome.RETRY_LATER),
    (503, Outcome.RETRY_LATER), (504, Outcome.RETRY_LATER),
    (413, Outcome.SPLIT),
    (400, Outcome.DEAD_LETTER), (409, Outcome.DEAD_LETTER), (415, Outcome.DEAD_LETTER),
    (422, Outcome.DEAD_LETTER),
    (401, Outcome.AUTH_FAILED), (403, Outcome.AUTH_FAILED),
])
async def test_status_to_outcome(status: int, outcome: Outcome) -> None:
    async with mock(lambda _: httpx.Response(status)) as up:
        r = await up.upload_batch(batch(1))
    assert (r.outcome, r.status) == (outcome, status)
    if outcome is Outcome.RETRY_LATER:
        assert r.after == 1.0
        assert r.reason == f"http_{status}"


async def test_heartbeat_413_is_dead_letter_and_backoff_is_separate() -> None:
    async with mock(lambda _: httpx.Response(413)) as up:
        r = await up.send_heartbeat({"interval_s": 30})
        assert up.backoff.failures == 0
    assert (r.outcome, r.seq) == (Outcome.DEAD_LETTER, -1)


@pytest.mark.parametrize("exc", [httpx.ConnectTimeout("t"), httpx.ReadTimeout("t"), httpx.WriteTimeout("t"),
                                 httpx.PoolTimeout("t"), httpx.ConnectError("c"), httpx.ReadError("r"),
                                 httpx.RemoteProtocolError("p"), httpx.WriteError("w")])
async def test_transport_errors_are_retry_later(exc: httpx.RequestError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    async with mock(fail) as up:
        r = await up.upload_batch(batch(1))
        assert up.backoff.failures == 1
    assert (r.outcome, r.status, r.after) == (Outcome.RETRY_LATER, None, 1.0)
    assert r.reason in {"timeout", "connect_error", "network_error"}


async def test_retry_after_wins_over_backoff_but_still_counts_as_failure() -> None:
    answers = iter([httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(500)])
    async with mock(lambda _: next(answers)) as up:
        assert (await up.upload_batch(batch(1))).after == 7.0
        assert (await up.upload_batch(batch(1))).after == 2.0  # the second failure in a row


async def test_unreachable_tells_own_backoff_after_no_answer_from_a_server_imposed_wait() -> None:
    """``unreachable``: the daemon may cut such a wait short when a heartbeat gets through (a Retry-After never)."""
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with mock(refuse) as up:
        assert (await up.upload_batch(batch(1))).unreachable
    answers = iter([httpx.Response(502), httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(500),
                    httpx.Response(429), httpx.Response(200, json={"status": "stored"})])
    async with mock(lambda _: next(answers)) as up:
        got = [(await up.upload_batch(batch(1))) for _ in range(5)]
    assert [r.unreachable for r in got] == [True, False, False, False, False]
    assert [r.server_wait for r in got] == [False, True, False, False, False]


async def test_bodies_that_are_not_ours_are_dead_lettered_without_a_request() -> None:
    calls = []
    async with mock(lambda r: calls.append(r) or httpx.Response(201)) as up:
        junk = await up.upload(b"not a batch")
        other = await up.upload(wire.encode(batch(4, gateway="gw-2")))
    assert (junk.outcome, junk.reason, junk.seq) == (Outcome.DEAD_LETTER, "not_a_batch", -1)
    assert (other.outcome, other.reason, other.seq) == (Outcome.DEAD_LETTER, "wrong_gateway", 4)
    assert calls == []


async def test_huge_error_bodies_are_read_only_in_part() -> None:
    async with mock(lambda _: httpx.Response(500, content=b"x" * 10_000_000)) as up:
        r = await up.upload_batch(batch(1))
    assert r.outcome is Outcome.RETRY_LATER
    assert len(r.detail) <= 200


async def test_non_json_and_odd_json_answers() -> None:
    answers = iter([httpx.Response(400, content=b"<html>"), httpx.Response(400, json={"error": "flat"}),
                    httpx.Response(201, json=[1, 2]), httpx.Response(200, content=b"{bad")])
    async with mock(lambda _: next(answers)) as up:
        results = [await up.upload_batch(batch(1)) for _ in range(4)]
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.DEAD_LETTER, "http_400"), (Outcome.DEAD_LETTER, "http_400"), (Outcome.SENT, ""),
        (Outcome.SENT, "")]
    assert results[2].response is None


def test_constructor_refuses_bad_configuration() -> None:
    for url in ("ftp://x", "not a url", "http://"):
        with pytest.raises(ValueError, match="URL"):
            Uploader(url, GW, "tok")
    with pytest.raises(ValueError, match="gateway"):
        Uploader("http://x", "", "tok")
    with pytest.raises(ValueError, match="token"):
        Uploader("http://x", GW, "two words")
    with pytest.raises(ValueError, match="token"):
        Uploader("http://x", GW, "line\nbreak")
    with pytest.raises(ValueError, match=r"Timeouts\.read"):
        Timeouts(read=0)


async def test_default_transport_speaks_http2_when_offered() -> None:
    async with Uploader("https://ingest.test", GW, "tok") as up:
        pool = up._client._transport._pool  # type: ignore[attr-defined]
        assert pool._http2 is True
        assert pool._retries == 0  # retries are the drainer's decision, with backoff


# ---- the drain loop the integrator writes is a match on the outcome -------------------------------------

async def test_a_drain_loop_is_a_match_on_outcomes() -> None:
    """An in-memory outbox drained by the pattern of edge_agent.upload's docstring, against a fake server."""
    stored: dict[int, bytes] = {}
    script = {1: [500, 201], 2: [413], 3: [400], 4: [200], 5: [201], 6: [201]}

    def server(request: httpx.Request) -> httpx.Response:
        seq = int(request.headers["x-batch-seq"])
        status = script[seq].pop(0)
        if status in (200, 201):
            stored[seq] = request.content
        return httpx.Response(status, json={"status": "duplicate" if status == 200 else "stored"})

    outbox = {seq: wire.encode(batch(seq)) for seq in (1, 2, 3, 4)}
    dead: dict[int, str] = {}
    next_seq = 5
    async with mock(server, backoff=Backoff(base=0.01, cap=0.02)) as up:
        for _ in range(20):  # bounded
            if not outbox:
                break
            seq = min(outbox)
            r = await up.upload(outbox[seq])
            match r.outcome:
                case Outcome.SENT:
                    del outbox[seq]
                case Outcome.RETRY_LATER:
                    await asyncio.sleep(r.after)
                case Outcome.SPLIT:
                    for half in wire.decode(outbox.pop(seq)).halves():
                        outbox[next_seq] = wire.encode(dataclasses.replace(half, seq=next_seq))
                        next_seq += 1
                case Outcome.DEAD_LETTER:
                    dead[seq] = r.reason
                    del outbox[seq]
                case Outcome.AUTH_FAILED:
                    pytest.fail("no auth failure scripted")
    assert outbox == {}
    assert dead == {3: "http_400"}
    assert sorted(stored) == [1, 4, 5, 6]
    assert up.stats.sent == 4
    assert up.stats.duplicates == 1
    assert (up.stats.retries, up.stats.splits, up.stats.dead_letters) == (1, 1, 1)

"""IngestLoop bursts: bounded by messages and by decoded values; every message acknowledged after its commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from edge_agent.ingest import IngestLoop
from edge_agent.model import DecodeResult, Message, ProfileRef, Reading

REF = ProfileRef("test.profile", 1)


class Item:
    def __init__(self, i: int) -> None:
        self.message = Message(f"t/{i}", str(i).encode(), 1_000 + i, i + 1, 1)


class FakeSource:
    def __init__(self, n: int) -> None:
        self.queue = [Item(i) for i in range(n)]
        self.acked: list[int] = []

    @property
    def pending(self) -> int:
        return len(self.queue)

    def drain(self, max_n: int) -> list[Any]:
        out, self.queue = self.queue[:max_n], self.queue[max_n:]
        return out

    def ack(self, items: Sequence[Any]) -> int:
        self.acked += [i.message.mid for i in items]
        return len(items)


class Store:
    def __init__(self, source: FakeSource) -> None:
        self.source = source
        self.bursts: list[int] = []  # values per burst
        self.committed: list[int] = []

    async def commit_burst(self, results: Sequence[DecodeResult]) -> None:
        # nothing of this burst may have been acknowledged before its commit
        assert not set(self.source.acked) & {r.message.mid for r in results}
        self.bursts.append(sum(len(r.readings) for r in results))
        self.committed += [r.message.mid for r in results]


def decode_50(m: Message) -> DecodeResult:
    rs = tuple(Reading("dev", "temperature_air", m.received_ms + k, 20.0, "Cel", REF) for k in range(50))
    return DecodeResult(m, REF, "dev", rs)


async def test_bursts_bounded_by_values() -> None:
    src = FakeSource(1000)
    store = Store(src)
    loop = IngestLoop(src, decode_50, store, max_burst=2000, max_burst_values=5000)
    while src.pending:
        await loop.step()
    assert max(store.bursts) <= 5000 + 50 * 100  # at most one drain slice over the bound
    assert len(store.bursts) >= 5
    assert sorted(src.acked) == sorted(store.committed) == list(range(1, 1001))
    assert loop.stats.messages == 1000
    assert loop.stats.readings == 50_000


async def test_small_messages_fill_the_message_bound() -> None:
    src = FakeSource(3000)
    store = Store(src)
    loop = IngestLoop(src, lambda m: DecodeResult(m, REF, "dev", ()), store, max_burst=2000)
    assert await loop.step() == 2000
    assert await loop.step() == 1000
    assert await loop.step() == 0
    assert len(src.acked) == 3000


def test_heap_trim_is_harmless() -> None:
    from gateway import heap

    assert heap.trim() in (True, False)
    asyncio.run(asyncio.sleep(0))

"""The receive loop: drain a burst of MQTT messages, decode them, commit once, then acknowledge.

Durability contract (DESIGN §4.1): a message is acknowledged to the broker only after its readings or
its quarantine record are committed. If the commit fails or the buffer pushes back, nothing is
acknowledged and the burst is retried; the broker keeps the messages in the persistent session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.errors import BackPressure
from edge_agent.model import DecodeResult, Message, Quarantine, Reason

_LOGGER = logging.getLogger(__name__)

MAX_BURST = 2000  # messages per transaction; larger amortises the fsync, smaller bounds latency/memory
# Values (readings + events + waveform samples) per transaction: a burst's decoded objects and SQL rows take
# ~400 bytes a value, so this bounds the burst's memory (~8 MB) whatever the message size — 2,000 SenML packs
# of 50 records would otherwise be 100,000 readings (~40 MB) in one burst.
MAX_BURST_VALUES = 20_000
DRAIN_SLICE = 100  # messages taken from the source at a time while a burst is filled
BACKPRESSURE_RETRY_S = 0.5  # how often to retry a burst the buffer refused for lack of space
COMMIT_ERROR_RETRY_S = 1.0  # wait after an unexpected commit failure before retrying the same burst


class BurstStore(Protocol):
    async def commit_burst(self, results: Sequence[DecodeResult]) -> Any: ...


class Source(Protocol):
    def drain(self, max_n: int) -> list[Any]: ...
    def ack(self, items: Sequence[Any]) -> int: ...


@dataclass(slots=True)
class IngestStats:
    messages: int = 0
    readings: int = 0
    events: int = 0
    quarantined: int = 0
    bursts: int = 0
    commit_errors: int = 0
    backpressure: bool = False
    backpressure_episodes: int = 0
    last_commit_ms: int = 0


class IngestLoop:
    """Moves messages from a source into the durable buffer, burst by burst."""

    def __init__(self, source: Source, decode: Callable[[Message], DecodeResult], store: BurstStore, *,
                 max_burst: int = MAX_BURST, max_burst_values: int = MAX_BURST_VALUES,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._decode = decode
        self._store = store
        self._max_burst = max_burst
        self._max_values = max_burst_values
        self._clock = clock
        self.stats = IngestStats()
        self.wake = asyncio.Event()
        self._held: list[Any] = []  # a burst decoded but not yet committed (back-pressure / error)
        self._held_results: list[DecodeResult] = []

    def _decode_one(self, message: Message) -> DecodeResult:
        try:
            return self._decode(message)
        except Exception as exc:  # the decoder promises not to raise; never let one message stop the loop
            _LOGGER.exception("decoder raised on %s", message.topic)
            return DecodeResult(message, None, None,
                                quarantine=Quarantine(Reason.DECODER_BUG, f"{type(exc).__name__}: {exc}"))

    async def step(self) -> int:
        """Commit and acknowledge one burst; returns the number of messages committed (0 if none)."""
        if not self._held:
            self._fill()
            if not self._held:
                return 0
        try:
            await self._store.commit_burst(self._held_results)
        except BackPressure:
            if not self.stats.backpressure:
                self.stats.backpressure_episodes += 1
                _LOGGER.warning("buffer full and nothing evictable: not acknowledging until space frees")
            self.stats.backpressure = True
            await asyncio.sleep(BACKPRESSURE_RETRY_S)
            return 0
        except Exception:
            self.stats.commit_errors += 1
            _LOGGER.exception("committing a burst of %d messages failed; will retry", len(self._held))
            await asyncio.sleep(COMMIT_ERROR_RETRY_S)
            return 0
        self.stats.backpressure = False
        items, results = self._held, self._held_results
        self._held, self._held_results = [], []
        self._source.ack(items)
        st = self.stats
        st.messages += len(items)
        st.bursts += 1
        st.last_commit_ms = int(self._clock() * 1000)
        for r in results:
            if r.quarantine is not None:
                st.quarantined += 1
            else:
                st.readings += len(r.readings)
                st.events += len(r.events)
        return len(items)

    def _fill(self) -> None:
        """Take and decode messages until ``max_burst`` messages or ``max_burst_values`` values (or none left)."""
        items: list[Any] = []
        results: list[DecodeResult] = []
        values = 0
        decode = self._decode_one
        while len(items) < self._max_burst and values < self._max_values:
            got = self._source.drain(min(DRAIN_SLICE, self._max_burst - len(items)))
            if not got:
                break
            for item in got:
                r = decode(item.message)
                results.append(r)
                values += len(r.readings) + len(r.events)
                for w in r.waveforms:
                    values += len(w.samples)
            items += got
        self._held, self._held_results = items, results

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; the burst in hand is committed and acknowledged before returning."""
        while not stop.is_set():
            n = await self.step()
            if n == 0 and not self._held:
                self.wake.clear()
                if self._source_has_nothing():
                    waiter = asyncio.ensure_future(self.wake.wait())
                    stopper = asyncio.ensure_future(stop.wait())
                    await asyncio.wait({waiter, stopper}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    stopper.cancel()
        # graceful stop: finish the burst in hand (if the buffer accepts it)
        if self._held:
            await self.step()

    def _source_has_nothing(self) -> bool:
        pending = getattr(self._source, "pending", None)
        return not pending

"""Outbox: cut committed rows into encoded batches, and drain stored batches to the cloud.

``cut_batches`` turns unbatched rows of the buffer into wire-format batches (columnar, no Python
object per reading), each given a durable per-gateway sequence number and stored *before* any send.
``Drainer.run_once`` uploads stored batches in the buffer's priority/fairness order and acts on each
outcome: delete only after a 2xx, re-cut into halves on 413, dead-letter a batch the server calls
malformed (kept, counted), and wait as told (Retry-After or backoff) otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from edge_agent import wire
from edge_agent.buffer import BatchPart, Buffer, Pending
from edge_agent.errors import WireError
from edge_agent.model import Event, ProfileRef
from edge_agent.upload import Outcome, Uploader

_LOGGER = logging.getLogger(__name__)

BATCHES_PER_ROUND = 8  # stored batches fetched per drain round (the buffer applies its fairness rule)
IDLE_WAIT_S = 0.2  # how long the drainer sleeps when nothing is stored


def build_from_pending(gateway: str, seq: int, created_ms: int, pending: Pending,
                       precision: Mapping[str, float] | None = None) -> wire.Batch:
    """A wire batch from the buffer's pending columns (vectorised over readings)."""
    series_ids = np.unique(pending.r_series) if pending.n_readings else np.zeros(0, np.uint32)
    keys = [pending.series[int(s)] for s in series_ids]
    devices, dev_idx = wire.factorize(k.device for k in keys)
    metrics, met_idx = wire.factorize(k.metric for k in keys)
    units, unit_idx = wire.factorize(k.unit for k in keys)
    profiles, prof_idx = wire.factorize(k.profile for k in keys)
    aggs, agg_idx = wire.factorize(k.agg for k in keys)
    window = np.array([k.window_s for k in keys], dtype=np.uint32)
    pos = np.searchsorted(series_ids, pending.r_series)  # reading -> row of the series table above
    events = []
    for i in range(pending.n_events):
        k = pending.series[int(pending.e_series[i])]
        events.append(Event(k.device, k.metric, int(pending.e_ts_ms[i]), ProfileRef.parse(k.profile),
                            tuple(pending.e_attrs[i].items()), int(pending.e_quality[i]),
                            int(pending.e_priority[i])))
    return wire.Batch.from_columns(
        gateway, seq, created_ms,
        devices=devices, metrics=metrics, units=units, profiles=profiles,
        device=dev_idx[pos], metric=met_idx[pos], unit=unit_idx[pos], profile=prof_idx[pos],
        ts_ms=pending.r_ts_ms, value=pending.r_value, quality=pending.r_quality, version=pending.r_version,
        aggs=aggs or (wire.RAW,), agg=agg_idx[pos], window_s=window[pos],
        precision=precision, events=events,
    )


async def cut_batches(buffer: Buffer, gateway: str, *, max_readings: int, max_events: int = 10_000,
                      precision: Mapping[str, float] | None = None,
                      clock: Callable[[], float] = time.time, max_batches: int = 100) -> int:
    """Cut everything unbatched into stored batches (bounded by ``max_batches``); returns batches made.

    A take that is not full (fewer than ``max_readings`` readings and ``max_events`` events) took all that
    was waiting, and ends the cut: rows the ingest loop commits meanwhile wait for the next cut. Going on
    would chase the incoming stream and cut a batch of a message or two per round trip (up to
    ``max_batches`` of them: thousands of tiny batches to drain after an outage).
    """
    made = 0
    while made < max_batches:
        pending = await buffer.take_unbatched(max_readings, max_events)
        if pending.n_readings == 0 and pending.n_events == 0:
            break
        seq = await buffer.next_seq()
        created = int(clock() * 1000)
        body = wire.encode(build_from_pending(gateway, seq, created, pending, precision))
        await buffer.store_batch(seq, pending.priority, body, pending.n_readings, pending.n_events,
                                 pending.r_id, pending.e_id, created_ms=created)
        made += 1
        if pending.n_readings < max_readings and pending.n_events < max_events:
            break
    return made


@dataclass(slots=True)
class DrainStats:
    sent: int = 0
    duplicates: int = 0
    readings_sent: int = 0
    splits: int = 0
    dead_letters: int = 0
    retries: int = 0
    auth_failures: int = 0
    last_success_ms: int = 0
    last_success_mono: float = 0.0  # time.monotonic() of the last success (stall checks survive clock steps)
    last_attempt_ms: int = 0
    last_error: str = ""


class Drainer:
    """Uploads stored batches; never deletes anything but a batch the server acknowledged."""

    def __init__(self, buffer: Buffer, uploader: Uploader, *, clock: Callable[[], float] = time.time) -> None:
        self._buffer = buffer
        self._uploader = uploader
        self._clock = clock
        self.stats = DrainStats()
        # The wait returned last is our own backoff after the cloud could not be reached (not a Retry-After
        # or an auth pause): a sign of life from the cloud (a heartbeat acknowledged) may cut it short.
        self.waiting_for_cloud = False

    async def run_once(self) -> float:
        """Send one round of batches; returns how long to wait before the next round (0 = go on)."""
        self.waiting_for_cloud = False
        batches = await self._buffer.next_batches(BATCHES_PER_ROUND)
        if not batches:
            return IDLE_WAIT_S
        st = self.stats
        for b in batches:
            st.last_attempt_ms = int(self._clock() * 1000)
            res = await self._uploader.upload(b.body)
            if res.outcome is Outcome.SENT:
                await self._buffer.mark_sent(b.seq)
                st.sent += 1
                st.duplicates += int(res.duplicate)
                st.readings_sent += b.n_readings
                st.last_success_ms = int(self._clock() * 1000)
                st.last_success_mono = time.monotonic()
                st.last_error = ""
                continue
            st.last_error = f"batch {b.seq}: {res.reason} {res.detail}".strip()
            if res.outcome is Outcome.SPLIT:
                await self._split(b.seq, b.body, res.status or 413, res.reason)
            elif res.outcome is Outcome.DEAD_LETTER:
                _LOGGER.error("server refused batch %d (%s %s): kept in dead_letter", b.seq, res.status,
                              res.reason, extra={"batch_seq": b.seq})
                await self._buffer.dead_letter(b.seq, res.status or 0, f"{res.reason}: {res.detail}"[:500])
                st.dead_letters += 1
            elif res.outcome is Outcome.AUTH_FAILED:
                st.auth_failures += 1
                _LOGGER.error("cloud refused this gateway's credentials (%s); pausing uploads", res.status)
                return max(res.after, 1.0)
            else:  # RETRY_LATER
                st.retries += 1
                self.waiting_for_cloud = res.unreachable
                return max(res.after, 0.05)
        return 0.0

    async def _split(self, seq: int, body: bytes, status: int, reason: str) -> None:
        try:
            batch = wire.decode(body)
        except WireError as exc:
            await self._buffer.dead_letter(seq, status, f"cannot split: {exc}"[:500])
            self.stats.dead_letters += 1
            return
        if batch.n_readings + batch.n_events <= 1:
            await self._buffer.dead_letter(seq, status, f"{reason}: a single record is too large")
            self.stats.dead_letters += 1
            return
        halves = [h for h in batch.halves() if h.n_readings + h.n_events > 0]
        seqs = await self._buffer.next_seqs(len(halves))
        parts = []
        for new_seq, half in zip(seqs, halves, strict=True):
            piece = wire.encode(dataclasses.replace(half, seq=new_seq))
            parts.append(BatchPart(new_seq, piece, half.n_readings, half.n_events))
        await self._buffer.replace_batch(seq, parts)
        self.stats.splits += 1
        _LOGGER.info("batch %d too large for the server: re-cut into %s", seq, list(seqs))

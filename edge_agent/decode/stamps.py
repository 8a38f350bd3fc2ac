"""Receive-time stamps that stay unique per series.

A reading flagged RECEIVE_TIME (its message had no timestamp) or CLOCK_SKEW (the device's clock was too far
from the gateway's, so the decoder used the receive time) carries the gateway's receive time in
milliseconds. Two such readings of one device and metric stamped in the same millisecond share
(device, metric, ts): the key by which the warehouse removes duplicates (DWD), which then keeps one and
drops the other — a distinct reading lost. It happens whenever the broker redelivers a device's queued
messages in one burst (the gateway restarting or reconnecting after any outage) and for a message with
several records without a time.

:class:`ReceiveStamps` keeps the receive stamps of each series strictly increasing: a stamp that is not
after the series' previous one moves to 1 ms after it, so a burst of n messages of one device spreads over
n ms. A stamp more than :data:`STEP_BACK_MS` before the previous one is kept as it is: the gateway's clock
was stepped back, and stamps follow the clock rather than run ahead of it. Device timestamps (readings
without those flags) are never changed.
"""

from __future__ import annotations

import dataclasses

from edge_agent.model import DecodeResult, Quality

RECEIVE_STAMPED = int(Quality.RECEIVE_TIME | Quality.CLOCK_SKEW)
STEP_BACK_MS = 60_000  # a stamp this far before the previous one of its series: the clock was stepped back
MAX_SERIES = 200_000  # series remembered (oldest forgotten first); ~30 MB at most


class ReceiveStamps:
    """Per-series last receive stamp; :meth:`apply` returns the result with colliding stamps moved on.

    One ingest loop owns it (no locking). State is in memory only: after a restart, stamps start from the
    new receive times, which are later than any stamp given before.
    """

    def __init__(self, *, max_series: int = MAX_SERIES) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self._max = max_series
        self.moved = 0  # stamps moved to keep them unique (for status and tests)

    def apply(self, result: DecodeResult) -> DecodeResult:
        readings = result.readings
        if not readings or not any(r.quality & RECEIVE_STAMPED for r in readings):
            return result
        out = list(readings)
        last_by = self._last
        for i, r in enumerate(readings):
            if not r.quality & RECEIVE_STAMPED:
                continue
            key = (r.device, r.metric)
            last = last_by.pop(key, None)  # re-inserted below: the dict's order is least recently used first
            ts = r.ts_ms
            if last is not None and last - STEP_BACK_MS <= ts <= last:
                ts = last + 1
                out[i] = dataclasses.replace(r, ts_ms=ts)
                self.moved += 1
            last_by[key] = ts
        while len(last_by) > self._max:
            del last_by[next(iter(last_by))]
        return dataclasses.replace(result, readings=tuple(out))

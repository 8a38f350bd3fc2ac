"""Cumulative counters (energy, water, people, packets) to deltas and rates, many series at once.

Per series, over its readings in canonical order (ts_ms, then value), each reading after the
first gives one delta against the previous reading ``(ts0, v0)``:

- ``v >= v0``: ``delta = v - v0``.
- ``v < v0`` and the counter declares a maximum ``max`` (e.g. ``2**32 - 1``, or ``99999.9`` for a
  five-digit meter with resolution ``0.1``) and the wrapped delta
  ``(max - v0) + v + resolution`` is at most ``wrap_fraction * (max + resolution)``: a **rollover**,
  ``delta`` is the wrapped delta.
- any other drop: a **reset** (device restarted or replaced), ``delta = v`` — what was counted
  since the reset; counts between the previous reading and the reset are lost.

Both drops are flagged :attr:`~edge_agent.model.Quality.COUNTER_RESET`; every output row is
flagged :attr:`~edge_agent.model.Quality.ESTIMATED` (a derived value). ``rate = delta / dt`` in
units per **second**. The wrap-fraction guard stops a reset of a counter with a maximum from being
read as a near-full wrap (a huge false spike); ``wrap_fraction=1.0`` treats every drop of such a
counter as a rollover.

A reading whose timestamp is not after the previous reading of its series (a redelivered duplicate,
or stale data older than the carried state) gives no delta and is counted in ``skipped``. The last
reading per series is carried in :class:`CounterState`, so a stream fed in time-ordered chunks
gives the same deltas as one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from edge_agent.model import Quality
from edge_agent.reduce.columns import (
    BoolArray,
    Columns,
    FloatArray,
    IntArray,
    ReductionError,
    SeriesArray,
    grown,
    ordered,
    per_series,
    segment_starts,
)

DEFAULT_WRAP_FRACTION = 0.5  # a wrap implying more than half the range in one interval is a reset


@dataclass(slots=True, frozen=True, eq=False)
class CounterState:
    """Last accepted reading per series id (``known[s]`` is False for a series never seen)."""

    last_value: FloatArray
    last_ts_ms: IntArray
    known: BoolArray

    @classmethod
    def empty(cls) -> CounterState:
        """State before any reading."""
        return cls(np.empty(0, np.float64), np.empty(0, np.int64), np.empty(0, bool))

    def grown(self, size: int) -> CounterState:
        """A copy with room for series ids below ``size``."""
        return CounterState(
            grown(self.last_value, size, 0.0), grown(self.last_ts_ms, size, 0), grown(self.known, size, False)
        )


@dataclass(slots=True, frozen=True, eq=False)
class CounterDeltas:
    """One row per reading that has a predecessor, in canonical order.

    ``index`` is the reading's position in the input; ``interval_ms`` the time since the previous
    reading (always > 0); ``quality`` a :class:`~edge_agent.model.Quality` bitmask.
    """

    series: SeriesArray
    ts_ms: IntArray
    delta: FloatArray
    rate: FloatArray
    interval_ms: IntArray
    quality: IntArray
    index: IntArray

    def __len__(self) -> int:
        return len(self.series)


@dataclass(slots=True, frozen=True, eq=False)
class CounterResult:
    """Deltas, the state for the next call, and how many readings were skipped as not newer."""

    deltas: CounterDeltas
    state: CounterState
    skipped: int


def counter_deltas(
    cols: Columns,
    state: CounterState | None = None,
    *,
    max_value: ArrayLike | None = None,
    resolution: ArrayLike = 1.0,
    wrap_fraction: float = DEFAULT_WRAP_FRACTION,
    presorted: bool = False,
) -> CounterResult:
    """Turn cumulative counter readings into deltas and rates (rules in the module docstring).

    Args:
        cols: readings of many counters, any order (canonical order with ``presorted=True``).
        state: the last reading per series from the previous call; ``None`` for a fresh start.
        max_value: the counter's largest value before it wraps to 0; scalar or per series id,
            ``None`` or ``inf``: no maximum (every drop is a reset).
        resolution: the counter's step (1 for integer counters, 0.1 for a meter showing 99999.9);
            scalar or per series id.
        wrap_fraction: in (0, 1]; see the module docstring.
        presorted: rows are already in (series, ts_ms, value) order (checked).

    Raises:
        ReductionError: ``wrap_fraction`` outside (0, 1], a negative resolution, or a per-series
            array too short for the ids present.
    """
    if not 0.0 < wrap_fraction <= 1.0:
        raise ReductionError(f"wrap_fraction: must be in (0, 1], got {wrap_fraction}")
    state = CounterState.empty() if state is None else state
    rows, where = ordered(cols, presorted)
    s, t, v = rows.series, rows.ts_ms, rows.value
    n = len(rows)
    if n:
        state = state.grown(int(s.max()) + 1)
    known = state.known[s]
    # Accept a reading only if it is newer than the previous accepted one of its series.
    fresh = np.ones(n, dtype=bool)
    fresh[1:] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    fresh &= ~known | (t > state.last_ts_ms[s])
    skipped = int(n - np.count_nonzero(fresh))
    s, t, v, pos = s[fresh], t[fresh], v[fresh], where[fresh]

    seg = segment_starts(s)
    prev_v = np.empty_like(v)
    prev_t = np.empty_like(t)
    has_prev = np.ones(len(s), dtype=bool)
    prev_v[1:], prev_t[1:] = v[:-1], t[:-1]
    if len(seg):
        first_ids = s[seg]
        prev_v[seg] = state.last_value[first_ids]
        prev_t[seg] = state.last_ts_ms[first_ids]
        has_prev[seg] = state.known[first_ids]

    mx = per_series(np.inf if max_value is None else max_value, s, "max_value", np.float64)
    res = per_series(resolution, s, "resolution", np.float64)
    if len(res) and (res < 0).any():
        raise ReductionError("resolution: must not be negative")
    has_max = np.isfinite(mx)
    mx = np.where(has_max, mx, 0.0)
    drop = v < prev_v
    wrapped = (mx - prev_v) + v + res
    roll = drop & has_max & (wrapped <= wrap_fraction * (mx + res))
    delta = np.where(drop, np.where(roll, wrapped, v), v - prev_v)
    interval = t - prev_t
    quality = np.where(drop, int(Quality.ESTIMATED | Quality.COUNTER_RESET), int(Quality.ESTIMATED))

    out = has_prev
    deltas = CounterDeltas(
        series=s[out],
        ts_ms=t[out],
        delta=delta[out],
        rate=delta[out] / (interval[out] / 1000),
        interval_ms=interval[out],
        quality=quality[out].astype(np.int64),
        index=pos[out],
    )
    if len(seg):
        last = np.append(seg[1:], len(s)) - 1
        new = state.grown(0)
        new.last_value[s[last]] = v[last]
        new.last_ts_ms[s[last]] = t[last]
        new.known[s[last]] = True
        state = new
    return CounterResult(deltas, state, skipped)


def counter_reference(
    rows: list[tuple[int, int, float]],
    last: dict[int, tuple[int, float]],
    max_value: float | None,
    resolution: float = 1.0,
    wrap_fraction: float = DEFAULT_WRAP_FRACTION,
) -> list[tuple[int, int, float, float, int]]:
    """Plain-Python counter deltas over (series, ts_ms, value) rows, for benchmarks; updates ``last``.

    Returns (series, ts_ms, delta, rate per s, quality) tuples.
    """
    out = []
    for s, t, v in sorted(rows):
        prev = last.get(s)
        if prev is not None and t <= prev[0]:
            continue
        last[s] = (t, v)
        if prev is None:
            continue
        t0, v0 = prev
        quality = int(Quality.ESTIMATED)
        if v >= v0:
            d = v - v0
        else:
            quality |= int(Quality.COUNTER_RESET)
            d = v
            if max_value is not None:
                wrapped = (max_value - v0) + v + resolution
                if wrapped <= wrap_fraction * (max_value + resolution):
                    d = wrapped
        out.append((s, t, d, d / ((t - t0) / 1000), quality))
    return out

"""Tumbling windows aligned to wall-clock boundaries, aggregated for many series at once.

A row at ``ts_ms`` of series ``s`` falls in the window starting at
``offset + floor((ts_ms - offset) / w) * w`` where ``w = window_ms[s]`` (so with no offset,
``ts_ms - ts_ms % w``: a 60 s window starts on the minute, UTC). Each window is the half-open
interval ``[start, start + w)``.

Aggregates per (series, window): count, sum, mean, min, max, first and last (by timestamp), the
population standard deviation, and percentiles by numpy's default ``'linear'`` method.

Determinism: rows are put in canonical (series, ts_ms, value) order before anything is computed,
and every reduction runs in that order, so the same rows in any order — or re-read from the buffer
after a crash — give bit-identical output, and a window's result does not depend on which other
windows are aggregated in the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from edge_agent.reduce.columns import (
    Columns,
    FloatArray,
    IntArray,
    ReductionError,
    SeriesArray,
    ordered,
    pair_lookup,
    per_series,
    segment_starts,
)

DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0)
# Percentiles sort each window's values in a padded 2-D table when it is at most this many times
# the number of rows (windows of similar size); otherwise one lexsort (less memory, slower).
PAD_LIMIT = 4


@dataclass(slots=True, frozen=True, eq=False)
class WindowVersions:
    """Windows by identity and version: the ones already emitted, or the ones to re-emit.

    Version 0 is the first emission of a window; each re-emission after late data adds one.
    """

    series: SeriesArray
    window_start: IntArray
    version: IntArray

    def __post_init__(self) -> None:
        series = np.asarray(self.series).astype(np.uint32, copy=False)
        start = np.asarray(self.window_start).astype(np.int64, copy=False)
        version = np.asarray(self.version).astype(np.int64, copy=False)
        if not len(series) == len(start) == len(version):
            raise ReductionError("WindowVersions: series, window_start and version differ in length")
        object.__setattr__(self, "series", series)
        object.__setattr__(self, "window_start", start)
        object.__setattr__(self, "version", version)

    def __len__(self) -> int:
        return len(self.series)

    @classmethod
    def empty(cls) -> WindowVersions:
        """No windows."""
        return cls(np.empty(0, np.uint32), np.empty(0, np.int64), np.empty(0, np.int64))


@dataclass(slots=True, frozen=True, eq=False)
class WindowAggregates:
    """One row per (series, window) that has at least one reading, sorted by (series, window_start).

    ``percentiles[:, j]`` is the ``percentile_levels[j]``-th percentile (0–100). ``std`` is the
    population standard deviation (divides by ``count``; 0.0 for a single reading). ``first`` is
    the value with the smallest timestamp (ties: the smallest value), ``last`` the value with the
    largest timestamp (ties: the largest value).
    """

    series: SeriesArray
    window_start: IntArray
    window_ms: IntArray
    version: IntArray
    count: IntArray
    sum: FloatArray
    mean: FloatArray
    min: FloatArray
    max: FloatArray
    first: FloatArray
    last: FloatArray
    first_ts_ms: IntArray
    last_ts_ms: IntArray
    std: FloatArray
    percentiles: FloatArray  # shape (n_windows, len(percentile_levels))
    percentile_levels: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.series)

    @property
    def window_end(self) -> IntArray:
        """Exclusive end of each window (``window_start + window_ms``)."""
        return self.window_start + self.window_ms

    def percentile(self, level: float) -> FloatArray:
        """The column of one requested percentile level.

        Raises:
            KeyError: ``level`` was not among the requested levels.
        """
        try:
            j = self.percentile_levels.index(float(level))
        except ValueError:
            raise KeyError(f"percentile {level} not computed; have {self.percentile_levels}") from None
        return self.percentiles[:, j]


def window_starts(
    series: SeriesArray, ts_ms: IntArray, window_ms: ArrayLike, offset_ms: ArrayLike = 0
) -> IntArray:
    """Start of the tumbling window of each row (see the module docstring for the rule).

    ``window_ms`` and ``offset_ms`` are scalars or arrays indexed by series id.

    Raises:
        ReductionError: a window length used by a row is not positive.
    """
    series = np.asarray(series).astype(np.uint32, copy=False)
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    w = per_series(window_ms, series, "window_ms", np.int64)
    if len(w) and w.min() <= 0:
        raise ReductionError("window_ms: window lengths must be positive")
    off = np.mod(per_series(offset_ms, series, "offset_ms", np.int64), np.maximum(w, 1))
    out: IntArray = ts_ms - np.mod(ts_ms - off, w)
    return out


def _percentiles(values: FloatArray, starts: IntArray, counts: IntArray, levels: FloatArray) -> FloatArray:
    """numpy.percentile(method='linear') of each segment, reproducing numpy's arithmetic exactly.

    ``values`` is grouped by segment; each segment is sorted by value here (one lexsort for all).
    """
    groups = len(starts)
    widest = int(counts.max())
    if groups * widest <= PAD_LIMIT * len(values):
        # Pad the groups into a (groups, widest) matrix with +inf (values are finite, so padding
        # sorts last and is never read) and sort each row: much faster than one lexsort.
        rank = np.arange(len(values)) - np.repeat(starts, counts)
        table = np.full((groups, widest), np.inf)
        table[np.repeat(np.arange(groups), counts), rank] = values
        table.sort(axis=1)
        sv, starts = table.ravel(), np.arange(groups, dtype=np.int64) * widest
    else:
        sv = values[np.lexsort((values, np.repeat(np.arange(groups), counts)))]
    q = np.true_divide(levels, 100)  # numpy: q = true_divide(q, 100)
    last = (counts - 1)[:, None]
    virtual = last * q[None, :]  # numpy: (n - 1) * quantiles
    prev = np.floor(virtual)
    above = virtual >= last
    prev = np.where(above, -1.0, prev)  # numpy marks "take the last element" with index -1
    gamma = virtual - prev
    prev_i = np.where(above, last, prev).astype(np.int64)
    next_i = np.where(above, last, prev + 1).astype(np.int64)
    a = sv[starts[:, None] + prev_i]
    b = sv[starts[:, None] + next_i]
    diff = b - a  # numpy's _lerp, including its branch for gamma >= 0.5
    out: FloatArray = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return out


def aggregate_windows(
    cols: Columns,
    window_ms: ArrayLike,
    *,
    offset_ms: ArrayLike = 0,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    presorted: bool = False,
    versions: WindowVersions | None = None,
) -> WindowAggregates:
    """Aggregate every (series, tumbling window) present in ``cols``.

    Args:
        cols: the rows, in any order (or in canonical order with ``presorted=True``).
        window_ms: window length in ms, one for all series or an array indexed by series id.
        offset_ms: shifts window boundaries (e.g. 8 h for windows aligned to local midnight in
            UTC+8), scalar or per series id.
        percentiles: levels in [0, 100]; an empty sequence skips the per-window value sort.
        presorted: the rows are already sorted by (series, ts_ms, value) (checked, not trusted).
        versions: versions to stamp on the output (others get 0), e.g. from
            :func:`edge_agent.reduce.late.classify_late`.

    Raises:
        ReductionError: a window length is not positive, a percentile is outside [0, 100], or
            ``presorted`` is claimed for unsorted rows.
    """
    levels = np.asarray([float(p) for p in percentiles], dtype=np.float64)
    if levels.size and not ((levels >= 0) & (levels <= 100)).all():
        raise ReductionError(f"percentiles: levels must be within [0, 100], got {list(percentiles)}")
    rows, _ = ordered(cols, presorted)
    start = window_starts(rows.series, rows.ts_ms, window_ms, offset_ms)
    seg = segment_starts(rows.series, start)
    n = len(rows)
    counts = np.diff(np.append(seg, n)).astype(np.int64)
    values = rows.value
    if n == 0:
        empty_f = np.empty(0, np.float64)
        empty_i = np.empty(0, np.int64)
        return WindowAggregates(
            series=np.empty(0, np.uint32), window_start=empty_i, window_ms=empty_i, version=empty_i,
            count=empty_i, sum=empty_f, mean=empty_f, min=empty_f, max=empty_f, first=empty_f,
            last=empty_f, first_ts_ms=empty_i, last_ts_ms=empty_i, std=empty_f,
            percentiles=np.empty((0, len(levels)), np.float64),
            percentile_levels=tuple(levels.tolist()),
        )
    sums = np.add.reduceat(values, seg)
    mean = sums / counts
    dev = values - np.repeat(mean, counts)
    std = np.sqrt(np.add.reduceat(dev * dev, seg) / counts)
    end = seg + counts - 1
    pct = (
        _percentiles(values, seg, counts, levels)
        if levels.size
        else np.empty((len(seg), 0), np.float64)
    )
    out_series = rows.series[seg]
    out_start = start[seg]
    version = np.zeros(len(seg), np.int64)
    if versions is not None and len(versions):
        idx = pair_lookup(out_series, out_start, versions.series, versions.window_start)
        version = np.where(idx >= 0, versions.version[np.maximum(idx, 0)], 0)
    return WindowAggregates(
        series=out_series,
        window_start=out_start,
        window_ms=np.array(per_series(window_ms, out_series, "window_ms", np.int64)),
        version=version,
        count=counts,
        sum=sums,
        mean=mean,
        min=np.minimum.reduceat(values, seg),
        max=np.maximum.reduceat(values, seg),
        first=values[seg],
        last=values[end],
        first_ts_ms=rows.ts_ms[seg],
        last_ts_ms=rows.ts_ms[end],
        std=std,
        percentiles=pct,
        percentile_levels=tuple(levels.tolist()),
    )

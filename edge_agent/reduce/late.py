"""Late data for tumbling windows: which emitted windows to re-emit, which rows are too late.

The watermark of a series is the largest timestamp seen so far minus the allowed lateness:
``watermark = max_ts_seen - allowed_lateness_ms``. It is either tracked per series (an array
indexed by series id, :data:`NO_TS` for a series not seen yet) or as one value for the whole
gateway (a scalar). A batch of new rows is judged against the watermark *before* the batch, so
rows of one batch never make each other late and their order does not matter.

For a row whose window is ``[start, end)``:

- ``end <= watermark``: **too late**. The window is final; the row is flagged
  :attr:`~edge_agent.model.Quality.LATE`, must not change any window, and is counted per series.
- otherwise, if the window was already emitted (at version ``v``): **late but accepted**. The row
  is flagged ``LATE`` and the window must be recomputed from the buffer and re-emitted as version
  ``v + 1`` (one re-emission per window per batch, however many late rows it got).
- otherwise: an ordinary row for a window not emitted yet (quality unchanged).

The caller keeps the emitted-window table; entries whose end is at or before the watermark can
be pruned, since no row can reopen them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from edge_agent.model import Quality
from edge_agent.reduce.columns import (
    BoolArray,
    Columns,
    IntArray,
    ReductionError,
    SeriesArray,
    grown,
    pair_lookup,
    per_series,
    segment_starts,
)
from edge_agent.reduce.windows import WindowVersions, window_starts

NO_TS = np.iinfo(np.int64).min  # "no timestamp seen yet" in per-series max-ts state


@dataclass(slots=True, frozen=True, eq=False)
class SeriesCounts:
    """A count per series id (only series with a non-zero count), sorted by series."""

    series: SeriesArray
    count: IntArray

    def __len__(self) -> int:
        return len(self.series)

    def total(self) -> int:
        """Sum over all series."""
        return int(self.count.sum())


@dataclass(slots=True, frozen=True, eq=False)
class LateReport:
    """What a batch of rows means for already emitted windows.

    ``quality`` and ``too_late`` are aligned with the input rows (input order).
    ``max_ts_seen_ms`` is the state to pass to the next call: an array indexed by series id when
    an array was given, else a 0-d array holding the global maximum.
    """

    quality: IntArray
    too_late: BoolArray
    reemit: WindowVersions
    too_late_per_series: SeriesCounts
    max_ts_seen_ms: IntArray


def _latest_versions(emitted: WindowVersions) -> WindowVersions:
    """One entry per (series, window_start): the one with the highest version."""
    if len(emitted) == 0:
        return emitted
    order = np.lexsort((emitted.version, emitted.window_start, emitted.series))
    s, w, v = emitted.series[order], emitted.window_start[order], emitted.version[order]
    starts = segment_starts(s, w)
    last = np.append(starts[1:], len(s)) - 1
    return WindowVersions(s[last], w[last], v[last])


def classify_late(
    emitted: WindowVersions,
    rows: Columns,
    max_ts_seen_ms: ArrayLike,
    *,
    window_ms: ArrayLike,
    allowed_lateness_ms: ArrayLike,
    offset_ms: ArrayLike = 0,
) -> LateReport:
    """Classify new rows against emitted windows and the watermark (see the module docstring).

    Args:
        emitted: windows emitted so far with their latest (or all) versions.
        rows: the new rows, any order.
        max_ts_seen_ms: largest timestamp seen before ``rows``: a scalar (one watermark for all
            series) or an array indexed by series id with :data:`NO_TS` for unseen series.
        window_ms, offset_ms: as for :func:`edge_agent.reduce.windows.aggregate_windows`.
        allowed_lateness_ms: how far behind the largest timestamp seen a window may still be
            updated; scalar or per series id; must not be negative.

    Raises:
        ReductionError: a negative lateness or a per-series array too short for the ids in rows.
    """
    series, ts = rows.series, rows.ts_ms
    lateness = per_series(allowed_lateness_ms, series, "allowed_lateness_ms", np.int64)
    if len(lateness) and lateness.min() < 0:
        raise ReductionError("allowed_lateness_ms: must not be negative")
    lateness = np.minimum(lateness, 2**62)  # timestamps are within ±2**61: no overflow below
    state = np.asarray(max_ts_seen_ms, dtype=np.int64)
    per_series_state = state.ndim == 1
    if state.ndim > 1:
        raise ReductionError("max_ts_seen_ms: must be a scalar or a 1-D array indexed by series id")
    size = int(series.max()) + 1 if len(series) else 0
    if per_series_state:
        state = grown(state, size, NO_TS)
        seen = state[series]
    else:
        seen = np.full(len(series), state, np.int64)
    known = seen != NO_TS
    watermark = np.where(known, seen - np.where(known, lateness, 0), NO_TS)

    start = window_starts(series, ts, window_ms, offset_ms)
    end = start + per_series(window_ms, series, "window_ms", np.int64)
    too_late = known & (end <= watermark)

    latest = _latest_versions(emitted)
    hit = pair_lookup(series, start, latest.series, latest.window_start)
    late_ok = (hit >= 0) & ~too_late
    quality = np.where(too_late | late_ok, int(Quality.LATE), int(Quality.OK)).astype(np.int64)

    if late_ok.any():
        rs, rw = series[late_ok], start[late_ok]
        rv = latest.version[hit[late_ok]] + 1
        order = np.lexsort((rw, rs))
        rs, rw, rv = rs[order], rw[order], rv[order]
        keep = segment_starts(rs, rw)
        reemit = WindowVersions(rs[keep], rw[keep], rv[keep])
    else:
        reemit = WindowVersions.empty()

    ids, counts = np.unique(series[too_late], return_counts=True)
    too_late_counts = SeriesCounts(ids.astype(np.uint32), counts.astype(np.int64))

    if per_series_state:
        new_state = state
        if len(series):
            np.maximum.at(new_state, series, ts)
    else:
        top = int(state) if not len(ts) else max(int(state), int(ts.max()))
        new_state = np.array(top, np.int64)
    return LateReport(quality, too_late, reemit, too_late_counts, new_state)

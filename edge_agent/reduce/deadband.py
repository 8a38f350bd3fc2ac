"""Deadband (report-by-exception) for many series at once, exact and streaming.

Rule, per series, over its samples in canonical order (ts_ms, then value) — the same as
:func:`deadband_reference`:

- the first sample a series ever has is kept;
- a later sample ``(ts, v)`` is kept when, against the last *kept* sample ``(ts0, v0)``,
  ``abs(v - v0) > abs_band`` or ``abs(v - v0) > rel_band * abs(v0)`` or ``ts - ts0 >= max_silence_ms``;
  a band or silence that is ``None`` (or ``inf`` / :data:`NEVER` in a per-series array) is off.

The last kept sample of each series is carried in :class:`DeadbandState`, so feeding a stream in
chunks (in time order) keeps exactly the samples one call over all of it would keep.

How it is vectorised: the rule is sequential per series (each decision depends on the last kept
sample), so instead of a loop over samples, for *every* sample ``i`` we compute ``next(i)``, the
sample that would be kept next if ``i`` were kept: the first later sample of the same series that
leaves ``i``'s band or its silence. That is a first-exceedance search, done for all samples at once
by galloping and binary lifting over a sparse table of range minima and maxima (about
2*log2(longest gap) numpy passes). The kept samples are then the orbit of each series' first
sample under ``next``, marked for all series at once by pointer doubling (again log2 passes).
For many short series a simpler lock-step pass per sample position is faster; ``method="auto"``
picks one. Range extremes give the exact answer
because rounding is monotone: ``fl(abs(x - c))`` over a range is largest at the range's min or max,
so the float comparison matches the per-sample comparison bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from edge_agent.reduce.columns import (
    BoolArray,
    Columns,
    FloatArray,
    IntArray,
    ReductionError,
    grown,
    ordered,
    per_series,
    segment_starts,
)

NEVER = np.iinfo(np.int64).max  # max_silence_ms that never fires, for per-series arrays
# Rows per vectorised pass. The sparse table holds 2 * log2(longest run) float arrays of this size:
# bigger chunks mean fewer passes but more memory (65536 rows: at most ~17 MB of tables).
CHUNK_ROWS = 1 << 16
# Fixed cost of one lock-step pass in row-equivalents of vectorised work (numpy call overhead):
# "auto" picks lock-step when longest * this + rows is below rows * log2(longest).
LOCKSTEP_PASS_COST = 1500


@dataclass(slots=True, frozen=True, eq=False)
class DeadbandState:
    """Last kept sample per series id (``known[s]`` is False for a series never seen)."""

    last_value: FloatArray
    last_ts_ms: IntArray
    known: BoolArray

    @classmethod
    def empty(cls) -> DeadbandState:
        """State before any sample."""
        return cls(np.empty(0, np.float64), np.empty(0, np.int64), np.empty(0, bool))

    def grown(self, size: int) -> DeadbandState:
        """A copy with room for series ids below ``size``."""
        return DeadbandState(
            grown(self.last_value, size, 0.0), grown(self.last_ts_ms, size, 0), grown(self.known, size, False)
        )


@dataclass(slots=True, frozen=True, eq=False)
class DeadbandResult:
    """Kept rows (canonical order), their positions in the input, and the state for the next call."""

    kept: Columns
    index: IntArray
    state: DeadbandState


def _bands(
    series: ArrayLike,
    abs_band: ArrayLike | None,
    rel_band: ArrayLike | None,
    max_silence_ms: ArrayLike | None,
) -> tuple[FloatArray, FloatArray, IntArray]:
    s = np.asarray(series).astype(np.uint32, copy=False)
    ab = per_series(np.inf if abs_band is None else abs_band, s, "abs_band", np.float64)
    rb = per_series(np.inf if rel_band is None else rel_band, s, "rel_band", np.float64)
    sil = per_series(NEVER if max_silence_ms is None else max_silence_ms, s, "max_silence_ms", np.int64)
    for name, arr in (("abs_band", ab), ("rel_band", rb)):
        if len(arr) and not (arr >= 0).all():
            raise ReductionError(f"{name}: must be >= 0 (inf or None: off)")
    return ab, rb, sil


def _thresholds(x: FloatArray, ab: FloatArray, rb: FloatArray) -> FloatArray:
    """min(abs_band, rel_band*|x|): ``d > min(a, r)`` is exactly ``d > a or d > r`` for the same d."""
    rel_off = np.isinf(rb)
    rel = np.where(rel_off, np.inf, np.where(rel_off, 0.0, rb) * np.abs(x))
    return np.minimum(ab, rel)


def _next_kept(x: FloatArray, t: IntArray, thr: FloatArray, sil: IntArray, last: IntArray) -> IntArray:
    """For every node i: the first j > i (j <= last[i]) that leaves i's band or silence, else len(x).

    Galloping then binary lifting over a sparse table of range minima/maxima (built lazily, only
    as many levels as the longest gap needs): O(n log gap) work in O(log gap) numpy passes.
    """
    m = len(x)
    lo, hi = [x], [x]  # lo[k][s], hi[k][s] = min, max of x[s : s + 2**k]

    def build(k: int) -> None:
        while len(lo) <= k:
            h = 1 << (len(lo) - 1)
            lo.append(np.minimum(lo[-1][:-h], lo[-1][h:]))
            hi.append(np.maximum(hi[-1][:-h], hi[-1][h:]))

    def leaves(i: IntArray, mn: FloatArray, mx: FloatArray, end: IntArray) -> BoolArray:
        xi, ti = x[i], thr[i]
        out: BoolArray = (np.abs(mx - xi) > ti) | (np.abs(mn - xi) > ti) | (t[end] - t[i] >= sil[i])
        return out

    nxt = np.full(m, m, dtype=np.int64)
    active = np.flatnonzero(np.arange(m) < last)
    hit_i, hit_k = [], []
    k = 0
    # Galloping: the smallest k such that something in (i, min(i + 2**k, last)] leaves. The first
    # half of that range was clean at step k - 1, so one level k-1 range ending at its end suffices.
    seg_last = last[active]
    while active.size:
        h = 1 << max(k - 1, 0)
        build(max(k - 1, 0))
        end = np.minimum(active + (1 << k), seg_last)
        b = end - h + 1
        leave = leaves(active, lo[max(k - 1, 0)][b], hi[max(k - 1, 0)][b], end)
        hit_i.append(active[leave])
        hit_k.append(np.full(int(leave.sum()), k, np.int64))
        more = ~leave & (end < seg_last)  # reached the segment's end clean: nothing follows (m)
        active, seg_last = active[more], seg_last[more]
        k += 1
    i_all, k_all = (np.concatenate(hit_i), np.concatenate(hit_k)) if hit_i else (nxt[:0], nxt[:0])
    if not i_all.size:
        return nxt
    order = np.argsort((63 - k_all).astype(np.uint8), kind="stable")  # largest k first (radix sort)
    i_all, k_all = i_all[order], k_all[order]
    # Nothing leaves in (i, i + 2**(k-1)]; something does in (i, min(i + 2**k, last)].
    pos = i_all + np.where(k_all > 0, np.left_shift(1, np.maximum(k_all - 1, 0)), 0)
    seg_last = last[i_all]
    for j in range(int(k_all[0]) - 2, -1, -1):
        n = int(np.searchsorted(-k_all, -(j + 2), side="right"))  # rows with k >= j + 2
        p, cand = pos[:n], pos[:n] + (1 << j)
        valid = cand <= seg_last[:n]
        a = np.where(valid, p + 1, 0)
        ok = valid & ~leaves(i_all[:n], lo[j][a], hi[j][a], np.where(valid, cand, 0))
        pos[:n] = np.where(ok, cand, p)
    nxt[i_all] = pos + 1
    return nxt


def _chunk(
    rows: Columns, state: DeadbandState, ab: FloatArray, rb: FloatArray, sil: IntArray
) -> tuple[BoolArray, DeadbandState]:
    """Kept mask for canonical-ordered ``rows`` (one pass) and the updated state."""
    n = len(rows)
    seg = segment_starts(rows.series)
    seg_len = np.diff(np.append(seg, n))
    seg_series = rows.series[seg]
    virt = state.known[seg_series]  # prepend the last kept sample as a virtual node
    vcum = np.cumsum(virt)
    row_seg = np.repeat(np.arange(len(seg)), seg_len)
    row_pos = np.arange(n) + vcum[row_seg]
    m = n + int(vcum[-1])
    head = seg + vcum - virt  # first node of each segment (virtual if any)
    last_node = seg + seg_len - 1 + vcum

    x = np.empty(m, np.float64)
    t = np.empty(m, np.int64)
    x[row_pos], t[row_pos] = rows.value, rows.ts_ms
    vpos = head[virt]
    x[vpos] = state.last_value[seg_series[virt]]
    t[vpos] = state.last_ts_ms[seg_series[virt]]
    node_seg = np.repeat(np.arange(len(seg)), seg_len + virt)
    node_last = last_node[node_seg]
    seg_ab, seg_rb, seg_sil = ab[seg], rb[seg], sil[seg]  # bands are per series: same along a segment
    thr = _thresholds(x, seg_ab[node_seg], seg_rb[node_seg])
    nsil = seg_sil[node_seg]

    nxt = _next_kept(x, t, thr, nsil, node_last)

    # Pointer doubling from each segment head marks its orbit under nxt.
    jump = np.append(nxt, m)
    reach = np.zeros(m + 1, dtype=bool)
    reach[head] = True
    while True:
        reach[jump[np.flatnonzero(reach[:m])]] = True
        if (jump[head] == m).all():
            break
        jump = jump[jump]
    kept = reach[row_pos]

    # New state: the last reached node of each segment (virtual if nothing new was kept).
    marked = np.where(reach[:m], np.arange(m), -1)
    last_kept = np.maximum.reduceat(marked, head)
    new = state.grown(int(seg_series.max()) + 1)
    new.last_value[seg_series] = x[last_kept]
    new.last_ts_ms[seg_series] = t[last_kept]
    new.known[seg_series] = True
    return kept, new


def _lockstep(
    rows: Columns, state: DeadbandState, ab: FloatArray, rb: FloatArray, sil: IntArray
) -> tuple[BoolArray, DeadbandState]:
    """Kept mask for canonical-ordered ``rows``: all series step through their k-th samples together.

    One numpy pass per sample *position*, so best for many short series. Series are ordered by
    length (longest first) so the series still active at step k are a prefix of that order.
    """
    n = len(rows)
    seg = segment_starts(rows.series)
    seg_len = np.diff(np.append(seg, n))
    by_len = np.argsort(-seg_len, kind="stable")
    first, lengths = seg[by_len], seg_len[by_len]
    ids = rows.series[first]
    known = state.known[ids]
    last_v = state.last_value[ids]
    last_t = state.last_ts_ms[ids]
    s_ab, s_rb, s_sil = ab[first], rb[first], sil[first]
    active_at = np.searchsorted(-lengths, -np.arange(int(lengths[0])), side="left")  # len > k
    kept = np.empty(n, dtype=bool)
    for k, a in enumerate(active_at.tolist()):
        idx = first[:a] + k
        v, t = rows.value[idx], rows.ts_ms[idx]
        lv = last_v[:a]
        d = np.abs(v - lv)
        keep = (d > _thresholds(lv, s_ab[:a], s_rb[:a])) | (t - last_t[:a] >= s_sil[:a]) | ~known[:a]
        kept[idx] = keep
        last_v[:a] = np.where(keep, v, lv)
        last_t[:a] = np.where(keep, t, last_t[:a])
        known[:a] = True
    new = state.grown(int(ids.max()) + 1)
    new.last_value[ids], new.last_ts_ms[ids], new.known[ids] = last_v, last_t, known
    return kept, new


def apply_deadband(
    cols: Columns,
    state: DeadbandState | None = None,
    *,
    abs_band: ArrayLike | None = None,
    rel_band: ArrayLike | None = None,
    max_silence_ms: ArrayLike | None = None,
    presorted: bool = False,
    method: str = "auto",
) -> DeadbandResult:
    """Keep only the samples that pass the deadband rule (see the module docstring).

    Args:
        cols: rows of many series, any order (canonical order with ``presorted=True``).
        state: what previous calls kept last per series; ``None`` for a fresh start.
        abs_band: absolute band in the value's unit; scalar or per series id (``inf``: off).
        rel_band: relative band as a fraction of ``abs(last kept)``; scalar or per series id.
        max_silence_ms: keep a sample at least this long after the last kept one; scalar or per
            series id (:data:`NEVER`: off).
        presorted: rows are already in (series, ts_ms, value) order (checked).
        method: ``"jump"`` (next-kept search, log2(longest series) passes), ``"lockstep"`` (one
            pass per sample position: fastest for many short series) or ``"auto"`` (estimates
            both costs). All give identical results.

    Raises:
        ReductionError: a negative band, an unknown method, or a per-series array too short for
            the ids present.
    """
    state = DeadbandState.empty() if state is None else state
    rows, where = ordered(cols, presorted)
    n = len(rows)
    if n == 0:
        return DeadbandResult(rows, where, state)
    if method not in ("auto", "jump", "lockstep"):
        raise ReductionError(f"method: {method!r} is not one of 'auto', 'jump', 'lockstep'")
    ab, rb, sil = _bands(rows.series, abs_band, rel_band, max_silence_ms)
    state = state.grown(int(rows.series.max()) + 1)
    if method == "auto":
        longest = int(np.diff(np.append(segment_starts(rows.series), n)).max())
        lockstep_cost = n + longest * LOCKSTEP_PASS_COST
        method = "lockstep" if lockstep_cost <= n * longest.bit_length() else "jump"
    if method == "lockstep":
        kept, state = _lockstep(rows, state, ab, rb, sil)
        return DeadbandResult(rows.take(kept), where[kept], state)
    kept = np.empty(n, dtype=bool)
    for lo in range(0, n, CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS, n)
        part = rows.take(slice(lo, hi))
        kept[lo:hi], state = _chunk(part, state, ab[lo:hi], rb[lo:hi], sil[lo:hi])
    return DeadbandResult(rows.take(kept), where[kept], state)


def deadband_reference(
    rows: list[tuple[int, int, float]],
    last: dict[int, tuple[int, float]],
    abs_band: float | None,
    rel_band: float | None,
    max_silence_ms: int | None,
) -> list[tuple[int, int, float]]:
    """Plain-Python deadband over (series, ts_ms, value) rows, for benchmarks; updates ``last``."""
    out = []
    for s, ts, v in sorted(rows):
        prev = last.get(s)
        if prev is not None:
            ts0, v0 = prev
            d = abs(v - v0)
            if not (
                (abs_band is not None and d > abs_band)
                or (rel_band is not None and d > rel_band * abs(v0))
                or (max_silence_ms is not None and ts - ts0 >= max_silence_ms)
            ):
                continue
        last[s] = (ts, v)
        out.append((s, ts, v))
    return out

"""The columnar input of every reducer, and the small vectorised helpers the reducers share.

Rows are three parallel 1-D arrays: ``series`` (uint32 series id), ``ts_ms`` (int64 epoch
milliseconds, UTC) and ``value`` (float64, canonical unit, finite). Rows may come in any order;
reducers put them in the *canonical order* (series, ts_ms, value) with :func:`canonical_order`, so
that the same rows in any order give bit-identical results.

Series ids are the dense indexes the buffer's series table assigns (0, 1, 2, …). Per-series
parameters (window length, deadband, counter maximum) are therefore either one scalar for every
series or an array indexed by series id, and carried state is kept in arrays indexed by series id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edge_agent.errors import EdgeAgentError

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
SeriesArray = NDArray[np.uint32]
BoolArray = NDArray[np.bool_]

MAX_SERIES_ID = 2**31 - 1  # ids index dense per-series arrays: a huge id would allocate a huge array
# Timestamps are bounded so that differences and window arithmetic cannot overflow int64.
MAX_ABS_TS_MS = 2**61


class ReductionError(EdgeAgentError, ValueError):
    """Input to a reducer is malformed; the message names the parameter and the problem."""


@dataclass(slots=True, frozen=True, eq=False)
class Columns:
    """Rows of many series as parallel arrays (any order unless a function says otherwise).

    Arrays are coerced to ``uint32`` / ``int64`` / ``float64``; values must be finite (-0.0 is
    stored as 0.0) and timestamps within ±2**61 ms. Reducers never modify the arrays they are given.

    Raises:
        ReductionError: lengths differ, an array is not 1-D, an id is negative or too large, a
            value is not finite.
    """

    series: SeriesArray
    ts_ms: IntArray
    value: FloatArray

    def __post_init__(self) -> None:
        series = np.asarray(self.series)
        if series.size and series.dtype.kind not in "iu":
            raise ReductionError(f"series: ids must be integers, got dtype {series.dtype}")
        if series.size and (series.min() < 0 or series.max() > MAX_SERIES_ID):
            raise ReductionError(f"series: ids must be in 0..{MAX_SERIES_ID}")
        ts = np.asarray(self.ts_ms)
        if ts.size and ts.dtype.kind not in "iu":
            raise ReductionError(f"ts_ms: timestamps must be integer milliseconds, got dtype {ts.dtype}")
        value = np.asarray(self.value, dtype=np.float64)
        arrays: dict[str, NDArray[Any]] = {"series": series, "ts_ms": ts, "value": value}
        for name, arr in arrays.items():
            if arr.ndim != 1:
                raise ReductionError(f"{name}: must be 1-D, got shape {arr.shape}")
        if not len(series) == len(ts) == len(value):
            raise ReductionError(
                f"columns differ in length: series {len(series)}, ts_ms {len(ts)}, value {len(value)}"
            )
        ts = ts.astype(np.int64, copy=False)
        if ts.size and (ts.min() < -MAX_ABS_TS_MS or ts.max() > MAX_ABS_TS_MS):
            raise ReductionError("ts_ms: timestamps must be within ±2**61 ms")
        if not np.isfinite(value).all():
            bad = int(np.flatnonzero(~np.isfinite(value))[0])
            raise ReductionError(f"value: row {bad} is {value[bad]!r}; values must be finite")
        object.__setattr__(self, "series", series.astype(np.uint32, copy=False))
        object.__setattr__(self, "ts_ms", ts)
        # Adding +0.0 turns -0.0 into 0.0: the two compare equal, so keeping both would make the
        # result depend on input order (min, max, first of equal values) and break determinism.
        object.__setattr__(self, "value", value + 0.0)

    def __len__(self) -> int:
        return len(self.ts_ms)

    @classmethod
    def empty(cls) -> Columns:
        """No rows."""
        return cls(np.empty(0, np.uint32), np.empty(0, np.int64), np.empty(0, np.float64))

    def take(self, index: NDArray[np.bool_] | NDArray[np.integer[Any]] | slice) -> Columns:
        """The rows at ``index`` (integer positions, a boolean mask or a slice), in that order."""
        return Columns._trusted(self.series[index], self.ts_ms[index], self.value[index])

    @classmethod
    def _trusted(cls, series: SeriesArray, ts_ms: IntArray, value: FloatArray) -> Columns:
        """Build from arrays taken from a validated instance, skipping validation (hot path)."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "series", series)
        object.__setattr__(obj, "ts_ms", ts_ms)
        object.__setattr__(obj, "value", value)
        return obj


def canonical_order(cols: Columns) -> IntArray:
    """Permutation that sorts rows by (series, ts_ms, value): the order every reducer works in.

    Fast path: one stable sort on a packed int64 (series, ts) key when it fits; the value sort is
    only added when two rows share (series, ts_ms). Falls back to :func:`numpy.lexsort`.
    """
    n = len(cols)
    if n == 0:
        return np.empty(0, np.int64)
    ts, series = cols.ts_ms, cols.series
    ts_min = int(ts.min())
    span = int(ts.max()) - ts_min + 1
    if (int(series.max()) + 1) * span < 2**62:
        key = series.astype(np.int64) * span + (ts - ts_min)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        if not (sorted_key[1:] == sorted_key[:-1]).any():
            return order.astype(np.int64, copy=False)
        by_value = np.argsort(cols.value, kind="stable")
        return by_value[np.argsort(key[by_value], kind="stable")].astype(np.int64, copy=False)
    return np.lexsort((cols.value, ts, series)).astype(np.int64, copy=False)


def is_canonical(cols: Columns) -> bool:
    """True when the rows are already in (series, ts_ms, value) order (O(n), no sort)."""
    if len(cols) < 2:
        return True
    s = cols.series.astype(np.int64)
    ds = np.diff(s)
    dt = np.diff(cols.ts_ms)
    dv = np.diff(cols.value)
    ok = (ds > 0) | ((ds == 0) & ((dt > 0) | ((dt == 0) & (dv >= 0))))
    return bool(ok.all())


def ordered(cols: Columns, presorted: bool) -> tuple[Columns, IntArray]:
    """Rows in canonical order plus, for each of them, its position in ``cols``.

    With ``presorted=True`` the order is checked (O(n)) instead of sorted.

    Raises:
        ReductionError: ``presorted`` is claimed but the rows are not in canonical order.
    """
    if presorted:
        if not is_canonical(cols):
            raise ReductionError("presorted=True but rows are not sorted by (series, ts_ms, value)")
        return cols, np.arange(len(cols), dtype=np.int64)
    order = canonical_order(cols)
    return cols.take(order), order


def segment_starts(*keys: NDArray[Any]) -> IntArray:
    """Start positions of runs of equal key tuples in sorted arrays (always includes 0 if non-empty)."""
    n = len(keys[0])
    if n == 0:
        return np.empty(0, np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change).astype(np.int64)


def per_series(param: ArrayLike, series: SeriesArray, name: str, dtype: Any) -> NDArray[Any]:
    """Look up a per-series parameter for each row: a scalar for all, or an array indexed by id.

    The result may be a read-only broadcast view: do not write to it.

    Raises:
        ReductionError: the array is not 1-D or is shorter than the largest series id + 1.
    """
    arr = np.asarray(param, dtype=dtype)
    if arr.ndim == 0:
        return np.broadcast_to(arr, (len(series),))  # read-only view: no n-sized copy
    if arr.ndim != 1:
        raise ReductionError(f"{name}: must be a scalar or a 1-D array indexed by series id")
    if len(series) and int(series.max()) >= len(arr):
        raise ReductionError(
            f"{name}: has {len(arr)} entries but series id {int(series.max())} occurs"
        )
    return arr[series]


def grown(arr: NDArray[Any], size: int, fill: Any) -> NDArray[Any]:
    """A copy of per-series state ``arr`` with at least ``size`` entries, new ones set to ``fill``."""
    if len(arr) >= size:
        return arr.copy()
    out = np.full(size, fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def pair_lookup(
    a_series: NDArray[Any], a_key: IntArray, b_series: NDArray[Any], b_key: IntArray
) -> IntArray:
    """For each pair (a_series[i], a_key[i]), the index of an equal pair in the b columns, or -1.

    When b holds a pair more than once, the first occurrence is returned. O((a+b) log(a+b)).
    """
    na, nb = len(a_series), len(b_series)
    if na == 0:
        return np.empty(0, np.int64)
    if nb == 0:
        return np.full(na, -1, np.int64)
    s = np.concatenate([b_series.astype(np.int64), a_series.astype(np.int64)])
    k = np.concatenate([b_key.astype(np.int64), a_key.astype(np.int64)])
    tag = np.concatenate([np.zeros(nb, np.int8), np.ones(na, np.int8)])
    order = np.lexsort((tag, k, s))  # within an equal pair, b rows come first (tag 0)
    ss, kk, tg = s[order], k[order], tag[order]
    change = np.ones(len(order), dtype=bool)
    change[1:] = (ss[1:] != ss[:-1]) | (kk[1:] != kk[:-1])
    head = np.flatnonzero(change)[np.cumsum(change) - 1]
    found = np.where(tg[head] == 0, order[head], -1)
    out = np.empty(na, np.int64)
    is_a = tg == 1
    out[order[is_a] - nb] = found[is_a]
    return out

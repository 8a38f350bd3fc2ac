"""Tumbling windows against a plain-Python reference, and their determinism."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.reduce import Columns, ReductionError, WindowVersions, aggregate_windows, window_starts
from edge_agent.reduce import windows as windows_module

SETTINGS = settings(max_examples=150, deadline=None)
LEVELS = (0.0, 10.0, 25.0, 50.0, 90.0, 95.0, 99.0, 100.0)
FIELDS = ("series", "window_start", "window_ms", "version", "count", "sum", "mean", "min", "max",
          "first", "last", "first_ts_ms", "last_ts_ms", "std", "percentiles")

# Few distinct values and timestamps so that ties (same ts, same value) are common.
values = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 1e6, -3.25]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
row = st.tuples(st.integers(0, 4), st.integers(-5_000, 20_000), values)
rows_st = st.lists(row, min_size=0, max_size=120)


def to_columns(rows: list[tuple[int, int, float]]) -> Columns:
    return Columns(
        np.array([r[0] for r in rows], dtype=np.uint32),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
    )


def reference(rows, window_of, offset_of, levels):
    """Plain Python: group by (series, window start), then aggregate each group from its list."""
    groups = defaultdict(list)
    for s, t, v in rows:
        w = window_of(s)
        off = offset_of(s) % w
        start = t - (t - off) % w  # Python's % is a floor modulo, like the documented rule
        groups[(s, start)].append((t, v + 0.0))
    out = []
    for (s, start), items in sorted(groups.items()):
        items.sort()  # by timestamp, ties by value
        vals = [v for _, v in items]
        n = len(vals)
        mean = math.fsum(vals) / n
        out.append({
            "series": s, "window_start": start, "window_ms": window_of(s), "count": n,
            "sum": math.fsum(vals), "mean": mean, "min": min(vals), "max": max(vals),
            "first": items[0][1], "last": items[-1][1], "first_ts_ms": items[0][0],
            "last_ts_ms": items[-1][0],
            "std": math.sqrt(math.fsum((x - mean) ** 2 for x in vals) / n),
            "pct_linear": [linear_percentile(sorted(vals), q) for q in levels],
            "pct_numpy": np.percentile(np.array(vals), levels),
        })
    return out


def linear_percentile(sorted_vals: list[float], q: float) -> float:
    """Hyndman & Fan type 7 (numpy's 'linear'), written out by hand."""
    h = (len(sorted_vals) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (h - lo) * (sorted_vals[hi] - sorted_vals[lo])


def check_against_reference(agg, ref) -> None:
    assert len(agg) == len(ref)
    for i, r in enumerate(ref):
        for name in ("series", "window_start", "window_ms", "count", "min", "max", "first", "last",
                     "first_ts_ms", "last_ts_ms"):
            assert getattr(agg, name)[i] == r[name], name
        scale = max(1.0, max(abs(r["min"]), abs(r["max"])))
        assert agg.sum[i] == pytest.approx(r["sum"], rel=1e-12, abs=1e-9 * scale * r["count"])
        assert agg.mean[i] == pytest.approx(r["mean"], rel=1e-12, abs=1e-9 * scale)
        assert agg.std[i] == pytest.approx(r["std"], rel=1e-7, abs=1e-6 * scale)
        # Bit-identical to numpy.percentile, and equal (to rounding) to the hand-written formula.
        np.testing.assert_array_equal(agg.percentiles[i], r["pct_numpy"])
        np.testing.assert_allclose(agg.percentiles[i], r["pct_linear"], rtol=1e-12, atol=1e-9 * scale)
    assert (agg.version == 0).all()


def bits(agg) -> dict[str, bytes]:
    return {name: np.ascontiguousarray(getattr(agg, name)).tobytes() for name in FIELDS}


@SETTINGS
@given(rows=rows_st, window=st.sampled_from([1, 7, 1000, 3600]), offset=st.integers(-50, 5000))
def test_matches_reference(rows, window, offset) -> None:
    agg = aggregate_windows(to_columns(rows), window, offset_ms=offset, percentiles=LEVELS)
    check_against_reference(agg, reference(rows, lambda s: window, lambda s: offset, LEVELS))


@SETTINGS
@given(rows=rows_st, window=st.sampled_from([7, 1000]), pad_limit=st.sampled_from([0, 1, 4]))
def test_both_percentile_sorts_agree_with_reference(rows, window, pad_limit) -> None:
    """PAD_LIMIT 0 forces the lexsort path, 4 the padded 2-D sort; both equal numpy.percentile."""
    with mock.patch.object(windows_module, "PAD_LIMIT", pad_limit):
        agg = aggregate_windows(to_columns(rows), window, percentiles=LEVELS)
    check_against_reference(agg, reference(rows, lambda s: window, lambda s: 0, LEVELS))


@SETTINGS
@given(rows=rows_st, windows=st.lists(st.integers(1, 5000), min_size=5, max_size=5),
       offsets=st.lists(st.integers(0, 999), min_size=5, max_size=5))
def test_per_series_window_and_offset(rows, windows, offsets) -> None:
    agg = aggregate_windows(to_columns(rows), np.array(windows), offset_ms=np.array(offsets),
                            percentiles=LEVELS)
    check_against_reference(agg, reference(rows, windows.__getitem__, offsets.__getitem__, LEVELS))


@SETTINGS
@given(rows=rows_st, seed=st.integers(0, 2**32 - 1), window=st.sampled_from([3, 1000]))
def test_any_order_gives_bit_identical_output(rows, seed, window) -> None:
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    a = aggregate_windows(to_columns(rows), window, percentiles=LEVELS)
    b = aggregate_windows(to_columns(shuffled), window, percentiles=LEVELS)
    assert bits(a) == bits(b)
    presorted = to_columns(sorted((s, t, v + 0.0) for s, t, v in rows))
    assert bits(aggregate_windows(presorted, window, percentiles=LEVELS, presorted=True)) == bits(a)


@SETTINGS
@given(rows=rows_st, keep=st.sets(st.integers(0, 40)), window=st.sampled_from([500, 1000]))
def test_recomputing_some_windows_gives_the_same_bits(rows, keep, window) -> None:
    """A window recomputed alone (e.g. from the buffer after a crash) equals its first computation."""
    cols = to_columns(rows)
    full = aggregate_windows(cols, window, percentiles=LEVELS)
    chosen = {(int(full.series[i]), int(full.window_start[i])) for i in keep if i < len(full)}
    starts = window_starts(cols.series, cols.ts_ms, window)
    mask = np.array([(int(s), int(w)) in chosen for s, w in zip(cols.series, starts, strict=True)], bool)
    part = aggregate_windows(cols.take(mask), window, percentiles=LEVELS)
    sel = np.array([(int(s), int(w)) in chosen for s, w in zip(full.series, full.window_start, strict=True)],
                   bool)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[sel])
        assert getattr(part, name).tobytes() == np.ascontiguousarray(getattr(full, name)[sel]).tobytes()


def test_windows_align_to_wall_clock() -> None:
    minute = 60_000
    t0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
    cols = Columns(np.zeros(4, np.uint32), np.array([t0, t0 + 39_999, t0 + 40_000, t0 + 99_999]),
                   np.array([1.0, 2.0, 3.0, 4.0]))
    agg = aggregate_windows(cols, minute, percentiles=[50])
    assert agg.window_start.tolist() == [t0 - 20_000, t0 + 40_000]
    assert (agg.window_start % minute == 0).all()
    assert agg.count.tolist() == [2, 2]
    assert agg.mean.tolist() == [1.5, 3.5]
    assert agg.percentile(50).tolist() == [1.5, 3.5]
    assert agg.window_end.tolist() == [t0 + 40_000, t0 + 100_000]
    with pytest.raises(KeyError):
        agg.percentile(90)
    # Local-midnight days in UTC+8: offset -8 h (equivalently 16 h).
    day = 86_400_000
    shifted = aggregate_windows(cols, day, offset_ms=-8 * 3_600_000, percentiles=())
    assert ((shifted.window_start + 8 * 3_600_000) % day == 0).all()


def test_std_is_population_std_and_single_reading_is_zero() -> None:
    cols = Columns(np.array([0, 0, 0, 0, 1]), np.array([0, 1, 2, 3, 0]), np.array([2.0, 4.0, 4.0, 6.0, 5.0]))
    agg = aggregate_windows(cols, 10, percentiles=())
    assert agg.std[0] == pytest.approx(np.std([2.0, 4.0, 4.0, 6.0]))  # ddof=0
    assert agg.std[1] == 0.0
    assert agg.percentiles.shape == (2, 0)


def test_versions_are_stamped() -> None:
    cols = Columns(np.array([0, 1, 1]), np.array([5, 5, 15]), np.array([1.0, 2.0, 3.0]))
    versions = WindowVersions(np.array([1, 7]), np.array([10, 0]), np.array([2, 9]))
    agg = aggregate_windows(cols, 10, versions=versions)
    assert agg.version.tolist() == [0, 0, 2]


def test_empty_input() -> None:
    agg = aggregate_windows(Columns.empty(), 1000)
    assert len(agg) == 0
    assert agg.percentiles.shape == (0, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_ms": 0}, "window_ms"),
        ({"window_ms": np.array([10])}, "window_ms: has 1 entries but series id 3"),
        ({"window_ms": 10, "percentiles": [101]}, "percentiles"),
    ],
)
def test_bad_parameters_are_named(kwargs, message) -> None:
    cols = Columns(np.array([3]), np.array([0]), np.array([1.0]))
    with pytest.raises(ReductionError, match=message):
        aggregate_windows(cols, **kwargs)


def test_presorted_is_checked() -> None:
    cols = Columns(np.array([1, 0]), np.array([0, 0]), np.array([1.0, 1.0]))
    with pytest.raises(ReductionError, match="presorted"):
        aggregate_windows(cols, 10, presorted=True)


@pytest.mark.parametrize(
    ("series", "ts", "value", "message"),
    [
        ([0], [0], [float("nan")], "value: row 0"),
        ([-1], [0], [1.0], "series"),
        ([0, 1], [0], [1.0, 2.0], "differ in length"),
        ([0], [0.5], [1.0], "ts_ms"),
    ],
)
def test_columns_validate(series, ts, value, message) -> None:
    with pytest.raises(ReductionError, match=message):
        Columns(np.array(series), np.array(ts), np.array(value))

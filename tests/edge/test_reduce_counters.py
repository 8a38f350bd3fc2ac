"""Counters: deltas and rates with resets and rollovers, against a plain-Python reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.model import Quality
from edge_agent.reduce import Columns, ReductionError, counter_deltas

SETTINGS = settings(max_examples=150, deadline=None)
EST = int(Quality.ESTIMATED)
RESET = int(Quality.ESTIMATED | Quality.COUNTER_RESET)

row = st.tuples(st.integers(0, 3), st.integers(0, 200),
                st.one_of(st.integers(0, 2**32 - 1).map(float), st.sampled_from([0.0, 5.0, 4294967290.0])))
rows_st = st.lists(row, max_size=100)


def to_columns(rows) -> Columns:
    return Columns(np.array([r[0] for r in rows], np.uint32), np.array([r[1] for r in rows], np.int64),
                   np.array([r[2] for r in rows], np.float64))


def reference(rows, last, top, res, frac):
    """last: series -> (ts, value) of the previous accepted reading; updated. Returns output tuples."""
    out = []
    for s, t, v in sorted(rows):
        if s in last and t <= last[s][0]:
            continue  # not newer: duplicate or stale
        prev = last.get(s)
        last[s] = (t, v)
        if prev is None:
            continue
        t0, v0 = prev
        if v >= v0:
            delta, q = v - v0, EST
        else:
            q = RESET
            delta = v
            if top is not None and (top - v0) + v + res <= frac * (top + res):
                delta = (top - v0) + v + res
        out.append((s, t, delta, delta / ((t - t0) / 1000), t - t0, q))
    return out


def as_tuples(d):
    return list(zip(d.series.tolist(), d.ts_ms.tolist(), d.delta.tolist(), d.rate.tolist(),
                    d.interval_ms.tolist(), d.quality.tolist(), strict=True))


@SETTINGS
@given(rows=rows_st, top=st.sampled_from([None, 2.0**32 - 1]), frac=st.sampled_from([0.5, 1.0]))
def test_matches_reference(rows, top, frac) -> None:
    cols = to_columns(rows)
    res = counter_deltas(cols, max_value=top, resolution=1.0, wrap_fraction=frac)
    assert as_tuples(res.deltas) == reference(rows, {}, top, 1.0, frac)
    # index points at the reading each delta belongs to
    assert cols.ts_ms[res.deltas.index].tolist() == res.deltas.ts_ms.tolist()
    assert res.skipped == len(rows) - len(res.deltas) - len({s for s, _, _ in rows})


@SETTINGS
@given(rows=rows_st, top=st.sampled_from([None, 2.0**32 - 1]), cuts=st.lists(st.integers(0, 100), max_size=4))
def test_chunked_stream_equals_one_call(rows, top, cuts) -> None:
    ordered = sorted(rows, key=lambda r: (r[1], r[2], r[0]))  # arrival order: time-major
    bounds = sorted({0, len(ordered), *[c for c in cuts if c <= len(ordered)]})
    state, got, skipped = None, [], 0
    for lo, hi in itertools.pairwise(bounds):
        res = counter_deltas(to_columns(ordered[lo:hi]), state, max_value=top)
        state, skipped = res.state, skipped + res.skipped
        got += as_tuples(res.deltas)
    once = counter_deltas(to_columns(rows), max_value=top)
    assert sorted(got) == as_tuples(once.deltas)
    assert skipped == once.skipped


def test_reset_and_rollover_of_a_32_bit_counter() -> None:
    top = 2**32 - 1
    cols = Columns(np.zeros(5, np.uint32), np.array([0, 10_000, 20_000, 30_000, 40_000]),
                   np.array([top - 100.0, top - 10.0, 20.0, 50.0, 7.0]))
    res = counter_deltas(cols, max_value=top)
    d = res.deltas
    assert d.delta.tolist() == [90.0, 31.0, 30.0, 7.0]  # wrap: 10 to top, 1 to 0, 20 after
    assert d.quality.tolist() == [EST, RESET, EST, RESET]  # 50 -> 7 would be a near-full wrap: a reset
    assert d.rate.tolist() == [9.0, 3.1, 3.0, 0.7]  # per second
    assert d.interval_ms.tolist() == [10_000] * 4


def test_rollover_of_a_five_digit_meter() -> None:
    cols = Columns(np.array([3, 3]), np.array([0, 3_600_000]), np.array([99_998.5, 1.2]))
    res = counter_deltas(cols, max_value=np.array([np.inf, np.inf, np.inf, 99_999.9]), resolution=0.1)
    assert res.deltas.delta[0] == pytest.approx(2.7)  # 99 998.5 -> 99 999.9 -> 0.0 -> 1.2
    assert res.deltas.quality.tolist() == [RESET]
    assert res.deltas.rate[0] == pytest.approx(2.7 / 3600)


def test_counter_without_maximum_treats_drop_as_reset() -> None:
    cols = Columns(np.zeros(3, np.uint32), np.array([0, 1_000, 2_000]), np.array([500.0, 600.0, 4.0]))
    d = counter_deltas(cols).deltas
    assert d.delta.tolist() == [100.0, 4.0]
    assert d.quality.tolist() == [EST, RESET]


def test_duplicates_and_stale_rows_are_skipped() -> None:
    first = counter_deltas(Columns(np.array([0, 0]), np.array([0, 1_000]), np.array([1.0, 2.0])))
    rows = Columns(np.array([0, 0, 0]), np.array([1_000, 500, 2_000]), np.array([2.0, 1.5, 4.0]))
    again = counter_deltas(rows, first.state)
    assert again.skipped == 2
    assert again.deltas.delta.tolist() == [2.0]
    assert again.deltas.index.tolist() == [2]


def test_bad_parameters() -> None:
    cols = Columns(np.array([0]), np.array([0]), np.array([1.0]))
    with pytest.raises(ReductionError, match="wrap_fraction"):
        counter_deltas(cols, wrap_fraction=0.0)
    with pytest.raises(ReductionError, match="resolution"):
        counter_deltas(cols, resolution=-1.0)
    assert len(counter_deltas(Columns.empty()).deltas) == 0

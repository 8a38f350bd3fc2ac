"""Deadband: exact equality with a plain-Python reference, and streaming in chunks == one call."""

from __future__ import annotations

import itertools
import random
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.reduce import NEVER, Columns, DeadbandState, ReductionError, apply_deadband
from edge_agent.reduce import deadband as deadband_module  # the module, not a function

SETTINGS = settings(max_examples=150, deadline=None)
METHODS = ("jump", "lockstep", "auto")

values = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 1.5, -1.0, 100.0]),
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False),
)
row = st.tuples(st.integers(0, 5), st.integers(0, 300), values)
rows_st = st.lists(row, max_size=150)
abs_st = st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 10.0]))
rel_st = st.one_of(st.none(), st.sampled_from([0.0, 0.01, 0.5]))
sil_st = st.one_of(st.none(), st.sampled_from([0, 1, 20, 100]))


def to_columns(rows) -> Columns:
    return Columns(np.array([r[0] for r in rows], np.uint32), np.array([r[1] for r in rows], np.int64),
                   np.array([r[2] for r in rows], np.float64))


def reference(rows, last, abs_band, rel_band, silence):
    """Sample by sample; ``last`` maps series -> (ts, value) of the last kept sample and is updated.

    abs_band/rel_band/silence are a value for every series, a dict per series, or None (off).
    """
    def param(p, s):
        return p.get(s) if isinstance(p, dict) else p

    kept = []
    for s, t, v in sorted((s, t, v + 0.0) for s, t, v in rows):
        if s in last:
            t0, v0 = last[s]
            d = abs(v - v0)
            a, r, m = param(abs_band, s), param(rel_band, s), param(silence, s)
            if not ((a is not None and d > a) or (r is not None and d > r * abs(v0))
                    or (m is not None and t - t0 >= m)):
                continue
        last[s] = (t, v)
        kept.append((s, t, v))
    return kept


def as_tuples(cols: Columns):
    return list(zip(cols.series.tolist(), cols.ts_ms.tolist(), cols.value.tolist(), strict=True))


@SETTINGS
@given(rows=rows_st, a=abs_st, r=rel_st, m=sil_st, method=st.sampled_from(METHODS))
def test_matches_reference_exactly(rows, a, r, m, method) -> None:
    cols = to_columns(rows)
    res = apply_deadband(cols, abs_band=a, rel_band=r, max_silence_ms=m, method=method)
    assert as_tuples(res.kept) == reference(rows, {}, a, r, m)
    assert as_tuples(cols.take(res.index)) == as_tuples(res.kept)


@SETTINGS
@given(rows=rows_st, a=abs_st, r=rel_st, m=sil_st, method=st.sampled_from(METHODS),
       cuts=st.lists(st.integers(0, 150), max_size=5), arrival=st.booleans())
def test_streaming_in_chunks_equals_one_call(rows, a, r, m, method, cuts, arrival) -> None:
    # Chunks in time order: either canonical (series-major) or arrival order (ts-major, interleaved).
    key = (lambda x: (x[1], x[2] + 0.0, x[0])) if arrival else (lambda x: (x[0], x[1], x[2] + 0.0))
    ordered = sorted(rows, key=key)
    bounds = sorted({0, len(ordered), *[c for c in cuts if c <= len(ordered)]})
    state, streamed = None, []
    for lo, hi in itertools.pairwise(bounds):
        res = apply_deadband(to_columns(ordered[lo:hi]), state, abs_band=a, rel_band=r,
                             max_silence_ms=m, method=method)
        state = res.state
        streamed += as_tuples(res.kept)
    assert sorted(streamed) == reference(rows, {}, a, r, m)


@SETTINGS
@given(rows=rows_st, prior=st.dictionaries(st.integers(0, 5), st.tuples(st.integers(0, 300), values)),
       method=st.sampled_from(METHODS), chunk=st.integers(1, 9))
def test_carried_state_and_internal_chunks(rows, prior, method, chunk) -> None:
    """A state with earlier kept samples (possibly later than new rows) is honoured, in small passes."""
    size = 6
    state = DeadbandState(np.zeros(size), np.zeros(size, np.int64), np.zeros(size, bool))
    for s, (t, v) in prior.items():
        state.last_value[s], state.last_ts_ms[s], state.known[s] = v + 0.0, t, True
    last = {s: (t, v + 0.0) for s, (t, v) in prior.items()}
    with mock.patch.object(deadband_module, "CHUNK_ROWS", chunk):
        res = apply_deadband(to_columns(rows), state, abs_band=1.0, max_silence_ms=50, method=method)
    assert as_tuples(res.kept) == reference(rows, last, 1.0, None, 50)
    for s, (t, v) in last.items():
        assert res.state.known[s]
        assert (res.state.last_ts_ms[s], res.state.last_value[s]) == (t, v)
    assert not state.known[[s for s in range(size) if s not in prior]].any()  # input state untouched


@SETTINGS
@given(rows=rows_st, method=st.sampled_from(METHODS),
       bands=st.lists(st.tuples(st.sampled_from([0.0, 1.0, np.inf]), st.sampled_from([0.1, np.inf]),
                                st.sampled_from([10, NEVER])), min_size=6, max_size=6))
def test_per_series_parameters(rows, method, bands) -> None:
    a = np.array([b[0] for b in bands])
    r = np.array([b[1] for b in bands])
    m = np.array([b[2] for b in bands], np.int64)
    res = apply_deadband(to_columns(rows), abs_band=a, rel_band=r, max_silence_ms=m, method=method)
    ref = reference(rows, {},
                    {s: (None if np.isinf(b[0]) else b[0]) for s, b in enumerate(bands)},
                    {s: (None if np.isinf(b[1]) else b[1]) for s, b in enumerate(bands)},
                    {s: (None if b[2] == NEVER else b[2]) for s, b in enumerate(bands)})
    assert as_tuples(res.kept) == ref


@pytest.mark.parametrize("method", METHODS)
def test_long_and_wide_series(method) -> None:
    rng = np.random.default_rng(7)
    shapes = [(1, 5_000), (300, 17)]
    for n_series, length in shapes:
        s = np.tile(np.arange(n_series), length)
        t = np.repeat(np.arange(length) * 1_000, n_series)
        v = np.round(rng.normal(size=len(s)).cumsum(), 1)
        rows = list(zip(s.tolist(), t.tolist(), v.tolist(), strict=True))
        res = apply_deadband(to_columns(rows), abs_band=0.7, rel_band=0.05, max_silence_ms=9_000,
                             method=method)
        assert as_tuples(res.kept) == reference(rows, {}, 0.7, 0.05, 9_000)


def test_first_sample_kept_and_silence_forces_a_sample() -> None:
    cols = Columns(np.zeros(5, np.uint32), np.array([0, 1_000, 2_000, 3_000, 4_000]),
                   np.array([20.0, 20.1, 20.05, 25.0, 25.0]))
    res = apply_deadband(cols, abs_band=0.5, max_silence_ms=2_000)
    assert res.kept.ts_ms.tolist() == [0, 2_000, 3_000]
    assert res.index.tolist() == [0, 2, 3]


def test_bad_parameters() -> None:
    cols = Columns(np.array([0]), np.array([0]), np.array([1.0]))
    with pytest.raises(ReductionError, match="abs_band"):
        apply_deadband(cols, abs_band=-1.0)
    with pytest.raises(ReductionError, match="method"):
        apply_deadband(cols, method="fast")
    empty = apply_deadband(Columns.empty(), abs_band=1.0)
    assert len(empty.kept) == 0


def test_random_order_input() -> None:
    rows = [(s, t, float((s * 7 + t) % 5)) for s in range(4) for t in range(50)]
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    res = apply_deadband(to_columns(shuffled), abs_band=1.5)
    assert as_tuples(res.kept) == reference(rows, {}, 1.5, None, None)

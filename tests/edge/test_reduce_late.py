"""Late data: re-emission with version + 1 within the allowed lateness, counting beyond it."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.model import Quality
from edge_agent.reduce import (
    NO_TS,
    Columns,
    WindowVersions,
    aggregate_windows,
    classify_late,
)

SETTINGS = settings(max_examples=150, deadline=None)
WINDOW = 100

row = st.tuples(st.integers(0, 3), st.integers(0, 1_000), st.sampled_from([0.0, 1.0, 2.0]))
emitted_st = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10), st.integers(0, 3)), max_size=12)


def to_columns(rows) -> Columns:
    return Columns(np.array([r[0] for r in rows], np.uint32), np.array([r[1] for r in rows], np.int64),
                   np.array([r[2] for r in rows], np.float64))


def reference(emitted, rows, seen, lateness):
    """seen: dict series -> max ts (per-series mode) or an int / None (global mode)."""
    latest: dict[tuple[int, int], int] = {}
    for s, w, v in emitted:
        latest[(s, w)] = max(v, latest.get((s, w), -1))
    quality, too_late, reemit, counts = [], [], {}, Counter()
    for s, t, _ in rows:
        start = t - t % WINDOW
        mx = seen.get(s) if isinstance(seen, dict) else seen
        late = mx is not None and start + WINDOW <= mx - lateness
        if late:
            counts[s] += 1
        elif (s, start) in latest:
            reemit[(s, start)] = latest[(s, start)] + 1
        quality.append(int(Quality.LATE) if late or (s, start) in latest else 0)
        too_late.append(late)
    return quality, too_late, sorted((s, w, v) for (s, w), v in reemit.items()), dict(counts)


@SETTINGS
@given(emitted=emitted_st, rows=st.lists(row, max_size=40),
       seen=st.dictionaries(st.integers(0, 3), st.integers(0, 1_200), max_size=4),
       lateness=st.sampled_from([0, 50, 250]))
def test_per_series_watermark_matches_reference(emitted, rows, seen, lateness) -> None:
    emitted = [(s, w * WINDOW, v) for s, w, v in emitted]
    state = np.full(4, NO_TS, np.int64)
    for s, mx in seen.items():
        state[s] = mx
    ev = WindowVersions(np.array([e[0] for e in emitted], np.uint32), np.array([e[1] for e in emitted]),
                        np.array([e[2] for e in emitted]))
    rep = classify_late(ev, to_columns(rows), state, window_ms=WINDOW, allowed_lateness_ms=lateness)
    quality, too_late, reemit, counts = reference(emitted, rows, seen, lateness)
    assert rep.quality.tolist() == quality
    assert rep.too_late.tolist() == too_late
    got = list(zip(rep.reemit.series.tolist(), rep.reemit.window_start.tolist(),
                   rep.reemit.version.tolist(), strict=True))
    assert got == reemit
    assert dict(zip(rep.too_late_per_series.series.tolist(), rep.too_late_per_series.count.tolist(),
                    strict=True)) == counts
    expected_state = dict(seen)
    for s, t, _ in rows:
        expected_state[s] = max(t, expected_state.get(s, t))
    assert {s: int(v) for s, v in enumerate(rep.max_ts_seen_ms) if v != NO_TS} == expected_state


@SETTINGS
@given(rows=st.lists(row, max_size=40), seen=st.one_of(st.none(), st.integers(0, 1_200)),
       lateness=st.sampled_from([0, 120]))
def test_global_watermark_matches_reference(rows, seen, lateness) -> None:
    ev = WindowVersions(np.array([0, 2], np.uint32), np.array([300, 500]), np.array([0, 4]))
    state = NO_TS if seen is None else seen
    rep = classify_late(ev, to_columns(rows), state, window_ms=WINDOW, allowed_lateness_ms=lateness)
    quality, too_late, _, counts = reference([(0, 300, 0), (2, 500, 4)], rows, seen, lateness)
    assert rep.quality.tolist() == quality
    assert rep.too_late.tolist() == too_late
    assert rep.too_late_per_series.total() == sum(counts.values())
    assert rep.max_ts_seen_ms.ndim == 0
    assert int(rep.max_ts_seen_ms) == max([r[1] for r in rows] + ([] if seen is None else [seen]),
                                          default=NO_TS)


def test_late_row_updates_window_and_later_row_is_counted() -> None:
    """The agent's loop: emit closed windows, then a late row re-versions one, a later one is dropped."""
    minute = 60_000
    buffer = Columns(np.array([0, 0, 0, 1]), np.array([1_000, 30_000, 61_000, 125_000]),
                     np.array([10.0, 20.0, 30.0, 5.0]))
    first = aggregate_windows(buffer, minute)
    emitted = WindowVersions(first.series, first.window_start, first.version)
    state = np.array([61_000, 125_000])

    late = Columns(np.array([0, 1]), np.array([59_000, 5_000]), np.array([60.0, 1.0]))
    rep = classify_late(emitted, late, state, window_ms=minute, allowed_lateness_ms=minute)
    assert rep.too_late.tolist() == [False, True]  # series 1: window [0, 60 s) ended before 125 - 60 s
    assert rep.quality.tolist() == [Quality.LATE, Quality.LATE]
    assert rep.too_late_per_series.series.tolist() == [1]
    assert rep.too_late_per_series.count.tolist() == [1]
    assert (rep.reemit.series.tolist(), rep.reemit.window_start.tolist(), rep.reemit.version.tolist()) == (
        [0], [0], [1])

    # Recompute the re-emitted window from the buffer with the accepted late row.
    buffer2 = Columns(np.append(buffer.series, late.series[~rep.too_late]),
                      np.append(buffer.ts_ms, late.ts_ms[~rep.too_late]),
                      np.append(buffer.value, late.value[~rep.too_late]))
    again = aggregate_windows(buffer2, minute, versions=rep.reemit)
    i = int(np.flatnonzero((again.series == 0) & (again.window_start == 0))[0])
    assert again.version[i] == 1
    assert again.count[i] == 3
    assert again.last[i] == 60.0
    assert again.mean[i] == 30.0


def test_unseen_series_is_never_late_and_empty_batch_keeps_state() -> None:
    rep = classify_late(WindowVersions.empty(), Columns(np.array([5]), np.array([0]), np.array([1.0])),
                        np.array([10**9]), window_ms=10, allowed_lateness_ms=0)
    assert rep.too_late.tolist() == [False]
    assert len(rep.max_ts_seen_ms) == 6
    empty = classify_late(WindowVersions.empty(), Columns.empty(), 7, window_ms=10, allowed_lateness_ms=0)
    assert int(empty.max_ts_seen_ms) == 7
    assert len(empty.reemit) == 0

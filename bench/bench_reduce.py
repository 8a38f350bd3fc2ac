"""Throughput of the edge reducers against plain-Python loops over the same data, in one run.

    .venv/bin/python bench/bench_reduce.py [--series 10000] [--readings 60] [--repeat 3] [--quick]

Data: ``series`` sensors each with ``readings`` samples one second apart, in arrival order (time
major, series interleaved — what the buffer returns), values a random walk rounded to 0.1.
For each reducer it prints readings/s of the vectorised function, of a plain-Python loop doing the
same work (checked to give the same result), and their ratio. Waveforms: blocks of 1024 samples;
the baseline there is a per-block loop calling numpy (a pure-Python FFT would be a straw man).
Best of ``--repeat`` runs. Writes ``bench/results/reduce.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result
from edge_agent.reduce import (
    Columns,
    aggregate_windows,
    apply_deadband,
    block_features,
    counter_deltas,
)

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000_000
WINDOW_MS = 10_000
LEVELS = (50.0, 90.0, 95.0, 99.0)


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def py_windows(rows: list[tuple[int, int, float]]) -> int:
    groups: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for s, t, v in rows:
        groups[(s, t - t % WINDOW_MS)].append((t, v))
    out = []
    for key, items in groups.items():
        items.sort()
        vals = sorted(v for _, v in items)
        n = len(vals)
        total = sum(vals)
        mean = total / n
        std = math.sqrt(sum((x - mean) ** 2 for x in vals) / n)
        pct = []
        for q in LEVELS:
            h = (n - 1) * q / 100
            lo = int(h)
            hi = min(lo + 1, n - 1)
            pct.append(vals[lo] + (h - lo) * (vals[hi] - vals[lo]))
        out.append((key, n, total, mean, vals[0], vals[-1], items[0][1], items[-1][1], std, pct))
    return len(out)


def py_deadband(rows: list[tuple[int, int, float]], band: float, silence: int) -> int:
    last: dict[int, tuple[int, float]] = {}
    kept = 0
    for s, t, v in rows:  # arrival order is time order: no sort needed
        prev = last.get(s)
        if prev is not None and abs(v - prev[1]) <= band and t - prev[0] < silence:
            continue
        last[s] = (t, v)
        kept += 1
    return kept


def py_counters(rows: list[tuple[int, int, float]]) -> int:
    last: dict[int, tuple[int, float]] = {}
    out = []
    for s, t, v in rows:
        prev = last.get(s)
        if prev is not None and t <= prev[0]:
            continue
        last[s] = (t, v)
        if prev is None:
            continue
        d = v - prev[1] if v >= prev[1] else v
        out.append((s, t, d, d / ((t - prev[0]) / 1000)))
    return len(out)


def py_waveform(blocks: np.ndarray, fs: float) -> int:
    out = []
    n = blocks.shape[1]
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    for b in blocks:
        rms = float(np.sqrt(np.mean(b * b)))
        peak = float(np.max(np.abs(b)))
        p = np.abs(np.fft.rfft((b - b.mean()) * w)) ** 2
        out.append((rms, peak, float(b.max() - b.min()), peak / rms, (int(np.argmax(p[1:])) + 1) * fs / n))
    return len(out)


RESULTS: dict[str, dict[str, float]] = {}


def report(name: str, n: int, vec: float, py: float) -> None:
    print(f"{name:<10} {n / vec:>14,.0f} {n / py:>14,.0f} {py / vec:>8.1f}x")
    RESULTS[name] = {"numpy_per_s": round(n / vec), "python_per_s": round(n / py), "ratio": round(py / vec, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=60, help="readings per series")
    ap.add_argument("--blocks", type=int, default=2_000, help="waveform blocks of 1024 samples")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1,000 series x 20 readings, one repeat (smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.series, args.readings, args.blocks, args.repeat = 1000, 20, 100, 1

    rng = np.random.default_rng(42)
    n = args.series * args.readings
    series = np.tile(np.arange(args.series, dtype=np.uint32), args.readings)
    ts = T0 + np.repeat(np.arange(args.readings, dtype=np.int64) * 1_000, args.series)
    walk = np.round(rng.normal(scale=0.3, size=(args.readings, args.series)).cumsum(axis=0).ravel() + 20, 1)
    cols = Columns(series, ts, walk)
    rows = list(zip(series.tolist(), ts.tolist(), walk.tolist(), strict=True))
    counter = np.cumsum(rng.integers(0, 50, size=(args.readings, args.series)), axis=0).ravel().astype(float)
    counter_cols = Columns(series, ts, counter)
    counter_rows = list(zip(series.tolist(), ts.tolist(), counter.tolist(), strict=True))

    print(f"{args.series:,} series x {args.readings} readings = {n:,} readings; best of {args.repeat}")
    print(f"{'reducer':<10} {'numpy rows/s':>14} {'python rows/s':>14} {'ratio':>9}")

    vec, agg = best(lambda: aggregate_windows(cols, WINDOW_MS, percentiles=LEVELS), args.repeat)
    py, py_n = best(lambda: py_windows(rows), args.repeat)
    assert len(agg) == py_n, (len(agg), py_n)
    report("windows", n, vec, py)

    vec, kept = best(lambda: apply_deadband(cols, abs_band=0.5, max_silence_ms=30_000), args.repeat)
    py, py_n = best(lambda: py_deadband(rows, 0.5, 30_000), args.repeat)
    assert len(kept.kept) == py_n, (len(kept.kept), py_n)
    report("deadband", n, vec, py)

    vec, res = best(lambda: counter_deltas(counter_cols), args.repeat)
    py, py_n = best(lambda: py_counters(counter_rows), args.repeat)
    assert len(res.deltas) == py_n, (len(res.deltas), py_n)
    report("counters", n, vec, py)

    fs = 1_000.0
    t = np.arange(1024) / fs
    freqs = rng.uniform(5, 400, size=(args.blocks, 1))
    blocks = np.sin(2 * np.pi * freqs * t) + rng.normal(scale=0.1, size=(args.blocks, 1024))
    vec, feats = best(lambda: block_features(blocks, fs, bands=[(0, 50), (50, 200), (200, 500)]), args.repeat)
    py, py_n = best(lambda: py_waveform(blocks, fs), args.repeat)
    assert len(feats) == py_n
    report("waveform", blocks.size, vec, py)
    print("(waveform: samples/s; its baseline loops over blocks calling numpy per block)")
    path = write_result("reduce" + ("-quick" if args.quick else ""), {
        "benchmark": "reduce", "quick": args.quick, "machine": machine(), "series": args.series,
        "readings_per_series": args.readings, "waveform_blocks": args.blocks, "repeat": args.repeat,
        "reducers": RESULTS})
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

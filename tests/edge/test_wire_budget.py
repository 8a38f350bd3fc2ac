"""Wire format budget (DESIGN §9): at most 1.2 bytes per reading for regular sensor series.

Uses the benchmark's data sets (bench/bench_wire.py) so the number tested is the number reported.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

import pytest

from edge_agent import wire

BUDGET = 1.2  # bytes per reading, regular series


@pytest.fixture(scope="module")
def bench(project_root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_wire", project_root / "bench" / "bench_wire.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regular_series_within_budget_and_far_below_json_gzip(bench: ModuleType) -> None:
    readings, precision = bench.regular(200, 60)
    body = wire.encode(wire.build_batch("gw-campus-a-01", 1, bench.T0, readings, [], precision))
    per_reading = len(body) / len(readings)
    assert per_reading <= BUDGET, per_reading
    assert bench.json_gzip(readings) / len(body) >= 4.0


def test_mixed_set_round_trips_and_stays_small(bench: ModuleType) -> None:
    readings, events, precision = bench.mixed(200, 60)
    body = wire.encode(wire.build_batch("gw", 2, bench.T0, readings, events, precision))
    assert len(body) / (len(readings) + len(events)) <= 2.0
    out = wire.decode(body)
    assert (out.n_readings, out.n_events) == (len(readings), len(events))


def test_decoding_is_fast(bench: ModuleType) -> None:
    readings, precision = bench.regular(200, 60)
    body = wire.encode(wire.build_batch("gw", 1, bench.T0, readings, [], precision))
    best = min(_timed(lambda: wire.decode(body)) for _ in range(5))
    assert len(readings) / best > 2_000_000  # measured ~50 M/s; generous for slow CI machines


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t

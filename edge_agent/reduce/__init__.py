"""Reduction of buffered readings on the edge: pure, vectorised numpy functions over many series.

Rows come in as :class:`Columns` (series id, ts_ms, value arrays); results go out as frozen
dataclasses of arrays. Nothing here does I/O or keeps global state: streaming state (deadband,
counters, late-data watermarks) is passed in and returned.

- :mod:`.windows` — tumbling wall-clock windows: count, sum, mean, min, max, first, last, std,
  percentiles; deterministic and recomputable.
- :mod:`.late` — late rows: which emitted windows to re-emit (version + 1), which rows are too late.
- :mod:`.deadband` — report-by-exception with maximum silence, exact and streaming.
- :mod:`.counters` — cumulative counters to deltas and rates with reset and rollover detection.
- :mod:`.waveform` — RMS, peak, crest factor, dominant frequency, band energies per block.

Semantics are documented in ``docs/reduction.md``.
"""

from edge_agent.reduce.columns import Columns, ReductionError, canonical_order
from edge_agent.reduce.counters import CounterDeltas, CounterResult, CounterState, counter_deltas
from edge_agent.reduce.deadband import NEVER, DeadbandResult, DeadbandState, apply_deadband
from edge_agent.reduce.late import NO_TS, LateReport, SeriesCounts, classify_late
from edge_agent.reduce.waveform import WaveformFeatures, block_features, ragged_features, waveform_features
from edge_agent.reduce.windows import (
    DEFAULT_PERCENTILES,
    WindowAggregates,
    WindowVersions,
    aggregate_windows,
    window_starts,
)

__all__ = [
    "DEFAULT_PERCENTILES",
    "NEVER",
    "NO_TS",
    "Columns",
    "CounterDeltas",
    "CounterResult",
    "CounterState",
    "DeadbandResult",
    "DeadbandState",
    "LateReport",
    "ReductionError",
    "SeriesCounts",
    "WaveformFeatures",
    "WindowAggregates",
    "WindowVersions",
    "aggregate_windows",
    "apply_deadband",
    "block_features",
    "canonical_order",
    "classify_late",
    "counter_deltas",
    "ragged_features",
    "waveform_features",
    "window_starts",
]

"""The batch wire format shared by the edge (encoder) and the cloud (decoder). Spec: docs/wire-format.md.

A batch is columnar: dictionaries (devices, metrics, units, profiles, aggregate names), a series table
(one row per distinct (device, metric, unit, profile, agg, window) tuple), then per-reading arrays sorted
by (series, ts): series index, timestamp (ms, delta-encoded), value (quantised to the series precision
where declared, delta-encoded), quality flags and window version; plus events with their attributes.
Body = zstd(msgpack(map)) with the numeric arrays as raw little-endian bytes, so decoding is a handful
of ``numpy.frombuffer`` calls.

This module is pure (no I/O). ``encode`` and ``decode`` are the only ways bytes are made or read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FORMAT_VERSION = 1
CONTENT_TYPE = "application/vnd.campus.batch"  # HTTP Content-Type; version travels in the header map
RAW = "raw"  # the aggregate name of raw (not windowed) series


@dataclass(slots=True, frozen=True, eq=False)
class Batch:
    """One upload unit. Arrays are numpy; lengths must agree (checked by ``validate``).

    Series table columns index into the dictionaries. Reading columns have one entry per reading.
    Event columns have one entry per event; ``e_attrs`` holds one dict per event (already protected).
    """

    gateway: str
    seq: int  # per-gateway, monotonically increasing
    created_ms: int
    devices: tuple[str, ...]
    metrics: tuple[str, ...]
    units: tuple[str, ...]
    profiles: tuple[str, ...]  # "id@version"
    aggs: tuple[str, ...]  # "raw", "mean", "min", "max", "count", "sum", "std", "first", "last", "p50"…
    s_device: npt.NDArray[np.uint32]
    s_metric: npt.NDArray[np.uint32]
    s_unit: npt.NDArray[np.uint32]
    s_profile: npt.NDArray[np.uint32]
    s_agg: npt.NDArray[np.uint32]
    s_window_s: npt.NDArray[np.uint32]  # 0 for raw series
    s_precision: npt.NDArray[np.float64]  # 0.0 = not quantised
    r_series: npt.NDArray[np.uint32]
    r_ts_ms: npt.NDArray[np.int64]
    r_value: npt.NDArray[np.float64]
    r_quality: npt.NDArray[np.uint16]
    r_version: npt.NDArray[np.uint16]  # window version (0 for raw; late data re-emits version+1)
    e_device: npt.NDArray[np.uint32]
    e_profile: npt.NDArray[np.uint32]
    e_ts_ms: npt.NDArray[np.int64]
    e_quality: npt.NDArray[np.uint16]
    e_kind: tuple[str, ...] = ()
    e_attrs: tuple[dict[str, Any], ...] = field(default=())

    @property
    def n_readings(self) -> int:
        return int(self.r_series.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.e_ts_ms.shape[0])

"""The edge's reduction job: committed raw readings → window aggregates; waveforms → features.

Runs in the daemon every few seconds, reading the buffer with a durable cursor and writing its results
back to the buffer (they travel to the cloud like readings, as AGGREGATE priority series with
``agg``/``window_s``). I/O is confined to :meth:`WindowJob.run_once`; the numpy work is the pure
functions of :mod:`edge_agent.reduce`.

Policy (documented in docs/reduction.md, "In the daemon"):

- Only raw series whose profile metric has ``reduction.mode`` ``aggregate`` or ``both`` are windowed.
- A window is emitted once it is *final*: its end plus ``allowed_lateness`` has passed on the gateway
  clock. Data arriving within the allowed lateness is therefore part of version 0; data arriving for a
  window already emitted is *too late*: counted (``late.too_late``), its raw row still uploads when the
  mode is ``both``.
- Rows of open windows are held in memory (bounded by ``MAX_HELD_ROWS``: beyond it the oldest windows
  are emitted early, counted as ``late.forced_early``). The durable cursor only passes rows whose
  windows were emitted, so after a crash the job re-reads them and recomputes the same windows
  (deterministic); a window emitted twice carries identical values and is de-duplicated in the cloud.
- Waveforms are reduced to features (RMS, peak, peak-to-peak, crest factor, dominant frequency and
  band energies) as soon as they are read; raw waveforms never leave the gateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_agent.buffer import AggregateRow, Buffer, SeriesKey
from edge_agent.model import Priority, ProfileRef
from edge_agent.profiles import ProfileSet
from edge_agent.reduce import Columns, aggregate_windows
from edge_agent.reduce.waveform import ragged_features

_LOGGER = logging.getLogger(__name__)

CURSOR_KEY = "windows.cursor"  # last reading id whose windows are all emitted
WAVE_CURSOR_KEY = "windows.wave_cursor"
SCAN_CHUNK = 20_000  # readings read per scan step
MAX_HELD_ROWS = 500_000  # rows of open windows held in memory (~20 MB); beyond: emit oldest early
_PCT = {f"p{int(q)}": float(q) for q in (5, 10, 25, 50, 75, 90, 95, 99)}


@dataclass(slots=True, frozen=True)
class _Spec:
    window_ms: int
    aggregates: tuple[str, ...]


class WindowJob:
    def __init__(self, buffer: Buffer, profiles: Callable[[], ProfileSet], *, allowed_lateness_ms: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._buffer = buffer
        self._profiles = profiles
        self._lateness = allowed_lateness_ms
        self._clock = clock
        self._specs: dict[int, _Spec | None] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._held = (np.zeros(0, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0))
        self._emitted_until: dict[int, int] = {}  # series -> end of the last emitted window
        self._scanned = -1  # highest reading id read into memory (-1: read the cursor first)
        self.windows_emitted = 0
        self.features_emitted = 0

    def reset(self) -> None:
        """Forget per-series specs (after a profile reload); held rows stay."""
        self._specs.clear()

    def _spec(self, sid: int, key: SeriesKey) -> _Spec | None:
        if sid not in self._specs:
            spec = None
            prof = self._profiles().get(key.profile.rpartition("@")[0]) if key.agg == "raw" else None
            metric = next((m for m in prof.metrics if m.name == key.metric), None) if prof else None
            if metric is not None and metric.reduction.mode in ("aggregate", "both") and metric.type != "waveform":
                red = metric.reduction
                spec = _Spec(int(red.window_s * 1000), tuple(red.aggregates))
            self._specs[sid] = spec
            self._keys[sid] = key
        return self._specs[sid]

    async def run_once(self) -> int:
        """Read new rows, emit final windows and waveform features; returns aggregate rows written."""
        if self._scanned < 0:
            stored = await self._buffer.get_meta(CURSOR_KEY)
            self._scanned = int(stored) if isinstance(stored, int | float | str) else 0
        await self._read_new_rows()
        now_ms = int(self._clock() * 1000)
        rows, counters = self._final_windows(now_ms)
        rows += await self._waveform_features()
        if rows or counters:
            await self._buffer.commit_burst((), aggregates=rows, counters=counters)
        held_ids = self._held[0]
        cursor = int(held_ids.min()) - 1 if held_ids.size else self._scanned
        await self._buffer.set_meta(CURSOR_KEY, cursor)
        return len(rows)

    async def _read_new_rows(self) -> None:
        ids, ser, ts, val = self._held
        parts = [(ids, ser, ts, val)]
        for _ in range(50):  # bounded per run: at most 1 M rows
            chunk = await self._buffer.scan_readings(self._scanned, SCAN_CHUNK, priority=int(Priority.RAW))
            if chunk.r_id.size == 0:
                break
            self._scanned = chunk.last_id
            keep = np.array([self._spec(int(s), chunk.series[int(s)]) is not None for s in chunk.r_series],
                            dtype=bool) if chunk.r_id.size else np.zeros(0, bool)
            if keep.any():
                parts.append((chunk.r_id[keep], chunk.r_series[keep], chunk.r_ts_ms[keep], chunk.r_value[keep]))
            if chunk.r_id.size < SCAN_CHUNK:
                break
        self._held = tuple(np.concatenate([p[i] for p in parts]) for i in range(4))  # type: ignore[assignment]

    def _final_windows(self, now_ms: int) -> tuple[list[AggregateRow], dict[str, int]]:
        ids, ser, ts, val = self._held
        counters: dict[str, int] = {}
        if ids.size == 0:
            return [], counters
        win = np.array([self._specs[int(s)].window_ms for s in ser], dtype=np.int64)  # type: ignore[union-attr]
        start = ts - np.mod(ts, win)
        until = np.array([self._emitted_until.get(int(s), -(1 << 62)) for s in ser], dtype=np.int64)
        too_late = start < until
        final = (start + win + self._lateness <= now_ms) | too_late
        if ids.size - int(final.sum()) > MAX_HELD_ROWS:  # emit the oldest open windows early
            cut = np.sort(start[~final])[-MAX_HELD_ROWS]
            forced = ~final & (start < cut)
            counters["late.forced_early"] = int(forced.sum())
            final |= forced
        if too_late.any():
            counters["late.too_late"] = int(too_late.sum())
        emit = final & ~too_late
        self._held = (ids[~final], ser[~final], ts[~final], val[~final])
        if not emit.any():
            return [], counters
        finite = np.isfinite(val[emit])
        s_e, t_e, v_e = ser[emit][finite], ts[emit][finite], val[emit][finite]
        dense = np.zeros(int(s_e.max()) + 1, dtype=np.int64)
        for s in np.unique(s_e):
            dense[int(s)] = self._specs[int(s)].window_ms  # type: ignore[union-attr]
        levels = sorted({_PCT[n] for s in np.unique(s_e) for n in self._specs[int(s)].aggregates  # type: ignore[union-attr]
                         if n in _PCT})
        agg = aggregate_windows(Columns(s_e, t_e, v_e), np.maximum(dense, 1), percentiles=levels)
        out: list[AggregateRow] = []
        for i in range(len(agg)):
            sid = int(agg.series[i])
            key, spec = self._keys[sid], self._specs[sid]
            assert spec is not None
            end = int(agg.window_start[i]) + spec.window_ms
            self._emitted_until[sid] = max(self._emitted_until.get(sid, end), end)
            for name in spec.aggregates:
                value = agg.percentile(_PCT[name])[i] if name in _PCT else getattr(agg, name, None)
                if value is None:
                    continue
                v = float(value if name in _PCT else value[i])
                out.append(AggregateRow(key.device, key.metric, key.unit, ProfileRef.parse(key.profile), name,
                                        spec.window_ms // 1000, int(agg.window_start[i]), v))
        self.windows_emitted += len(agg)
        return out, counters

    async def _waveform_features(self) -> list[AggregateRow]:
        stored = await self._buffer.get_meta(WAVE_CURSOR_KEY)
        after = int(stored) if isinstance(stored, int | float | str) else 0
        waves = await self._buffer.read_waveforms(after, 200)
        if not waves:
            return []
        feats = ragged_features([w.samples.astype(np.float64) for w in waves],
                                np.array([w.sample_rate_hz for w in waves]))
        out = []
        for i, w in enumerate(waves):
            k = w.series
            for name, unit, value in (("rms", k.unit, feats.rms[i]), ("peak", k.unit, feats.peak[i]),
                                      ("peak_to_peak", k.unit, feats.peak_to_peak[i]),
                                      ("crest_factor", "1", feats.crest_factor[i]),
                                      ("dominant_hz", "Hz", feats.dominant_hz[i])):
                if np.isfinite(value):
                    out.append(AggregateRow(k.device, k.metric, unit, ProfileRef.parse(k.profile), name, 0, w.ts_ms,
                                            float(value)))
        await self._buffer.set_meta(WAVE_CURSOR_KEY, waves[-1].id)
        self.features_emitted += len(out)
        return out

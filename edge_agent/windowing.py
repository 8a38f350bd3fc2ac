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
- Rows of open windows are held in memory as four numpy columns (28 bytes a row), at most
  ``MAX_HELD_ROWS``: the scan stops reading when they are full, and when no room is left for another scan
  chunk the oldest open windows are emitted early (``late.forced_early``; if one window start holds them
  all, that window). Everything per row is vectorised (per-series lookups are dense arrays indexed by
  series id), so a run's temporary memory is a few times the held rows, whatever the backlog behind the
  cursor. The durable cursor only passes rows whose windows were emitted, so after a crash the job
  re-reads them and recomputes the same windows (deterministic); a window emitted twice carries identical
  values and is de-duplicated in the cloud.
- Waveforms are reduced to features (RMS, peak, peak-to-peak, crest factor, dominant frequency and
  band energies) as soon as they are read; raw waveforms never leave the gateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.buffer import AggregateRow, Buffer, SeriesKey
from edge_agent.model import Priority, ProfileRef
from edge_agent.profiles import ProfileSet
from edge_agent.reduce import Columns, aggregate_windows
from edge_agent.reduce.waveform import ragged_features

_LOGGER = logging.getLogger(__name__)

CURSOR_KEY = "windows.cursor"  # last reading id whose windows are all emitted
WAVE_CURSOR_KEY = "windows.wave_cursor"
SCAN_CHUNK = 20_000  # readings read per scan step
MAX_HELD_ROWS = 500_000  # rows of open windows held in memory (28 B each: 14 MB); full: emit the oldest early
_NO_WINDOW = -(1 << 62)  # "no window emitted yet" for a series
_PCT = {f"p{int(q)}": float(q) for q in (5, 10, 25, 50, 75, 90, 95, 99)}


@dataclass(slots=True, frozen=True)
class _Spec:
    window_ms: int
    aggregates: tuple[str, ...]


class _HeldRows:
    """Rows of open windows as four growable numpy columns (id, series, ts_ms, value: 28 bytes a row).

    Appends write in place (capacity doubles), dropping rows compacts in place, so the held rows are not
    copied whole on every scan step; capacity shrinks again when few rows are left."""

    _DTYPES = (np.int64, np.uint32, np.int64, np.float64)
    _MIN_CAP = 4096

    def __init__(self) -> None:
        self._cols: tuple[npt.NDArray[Any], ...] = tuple(np.zeros(0, dt) for dt in self._DTYPES)
        self.n = 0

    def columns(self) -> tuple[npt.NDArray[Any], ...]:
        """Views of the held rows (valid until the next append or keep)."""
        return tuple(c[:self.n] for c in self._cols)

    def _resize(self, cap: int) -> None:
        new = tuple(np.empty(cap, c.dtype) for c in self._cols)
        for dst, src in zip(new, self._cols, strict=True):
            dst[:self.n] = src[:self.n]
        self._cols = new

    def append(self, *cols: npt.NDArray[Any]) -> None:
        k = cols[0].size
        need = self.n + k
        if need > self._cols[0].size:
            self._resize(max(need, 2 * self._cols[0].size, self._MIN_CAP))
        for dst, src in zip(self._cols, cols, strict=True):
            dst[self.n:need] = src
        self.n = need

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        k = int(mask.sum())
        if k == self.n:
            return
        for c in self._cols:
            c[:k] = c[:self.n][mask]
        self.n = k
        cap = self._cols[0].size
        if cap > self._MIN_CAP and k < cap // 4:
            self._resize(max(2 * k, self._MIN_CAP))


class WindowJob:
    def __init__(self, buffer: Buffer, profiles: Callable[[], ProfileSet], *, allowed_lateness_ms: int,
                 clock: Callable[[], float] = time.time, max_held_rows: int = MAX_HELD_ROWS) -> None:
        self._buffer = buffer
        self._profiles = profiles
        self._lateness = allowed_lateness_ms
        self._clock = clock
        self._max_held = max(max_held_rows, 1)
        self._specs: dict[int, _Spec | None] = {}
        self._keys: dict[int, SeriesKey] = {}
        # dense per-series lookups indexed by series id: window length (0: not windowed, -1: not looked up)
        # and end of the last emitted window
        self._win_ms = np.full(0, -1, np.int64)
        self._until = np.full(0, _NO_WINDOW, np.int64)
        self._held = _HeldRows()
        self._scanned = -1  # highest reading id read into memory (-1: read the cursor first)
        self.windows_emitted = 0
        self.features_emitted = 0

    @property
    def held_rows(self) -> int:
        """Rows of open windows held in memory (at most ``max_held_rows``)."""
        return self._held.n

    def reset(self) -> None:
        """Forget per-series specs (after a profile reload); held rows stay."""
        self._specs.clear()
        self._win_ms[:] = -1

    def _grow(self, sid_max: int) -> None:
        n = self._win_ms.size
        if sid_max >= n:
            size = max(sid_max + 1, 2 * n, 1024)
            self._win_ms = np.concatenate([self._win_ms, np.full(size - n, -1, np.int64)])
            self._until = np.concatenate([self._until, np.full(size - n, _NO_WINDOW, np.int64)])

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
            self._grow(sid)
            self._win_ms[sid] = max(spec.window_ms, 1) if spec is not None else 0
        return self._specs[sid]

    def _windows_of(self, ser: npt.NDArray[np.uint32], keys: Mapping[int, SeriesKey]) -> npt.NDArray[np.int64]:
        """Window length of each row's series (0: not windowed), looking up series not seen yet."""
        if ser.size == 0:
            return np.zeros(0, np.int64)
        self._grow(int(ser.max()))
        win: npt.NDArray[np.int64] = self._win_ms[ser]
        if (win < 0).any():
            for s in np.unique(ser[win < 0]).tolist():
                self._spec(s, keys[s])
            win = self._win_ms[ser]
        return win

    async def run_once(self) -> int:
        """Read new rows, emit final windows and waveform features; returns aggregate rows written."""
        if self._scanned < 0:
            stored = await self._buffer.get_meta(CURSOR_KEY)
            self._scanned = int(stored) if isinstance(stored, int | float | str) else 0
        full = await self._read_new_rows()
        now_ms = int(self._clock() * 1000)
        rows, counters = self._final_windows(now_ms, full)
        rows += await self._waveform_features()
        if rows or counters:
            await self._buffer.commit_burst((), aggregates=rows, counters=counters)
        held_ids = self._held.columns()[0]
        cursor = int(held_ids.min()) - 1 if held_ids.size else self._scanned
        await self._buffer.set_meta(CURSOR_KEY, cursor)
        return len(rows)

    async def _read_new_rows(self) -> bool:
        """Append new windowed rows to the held ones until ``max_held_rows``; True if it stopped full."""
        held = self.held_rows
        full = False
        for _ in range(50):  # bounded per run: at most 1 M rows read
            room = self._max_held - held
            if room <= 0:
                full = True
                break
            limit = min(SCAN_CHUNK, room)
            chunk = await self._buffer.scan_readings(self._scanned, limit, priority=int(Priority.RAW))
            if chunk.r_id.size == 0:
                break
            self._scanned = chunk.last_id
            keep = self._windows_of(chunk.r_series, chunk.series) > 0
            if keep.any():
                self._held.append(chunk.r_id[keep], chunk.r_series[keep], chunk.r_ts_ms[keep], chunk.r_value[keep])
                held += int(keep.sum())
            if chunk.r_id.size < limit:
                break
        return full

    def _final_windows(self, now_ms: int, full: bool = False) -> tuple[list[AggregateRow], dict[str, int]]:
        counters: dict[str, int] = {}
        if self._held.n == 0:
            return [], counters
        win = self._windows_of(self._held.columns()[1], self._keys)
        if (win <= 0).any():  # a reload made these series raw-only: they are not windowed any more
            self._held.keep(win > 0)
            win = win[win > 0]
        _ids, ser, ts, val = self._held.columns()
        start = ts - np.mod(ts, win)
        too_late = start < self._until[ser]
        final = (start + win + self._lateness <= now_ms) | too_late
        del win
        n_open = ser.size - int(final.sum())
        if full and n_open >= self._max_held - min(SCAN_CHUNK, self._max_held // 2):
            # little room left for the rows behind the cursor: emit the oldest open windows early, keep half
            open_starts = np.sort(start[~final])
            cut = open_starts[max(open_starts.size - self._max_held // 2, 0)]
            del open_starts
            forced = ~final & (start < cut)
            if not forced.any():  # one window start holds them all: that window goes
                forced = ~final & (start <= cut)
            counters["late.forced_early"] = int(forced.sum())
            final |= forced
            del forced
        del start
        if too_late.any():
            counters["late.too_late"] = int(too_late.sum())
        emit = final & ~too_late
        del too_late
        s_e, t_e, v_e = ser[emit], ts[emit], val[emit]
        del emit
        self._held.keep(~final)
        del ser, ts, val, final
        finite = np.isfinite(v_e)
        if not finite.all():
            s_e, t_e, v_e = s_e[finite], t_e[finite], v_e[finite]
        if s_e.size == 0:
            return [], counters
        sids = np.unique(s_e).tolist()
        levels = sorted({_PCT[n] for s in sids for n in self._specs[s].aggregates  # type: ignore[union-attr]
                         if n in _PCT})
        agg = aggregate_windows(Columns(s_e, t_e, v_e), np.maximum(self._win_ms[:int(s_e.max()) + 1], 1),
                                percentiles=levels)
        out: list[AggregateRow] = []
        for i in range(len(agg)):
            sid = int(agg.series[i])
            key, spec = self._keys[sid], self._specs[sid]
            assert spec is not None
            end = int(agg.window_start[i]) + spec.window_ms
            self._until[sid] = max(int(self._until[sid]), end)
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

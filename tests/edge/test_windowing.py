"""The daemon's reduction job on a real buffer: final windows, late rows, waveform features, restart."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edge_agent.buffer import Buffer, BufferConfig
from edge_agent.model import DecodeResult, Message, Reading, Waveform
from edge_agent.profiles import ProfileSet
from edge_agent.windowing import WindowJob

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_764_000_000_000  # a multiple of 60 s
PROFILES = ProfileSet.load(ROOT / "device_profiles")
TH = next(p for p in PROFILES if p.id == "zigbee2mqtt.xiaomi_wsdcgq01lm")
VIB = next(p for p in PROFILES if p.id == "campus.vibration_node")
WINDOW_MS = next(m for m in TH.metrics if m.name == "temperature_air").reduction.window_s * 1000
AGGS = next(m for m in TH.metrics if m.name == "temperature_air").reduction.aggregates


def readings(ts_values: list[tuple[int, float]], device: str = "room-1") -> list[DecodeResult]:
    return [DecodeResult(Message("zigbee2mqtt/" + device, b"{}", ts), TH.ref, device,
                         (Reading(device, "temperature_air", ts, v, "Cel", TH.ref),)) for ts, v in ts_values]


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def buffer(tmp_path: Path) -> Buffer:
    buf = await Buffer.open(tmp_path / "b.sqlite", BufferConfig())
    yield buf
    await buf.close()


async def aggregates(buf: Buffer) -> dict[tuple[str, int], float]:
    pending = await buf.take_unbatched(100_000, 0)
    out = {}
    for sid, ts, v in zip(pending.r_series, pending.r_ts_ms, pending.r_value, strict=True):
        key = pending.series[int(sid)]
        if key.agg != "raw":
            out[(key.agg, int(ts))] = float(v)
    return out


async def test_final_windows_match_numpy(buffer: Buffer) -> None:
    values = [(T0 + i * 10_000, 20.0 + (i % 7) * 0.5) for i in range(2 * WINDOW_MS // 10_000)]
    await buffer.commit_burst(readings(values))
    clock = Clock((T0 + WINDOW_MS) / 1000)  # first window closed, but not past the lateness yet
    job = WindowJob(buffer, lambda: PROFILES, allowed_lateness_ms=60_000, clock=clock)
    assert await job.run_once() == 0
    clock.t = (T0 + WINDOW_MS + 60_000) / 1000  # first window final now
    n = await job.run_once()
    assert n == len(AGGS)
    got = await aggregates(buffer)
    first = np.array([v for ts, v in values if ts < T0 + WINDOW_MS])
    expect = {"mean": first.mean(), "min": first.min(), "max": first.max(), "count": len(first),
              "last": first[-1], "first": first[0], "sum": first.sum(), "std": first.std()}
    for name in AGGS:
        assert got[(name, T0)] == pytest.approx(expect[name]), name
    # too-late data for the emitted window is counted, not re-emitted
    await buffer.commit_burst(readings([(T0 + 5, 99.0)]))
    clock.t = (T0 + 2 * WINDOW_MS + 60_000) / 1000
    await job.run_once()
    counters = await buffer.counters()
    assert counters.get("late.too_late") == 1
    got = await aggregates(buffer)
    assert ("mean", T0 + WINDOW_MS) in got


async def test_restart_recomputes_held_windows(buffer: Buffer) -> None:
    values = [(T0 + i * 10_000, float(i)) for i in range(WINDOW_MS // 10_000)]
    await buffer.commit_burst(readings(values))
    clock = Clock((T0 + 1000) / 1000)
    job = WindowJob(buffer, lambda: PROFILES, allowed_lateness_ms=0, clock=clock)
    await job.run_once()  # rows held in memory, nothing final
    # a new job (after a crash) starts from the durable cursor and still sees every row
    clock.t = (T0 + WINDOW_MS) / 1000
    job2 = WindowJob(buffer, lambda: PROFILES, allowed_lateness_ms=0, clock=clock)
    assert await job2.run_once() == len(AGGS)
    got = await aggregates(buffer)
    if "count" in AGGS:
        assert got[("count", T0)] == len(values)
    assert got[("mean", T0)] == pytest.approx(np.mean([v for _, v in values]))


async def test_waveform_features(buffer: Buffer) -> None:
    rate, n, amp = 1000.0, 1000, 2.0
    samples = tuple(amp * math.sin(2 * math.pi * 50 * i / rate) for i in range(n))
    wave = Waveform("pump-1", "vibration_accel", T0, rate, samples, "m/s2", VIB.ref)
    await buffer.commit_burst([DecodeResult(Message("campus/vib", b"", T0), VIB.ref, "pump-1", waveforms=(wave,))])
    job = WindowJob(buffer, lambda: PROFILES, allowed_lateness_ms=0, clock=Clock(T0 / 1000))
    assert await job.run_once() >= 4
    got = await aggregates(buffer)
    assert got[("rms", T0)] == pytest.approx(amp / math.sqrt(2), rel=1e-3)
    assert got[("dominant_hz", T0)] == pytest.approx(50.0, abs=1.0)
    assert got[("crest_factor", T0)] == pytest.approx(math.sqrt(2), rel=1e-2)
    assert await job.run_once() == 0  # the waveform cursor moved on


async def test_held_rows_bounded_even_within_one_window(buffer: Buffer) -> None:
    """A backlog larger than the cap, all in one open window: held rows never pass the cap; the window is
    emitted early (counted), the rows after it are counted too late, and the cursor moves past them all."""
    cap, n = 1000, 3500
    values = [(T0 + i, 20.0 + (i % 5)) for i in range(n)]  # 3.5 s of data: one window
    await buffer.commit_burst(readings(values))
    job = WindowJob(buffer, lambda: PROFILES, allowed_lateness_ms=60_000, clock=Clock(T0 / 1000), max_held_rows=cap)
    for _ in range(8):
        await job.run_once()
        assert job.held_rows <= cap
    counters = await buffer.counters()
    forced, late = counters.get("late.forced_early", 0), counters.get("late.too_late", 0)
    assert forced >= 1
    assert forced + late + job.held_rows == n
    got = await aggregates(buffer)
    if "count" in AGGS:
        assert got[("count", T0)] == forced  # the early window has the rows it held
    assert int(str(await buffer.get_meta("windows.cursor"))) >= 0


async def test_reload_with_held_rows(buffer: Buffer) -> None:
    """A profile reload between runs (specs forgotten) keeps the held rows and emits them when final."""
    values = [(T0 + i * 10_000, float(i)) for i in range(WINDOW_MS // 10_000)]
    await buffer.commit_burst(readings(values))
    clock = Clock((T0 + 1000) / 1000)
    job = WindowJob(buffer, lambda: PROFILES, allowed_lateness_ms=0, clock=clock)
    await job.run_once()
    assert job.held_rows == len(values)
    job.reset()
    clock.t = (T0 + WINDOW_MS) / 1000
    assert await job.run_once() == len(AGGS)
    assert job.held_rows == 0

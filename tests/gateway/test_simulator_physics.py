"""Plausible shapes: diurnal temperature, occupancy by timetable, CO2 with lessons, meters, vibration."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np

from gateway.simulator import FaultRates, RoomType, Simulator, Truth, WaveTruth, build_campus
from gateway.simulator.campus import PERIODS
from gateway.simulator.catalog import BY_NAME
from gateway.simulator.physics import RoomModel, outdoor_temperature

MONDAY = 1_725_206_400_000  # 2024-09-02 00:00 +08:00
MIN = 60_000
HOUR = 3_600_000


def _classrooms_with_first_lesson() -> list:
    campus = build_campus(60, seed=5)
    rooms = [r for r in campus.rooms if r.type is RoomType.CLASSROOM and r.timetable[0]
             and r.timetable[0][0].start_min == PERIODS[0][0]]
    assert rooms
    return [(campus, r) for r in rooms]


def test_co2_rises_during_a_lesson_and_falls_after_it() -> None:
    for campus, room in _classrooms_with_first_lesson():
        model = RoomModel(campus, room, MONDAY)
        lesson = room.timetable[0][0]
        start = MONDAY + lesson.start_min * MIN
        end = MONDAY + lesson.end_min * MIN
        before = model.snapshot(start - 10 * MIN).co2
        during = model.snapshot(end - 1 * MIN).co2
        assert before < 520
        assert during > before + 500, (room.id, before, during)
        # after the lesson the room empties and ventilates: CO2 decays towards outdoor levels
        nxt = [le.start_min for le in room.timetable[0] if le.start_min > lesson.end_min]
        after_t = end + (min(9, nxt[0] - lesson.end_min - 1) if nxt else 30) * MIN
        after = model.snapshot(after_t).co2
        assert after < during - 150, (room.id, during, after)


def test_occupancy_follows_the_timetable() -> None:
    for campus, room in _classrooms_with_first_lesson()[:3]:
        lesson = room.timetable[0][0]
        mid = MONDAY + (lesson.start_min + 20) * MIN
        assert campus.occupancy(room, mid) == lesson.attendance
        assert campus.occupancy(room, MONDAY + 3 * HOUR) == 0  # 03:00
        assert campus.occupancy(room, MONDAY + 5 * 24 * HOUR + 10 * HOUR) == 0  # Saturday 10:00


def test_outdoor_temperature_peaks_in_the_afternoon_and_is_seasonal() -> None:
    campus = build_campus(10, seed=1)
    day = [outdoor_temperature(campus, MONDAY + h * HOUR) for h in range(24)]
    assert 13 <= int(np.argmax(day)) <= 17
    assert 3 <= int(np.argmin(day)) <= 7
    january = np.mean([outdoor_temperature(campus, MONDAY - 230 * 24 * HOUR + h * HOUR) for h in range(24)])
    assert np.mean(day) > january + 10


def test_simulated_co2_is_higher_in_lessons_than_at_night() -> None:
    # a whole school day through the devices: CO2 readings of classroom sensors, by hour of the day
    sim = Simulator.build(150, seed=2, start_ms=MONDAY, rate=100, time_scale=1440, mix="z2m_air,cs_am307")
    by_hour: dict[int, list[float]] = defaultdict(list)
    rooms = {d.id: d.room for d in sim.devices}
    for m in sim.messages(until_ms=MONDAY + 24 * HOUR):
        for e in m.expected:
            if isinstance(e, Truth) and e.metric == "co2" and rooms[e.device].type is RoomType.CLASSROOM:
                by_hour[(e.ts_ms - MONDAY) // HOUR].append(e.value)
    night = np.mean(by_hour[2] + by_hour[3])
    lessons = np.mean(by_hour[9] + by_hour[10] + by_hour[15])
    assert night < 550
    assert lessons > night + 300, (night, lessons)


Series = dict[tuple[str, str], list[tuple[int, float, str | None]]]


def _series(sim: Simulator, n: int, metrics: set[str]) -> Series:
    series: Series = defaultdict(list)
    for m in sim.messages(n):
        if m.fault == "duplicates":
            continue
        for e in m.expected:
            if isinstance(e, Truth) and e.metric in metrics:
                series[(e.device, e.metric)].append((m.seq, e.value, m.fault))
    return series


def test_meters_only_go_backwards_at_injected_resets_or_rollovers() -> None:
    counters = {"energy_active_total", "water_volume_total", "people_in_total", "people_out_total", "uptime"}
    mix = "tasmota,shelly,z2m_plug,cs_vs133,cs_vs133_raw,rfid,senml_meter"
    sim = Simulator.build(300, seed=9, start_ms=MONDAY + 7 * HOUR, rate=300, time_scale=600,
                          faults=FaultRates(resets=0.02), mix=mix)
    series = _series(sim, 8000, counters)
    rolled = {r.device for r in sim.ledger if r.kind == "rollover"}
    drops = resets = 0
    for (device, _metric), points in series.items():
        assert len(points) >= 2
        for (_, prev, _), (_, value, fault) in itertools.pairwise(points):
            if value < prev:
                drops += 1
                assert fault == "resets" or device in rolled, (device, _metric, prev, value, fault)
                resets += fault == "resets"
    assert resets > 10
    assert sim.rollovers > 0, "some registers start just below their wrap and roll over"
    assert drops >= resets


def test_energy_counters_grow_with_power() -> None:
    sim = Simulator.build(100, seed=4, start_ms=MONDAY + 8 * HOUR, rate=50, time_scale=60, mix="tasmota_plug")
    series = _series(sim, 3000, {"energy_active_total"})
    grew = [pts[-1][1] - pts[0][1] for pts in series.values()]
    assert all(g >= 0 for g in grew)
    assert sum(g > 0.01 for g in grew) > len(grew) // 2


def test_vibration_waveform_has_the_machine_frequency() -> None:
    sim = Simulator.build(40, seed=6, start_ms=MONDAY + 10 * HOUR, rate=20, mix="vibration")
    checked = 0
    for m in sim.messages(60):
        for w in m.expected:
            if isinstance(w, WaveTruth):
                x = np.asarray(w.samples) - np.mean(w.samples)
                spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
                freqs = np.fft.rfftfreq(len(x), 1 / w.sample_rate_hz)
                peak = freqs[1 + int(np.argmax(spec[1:]))]
                assert math.isclose(peak, w.dominant_hz, abs_tol=w.sample_rate_hz / len(x)), (peak, w.dominant_hz)
                checked += 1
    assert checked > 20
    assert BY_NAME["vibration"].profile == "campus.vibration_node"

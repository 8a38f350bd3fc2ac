"""Physical models of a campus: weather, room air, electricity, water, people flows, machines.

Units are the canonical units of ``device_profiles/metrics.yaml`` (°C, %RH, ppm, µg/m³, dB, lx, W,
kWh, m³, persons). Pure functions of time take epoch milliseconds; :class:`RoomModel` integrates the
quantities with memory (CO2, indoor temperature, energy, water, people crossings) and must be asked
for non-decreasing times, which the simulator guarantees because it emits in time order.

Models, deliberately simple but with the right shapes:

- **Weather**: seasonal mean (Hangzhou-like: 4.5 °C in January, 29 °C in July) plus a diurnal cycle
  peaking at 15:00, day-to-day weather noise, outdoor RH anti-correlated with temperature, outdoor
  PM2.5 as a smooth random walk; daylight from a sine between sunrise and sunset.
- **CO2** (single-zone mass balance): ``dC/dt = G·N·1e6/V − λ·(C − C_out)`` with ``G`` = 5.2e-6 m³/s
  exhaled CO2 per person, ``V`` the room volume and ``λ`` the air-change rate (higher in breaks when
  windows open, low at night); solved exactly per 60 s step with ``N`` held constant. A 45-person
  lesson drives a 220 m³ classroom from ~450 ppm to ~1500 ppm in 45 minutes; it decays after the lesson.
- **Indoor temperature** relaxes (τ = 1.5 h) towards an HVAC setpoint in school hours (20.5 °C heating,
  25.5 °C cooling) or towards a mix of outdoor and building-mass temperature at night, plus up to
  +3 °C from a full room.
- **Humidity** keeps the outdoor vapour pressure plus moisture from occupants; PM2.5 indoors is a
  fraction of outdoors plus resuspension by occupants and cooking in canteens.
- **Electricity**: a base load per room type, lights when occupied and dark, per-person plug loads,
  a projector during lessons, kitchen peaks at meal times, pumps in plant rooms; energy integrates it.
- **Water**: toilets used at lesson changes, kitchens at meal times.
- **People crossings** at entrances: the crossing rate follows the entrance crowd, mostly inwards in
  the morning and outwards in the afternoon.
- **Vibration**: a pump or fan running at a seeded speed: its rotation frequency and harmonics plus
  broadband noise, off outside operating hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.simulator.campus import DAY_S, PERIODS, Campus, Room, RoomType, unit_noise

CO2_OUTDOOR_PPM = 420.0
CO2_PER_PERSON_M3_S = 5.2e-6  # exhaled CO2 of a seated adult (≈ 0.31 L/min)
STEP_S = 60.0  # integration step: occupancy changes over minutes, so 60 s keeps the exact solution close
TEMP_TAU_S = 1.5 * 3600
ACH_LESSON = 3.0  # air changes per hour with doors closed, mechanical ventilation on
ACH_BREAK = 6.0  # windows and doors open between lessons
ACH_NIGHT = 0.4  # infiltration only

# Base electrical load (W) by room type, and per-room extras.
BASE_LOAD_W = {
    RoomType.CLASSROOM: 60.0, RoomType.LAB: 450.0, RoomType.OFFICE: 120.0, RoomType.LIBRARY: 300.0,
    RoomType.CANTEEN: 1500.0, RoomType.GYM: 200.0, RoomType.ENTRANCE: 80.0, RoomType.PLANT: 300.0,
}
LIGHT_W_PER_M2 = 8.0
PLUG_W_PER_PERSON = 12.0
PROJECTOR_W = 260.0
KITCHEN_PEAK_W = 18_000.0
PUMP_W = 5_500.0


# --------------------------------------------------------------------------------------------- time
def local_clock(campus: Campus, ts_ms: int) -> tuple[int, int, float]:
    """(day number, weekday Monday=0, minute of day) in campus local time."""
    local = campus.local_seconds(ts_ms)
    day = math.floor(local / DAY_S)
    return day, (day + 3) % 7, (local - day * DAY_S) / 60.0


def in_break(minute: float) -> bool:
    """Between two lessons of the school day (windows opened, corridors busy)."""
    return any(PERIODS[i][1] <= minute < PERIODS[i + 1][0] for i in range(len(PERIODS) - 1))


def in_school_hours(weekday: int, minute: float) -> bool:
    return weekday < 5 and 7.5 * 60 <= minute < 18 * 60


# ------------------------------------------------------------------------------------------ weather
def _smooth_daily(seed: object, local_s: float, name: str) -> float:
    """A smooth (cosine-interpolated) daily random value in [-1, 1]."""
    x = local_s / DAY_S
    d = math.floor(x)
    f = (1 - math.cos(math.pi * (x - d))) / 2
    a = unit_noise(seed, name, d) * 2 - 1
    b = unit_noise(seed, name, d + 1) * 2 - 1
    return a + (b - a) * f


def _smooth_hourly(seed: object, local_s: float, name: str) -> float:
    x = local_s / 3600.0
    h = math.floor(x)
    f = (1 - math.cos(math.pi * (x - h))) / 2
    a = unit_noise(seed, name, h) * 2 - 1
    b = unit_noise(seed, name, h + 1) * 2 - 1
    return a + (b - a) * f


def day_of_year(local_s: float) -> float:
    return (local_s / DAY_S + 0.0) % 365.2425


def outdoor_temperature(campus: Campus, ts_ms: int) -> float:
    local = campus.local_seconds(ts_ms)
    doy = day_of_year(local)
    seasonal = 16.75 - 12.25 * math.cos(2 * math.pi * (doy - 15) / 365.2425)
    hour = (local % DAY_S) / 3600.0
    diurnal = 4.0 * math.cos(2 * math.pi * (hour - 15.0) / 24.0)
    return seasonal + diurnal + 3.0 * _smooth_daily(campus.seed, local, "weather")


def outdoor_humidity(campus: Campus, ts_ms: int) -> float:
    local = campus.local_seconds(ts_ms)
    hour = (local % DAY_S) / 3600.0
    rh = 72.0 - 14.0 * math.cos(2 * math.pi * (hour - 15.0) / 24.0) + 10.0 * _smooth_daily(campus.seed, local, "rain")
    return min(98.0, max(25.0, rh))


def outdoor_pm25(campus: Campus, ts_ms: int) -> float:
    local = campus.local_seconds(ts_ms)
    daily = _smooth_daily(campus.seed, local, "pm")
    return 35.0 * math.exp(0.6 * daily + 0.25 * _smooth_hourly(campus.seed, local, "pmh"))


def daylight(campus: Campus, ts_ms: int) -> float:
    """0 at night, 1 at a clear noon (sunrise ~06:00, sunset ~18:30)."""
    hour = (campus.local_seconds(ts_ms) % DAY_S) / 3600.0
    if not 6.0 <= hour <= 18.5:
        return 0.0
    clouds = _smooth_daily(campus.seed, campus.local_seconds(ts_ms), "sun")
    return math.sin(math.pi * (hour - 6.0) / 12.5) * (0.75 + 0.25 * clouds)


def saturation_vapour_hpa(temp_c: float) -> float:
    """Magnus formula over water."""
    return 6.112 * math.exp(17.62 * temp_c / (243.12 + temp_c))


def air_pressure(campus: Campus, ts_ms: int) -> float:
    local = campus.local_seconds(ts_ms)
    return 1013.0 + 8.0 * _smooth_daily(campus.seed, local, "pressure") + 0.6 * _smooth_hourly(campus.seed, local, "ph")


# ------------------------------------------------------------------------------------------- rooms
@dataclass(slots=True, frozen=True)
class RoomSnapshot:
    """Everything a sensor in the room could measure at one instant (canonical units)."""

    ts_ms: int
    people: float
    co2: float
    temperature: float
    humidity: float
    pressure: float
    pm2_5: float
    pm10: float
    tvoc: float  # µg/m³
    hcho: float  # µg/m³
    noise: float  # dB(A)
    illuminance: float  # lx
    power_w: float  # whole-room electrical load
    energy_kwh: float  # integral of power_w since the model started
    water_m3: float
    people_in: float  # cumulative crossings since the model started
    people_out: float
    lesson: bool  # a lesson is under way (projector on)


class RoomModel:
    """Integrates one room's state forward in time; ask only for non-decreasing times."""

    def __init__(self, campus: Campus, room: Room, start_ms: int) -> None:
        self.campus = campus
        self.room = room
        self.t_ms = start_ms
        self.co2 = CO2_OUTDOOR_PPM + 30.0 + 40.0 * unit_noise(room.seed, "co2")
        self.temp = self._temp_target(start_ms, 0.0)
        self.energy_kwh = 0.0
        self.water_m3 = 0.0
        self.people_in = 0.0
        self.people_out = 0.0
        self._last: RoomSnapshot | None = None

    # -- drivers (pure functions of time)
    def people(self, ts_ms: int) -> float:
        return self.campus.occupancy(self.room, ts_ms)

    def _ach(self, ts_ms: int) -> float:
        _, weekday, minute = local_clock(self.campus, ts_ms)
        if not in_school_hours(weekday, minute):
            return ACH_NIGHT
        if in_break(minute) and self.room.type in (RoomType.CLASSROOM, RoomType.LAB):
            return ACH_BREAK
        return ACH_LESSON * (1.5 if self.room.type in (RoomType.CANTEEN, RoomType.GYM) else 1.0)

    def _temp_target(self, ts_ms: int, people: float) -> float:
        out = outdoor_temperature(self.campus, ts_ms)
        _, weekday, minute = local_clock(self.campus, ts_ms)
        if in_school_hours(weekday, minute) and self.room.type is not RoomType.PLANT:
            base = 20.5 if out < 16 else 25.5 if out > 26 else 0.5 * out + 0.5 * 22.0
        else:
            base = 0.6 * out + 0.4 * 22.0  # building mass keeps nights milder than outdoors
        if self.room.type is RoomType.PLANT:
            base += 6.0  # motors
        return base + 3.0 * people / max(self.room.capacity, 1)

    def _lesson(self, ts_ms: int) -> bool:
        if self.room.type not in (RoomType.CLASSROOM, RoomType.LAB):
            return False
        _, weekday, minute = local_clock(self.campus, ts_ms)
        return any(lesson.start_min <= minute < lesson.end_min for lesson in self.room.timetable[weekday])

    def power(self, ts_ms: int, people: float) -> float:
        """Electrical load of the room in W."""
        kind = self.room.type
        _, weekday, minute = local_clock(self.campus, ts_ms)
        p = BASE_LOAD_W[kind] * (0.9 + 0.2 * unit_noise(self.room.seed, "base"))
        dark = daylight(self.campus, ts_ms) < 0.5
        if people >= 1 or (kind is RoomType.OFFICE and in_school_hours(weekday, minute)):
            p += LIGHT_W_PER_M2 * self.room.area_m2 * (1.0 if dark else 0.35)
        p += PLUG_W_PER_PERSON * people
        if self._lesson(ts_ms):
            p += PROJECTOR_W
        if kind is RoomType.CANTEEN:
            meals = sum(math.exp(-0.5 * ((minute - centre * 60) / width) ** 2)
                        for centre, width in ((6.9, 30), (11.4, 40), (17.1, 40)))
            p += KITCHEN_PEAK_W * min(1.0, meals)
        if kind is RoomType.PLANT and pump_running(self.campus, ts_ms):
            p += PUMP_W
        return p

    def water_flow(self, ts_ms: int, people: float) -> float:
        """Water use in m³/s (toilets at lesson changes, kitchens at meals, cleaning in the evening)."""
        kind = self.room.type
        _, weekday, minute = local_clock(self.campus, ts_ms)
        if kind is RoomType.CANTEEN:
            return people * 1.2e-5 + (4e-4 if 15 * 60 < minute < 16 * 60 else 0.0)
        if kind is RoomType.ENTRANCE:  # the building's toilets are by the entrance
            return people * 6e-5 if weekday < 5 and in_break(minute) else people * 1e-5
        if kind is RoomType.GYM:
            return people * 2e-5
        if kind is RoomType.LAB:
            return people * 1e-6
        return 0.0

    def crossing_rate(self, ts_ms: int, people: float) -> tuple[float, float]:
        """Persons per second crossing the entrance inwards and outwards."""
        if self.room.type is not RoomType.ENTRANCE:
            return 0.0, 0.0
        _, _, minute = local_clock(self.campus, ts_ms)
        total = people / 45.0  # a crowd of N means about N crossings in the ~45 s a person stays
        inward = 0.85 if minute < 11 * 60 else 0.5 if minute < 15.5 * 60 else 0.2
        return total * inward, total * (1.0 - inward)

    # -- integration
    def advance(self, ts_ms: int) -> None:
        """Integrate state up to ``ts_ms`` (ignored if in the past)."""
        while self.t_ms < ts_ms:
            dt_ms = min(int(STEP_S * 1000), ts_ms - self.t_ms)
            mid = self.t_ms + dt_ms // 2
            dt = dt_ms / 1000.0
            n = self.people(mid)
            lam = self._ach(mid) / 3600.0
            c_ss = CO2_OUTDOOR_PPM + CO2_PER_PERSON_M3_S * n * 1e6 / (self.room.volume_m3 * lam)
            self.co2 = c_ss + (self.co2 - c_ss) * math.exp(-lam * dt)
            t_eq = self._temp_target(mid, n)
            self.temp = t_eq + (self.temp - t_eq) * math.exp(-dt / TEMP_TAU_S)
            self.energy_kwh += self.power(mid, n) * dt / 3.6e6
            self.water_m3 += self.water_flow(mid, n) * dt
            r_in, r_out = self.crossing_rate(mid, n)
            self.people_in += r_in * dt
            self.people_out += r_out * dt
            self.t_ms += dt_ms

    def snapshot(self, ts_ms: int) -> RoomSnapshot:
        """The room's state at ``ts_ms`` (advances the model; cached for repeated asks at one instant)."""
        if self._last is not None and self._last.ts_ms == ts_ms:
            return self._last
        self.advance(ts_ms)
        c, r = self.campus, self.room
        n = self.people(ts_ms)
        out_t = outdoor_temperature(c, ts_ms)
        vapour = outdoor_humidity(c, ts_ms) / 100.0 * saturation_vapour_hpa(out_t)
        vapour += 10.0 * n / max(r.volume_m3, 1.0)  # ≈ +2 hPa for a full classroom
        if r.type is RoomType.CANTEEN:
            vapour += 2.0 * min(1.0, n / max(r.capacity, 1))
        rh = min(95.0, max(15.0, 100.0 * vapour / saturation_vapour_hpa(self.temp)))
        crowd = n / max(r.capacity, 1)
        pm25 = 0.45 * outdoor_pm25(c, ts_ms) + 12.0 * crowd + (25.0 * crowd if r.type is RoomType.CANTEEN else 0.0)
        tvoc = 60.0 + 250.0 * crowd + 40.0 * unit_noise(r.seed, "tvoc", ts_ms // 600_000)
        _, weekday, minute = local_clock(c, ts_ms)
        if n < 0.5:
            noise = 31.0 + (8.0 if r.type is RoomType.PLANT and pump_running(c, ts_ms) else 0.0)
        else:
            noise = 44.0 + 9.0 * math.log10(1.0 + n) + (6.0 if in_break(minute) else 0.0)
        lit = n >= 1 or (r.type is RoomType.OFFICE and in_school_hours(weekday, minute))
        lux = 420.0 * daylight(c, ts_ms) * (0.6 + 0.4 * unit_noise(r.seed, "window")) + (480.0 if lit else 0.0)
        self._last = RoomSnapshot(
            ts_ms=ts_ms, people=n, co2=self.co2, temperature=self.temp, humidity=rh,
            pressure=air_pressure(c, ts_ms), pm2_5=pm25, pm10=pm25 * 1.6 + 5.0, tvoc=tvoc,
            hcho=8.0 + 20.0 * unit_noise(r.seed, "hcho") + 10.0 * crowd, noise=noise, illuminance=lux,
            power_w=self.power(ts_ms, n), energy_kwh=self.energy_kwh, water_m3=self.water_m3,
            people_in=self.people_in, people_out=self.people_out, lesson=self._lesson(ts_ms),
        )
        return self._last


# ----------------------------------------------------------------------------------------- machines
def pump_running(campus: Campus, ts_ms: int) -> bool:
    """Pumps and air-handling fans run 06:00–22:00 on school days, 08:00–18:00 at weekends."""
    _, weekday, minute = local_clock(campus, ts_ms)
    return 6 * 60 <= minute < 22 * 60 if weekday < 5 else 8 * 60 <= minute < 18 * 60


@dataclass(slots=True, frozen=True)
class Machine:
    """A rotating machine (pump or fan) whose vibration a sensor samples."""

    rpm: float  # rotation speed: the dominant frequency is rpm / 60
    amplitude: float  # m/s² of the 1× component
    harmonic: float  # relative amplitude of the 2× component
    noise: float  # m/s² RMS of broadband noise

    @property
    def dominant_hz(self) -> float:
        return self.rpm / 60.0


def machine_for(seed: int) -> Machine:
    """A pump (about 1480 rpm) or a fan (about 740 rpm), from a device seed."""
    if unit_noise(seed, "machine") < 0.6:
        rpm = 1450.0 + 60.0 * unit_noise(seed, "rpm")
    else:
        rpm = 720.0 + 40.0 * unit_noise(seed, "rpm")
    return Machine(rpm=round(rpm, 1), amplitude=0.8 + 1.5 * unit_noise(seed, "amp"),
                   harmonic=0.2 + 0.3 * unit_noise(seed, "harm"), noise=0.05 + 0.1 * unit_noise(seed, "noise"))


def vibration_block(machine: Machine, running: bool, ts_ms: int, n: int, rate_hz: float, seed: int) -> list[float]:
    """``n`` acceleration samples (m/s²) taken at ``rate_hz`` from ``ts_ms``; deterministic per (seed, ts)."""
    import random

    rng = random.Random(f"vib:{seed}:{ts_ms}")
    f0 = machine.dominant_hz
    phase1 = rng.uniform(0, 2 * math.pi)
    phase2 = rng.uniform(0, 2 * math.pi)
    amp = machine.amplitude if running else 0.0
    out = []
    for i in range(n):
        t = i / rate_hz
        x = amp * math.sin(2 * math.pi * f0 * t + phase1)
        x += amp * machine.harmonic * math.sin(2 * math.pi * 2 * f0 * t + phase2)
        x += rng.gauss(0.0, machine.noise if running else 0.01)
        out.append(x)
    return out


# ----------------------------------------------------------------------------------------- swipes
def swipe_intensity(campus: Campus, room: Room, ts_ms: int) -> float:
    """Card swipes per second at a reader in ``room``: peaks before lessons and at opening time."""
    _, weekday, minute = local_clock(campus, ts_ms)
    if weekday >= 5:
        return 0.002 if 8 * 60 <= minute < 18 * 60 else 0.0
    rate = 0.0
    for start, _ in PERIODS:
        rate += 0.25 * math.exp(-0.5 * ((minute - (start - 4)) / 3.0) ** 2)
    rate += 0.4 * math.exp(-0.5 * ((minute - 7.6 * 60) / 12.0) ** 2)
    if 6.5 * 60 <= minute < 22 * 60:
        rate += 0.005
    scale = 1.0 if room.type is RoomType.ENTRANCE else 0.3
    return rate * scale


SWIPE_MAX_PER_S = 0.45  # upper bound of swipe_intensity (thinning needs it)

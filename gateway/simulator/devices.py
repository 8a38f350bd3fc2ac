"""Simulated devices: what each one measures, with its own calibration, noise and counters.

A :class:`Device` sits in a room and turns the room's physical state (:class:`RoomSnapshot`) into the
values its hardware would report, in canonical units, before any format-specific rounding:

- environment sensors add a per-device calibration offset and a little measurement noise;
- energy plugs measure their own appliance (projector, lab fridge, office PC, kitchen equipment, a
  pump) and integrate its power into a kWh register;
- water meters and people counters keep cumulative registers that start at a seeded meter reading
  and may wrap at the register width (``wrap``), or be reset to zero (a ``resets`` fault);
- vibration sensors sample their machine (:mod:`.sensing`).

Randomness comes from the device's own ``random.Random`` seeded from the simulation seed and the
device id, so a device's values do not depend on which other devices exist or which faults fire.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from gateway.simulator.campus import Room, RoomType, unit_noise
from gateway.simulator.physics import Machine, RoomSnapshot


@dataclass(slots=True, eq=False)
class Device:
    """One simulated device. ``id`` is the id the decoder reports for it."""

    id: str
    type_name: str
    room: Room
    seed: int
    names: dict[str, str] = field(default_factory=dict)  # format identifiers: topic name, devEui, app id…
    interval_s: float = 60.0  # nominal reporting interval (simulated seconds)
    rng: random.Random = field(init=False, repr=False)
    state: dict[str, Any] = field(default_factory=dict, repr=False)
    machine: Machine | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"device:{self.seed}:{self.id}")

    def cal(self, name: str, spread: float) -> float:
        """A fixed per-device calibration offset in [-spread, spread]."""
        return (unit_noise(self.seed, self.id, "cal", name) * 2 - 1) * spread

    def noise(self, sigma: float) -> float:
        return self.rng.gauss(0.0, sigma)


# ------------------------------------------------------------------------------------ environment
def light_level(lux: float) -> int:
    """Milesight AM300 light level 0-5 from illuminance (lux bands of the AM307 datasheet)."""
    for level, upper in enumerate((5, 50, 100, 500, 2000)):
        if lux <= upper:
            return level
    return 5


def sense_environment(d: Device, s: RoomSnapshot) -> dict[str, float]:
    """Air and comfort values as a calibrated sensor in the room reads them (canonical units)."""
    temp = s.temperature + d.cal("t", 0.3) + d.noise(0.05)
    rh = min(100.0, max(0.0, s.humidity + d.cal("rh", 2.0) + d.noise(0.3)))
    co2 = max(380.0, s.co2 * (1 + d.cal("co2", 0.03)) + d.noise(8.0))
    tvoc = max(0.0, s.tvoc + d.noise(5.0))
    lux = max(0.0, s.illuminance * (1 + d.cal("lux", 0.1)) + d.noise(3.0))
    return {
        "temperature_air": temp,
        "humidity_rel": rh,
        "pressure_air": s.pressure + d.cal("p", 0.5),
        "co2": co2,
        "tvoc": tvoc,  # µg/m³
        "tvoc_vol": tvoc / 4.5,  # ppb (TVOC mixture, ≈ 4.5 µg/m³ per ppb)
        "tvoc_index": tvoc / 250.0,  # Milesight IAQ index / 100 scale
        "hcho": max(0.0, s.hcho + d.noise(1.0)),  # µg/m³
        "pm2_5": max(0.0, s.pm2_5 * (1 + d.cal("pm", 0.1)) + d.noise(1.0)),
        "pm10": max(0.0, s.pm10 * (1 + d.cal("pm", 0.1)) + d.noise(1.5)),
        "noise_level": s.noise + d.noise(0.8),
        "illuminance": lux,
        "light_level": float(light_level(lux)),
        "occupancy": 1.0 if s.people >= 0.5 else 0.0,
        "temperature_device": s.temperature + 1.5 + d.noise(0.1),
    }


def sense_battery(d: Device, ts_ms: int) -> dict[str, float]:
    """A coin cell draining slowly from a seeded level (percent and volts)."""
    start = d.state.setdefault("battery_start", 60.0 + 40.0 * unit_noise(d.seed, d.id, "batt"))
    t0 = d.state.setdefault("battery_t0", ts_ms)
    level = max(5.0, start - (ts_ms - t0) / 86_400_000 * 0.05)
    return {"battery_level": level, "voltage_battery": 2.7 + 0.0033 * level}


def sense_radio(d: Device) -> dict[str, float]:
    base = 40 + 180 * unit_noise(d.seed, d.id, "lqi")
    return {
        "link_quality": max(0.0, min(255.0, base + d.noise(8.0))),
        "signal_rssi": -60.0 - 50.0 * unit_noise(d.seed, d.id, "rssi") + d.noise(2.0),
        "signal_snr": 9.0 - 12.0 * unit_noise(d.seed, d.id, "snr") + d.noise(1.0),
    }


# -------------------------------------------------------------------------------------- electricity
def appliance_power(d: Device, s: RoomSnapshot, weekday: int, minute: float, pump_on: bool) -> float:
    """Power (W) of the appliance behind a plug, by room type (local ``weekday`` and ``minute`` of day)."""
    kind = d.room.type
    if kind in (RoomType.CLASSROOM, RoomType.GYM):
        return 265.0 + d.noise(4.0) if s.lesson else 6.0 + d.noise(0.3)  # projector / PC
    if kind is RoomType.LAB:  # fridge compressor: 40 % duty over a 40 min cycle
        phase = (s.ts_ms / 60_000 + 40 * unit_noise(d.seed, d.id, "phase")) % 40
        return 145.0 + d.noise(3.0) if phase < 16 else 4.0 + d.noise(0.2)
    if kind is RoomType.OFFICE:
        return 95.0 + d.noise(5.0) if s.people >= 1 else 12.0 + d.noise(0.5)
    if kind is RoomType.CANTEEN:  # rice cooker / urn before meals
        cooking = any(abs(minute - m) < 45 for m in (6.8 * 60, 11.2 * 60, 16.9 * 60)) and weekday < 5
        return 1650.0 + d.noise(20.0) if cooking else 3.0
    if kind is RoomType.PLANT:
        return 1100.0 + d.noise(15.0) if pump_on else 2.0
    return 40.0 + 2.0 * s.people + d.noise(1.0)


def sense_plug(d: Device, s: RoomSnapshot, campus_clock: tuple[int, int, float], running: bool) -> dict[str, float]:
    """Appliance power, mains voltage/current and the plug's kWh register (integrated since start)."""
    _, weekday, minute = campus_clock
    p = max(0.0, appliance_power(d, s, weekday, minute, running))
    volts = 230.0 + d.cal("v", 4.0) + 2.5 * math.sin(s.ts_ms / 3_600_000) + d.noise(0.4)
    pf = 0.95 if p > 100 else 0.6 if p > 5 else 0.3
    last_ts = d.state.get("plug_ts")
    energy = d.state.setdefault("energy_kwh", 50.0 + 2000.0 * unit_noise(d.seed, d.id, "kwh"))
    if last_ts is not None and s.ts_ms > last_ts:
        energy += (p + d.state["plug_p"]) / 2 * (s.ts_ms - last_ts) / 3.6e9
    d.state.update(plug_ts=s.ts_ms, plug_p=p, energy_kwh=energy)
    apparent = p / pf if pf else 0.0
    return {
        "power_active": p,
        "voltage": volts,
        "current": apparent / volts,
        "power_factor": pf,
        "power_apparent": apparent,
        "power_reactive": math.sqrt(max(0.0, apparent**2 - p**2)),
        "frequency": 50.0 + d.noise(0.01),
        "energy_active_total": energy - d.state.get("energy_reset_base", 0.0),
        "switch_state": 1.0,
        "temperature_device": s.temperature + 15.0 + p / 120.0 + d.noise(0.2),  # the relay's own temperature
    }


# ------------------------------------------------------------------------------------- counters
def counter(d: Device, name: str, raw: float, start_span: float, wrap: float | None) -> float:
    """A cumulative register: seeded start reading + ``raw`` since start, minus resets, modulo ``wrap``."""
    start = d.state.setdefault(f"{name}_start", start_span * unit_noise(d.seed, d.id, name))
    value = float(start + raw - d.state.get(f"{name}_reset_base", 0.0))
    if wrap is not None:
        value %= wrap
    d.state[f"{name}_last"] = value
    return value


def reset_counters(d: Device) -> None:
    """Restart every register of ``d`` from zero at its last reported reading (a power-loss reset).

    The next report then shows only what was counted since the previous one.
    """
    if "energy_kwh" in d.state:
        d.state["energy_reset_base"] = d.state["energy_kwh"]
    for key in [k for k in d.state if k.endswith("_last")]:
        name = key[: -len("_last")]
        d.state[f"{name}_reset_base"] = d.state.get(f"{name}_reset_base", 0.0) + d.state[key]
        d.state[f"{name}_was_reset"] = True


__all__ = [
    "Device",
    "counter",
    "light_level",
    "reset_counters",
    "sense_battery",
    "sense_environment",
    "sense_plug",
    "sense_radio",
]

"""What each device type measures at one instant, as a dict of canonical values for its renderer.

Keys are canonical metric names; a few keys starting with ``_`` carry non-reading data (waveform
samples, whether a card was swiped). Counter registers may roll over at their register width: such
wraps are returned in ``rollovers`` so the simulator can log them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from gateway.simulator.campus import Campus, RoomType, unit_noise
from gateway.simulator.devices import (
    Device,
    counter,
    sense_battery,
    sense_environment,
    sense_plug,
    sense_radio,
)
from gateway.simulator.physics import RoomModel, local_clock, machine_for, pump_running, vibration_block

U32 = float(2**32)
NEAR_WRAP_SHARE = 0.25  # of cumulative registers start just below their wrap, so runs show rollovers
VIBRATION_RATE = 3200.0  # Hz: ADXL345 maximum output data rate; the profile's bands reach 1600 Hz
VIBRATION_N = 512


def _start_span(d: Device, name: str, span: float, wrap: float) -> float:
    """A meter's reading when the simulation starts: mostly anywhere in ``span``, sometimes just below ``wrap``."""
    if unit_noise(d.seed, d.id, name, "near") < NEAR_WRAP_SHARE:
        d.state.setdefault(f"{name}_start", wrap - 1 - 40 * unit_noise(d.seed, d.id, name, "gap"))
    return span


def sense(
    d: Device, campus: Campus, room: RoomModel, ts_ms: int, sensing: str, building: Sequence[RoomModel] = (),
) -> tuple[dict[str, Any], list[str]]:
    """Values of device ``d`` at ``ts_ms`` and the registers that rolled over since its last report.

    ``building`` lists the room models of the device's building (for a building's main meter).
    """
    snap = room.snapshot(ts_ms)
    rollovers: list[str] = []
    if sensing == "env":
        v: dict[str, Any] = sense_environment(d, snap)
        v.update(sense_battery(d, ts_ms))
        v.update(sense_radio(d))
        _, weekday, minute = local_clock(campus, ts_ms)
        meals = sum(math.exp(-0.5 * ((minute - m) / 30) ** 2) for m in (7 * 60, 11.8 * 60, 17.5 * 60))
        cooking = meals if d.room.type is RoomType.CANTEEN and weekday < 5 else 0.0
        v["co"] = max(0.0, 0.3 + 4.0 * cooking + d.noise(0.2))
        return v, rollovers
    if sensing == "plug":
        v = sense_plug(d, snap, local_clock(campus, ts_ms), pump_running(campus, ts_ms))
        v.update(sense_radio(d))
        return v, rollovers
    if sensing == "building_meter":  # three-phase main meter: the sum of the building's rooms
        snaps = [r.snapshot(ts_ms) for r in building] or [snap]
        power = sum(s.power_w for s in snaps)
        energy = counter(d, "main_kwh", sum(s.energy_kwh for s in snaps), 5e5, None)
        volts = 230.0 + d.cal("v", 3.0) + d.noise(0.3)
        return {"energy_active_total": energy, "power_active": power + d.noise(5.0), "voltage": volts,
                "current": power / (3 * volts * 0.95)}, rollovers
    if sensing == "water":
        span = _start_span(d, "water_l", 2e6, U32)
        litres = _register(d, "water_l", snap.water_m3 * 1000.0, span, U32, rollovers)
        return {"water_volume_total": litres / 1000.0}, rollovers
    if sensing == "people":
        tin = _register(d, "in", snap.people_in, _start_span(d, "in", 5e4, U32), U32, rollovers)
        tout = _register(d, "out", snap.people_out, _start_span(d, "out", 5e4, U32), U32, rollovers)
        prev_in, prev_out = d.state.get("prev_in", tin), d.state.get("prev_out", tout)
        d.state.update(prev_in=tin, prev_out=tout)
        return {
            "people_in_total": tin, "people_out_total": tout,
            "people_in": min(65535.0, (tin - prev_in) % U32), "people_out": min(65535.0, (tout - prev_out) % U32),
            "people_count": float(min(255, round(snap.people))),
        }, rollovers
    if sensing == "vibration":
        if d.machine is None:
            d.machine = machine_for(int(unit_noise(d.seed, d.id, "machine") * 2**31))
        running = pump_running(campus, ts_ms)
        block = vibration_block(d.machine, running, ts_ms, VIBRATION_N, VIBRATION_RATE, d.seed)
        return {"_samples": block, "_rate": VIBRATION_RATE, "_dominant_hz": d.machine.dominant_hz,
                "_running": running}, rollovers
    if sensing == "card":
        t0 = d.state.setdefault("boot_ms", ts_ms)
        uptime = counter(d, "uptime", (ts_ms - t0) / 1000.0, 30 * 86400.0, None)
        return {"uptime": float(math.floor(uptime)), "_swipe": bool(d.state.get("swipe_now"))}, rollovers
    raise ValueError(f"unknown sensing kind {sensing!r}")


def _register(d: Device, name: str, raw: float, span: float, wrap: float, rollovers: list[str]) -> float:
    """A whole-unit cumulative register; notes a rollover when it wrapped since the last report."""
    prev = d.state.get(f"{name}_last")
    value = float(math.floor(counter(d, name, raw, span, wrap)))
    if prev is not None and value < math.floor(prev) and not d.state.pop(f"{name}_was_reset", False):
        rollovers.append(name)
    return value


class CardPopulation:
    """Synthetic campus cards: 4-byte MIFARE UIDs (hex), synthetic holder names, access states."""

    def __init__(self, seed: int, size: int) -> None:
        rng = random.Random(f"cards:{seed}")
        self.cards: list[dict[str, Any]] = []
        for i in range(size):
            r = rng.random()
            access = "Admin" if r < 0.02 else "Disabled" if r < 0.04 else "Expired" if r < 0.06 else "Always"
            role = "Staff" if i % 12 == 0 else "Student"
            self.cards.append({"uid": f"{rng.getrandbits(32):08x}", "user": f"{role} {i:05d}", "access": access,
                               "known": True})

    def pick(self, rng: random.Random) -> dict[str, Any]:
        """A card presented at a reader: 3 % are unknown tags (access Denied)."""
        if rng.random() < 0.03:
            return {"uid": f"{rng.getrandbits(32):08x}", "user": "Unknown", "access": "Denied", "known": False}
        return rng.choice(self.cards)


__all__ = ["CardPopulation", "sense"]

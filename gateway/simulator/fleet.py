"""Build a fleet: how many devices of each type, in which rooms, reporting how often.

Reporting intervals follow from the requested total rate: every device reports every
``k × nominal_s`` simulated seconds, with ``k`` chosen so that all devices together send ``rate``
messages per real second when simulated time runs ``time_scale`` times faster than real time. So
relative frequencies stay realistic (a Zigbee sensor reports five times as often as a LoRaWAN one)
whatever the load.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence

from gateway.simulator.campus import Campus, RoomType, _largest_remainder, unit_noise
from gateway.simulator.catalog import DeviceType
from gateway.simulator.devices import Device
from gateway.simulator.physics import SWIPE_MAX_PER_S, swipe_intensity

_LOGGER = logging.getLogger(__name__)

ROOMS_PER_DEVICE = 1 / 3  # a campus of 300 devices has about 100 rooms
HEARTBEAT_SHARE = 1 / 6  # of a card reader's messages are heartbeats; the rest are swipes


def rooms_for(n_devices: int) -> int:
    return max(len(RoomType), math.ceil(n_devices * ROOMS_PER_DEVICE))


def build_fleet(campus: Campus, types: Sequence[DeviceType], n_devices: int, seed: int) -> list[Device]:
    """``n_devices`` devices split over ``types`` by share, each in a room its type fits."""
    if n_devices < 1:
        raise ValueError(f"devices: {n_devices} must be at least 1")
    if not types:
        raise ValueError("devices: no device types selected")
    counts = _largest_remainder([t.share for t in types], n_devices)
    rng = random.Random(f"fleet:{seed}")
    devices: list[Device] = []
    used: set[str] = set()
    idx = 0
    for dtype, count in zip(types, counts, strict=True):
        rooms = list(campus.rooms_of(dtype.rooms)) or list(campus.rooms)
        rng.shuffle(rooms)
        for k in range(count):
            room = rooms[k % len(rooms)]
            device_id, names = dtype.namer(idx, room, seed)
            while device_id in used:  # names are seeded hashes: make a clash impossible, not just unlikely
                idx += 1
                device_id, names = dtype.namer(idx, room, seed)
            used.add(device_id)
            devices.append(Device(id=device_id, type_name=dtype.name, room=room, seed=seed, names=names))
            idx += 1
    return devices


def assign_intervals(
    devices: Sequence[Device], types: dict[str, DeviceType], campus: Campus, rate: float, time_scale: float,
) -> float:
    """Set every device's interval from the total ``rate`` (messages per real second); returns ``k``."""
    if rate <= 0:
        raise ValueError(f"rate: {rate!r} must be positive")
    if time_scale <= 0:
        raise ValueError(f"time-scale: {time_scale!r} must be positive")
    target = rate / time_scale  # messages per simulated second, all devices together

    def total(k: float) -> float:
        return sum(1.0 / _interval(types[d.type_name], d, k) for d in devices)

    # Formats with whole-second timestamps cannot report faster than once a second: solve for k with
    # the floor in place (total(k) decreases with k), so the other devices make up the difference.
    lo, hi = 1e-9, 1e9
    for _ in range(200):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if total(mid) > target else (lo, mid)
    k = hi
    if total(k) < 0.99 * target:
        _LOGGER.warning("%d devices cannot send %.0f messages per simulated second; use more devices",
                        len(devices), target)
    means: dict[str, float] = {}
    for d in devices:
        t = types[d.type_name]
        d.interval_s = _interval(t, d, k)
        if t.event_driven:
            d.state["heartbeat_s"] = d.interval_s / HEARTBEAT_SHARE
            if d.room.id not in means:
                means[d.room.id] = mean_swipe_intensity(campus, d)
            mean = means[d.room.id]
            d.state["swipe_scale"] = (1.0 / d.interval_s - 1.0 / d.state["heartbeat_s"]) / mean if mean > 0 else 0.0
    return k


def _interval(t: DeviceType, d: Device, k: float) -> float:
    jitter = 0.9 + 0.2 * unit_noise(d.seed, d.id, "interval")
    return max(t.resolution_ms / 1000.0, t.nominal_s * k * jitter)


def mean_swipe_intensity(campus: Campus, d: Device) -> float:
    """Average physical swipe rate of the reader's room over a week (sampled every 5 minutes)."""
    monday = 4 * 86_400_000 - campus.tz_offset_s * 1000  # 1970-01-05 00:00 local was a Monday
    step = 300_000
    total = sum(swipe_intensity(campus, d.room, monday + i * step) for i in range(7 * 86_400_000 // step))
    return total / (7 * 86_400_000 // step)


def next_swipe(d: Device, campus: Campus, after_ms: int, until_ms: int) -> int | None:
    """The next card swipe strictly after ``after_ms`` and before ``until_ms`` (thinning), or None."""
    scale = d.state.get("swipe_scale", 0.0)
    lam_max = SWIPE_MAX_PER_S * scale
    if lam_max <= 0:
        return None
    t = float(after_ms)
    while True:
        t += d.rng.expovariate(lam_max) * 1000.0
        if t >= until_ms:
            return None
        if d.rng.random() * lam_max < swipe_intensity(campus, d.room, int(t)) * scale:
            at = max(-(-int(t) // 1000) * 1000, after_ms + 1000)  # esp-rfid 'time' is whole seconds
            return at if at < until_ms else None

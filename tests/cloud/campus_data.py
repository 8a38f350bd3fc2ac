"""Raw campus traffic for the demo registry, and the indicators computed from it in plain Python.

The generator produces what gateways upload (readings and events, as the edge sends them, including the
faults the warehouse must handle); ``expected_*`` functions compute the DWS/ADS figures straight from those
raw records with dictionaries and loops, independently of the warehouse's SQL, so a test can compare.

Timeline: 2024-09-01 18:00 to 2024-09-03 06:00, local time UTC+8. 2024-09-02 is a Monday with lessons.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edge_agent.model import Event, ProfileRef
from edge_agent.wire import Batch, decode, encode, factorize

EPOCH = dt.date(1970, 1, 1)
OFFSET_MS = 8 * 3_600_000
HOUR = 3_600_000
DAY_MS = 86_400_000
FIRST_DAY = dt.date(2024, 9, 2)
CAMPUS = "hz-xixi"


def local_ms(day: dt.date, hour: int, minute: int = 0) -> int:
    return (day - EPOCH).days * DAY_MS - OFFSET_MS + hour * HOUR + minute * 60_000


START_MS = local_ms(dt.date(2024, 9, 1), 18)
END_MS = local_ms(dt.date(2024, 9, 3), 6)
MOVE_MS = local_ms(FIRST_DAY, 12)  # aq-mobile: t101 -> l102

# --- the demo registry, restated for the independent computation --------------------------------------
ROOM_BUILDING = {"t101": "bld-teach", "t102": "bld-teach", "t201": "bld-teach", "t301": "bld-teach",
                 "t000": "bld-teach", "l101": "bld-lab", "l102": "bld-lab", "l201": "bld-lab",
                 "l000": "bld-lab"}
ROOM_TYPE = {"t101": "classroom", "t102": "classroom", "l102": "classroom", "t201": "lab", "l101": "lab"}
SEATS = {"t101": 48, "t102": 45, "l102": 50}
FLOOR_AREA = {"bld-teach": 4800.0, "bld-lab": 2600.0}
DEVICE_ROOM = {"aq-t101": "t101", "aq-t102": "t102", "aq-l102": "l102", "pc-t101": "t101", "pc-t102": "t102",
               "pc-l102": "l102", "em-teach": "t000", "em-lab": "l000", "em-t201": "t201", "rfid-t1": "t101"}
REGISTERED = {*DEVICE_ROOM, "aq-mobile"}
MAIN_METERS = {"em-teach", "em-lab"}
GATEWAY = {d: ("gw-lab" if d.endswith("l102") or d == "em-lab" else "gw-teach") for d in REGISTERED}
GATEWAY["aq-ghost"] = "gw-teach"  # not in the registry
PROFILE = {"aq": "z2m_aq_co2@1", "pc": "people_counter@1", "em": "tasmota_energy@1", "rf": "esp_rfid@1"}
CANON_UNIT = {"co2": "ppm", "temperature_air": "Cel", "humidity_rel": "%RH", "people_count": "count",
              "energy_active_total": "kWh"}
TO_CANON = {("Wh", "kWh"): 0.001}
RANGE = {"co2": (0, 40000), "temperature_air": (-40, 85), "humidity_rel": (0, 100),
         "people_count": (0, 10000),
         "energy_active_total": (0, 1e9)}
LESSONS = {"t101": [(8, 12), (14, 17)], "t102": [(8, 11), (13, 16)], "l102": [(9, 11), (15, 18)]}


def room_of(device: str, ts_ms: int) -> str | None:
    if device == "aq-mobile":
        return "t101" if ts_ms < MOVE_MS else "l102"
    return DEVICE_ROOM.get(device)


def local_day(ts_ms: int) -> dt.date:
    return EPOCH + dt.timedelta(days=(ts_ms + OFFSET_MS) // DAY_MS)


def local_hour(ts_ms: int) -> int:
    return ((ts_ms + OFFSET_MS) % DAY_MS) // HOUR


@dataclass(frozen=True, slots=True)
class R:
    """A reading as a gateway uploads it."""

    device: str
    metric: str
    unit: str
    agg: str
    window_s: int
    ts_ms: int
    value: float
    quality: int = 0
    version: int = 0

    @property
    def gateway(self) -> str:
        return GATEWAY[self.device]


@dataclass(frozen=True, slots=True)
class E:
    """An event as a gateway uploads it."""

    device: str
    kind: str
    ts_ms: int
    attrs: tuple[tuple[str, str], ...]

    @property
    def gateway(self) -> str:
        return GATEWAY[self.device]


def _occupied(room: str, ts_ms: int) -> bool:
    if local_day(ts_ms).weekday() >= 5:
        return False
    h = local_hour(ts_ms)
    return any(a <= h < b for a, b in LESSONS.get(room, []))


def generate(seed: int = 7) -> tuple[list[R], list[E]]:
    """About 5,000 readings and a few events with every fault the warehouse handles (see module doc)."""
    rng = np.random.default_rng(seed)
    out: list[R] = []
    for ts in range(START_MS, END_MS, 300_000):  # every 5 minutes
        people = {}
        for room in ("t101", "t102", "l102"):
            people[room] = int(rng.integers(20, SEATS[room] + 1)) if _occupied(room, ts) else 0
            out.append(R(f"pc-{room}", "people_count", "count", "raw", 0, ts, float(people[room])))
        for dev in ("aq-t101", "aq-t102", "aq-l102", "aq-mobile"):
            room = room_of(dev, ts) or ""
            co2 = round(430 + people[room] * 17 + float(rng.normal(0, 40)), 1)
            temp = round(24 + people[room] * 0.04 + float(rng.normal(0, 0.3)), 2)
            if dev == "aq-t102":  # this sensor uploads 5-minute window means and maxima, no raw samples
                out.append(R(dev, "co2", "ppm", "mean", 300, ts, co2))
                out.append(R(dev, "co2", "ppm", "max", 300, ts, co2 + 30))
                out.append(R(dev, "temperature_air", "Cel", "mean", 300, ts, temp))
            else:
                out.append(R(dev, "co2", "ppm", "raw", 0, ts, co2))
                out.append(R(dev, "temperature_air", "Cel", "raw", 0, ts, temp))
        if (ts - START_MS) % 3_600_000 == 0:
            out.append(R("aq-ghost", "co2", "ppm", "raw", 0, ts, 500.0))  # unregistered device
    for dev, unit, scale in (("em-teach", "kWh", 1.0), ("em-lab", "Wh", 1000.0)):
        total = 1000.0 if dev == "em-teach" else 250.0
        for ts in range(START_MS, END_MS, 900_000):  # every 15 minutes
            busy = any(_occupied(r, ts) for r in ("t101", "t102", "l102"))
            total += round(float(rng.uniform(4, 8) if busy else rng.uniform(0.5, 1.5)), 3)
            if dev == "em-teach" and ts == local_ms(FIRST_DAY, 15):
                total = 2.5  # counter reset (meter replaced): the delta is the new reading
            out.append(R(dev, "energy_active_total", unit, "raw", 0, ts, round(total * scale, 3)))
    # faults and corner cases
    out.append(R("aq-t101", "co2", "ppm", "raw", 0, local_ms(FIRST_DAY, 10, 7), 50000.0))  # out of range
    out.append(R("aq-l102", "humidity_rel", "lx", "raw", 0, local_ms(FIRST_DAY, 9, 1), 55.0))  # wrong unit
    late = local_ms(FIRST_DAY, 10)
    v0 = next(r for r in out
              if r.device == "aq-t102" and r.agg == "mean" and r.metric == "co2" and r.ts_ms == late)
    out.append(R("aq-t102", "co2", "ppm", "mean", 300, late, v0.value + 300.0, 16, 1))  # re-versioned window
    events = [E("rfid-t1", "card_swipe", local_ms(FIRST_DAY, h, m),
                (("card", f"h:{hashlib.sha256(f'{h}{m}'.encode()).hexdigest()[:16]}"), ("direction", "in"),
                 ("result", "granted")))
              for h, m in ((7, 50), (7, 55), (13, 40), (18, 5))]
    return out, events


# --- batching ------------------------------------------------------------------------------------------


def make_batch(gateway: str, seq: int, readings: Sequence[R], events: Sequence[E] = ()) -> Batch:
    devices, dev = factorize(r.device for r in readings)
    metrics, met = factorize(r.metric for r in readings)
    units, uni = factorize(r.unit for r in readings)
    profiles, pro = factorize(PROFILE[r.device[:2]] for r in readings)
    aggs, agg = factorize(r.agg for r in readings)
    evs = [Event(e.device, e.kind, e.ts_ms, ProfileRef(*_split(PROFILE[e.device[:2]])), e.attrs)
           for e in events]
    return Batch.from_columns(
        gateway, seq, min([r.ts_ms for r in readings] + [e.ts_ms for e in events]) + 1,
        devices=devices, metrics=metrics, units=units, profiles=profiles, device=dev, metric=met, unit=uni,
        profile=pro, aggs=aggs or ("raw",), agg=agg, window_s=[r.window_s for r in readings],
        ts_ms=[r.ts_ms for r in readings], value=[r.value for r in readings],
        quality=[r.quality for r in readings], version=[r.version for r in readings], events=evs)


def _split(ref: str) -> tuple[str, int]:
    pid, ver = ref.rsplit("@", 1)
    return pid, int(ver)


def batches(readings: Iterable[R], events: Iterable[E], size: int = 300) -> list[tuple[Batch, str]]:
    """Per gateway, in time order, ``size`` readings per batch; (decoded batch, body checksum) pairs.

    Each batch goes through the real wire format (encode → decode) exactly as the API would land it.
    """
    by_gw: dict[str, list[R]] = defaultdict(list)
    ev_gw: dict[str, list[E]] = defaultdict(list)
    for r in readings:
        by_gw[r.gateway].append(r)
    for e in events:
        ev_gw[e.gateway].append(e)
    out = []
    for gw in sorted(by_gw):
        rows = sorted(by_gw[gw], key=lambda r: r.ts_ms)
        evs = sorted(ev_gw[gw], key=lambda e: e.ts_ms)
        chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
        placed: dict[int, list[E]] = defaultdict(list)
        for e in evs:  # each event travels with the first chunk that reaches its time
            k = next((k for k, c in enumerate(chunks) if c[-1].ts_ms >= e.ts_ms), len(chunks) - 1)
            placed[k].append(e)
        for k, chunk in enumerate(chunks):
            out.append(wire_roundtrip(make_batch(gw, k + 1, chunk, placed[k])))
    return out


def wire_roundtrip(batch: Batch) -> tuple[Batch, str]:
    body = encode(batch)
    return decode(body), hashlib.sha256(body).hexdigest()


# --- independent computation -----------------------------------------------------------------------------


def dedupe(arrivals: Iterable[R]) -> list[R]:
    """Keep one reading per (device, metric, agg, window, ts): highest version, then first arrival."""
    best: dict[tuple[str, str, str, int, int], R] = {}
    for r in arrivals:
        key = (r.device, r.metric, r.agg, r.window_s, r.ts_ms)
        if key not in best or r.version > best[key].version:
            best[key] = r
    return list(best.values())


def canonical(r: R) -> float | None:
    """Value in the canonical unit, None when not convertible or out of the plausible range."""
    unit = CANON_UNIT.get(r.metric, r.unit)
    if r.unit == unit:
        v = r.value
    elif (r.unit, unit) in TO_CANON:
        v = r.value * TO_CANON[(r.unit, unit)]
    else:
        return None
    lo, hi = RANGE.get(r.metric, (float("-inf"), float("inf")))
    return v if lo <= v <= hi else None


def _device_hour_means(rows: list[R], metric: str) -> dict[tuple[str, str, int], tuple[float, float, int]]:
    """(room, device, hour) → (mean, max, n) over the device's preferred aggregate (raw, else mean)."""
    groups: dict[tuple[str, str, int, str], list[float]] = defaultdict(list)
    for r in rows:
        room, v = room_of(r.device, r.ts_ms), canonical(r)
        if r.metric != metric or room is None or v is None or r.agg not in ("raw", "mean"):
            continue
        groups[(room, r.device, r.ts_ms - r.ts_ms % HOUR, r.agg)].append(v)
    out = {}
    for (room, dev, hour, agg), vals in groups.items():
        if agg == "mean" and (room, dev, hour, "raw") in groups:
            continue
        out[(room, dev, hour)] = (sum(vals) / len(vals), max(vals), len(vals))
    return out


def env_room_hour(rows: list[R], metric: str) -> dict[tuple[str, int], float]:
    per_room: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (room, _dev, hour), (mean, _mx, _n) in _device_hour_means(rows, metric).items():
        per_room[(room, hour)].append(mean)
    return {k: sum(v) / len(v) for k, v in per_room.items()}


def occ_room_hour(rows: list[R]) -> dict[tuple[str, int], tuple[bool, float]]:
    """(room, hour) → (occupied, mean people over counters)."""
    per_room: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for (room, _dev, hour), (mean, mx, _n) in _device_hour_means(rows, "people_count").items():
        per_room[(room, hour)].append((mean, mx))
    return {k: (max(mx for _, mx in v) > 0, sum(m for m, _ in v) / len(v)) for k, v in per_room.items()}


def expected_co2(rows: list[R]) -> dict[dt.date, tuple[int, int, int, float | None]]:
    """day → (occupied classroom hours, with CO2 data, compliant, rate)."""
    co2, occ = env_room_hour(rows, "co2"), occ_room_hour(rows)
    days = {local_day(h) for _, h in (*co2, *occ)}
    out = {d: [0, 0, 0] for d in days}
    for (room, hour), (occupied, _p) in occ.items():
        if not occupied or ROOM_TYPE.get(room) != "classroom":
            continue
        acc = out[local_day(hour)]
        acc[0] += 1
        if (room, hour) in co2:
            acc[1] += 1
            acc[2] += co2[(room, hour)] <= 1000
    return {d: (o, m, c, c / m if m else None) for d, (o, m, c) in out.items()}


def expected_energy(rows: list[R]) -> dict[tuple[str, dt.date], float]:
    """(building, day) → kWh from main-meter counter deltas (a drop below 10 % of the previous reading is a
    reset and counts the new value; a smaller backwards step counts 0)."""
    out: dict[tuple[str, dt.date], float] = defaultdict(float)
    for meter in MAIN_METERS:
        series = sorted((r.ts_ms, canonical(r)) for r in rows
                        if r.device == meter and r.metric == "energy_active_total" and r.agg == "raw")
        for (_, prev), (ts, v) in itertools.pairwise(series):
            if prev is None or v is None:
                continue
            building = ROOM_BUILDING[room_of(meter, ts) or ""]
            out[(building, local_day(ts))] += v - prev if v >= prev else (v if v < 0.1 * prev else 0.0)
    return dict(out)


def expected_online(rows: list[R], events: list[E]) -> dict[dt.date, tuple[int, int]]:
    """day → (registered devices, registered devices with at least one reading or event)."""
    seen: dict[dt.date, set[str]] = defaultdict(set)
    for r in rows:
        seen[local_day(r.ts_ms)].add(r.device)
    for e in events:
        seen[local_day(e.ts_ms)].add(e.device)
    return {d: (len(REGISTERED), len(devs & REGISTERED)) for d, devs in seen.items()}


def expected_util(rows: list[R]) -> dict[tuple[str, dt.date], tuple[int, float, float | None]]:
    """(room, day) → (occupied hours in 08-22, utilisation, mean people in those hours)."""
    occ = occ_room_hour(rows)
    acc: dict[tuple[str, dt.date], list[float]] = {}
    for (room, hour), (occupied, people) in occ.items():
        key = (room, local_day(hour))
        acc.setdefault(key, [])
        if occupied and 8 <= local_hour(hour) < 22:
            acc[key].append(people)
    return {k: (len(v), len(v) / 14, sum(v) / len(v) if v else None) for k, v in acc.items()}

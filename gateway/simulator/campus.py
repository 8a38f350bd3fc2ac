"""A simulated campus: buildings, rooms with types and timetables, and where people are when.

Everything here is a pure function of the campus layout (built from a seed) and the time: the
occupancy of a room at a given instant does not depend on who asked before. Times are epoch
milliseconds UTC; the campus has a fixed UTC offset (``tz_offset_s``, default China Standard Time)
that gives the local time of day for timetables and for devices that report local time (Tasmota).

Timetable: the usual Chinese school day of 45-minute periods (8 periods, 08:00 to 17:15) on
weekdays. Each classroom teaches a seeded subset of the periods with a seeded attendance; students
arrive in the last minutes before a lesson and leave in the first minutes after it, which is what
makes CO2 and corridor noise rise and fall at lesson changes.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

DAY_S = 86_400
CST_OFFSET_S = 8 * 3600  # Asia/Shanghai has no DST

# (start, end) of each teaching period, in minutes after local midnight.
PERIODS: tuple[tuple[int, int], ...] = (
    (8 * 60, 8 * 60 + 45),
    (8 * 60 + 55, 9 * 60 + 40),
    (10 * 60, 10 * 60 + 45),
    (10 * 60 + 55, 11 * 60 + 40),
    (14 * 60, 14 * 60 + 45),
    (14 * 60 + 55, 15 * 60 + 40),
    (15 * 60 + 50, 16 * 60 + 35),
    (16 * 60 + 45, 17 * 60 + 30),
)
ARRIVE_MIN = 6.0  # students trickle in over the last minutes before a lesson
LEAVE_MIN = 3.0  # and leave within the first minutes after it


class RoomType(StrEnum):
    """What a room is used for; decides its timetable, loads and which devices fit in it."""

    CLASSROOM = "classroom"
    LAB = "lab"
    OFFICE = "office"
    LIBRARY = "library"
    CANTEEN = "canteen"
    GYM = "gym"
    ENTRANCE = "entrance"  # building entrance hall: card readers, people counters
    PLANT = "plant"  # plant room: pumps and fans, meters


# Share of rooms of each type, dimensions (area m², height m), capacity (persons).
ROOM_MIX: tuple[tuple[RoomType, float, float, int], ...] = (
    (RoomType.CLASSROOM, 0.46, 70.0, 45),
    (RoomType.LAB, 0.12, 90.0, 36),
    (RoomType.OFFICE, 0.10, 30.0, 6),
    (RoomType.LIBRARY, 0.05, 400.0, 150),
    (RoomType.CANTEEN, 0.05, 500.0, 300),
    (RoomType.GYM, 0.04, 800.0, 80),
    (RoomType.ENTRANCE, 0.10, 60.0, 40),
    (RoomType.PLANT, 0.08, 40.0, 0),
)
BUILDING_NAMES = ("A", "B", "C", "D", "E", "F", "G", "H")
ROOMS_PER_BUILDING = 24


@functools.lru_cache(maxsize=1 << 16)  # calibrations, daily/hourly weather: the same keys again and again
def unit_noise(*key: object) -> float:
    """A deterministic pseudo-random number in [0, 1) for a key (stable across runs and processes)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


@dataclass(slots=True, frozen=True)
class Lesson:
    """One taught period in one room on one weekday."""

    start_min: int
    end_min: int
    attendance: int  # persons present during the lesson


@dataclass(slots=True, frozen=True)
class Room:
    """A room with its use, size and weekly timetable (``timetable[weekday]`` lessons, Monday = 0)."""

    id: str  # e.g. "A-203"
    building: str
    type: RoomType
    floor: int
    area_m2: float
    height_m: float
    capacity: int
    timetable: tuple[tuple[Lesson, ...], ...] = field(repr=False)
    seed: int = 0

    @property
    def volume_m3(self) -> float:
        return self.area_m2 * self.height_m


@dataclass(slots=True, frozen=True)
class Campus:
    """Buildings and rooms of one simulated campus with its time zone."""

    name: str
    rooms: tuple[Room, ...]
    tz_offset_s: int = CST_OFFSET_S
    seed: int = 0

    def buildings(self) -> tuple[str, ...]:
        return tuple(sorted({r.building for r in self.rooms}))

    def rooms_of(self, kinds: Sequence[RoomType]) -> tuple[Room, ...]:
        return tuple(r for r in self.rooms if r.type in kinds)

    def local_seconds(self, ts_ms: int) -> float:
        """Seconds since the epoch in campus local time (for time of day and weekday)."""
        return ts_ms / 1000.0 + self.tz_offset_s

    def occupancy(self, room: Room, ts_ms: int) -> float:
        """Expected number of persons in ``room`` at ``ts_ms`` (a smooth, deterministic function)."""
        local = self.local_seconds(ts_ms)
        day = math.floor(local / DAY_S)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        minute = (local - day * DAY_S) / 60.0
        return occupancy_at(room, weekday, minute, day)


def occupancy_at(room: Room, weekday: int, minute: float, day: int) -> float:
    """Persons in ``room`` at local ``minute`` of ``weekday`` (see :meth:`Campus.occupancy`)."""
    school_day = weekday < 5
    if room.type in (RoomType.CLASSROOM, RoomType.LAB, RoomType.GYM):
        return _lessons(room.timetable[weekday], minute) if school_day else 0.0
    if room.type is RoomType.OFFICE:
        if not school_day:
            return 0.0
        present = _ramp(minute, 7.5 * 60, 8.0 * 60) - _ramp(minute, 17.5 * 60, 18.25 * 60)
        lunch = 0.6 * (_ramp(minute, 11.75 * 60, 12.0 * 60) - _ramp(minute, 13.25 * 60, 13.5 * 60))
        return room.capacity * 0.8 * max(0.0, present - lunch)
    if room.type is RoomType.LIBRARY:
        open_ = _ramp(minute, 8 * 60, 8.5 * 60) - _ramp(minute, 21 * 60, 21.5 * 60)
        busy = 0.25 + 0.35 * _bump(minute, 12.25 * 60, 50) + 0.5 * _bump(minute, 19.5 * 60, 80)
        return room.capacity * max(0.0, open_) * min(1.0, busy) * (1.0 if school_day else 0.4)
    if room.type is RoomType.CANTEEN:
        meals = (0.35 * _bump(minute, 7.25 * 60, 20) + 1.0 * _bump(minute, 11.9 * 60, 25)
                 + 0.7 * _bump(minute, 17.6 * 60, 25))
        return room.capacity * min(1.0, meals) * (1.0 if school_day else 0.3)
    if room.type is RoomType.ENTRANCE:
        if not school_day:
            return 2.0 * _bump(minute, 10 * 60, 120)
        flow = sum(_bump(minute, s - 3, 3) for s, _ in PERIODS) + sum(_bump(minute, e + 2, 2) for _, e in PERIODS)
        return room.capacity * min(1.0, 0.05 + 0.6 * flow)
    return 0.0  # plant room: nobody


def _lessons(lessons: Sequence[Lesson], minute: float) -> float:
    for lesson in lessons:
        if lesson.start_min - ARRIVE_MIN <= minute < lesson.end_min + LEAVE_MIN:
            arrive = min(1.0, (minute - (lesson.start_min - ARRIVE_MIN)) / ARRIVE_MIN)
            leave = min(1.0, (lesson.end_min + LEAVE_MIN - minute) / LEAVE_MIN)
            return lesson.attendance * max(0.0, min(arrive, leave))
    return 0.0


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 above ``hi``, linear between."""
    return 0.0 if x <= lo else 1.0 if x >= hi else (x - lo) / (hi - lo)


def _bump(x: float, centre: float, width: float) -> float:
    """A Gaussian bump of height 1 and standard deviation ``width``."""
    return math.exp(-0.5 * ((x - centre) / width) ** 2)


def build_campus(n_rooms: int, seed: int = 0, name: str = "Campus", tz_offset_s: int = CST_OFFSET_S) -> Campus:
    """Build ``n_rooms`` rooms (at least one of each type) across buildings, deterministically from ``seed``."""
    n_rooms = max(n_rooms, len(ROOM_MIX))
    rng = random.Random(f"campus:{seed}")
    counts = _largest_remainder([share for _, share, _, _ in ROOM_MIX], n_rooms)
    counts = [max(1, c) for c in counts]
    rooms: list[Room] = []
    index = 0
    for (kind, _, area, capacity), count in zip(ROOM_MIX, counts, strict=True):
        for _ in range(count):
            building = BUILDING_NAMES[(index // ROOMS_PER_BUILDING) % len(BUILDING_NAMES)]
            if index >= ROOMS_PER_BUILDING * len(BUILDING_NAMES):
                building += str(index // (ROOMS_PER_BUILDING * len(BUILDING_NAMES)))
            floor = 1 + (index % ROOMS_PER_BUILDING) // 6
            number = f"{building}-{floor}{index % 6 + 1:02d}"
            room_area = round(area * rng.uniform(0.85, 1.15), 1)
            room_cap = round(capacity * rng.uniform(0.85, 1.1)) if capacity else 0
            height = 4.5 if kind in (RoomType.GYM, RoomType.CANTEEN) else 3.2
            rooms.append(Room(
                id=number, building=building, type=kind, floor=floor, area_m2=room_area, height_m=height,
                capacity=room_cap, timetable=_timetable(kind, room_cap, rng), seed=rng.randrange(2**31),
            ))
            index += 1
    return Campus(name=name, rooms=tuple(rooms), tz_offset_s=tz_offset_s, seed=seed)


def _timetable(kind: RoomType, capacity: int, rng: random.Random) -> tuple[tuple[Lesson, ...], ...]:
    taught = {RoomType.CLASSROOM: 0.8, RoomType.LAB: 0.45, RoomType.GYM: 0.6}.get(kind, 0.0)
    week = []
    for _ in range(7):
        day = tuple(
            Lesson(start, end, max(1, round(capacity * rng.uniform(0.75, 1.0))))
            for start, end in PERIODS if rng.random() < taught
        )
        week.append(day)
    return tuple(week)


def _largest_remainder(shares: Sequence[float], total: int) -> list[int]:
    """Split ``total`` into integers proportional to ``shares`` (Hamilton's method)."""
    s = sum(shares)
    exact = [total * x / s for x in shares]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts

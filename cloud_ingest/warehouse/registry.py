"""The campus registry file (YAML): campuses, buildings, rooms, gateways, profiles, devices, calendar.

Parsed once into frozen values and validated; every error names the file, the field path and the problem,
e.g. ``registry.yaml: devices[3].placements[1].from: must be later than the previous placement``.
The format is documented in docs/warehouse.md ("Registry file"); ``dim_load.apply_registry`` writes it to
the DIM tables.

Device placement (which room a device is in over time) is either ``room: R`` — the current room; when it
differs from the stored one the move is recorded at load time — or ``placements:`` — an explicit history
``[{room: R1}, {room: R2, from: 2024-09-02T12:00:00+08:00}, …]`` that replaces the stored one (use it to
record a move that happened before the registry was updated). A device's first placement is valid from
the beginning of time so readings that arrived before registration conform too.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cloud_ingest.warehouse.dictionary import Dictionary, MetricDef, load_dictionary
from cloud_ingest.warehouse.errors import RegistryError

_LOGGER = logging.getLogger(__name__)

BUILDING_TYPES = ("teaching", "lab", "library", "dorm", "canteen", "admin", "gym", "other")
ROOM_TYPES = ("classroom", "lab", "office", "dorm", "canteen", "library", "meeting", "gym", "plant",
              "corridor", "other")
DEVICE_ROLES = ("sensor", "main", "sub")
SUBJECT_DOMAINS = ("public", "teaching", "research", "service", "management")
PROCESSES = ("env", "energy", "occ", "acs", "iot")
DEFAULT_UTC_OFFSET_MIN = 480  # China Standard Time (no daylight saving)
DEFAULT_OPEN_HOURS = (8, 22)


@dataclass(slots=True, frozen=True)
class Campus:
    id: str
    name: str
    district: str
    utc_offset_min: int
    open_hour: int
    close_hour: int


@dataclass(slots=True, frozen=True)
class Building:
    id: str
    campus_id: str
    name: str
    type: str
    floor_area_m2: float
    floors: int | None


@dataclass(slots=True, frozen=True)
class Room:
    id: str
    building_id: str
    campus_id: str
    name: str
    type: str
    floor: int | None
    area_m2: float | None
    seats: int | None


@dataclass(slots=True, frozen=True)
class Gateway:
    id: str
    campus_id: str
    name: str


@dataclass(slots=True, frozen=True)
class Profile:
    ref: str  # id@version
    id: str
    version: int
    vendor: str
    model: str
    domain: str


@dataclass(slots=True, frozen=True)
class Placement:
    room_id: str
    from_ms: int | None  # None: from the beginning (first placement) / from load time (``room:`` form)


@dataclass(slots=True, frozen=True)
class Device:
    id: str
    name: str
    profile: str
    gateway: str
    role: str
    placements: tuple[Placement, ...]
    explicit: bool  # True: ``placements:`` history given (authoritative); False: ``room:`` (current only)
    authoritative: tuple[str, ...] = ()  # metrics this device is the room's authoritative source for (一数一源)
    parent: str | None = None  # a sub-meter: the main meter it is downstream of (consistency check)


@dataclass(slots=True, frozen=True)
class Calendar:
    start: dt.date | None
    end: dt.date | None
    holidays: frozenset[dt.date]


@dataclass(slots=True, frozen=True)
class Registry:
    file: str
    campuses: tuple[Campus, ...]
    buildings: tuple[Building, ...]
    rooms: tuple[Room, ...]
    gateways: tuple[Gateway, ...]
    profiles: tuple[Profile, ...]
    devices: tuple[Device, ...]
    calendar: Calendar
    dictionary: Dictionary
    # (profile ref, metric) → sample interval declared by the device profile (completeness, docs/quality.md)
    intervals: tuple[tuple[str, str, float], ...] = ()

    def room(self, room_id: str) -> Room:
        return next(r for r in self.rooms if r.id == room_id)

    def campus(self, campus_id: str) -> Campus:
        return next(c for c in self.campuses if c.id == campus_id)


class _Reader:
    """Typed access to one YAML mapping, with errors that carry the file and the field path."""

    def __init__(self, file: str, path: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise RegistryError(file, path, "must be a mapping")
        self.file, self.path, self.raw = file, path, raw

    def fail(self, key: str, problem: str) -> RegistryError:
        return RegistryError(self.file, f"{self.path}.{key}" if self.path else key, problem)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        return str(value)

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in options:
            raise self.fail(key, f"{value!r} is not one of {', '.join(options)}")
        return value

    def number(self, key: str, *, required: bool = False, positive: bool = False) -> float | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise self.fail(key, "missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, not {value!r}")
        if positive and value <= 0:
            raise self.fail(key, f"must be > 0, not {value}")
        return float(value)

    def integer(self, key: str, default: int | None = None, lo: int | None = None,
                hi: int | None = None) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(key, f"{value} is outside {lo}..{hi}")
        return value

    def items(self, key: str, required: bool = False) -> list[_Reader]:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise self.fail(key, "missing")
            return []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        prefix = f"{self.path}.{key}" if self.path else key
        return [_Reader(self.file, f"{prefix}[{i}]", v) for i, v in enumerate(value)]


def _time_ms(r: _Reader, key: str, offset_min: int) -> int | None:
    """An ISO 8601 time (naive: campus local time) or a date (local midnight) → epoch ms."""
    value = r.raw.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise r.fail(key, f"{value!r} is not an ISO 8601 time") from exc
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise r.fail(key, f"must be an ISO 8601 time, not {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset_min)))
    return int(value.timestamp() * 1000)


def _date(r: _Reader, key: str, value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise r.fail(key, f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _unique(file: str, kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise RegistryError(file, kind, f"id {i!r} is defined twice")
        seen.add(i)


def _campuses(root: _Reader) -> tuple[list[Campus], list[Building], list[Room], list[Gateway]]:
    campuses, buildings, rooms, gateways = [], [], [], []
    for c in root.items("campuses", required=True):
        open_hours = c.raw.get("open_hours", list(DEFAULT_OPEN_HOURS))
        if (not isinstance(open_hours, list) or len(open_hours) != 2
                or not all(isinstance(h, int) and 0 <= h <= 24 for h in open_hours)
                or open_hours[0] >= open_hours[1]):
            raise c.fail("open_hours", f"must be [open, close] hours with 0 <= open < close <= 24, "
                                       f"not {open_hours!r}")
        campus = Campus(c.text("id"), c.text("name"), c.text("district", ""),
                        c.integer("utc_offset_min", DEFAULT_UTC_OFFSET_MIN, -720, 840) or 0,
                        open_hours[0], open_hours[1])
        if campus.utc_offset_min % 60:
            raise c.fail("utc_offset_min", "must be a whole number of hours (hourly summaries are UTC hours)")
        campuses.append(campus)
        for b in c.items("buildings"):
            building = Building(b.text("id"), campus.id, b.text("name"), b.choice("type", BUILDING_TYPES),
                                b.number("floor_area_m2", required=True, positive=True) or 0.0,
                                b.integer("floors", None, 1, 300))
            buildings.append(building)
            for r in b.items("rooms"):
                rooms.append(Room(r.text("id"), building.id, campus.id, r.text("name"),
                                  r.choice("type", ROOM_TYPES), r.integer("floor", None, -10, 300),
                                  r.number("area_m2", positive=True), r.integer("seats", None, 0, 100000)))
        for g in c.items("gateways"):
            gateways.append(Gateway(g.text("id"), campus.id, g.text("name", g.text("id"))))
    return campuses, buildings, rooms, gateways


def _devices(root: _Reader, rooms: dict[str, Room], offsets: dict[str, int], gateways: set[str],
             profiles: set[str]) -> list[Device]:
    devices = []
    for d in root.items("devices"):
        gateway = d.text("gateway")
        if gateway not in gateways:
            raise d.fail("gateway", f"unknown gateway {gateway!r}")
        profile = d.text("profile")
        if profiles and profile not in profiles:
            raise d.fail("profile", f"unknown profile {profile!r} (declare it under profiles:)")
        if ("room" in d.raw) == ("placements" in d.raw):
            raise d.fail("room", "give exactly one of room: (current room) or placements: (history)")
        placements: list[Placement] = []
        if "room" in d.raw:
            room = d.text("room")
            if room not in rooms:
                raise d.fail("room", f"unknown room {room!r}")
            placements.append(Placement(room, None))
        else:
            items = d.items("placements", required=True)
            if not items:
                raise d.fail("placements", "must not be empty")
            for i, p in enumerate(items):
                room = p.text("room")
                if room not in rooms:
                    raise p.fail("room", f"unknown room {room!r}")
                since = _time_ms(p, "from", offsets[rooms[room].campus_id])
                if i and since is None:
                    raise p.fail("from", "missing (only the first placement may omit it)")
                if i and placements[-1].from_ms is not None and since is not None \
                        and since <= placements[-1].from_ms:
                    raise p.fail("from", "must be later than the previous placement")
                placements.append(Placement(room, since))
        auth = d.raw.get("authoritative", [])
        if not isinstance(auth, list) or not all(isinstance(m, str) and m for m in auth):
            raise d.fail("authoritative", f"must be a list of metric names, not {auth!r}")
        role = d.choice("role", DEVICE_ROLES, "sensor")
        parent = d.text("parent") if "parent" in d.raw else None
        if parent is not None and role != "sub":
            raise d.fail("parent", "only a sub-meter (role: sub) names the main meter it is downstream of")
        devices.append(Device(d.text("id"), d.text("name", d.text("id")), profile, gateway, role,
                              tuple(placements), "placements" in d.raw, tuple(auth), parent))
    by_id = {dev.id: dev for dev in devices}
    owner: dict[tuple[str, str], str] = {}
    for i, dev in enumerate(devices):
        r = root.items("devices")[i]
        if dev.parent is not None and (dev.parent not in by_id or by_id[dev.parent].role != "main"):
            raise r.fail("parent", f"{dev.parent!r} is not a device with role: main")
        for metric in dev.authoritative:
            key = (dev.placements[-1].room_id, metric)
            if key in owner:
                raise r.fail("authoritative", f"room {key[0]!r} already has {owner[key]!r} as the authoritative "
                                              f"source of {metric!r} (one source per datum)")
            owner[key] = dev.id
    return devices


def parse_registry(raw: Any, file: str, *, dictionary: Dictionary | None = None) -> Registry:
    """Validate a parsed registry document; raise :class:`RegistryError` naming the first problem."""
    root = _Reader(file, "", raw)
    version = root.integer("version", 1)
    if version != 1:
        raise root.fail("version", f"unsupported registry version {version} (this program reads 1)")
    campuses, buildings, rooms, gateways = _campuses(root)
    for kind, ids in (("campuses", [c.id for c in campuses]), ("buildings", [b.id for b in buildings]),
                      ("rooms", [r.id for r in rooms]), ("gateways", [g.id for g in gateways])):
        _unique(file, kind, ids)
    profiles = []
    for p in root.items("profiles"):
        ref = p.text("ref")
        if "@" not in ref or not ref.rsplit("@", 1)[1].isdigit():
            raise p.fail("ref", f"{ref!r} must be <profile id>@<version>")
        pid, ver = ref.rsplit("@", 1)
        profiles.append(Profile(ref, pid, int(ver), p.text("vendor", "-"), p.text("model", "-"),
                                p.choice("domain", SUBJECT_DOMAINS, "public")))
    _unique(file, "profiles", [p.ref for p in profiles])
    offsets = {c.id: c.utc_offset_min for c in campuses}
    devices = _devices(root, {r.id: r for r in rooms}, offsets, {g.id for g in gateways},
                       {p.ref for p in profiles})
    _unique(file, "devices", [d.id for d in devices])
    cal = root.raw.get("calendar") or {}
    cr = _Reader(file, "calendar", cal)
    start = _date(cr, "from", cal["from"]) if "from" in cal else None
    end = _date(cr, "to", cal["to"]) if "to" in cal else None
    if start and end and end < start:
        raise cr.fail("to", "is before from")
    holidays: set[dt.date] = set()
    for i, h in enumerate(cal.get("holidays") or []):
        if isinstance(h, list) and len(h) == 2:  # an inclusive range [first, last]
            first, last = _date(cr, f"holidays[{i}]", h[0]), _date(cr, f"holidays[{i}]", h[1])
            holidays.update(first + dt.timedelta(days=k) for k in range((last - first).days + 1))
        else:
            holidays.add(_date(cr, f"holidays[{i}]", h))
    dictionary = dictionary or load_dictionary(_metrics_path(root))
    extra = []
    for code, k in (root.raw.get("event_kinds") or {}).items():
        kr = _Reader(file, f"event_kinds.{code}", k or {})
        process = kr.choice("process", PROCESSES, "iot")
        extra.append(MetricDef(str(code), kr.text("name_zh", str(code)), "", process, "event"))
    if extra:
        known = {e.code for e in extra}
        dictionary = Dictionary((*(m for m in dictionary.metrics if m.code not in known), *extra),
                                dictionary.units, dictionary.source)
    known_metrics = {m.code for m in dictionary.metrics}
    for i, dev in enumerate(devices):
        for metric in dev.authoritative:
            if metric not in known_metrics:
                raise root.items("devices")[i].fail("authoritative", f"unknown metric {metric!r} (not in the "
                                                                     "metrics registry)")
    return Registry(file, tuple(campuses), tuple(buildings), tuple(rooms), tuple(gateways), tuple(profiles),
                    tuple(devices), Calendar(start, end, frozenset(holidays)), dictionary,
                    _profile_intervals(root, {p.ref for p in profiles}))


DEFAULT_PROFILES_DIR = Path(__file__).resolve().parents[2] / "device_profiles"


def _profile_intervals(root: _Reader, refs: set[str]) -> tuple[tuple[str, str, float], ...]:
    """Each declared profile's metric sample intervals, read from the device profiles (``profiles_dir``).

    The directory defaults to the repository's device_profiles/. Profiles that are not there (or a directory
    that does not load) give no intervals: completeness then uses the series' own cadence (docs/quality.md).
    """
    from edge_agent.profiles import ProfileSet  # the edge's profile loader: one definition of a profile

    value = root.raw.get("profiles_dir")
    path = DEFAULT_PROFILES_DIR if value is None else Path(str(value))
    if not path.is_absolute():
        path = Path(root.file).resolve().parent / path
    if not path.is_dir():
        if value is not None:
            raise root.fail("profiles_dir", f"{str(path)!r} is not a directory")
        return ()
    try:
        loaded = ProfileSet.load(path, timezone="UTC")
    except Exception as exc:  # a broken profile file is the edge's error to report (check-profiles)
        _LOGGER.warning("device profiles in %s not loaded (%s); completeness uses series cadence", path, exc)
        return ()
    return tuple(sorted((str(p.ref), m.name, float(m.interval_s)) for p in loaded.profiles
                        if str(p.ref) in refs for m in p.metrics if m.interval_s))


def _metrics_path(root: _Reader) -> Path | None:
    value = root.raw.get("metrics_file")
    if value is None:
        return None
    path = Path(str(value))
    return path if path.is_absolute() else Path(root.file).resolve().parent / path


def load_registry_file(path: str | Path, *, dictionary: Dictionary | None = None) -> Registry:
    """Read and validate a registry YAML file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(str(p), "", f"cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(str(p), "", f"not valid YAML: {exc}") from exc
    return parse_registry(raw, str(p), dictionary=dictionary)

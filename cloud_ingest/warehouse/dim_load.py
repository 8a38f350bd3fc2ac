"""Write a validated registry (and the metric dictionary) to the DIM tables, in one transaction.

Type 1 (overwrite) for campus, building, room, gateway, profile, metric, unit; type 2 for devices: the
device's placements become rows valid ``[valid_from_ms, valid_to_ms)``. With ``room:`` a changed room
closes the current row at load time and opens a new one, so history stays where it was; with
``placements:`` the given history replaces the stored one. A device missing from the file is closed at
load time (decommissioned), its history kept.

Re-conformance: when a device's placements or role change (or it is new), its DWD rows already processed
are rebuilt from ODS with the new dimension rows (same code path as the DWD transform) and the campus days
they touch, before and after, are recorded in ``meta_etl_dirty_day_log`` with a fresh change id, so the next
transform run recomputes those DWS/ADS days. Changed campus/building/room attributes mark every day of
that campus that has data.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from cloud_ingest.warehouse.adapter import Session
from cloud_ingest.warehouse.dictionary import Dictionary
from cloud_ingest.warehouse.registry import Registry
from cloud_ingest.warehouse.sqlutil import insert_rows
from cloud_ingest.warehouse.transforms.base import Context
from cloud_ingest.warehouse.transforms.dim_date import DATE_COLUMNS, date_row
from cloud_ingest.warehouse.transforms.dwd import FAR_FUTURE_MS, PROCESS_TABLES, dwd_acs_events, dwd_readings

_LOGGER = logging.getLogger(__name__)

DEVICE_COLUMNS = ("device_id", "valid_from_ms", "valid_to_ms", "is_current", "device_name", "device_role",
                  "profile_ref", "gateway_id", "room_id", "building_id", "campus_id", "parent_device_id")
_DWD_TABLES = (*PROCESS_TABLES.values(), "dwd_acs_event_di")


@dataclass(slots=True, frozen=True)
class RegistryReport:
    """What a registry load changed."""

    campuses: int
    buildings: int
    rooms: int
    gateways: int
    devices: int
    device_rows: int  # SCD2 rows after the load
    moved: tuple[str, ...]  # devices whose placement history or role changed (or that are new)
    closed: tuple[str, ...]  # devices missing from the file, closed at load time
    dirty_days: int  # campus days queued for recomputation
    source: str  # dictionary source (metrics.yaml path or "built-in")


def write_dictionary(session: Session, dictionary: Dictionary) -> None:
    """Replace ``dim_iot_metric`` and ``dim_pub_unit`` with ``dictionary``."""
    session.execute("DELETE FROM dim_iot_metric")
    insert_rows(session, "dim_iot_metric", ("metric_code", "metric_name", "unit_code", "process_code",
                                            "metric_type", "range_min", "range_max"),
                [(m.code, m.name_zh, m.unit or None, m.process, m.type, m.range_min, m.range_max)
                 for m in dictionary.metrics])
    session.execute("DELETE FROM dim_pub_unit")
    insert_rows(session, "dim_pub_unit", ("unit_code", "base_unit_code", "scale_factor", "offset_val"),
                [(u.code, u.base, u.factor, u.offset) for u in dictionary.units])


def _device_rows(reg: Registry, old: dict[str, list[tuple[Any, ...]]], now_ms: int) -> list[tuple[Any, ...]]:
    """SCD2 rows (valid_from, valid_to, room) per device, merging the file with the stored history."""
    out: list[tuple[Any, ...]] = []
    for d in reg.devices:
        spans: list[tuple[int, int, str]]
        history = sorted(old.get(d.id, []))
        if d.explicit:
            starts = [p.from_ms if p.from_ms is not None else 0 for p in d.placements]
            ends = [*starts[1:], FAR_FUTURE_MS]
            spans = [(s, e, p.room_id) for s, e, p in zip(starts, ends, d.placements, strict=True)]
        elif not history:
            spans = [(0, FAR_FUTURE_MS, d.placements[0].room_id)]
        else:
            spans = [(int(f), int(t), str(r)) for f, t, r in history]
            cur_from, cur_to, cur_room = spans[-1]
            room = d.placements[0].room_id
            if cur_to != FAR_FUTURE_MS or cur_room != room:
                if now_ms <= cur_from:  # moved again before the last move took effect: replace it
                    spans[-1] = (cur_from, FAR_FUTURE_MS, room)
                else:
                    spans[-1] = (cur_from, max(min(cur_to, now_ms), cur_from + 1), cur_room)
                    spans.append((spans[-1][1], FAR_FUTURE_MS, room))
        for start, end, room_id in spans:
            place = reg.room(room_id)
            out.append((d.id, start, end, start <= now_ms < end, d.name, d.role, d.profile, d.gateway,
                        place.id, place.building_id, place.campus_id, d.parent))
    return out


def _days(session: Session, devices: str) -> set[tuple[str, dt.date]]:
    keys: set[tuple[str, dt.date]] = set()
    for table in _DWD_TABLES:
        keys.update((str(c), d) for c, d in session.fetchall(
            f"SELECT DISTINCT campus_id, dt FROM {table} WHERE campus_id IS NOT NULL "
            f"AND device_id IN (SELECT device_id FROM {devices})"))
    return keys


def _reconform(session: Session, devices: list[str], now_ms: int) -> set[tuple[str, dt.date]]:
    """Rebuild the DWD rows of ``devices`` from ODS up to the DWD watermarks; return touched campus days."""
    session.execute("DROP TABLE IF EXISTS tmp_reg_dev")
    session.execute("CREATE TEMP TABLE tmp_reg_dev (device_id VARCHAR)")
    insert_rows(session, "tmp_reg_dev", ("device_id",), [(d,) for d in devices])
    before = _days(session, "tmp_reg_dev")
    for table in _DWD_TABLES:
        session.execute(f"DELETE FROM {table} WHERE device_id IN (SELECT device_id FROM tmp_reg_dev)")
    marks = dict(session.fetchall("SELECT transform_name, watermark_id FROM meta_etl_watermark_cur"))
    # imported here: governance reads the warehouse schema, so a module-level import would be circular
    from cloud_ingest.governance.dictionary import dictionary_version

    dict_ver = dictionary_version()  # re-conformed rows are conformed under today's dictionary
    for name, fn in (("dwd_reading", dwd_readings), ("dwd_acs_event", dwd_acs_events)):
        wm = int(marks.get(name, 0))
        if wm > 0:
            fn(Context(session, 0, wm, "registry", now_ms, dict_ver), device_filter="tmp_reg_dev")
    after = _days(session, "tmp_reg_dev")
    session.execute("DROP TABLE tmp_reg_dev")
    return before | after


def _snapshot(session: Session, table: str, order: str) -> list[tuple[Any, ...]]:
    return session.fetchall(f"SELECT * FROM {table} ORDER BY {order}")


def apply_registry(session: Session, reg: Registry, now_ms: int) -> RegistryReport:
    """Write ``reg`` to the DIM tables inside the caller's transaction (see the module docstring).

    The caller holds the run lock and, for the change id it draws, the landing guard.
    """
    old_devices: dict[str, list[tuple[Any, ...]]] = {}
    old_roles: dict[str, tuple[Any, ...]] = {}  # role, parent meter, authoritative metrics: a change re-conforms
    old_auth: dict[str, set[str]] = {}
    for dev, metric in session.fetchall("SELECT device_id, metric_code FROM dim_iot_authority"):
        old_auth.setdefault(str(dev), set()).add(str(metric))
    for dev, start, end, room, role, parent in session.fetchall(
            "SELECT device_id, valid_from_ms, valid_to_ms, room_id, device_role, parent_device_id FROM dim_iot_device"):
        old_devices.setdefault(str(dev), []).append((int(start), int(end), str(room)))
        old_roles[str(dev)] = (str(role), parent, frozenset(old_auth.get(str(dev), ())))
    old_places = {k: _snapshot(session, t, o) for k, t, o in (
        ("campus", "dim_pub_campus", "campus_id"), ("building", "dim_pub_building", "building_id"),
        ("room", "dim_pub_room", "room_id"))}

    write_dictionary(session, reg.dictionary)
    tables: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = [
        ("dim_pub_campus", ("campus_id", "campus_name", "district_name", "utc_offset_min", "open_hour",
                            "close_hour"),
         [(c.id, c.name, c.district, c.utc_offset_min, c.open_hour, c.close_hour) for c in reg.campuses]),
        ("dim_pub_building", ("building_id", "campus_id", "building_name", "building_type", "floor_area_m2",
                              "floor_cnt"),
         [(b.id, b.campus_id, b.name, b.type, b.floor_area_m2, b.floors) for b in reg.buildings]),
        ("dim_pub_room", ("room_id", "building_id", "campus_id", "room_name", "room_type", "floor_no",
                          "room_area_m2", "seat_cnt"),
         [(r.id, r.building_id, r.campus_id, r.name, r.type, r.floor, r.area_m2, r.seats)
          for r in reg.rooms]),
        ("dim_iot_gateway", ("gateway_id", "campus_id", "gateway_name"),
         [(g.id, g.campus_id, g.name) for g in reg.gateways]),
        ("dim_iot_profile", ("profile_ref", "profile_id", "profile_ver", "vendor_name", "model_name",
                             "subject_domain"),
         [(p.ref, p.id, p.version, p.vendor, p.model, p.domain) for p in reg.profiles]),
    ]
    for table, cols, rows in tables:
        session.execute(f"DELETE FROM {table}")
        insert_rows(session, table, cols, rows)

    rows = _device_rows(reg, old_devices, now_ms)
    listed = {d.id for d in reg.devices}
    closed = []
    for dev, spans in old_devices.items():  # decommissioned: keep history, close the open row
        if dev in listed:
            continue
        old_rows = session.fetchall(
            f"SELECT {', '.join(DEVICE_COLUMNS)} FROM dim_iot_device WHERE device_id = ?", (dev,))
        for r in old_rows:
            end = min(int(r[2]), max(now_ms, int(r[1]) + 1))
            rows.append((r[0], r[1], end, int(r[1]) <= now_ms < end, *r[4:]))
        if any(end == FAR_FUTURE_MS for _, end, _ in spans):
            closed.append(dev)
    session.execute("DELETE FROM dim_iot_device")
    insert_rows(session, "dim_iot_device", DEVICE_COLUMNS, rows)
    old_intervals = {tuple(r) for r in session.fetchall(
        "SELECT profile_ref, metric_code, interval_s FROM dim_iot_profile_metric")}
    session.execute("DELETE FROM dim_iot_profile_metric")
    insert_rows(session, "dim_iot_profile_metric", ("profile_ref", "metric_code", "interval_s"), reg.intervals)
    session.execute("DELETE FROM dim_iot_authority")
    insert_rows(session, "dim_iot_authority", ("device_id", "metric_code"),
                [(d.id, m) for d in reg.devices for m in d.authoritative])

    new_spans: dict[str, list[tuple[int, int, str]]] = {}
    for r in rows:
        new_spans.setdefault(r[0], []).append((int(r[1]), int(r[2]), str(r[8])))
    moved = sorted(d.id for d in reg.devices
                   if sorted(new_spans.get(d.id, [])) != sorted(old_devices.get(d.id, []))
                   or old_roles.get(d.id) != (d.role, d.parent, frozenset(d.authoritative)))

    new_places = {k: _snapshot(session, t, o) for k, t, o in (
        ("campus", "dim_pub_campus", "campus_id"), ("building", "dim_pub_building", "building_id"),
        ("room", "dim_pub_room", "room_id"))}
    changed_campuses = {str(row[0]) for row in set(old_places["campus"]) ^ set(new_places["campus"])}
    changed_campuses |= {str(row[1]) for row in set(old_places["building"]) ^ set(new_places["building"])}
    changed_campuses |= {str(row[2]) for row in set(old_places["room"]) ^ set(new_places["room"])}
    changed_campuses -= {c for c in changed_campuses if c not in {x.id for x in reg.campuses}}

    dirty = _reconform(session, moved, now_ms) if moved else set()
    had_campuses = bool(old_places["campus"])
    if changed_campuses and had_campuses:
        for campus in sorted(changed_campuses):
            dirty.update((campus, d) for (d,) in session.fetchall(
                "SELECT DISTINCT dt FROM dws_iot_device_1d WHERE campus_id = ?", (campus,)))
    # a corrected profile interval changes what completeness expects: recompute its devices' days
    for ref in sorted({str(r[0]) for r in old_intervals ^ {tuple(x) for x in reg.intervals}}):
        dirty.update((str(c), d) for c, d in session.fetchall(
            "SELECT DISTINCT s.campus_id, s.dt FROM dws_iot_device_1d s JOIN dim_iot_device v "
            "ON v.device_id = s.device_id WHERE v.profile_ref = ?", (ref,)))
    if dirty:
        change_id = int(session.fetch_one_value("SELECT nextval('meta_etl_load_id_seq')"))
        insert_rows(session, "meta_etl_dirty_day_log", ("load_id", "campus_id", "dt", "reason_text"),
                    [(change_id, c, d, f"registry {reg.file}") for c, d in sorted(dirty)])

    cal = reg.calendar
    if cal.start and cal.end:
        session.execute("DELETE FROM dim_pub_date WHERE dt >= ? AND dt <= ?", (cal.start, cal.end))
        days = [cal.start + dt.timedelta(days=i) for i in range((cal.end - cal.start).days + 1)]
        insert_rows(session, "dim_pub_date", DATE_COLUMNS, [date_row(d, d in cal.holidays) for d in days])
    _LOGGER.info("registry %s loaded: %s devices, %s moved, %s closed, %s campus days to recompute",
                 reg.file, len(reg.devices), len(moved), len(closed), len(dirty))
    return RegistryReport(len(reg.campuses), len(reg.buildings), len(reg.rooms), len(reg.gateways),
                          len(reg.devices), len(rows), tuple(moved), tuple(closed), len(dirty),
                          reg.dictionary.source)

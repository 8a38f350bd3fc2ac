"""The registry file: validation errors that name file, field and problem; SCD2 device placements; loading
after data arrived re-conforms the data and gives the same summaries as loading first."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_ingest.warehouse import RegistryError, Warehouse, open_warehouse
from cloud_ingest.warehouse.registry import load_registry_file, parse_registry
from cloud_ingest.warehouse.transforms.dwd import FAR_FUTURE_MS
from tests.cloud import campus_data as cd
from tests.cloud.test_warehouse_transforms import SUMMARY_TABLES, land_all, table


@pytest.fixture
def demo(registry_demo: Path) -> dict[str, Any]:
    return yaml.safe_load(registry_demo.read_text(encoding="utf-8"))


def write(tmp_path: Path, doc: dict[str, Any], name: str = "reg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return p


def test_demo_registry_is_valid(registry_demo: Path) -> None:
    reg = load_registry_file(registry_demo)
    assert (len(reg.campuses), len(reg.buildings), len(reg.rooms), len(reg.gateways), len(reg.devices)) == (
        1, 2, 9, 2, 11)
    assert {b.id: b.floor_area_m2 for b in reg.buildings} == cd.FLOOR_AREA
    mobile = next(d for d in reg.devices if d.id == "aq-mobile")
    assert [(p.room_id, p.from_ms) for p in mobile.placements] == [("t101", None), ("l102", cd.MOVE_MS)]
    assert len(reg.calendar.holidays) == 3
    codes = {m.code for m in reg.dictionary.metrics}
    assert codes >= {"co2", "people_count", "energy_active_total", "card_swipe"}


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "message"), [
    (("campuses", 0, "buildings", 0, "floor_area_m2"), _DELETE, "campuses[0].buildings[0].floor_area_m2: "
                                                                "missing"),
    (("campuses", 0, "buildings", 0, "floor_area_m2"), -5, "floor_area_m2: must be > 0"),
    (("campuses", 0, "buildings", 1, "rooms", 0, "type"), "ballroom", "rooms[0].type: 'ballroom' is not one "
                                                                      "of"),
    (("campuses", 0, "buildings", 1, "rooms", 1, "id"), "t101", "rooms: id 't101' is defined twice"),
    (("campuses", 0, "open_hours"), [22, 8], "campuses[0].open_hours: must be [open, close]"),
    (("campuses", 0, "utc_offset_min"), 330, "utc_offset_min: must be a whole number of hours"),
    (("devices", 0, "room"), "nowhere", "devices[0].room: unknown room 'nowhere'"),
    (("devices", 0, "gateway"), "gw-x", "devices[0].gateway: unknown gateway 'gw-x'"),
    (("devices", 0, "profile"), "nope@1", "devices[0].profile: unknown profile 'nope@1'"),
    (("devices", 0, "role"), "boss", "devices[0].role: 'boss' is not one of"),
    (("devices", 3, "placements", 0, "from"), "2024-09-03T00:00:00+08:00",
     "devices[3].placements[1].from: must be later than the previous placement"),
    (("devices", 3, "placements", 1, "from"), "yesterday", "devices[3].placements[1].from: 'yesterday' is "
                                                           "not"),
    (("devices", 3, "room"), "t101", "devices[3].room: give exactly one of room:"),
    (("profiles", 0, "ref"), "no-version", "profiles[0].ref: 'no-version' must be <profile id>@<version>"),
    (("calendar", "holidays", 0), "someday", "calendar.holidays[0]: 'someday' is not a date"),
    (("version",), 2, "version: unsupported registry version 2"),
    (("devices", 0, "authoritative"), ["no_such_metric"], "devices[0].authoritative: unknown metric 'no_such_metric'"),
    (("devices", 0, "authoritative"), "co2", "devices[0].authoritative: must be a list of metric names"),
    (("devices", 0, "parent"), "em-teach", "devices[0].parent: only a sub-meter (role: sub)"),
    (("campuses",), _DELETE, "campuses: missing"),
])
def test_invalid_registry_names_file_field_and_problem(tmp_path: Path, demo: dict[str, Any],
                                                       path: tuple[Any, ...],
                                                       value: Any, message: str) -> None:
    p = write(tmp_path, _set(demo, path, value))
    with pytest.raises(RegistryError) as err:
        load_registry_file(p)
    assert str(err.value).startswith(f"{p}: ")
    assert message in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("campuses: [\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registry_file(bad)
    with pytest.raises(RegistryError, match="must be a mapping"):
        parse_registry(["a"], "x.yaml")


def test_room_change_is_recorded_at_load_time(engine_url: str, tmp_path: Path, demo: dict[str, Any]) -> None:
    now = [cd.local_ms(cd.FIRST_DAY, 9)]
    with open_warehouse(engine_url, clock_ms=lambda: now[0]) as wh:
        wh.load_registry_file(write(tmp_path, demo))
        assert wh.load_registry_file(write(tmp_path, demo)).moved == ()  # same file: nothing changes
        now[0] = cd.local_ms(cd.FIRST_DAY, 15)
        moved = _set(demo, ("devices", 0, "room"), "t102")
        dropped = _set(moved, ("devices",), [d for d in moved["devices"] if d["id"] != "rfid-t1"])
        rep = wh.load_registry_file(write(tmp_path, dropped))
        assert rep.moved == ("aq-t101",)
        assert rep.closed == ("rfid-t1",)
        _, rows = wh.query("SELECT valid_from_ms, valid_to_ms, room_id, is_current FROM dim_iot_device "
                           "WHERE device_id = 'aq-t101' ORDER BY valid_from_ms")
        assert rows == [(0, now[0], "t101", False), (now[0], FAR_FUTURE_MS, "t102", True)]
        _, rows = wh.query("SELECT valid_to_ms, is_current FROM dim_iot_device WHERE device_id = 'rfid-t1'")
        assert rows == [(now[0], False)]


def test_registry_loaded_after_the_data_reconforms_it(engine_url: str, duckdb_url: str, tmp_path: Path,
                                                      demo: dict[str, Any], registry_demo: Path) -> None:
    """The move of aq-mobile is registered only after its data was processed: the next transform run gives the
    same DWD rooms and the same summaries as a warehouse that knew about the move from the start."""
    readings, events = cd.generate()
    batches = cd.batches(readings, events)
    no_move = _set(demo, ("devices", 3), {"id": "aq-mobile", "name": "mobile air sensor",
                                           "profile": "z2m_aq_co2@1", "gateway": "gw-teach", "room": "t101"})
    without_ghost_gateway = no_move  # the ghost device stays unregistered in both runs
    with open_warehouse(engine_url) as late:
        late.load_registry_file(write(tmp_path, without_ghost_gateway))
        land_all(late, batches)
        late.run_transforms()
        assert late.query("SELECT COUNT(DISTINCT room_id) FROM dwd_env_reading_di WHERE device_id = "
                          "'aq-mobile'"
                          )[1] == [(1,)]
        rep = late.load_registry_file(registry_demo)
        assert rep.moved == ("aq-mobile",)
        assert rep.dirty_days >= 2
        late.run_transforms()
        got = {t: table(late, t) for t in (*SUMMARY_TABLES, "dwd_env_reading_di")}
    reference_url = duckdb_url.replace("warehouse.duckdb", "reference.duckdb")
    with open_warehouse(reference_url) as early:
        early.load_registry_file(registry_demo)
        land_all(early, batches)
        early.run_transforms()
        want = {t: table(early, t) for t in (*SUMMARY_TABLES, "dwd_env_reading_di")}
    for name in want:
        assert got[name] == want[name], name


def test_dictionary_is_seeded_without_a_registry(warehouse: Warehouse) -> None:
    _, rows = warehouse.query("SELECT process_code, unit_code FROM dim_iot_metric WHERE metric_code = 'co2'")
    assert rows == [("env", "ppm")]
    _, rows = warehouse.query("SELECT base_unit_code, scale_factor FROM dim_pub_unit WHERE unit_code = 'Wh'")
    assert rows == [("energy", 0.001)]

"""Cross-source consistency (多源校核): sub-meters vs their main meter, room sensors vs the authoritative one."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from cloud_ingest.warehouse import Warehouse
from edge_agent.model import ProfileRef, Reading
from edge_agent.wire import build_batch

T0 = 1_725_242_400_000  # 2024-09-02 10:00 +08:00
HOUR = 3_600_000
STEP = 600_000
EM, AQ = ProfileRef("tasmota_energy", 1), ProfileRef("z2m_aq_co2", 1)


def _load(wh: Warehouse, registry_demo: Path, tmp_path: Path) -> None:
    doc: dict[str, Any] = yaml.safe_load(registry_demo.read_text(encoding="utf-8"))
    doc["devices"] += [{"id": f"sm-{x}", "profile": "tasmota_energy@1", "gateway": "gw-teach", "room": "t000",
                        "role": "sub", "parent": "em-teach"} for x in ("a", "b")]
    doc["devices"][0]["authoritative"] = ["temperature_air"]  # aq-t101
    p = tmp_path / "reg.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    wh.load_registry_file(p)


def counter(device: str, per_step: list[float]) -> list[Reading]:
    """A kWh counter advancing by per_step[i] in step i (one reading per 10 min from 10:00)."""
    out, total = [Reading(device, "energy_active_total", T0, 100.0, "kWh", EM)], 100.0
    for i, inc in enumerate(per_step):
        total += inc
        out.append(Reading(device, "energy_active_total", T0 + (i + 1) * STEP, total, "kWh", EM))
    return out


def test_sub_meters_and_room_sensors_are_checked_against_their_reference(warehouse: Warehouse, registry_demo: Path,
                                                                         tmp_path: Path) -> None:
    _load(warehouse, registry_demo, tmp_path)
    # 10:00-11:00 the sub-meters sum to 95 % of the main meter (within 10 %); 11:00-12:00 only to 60 %
    readings = [*counter("em-teach", [2.0] * 11), *counter("sm-a", [0.8] * 5 + [0.8] * 6),
                *counter("sm-b", [1.1] * 5 + [0.4] * 6)]
    for i in range(6):  # aq-mobile (t101 until noon) reads 5 °C above the authoritative aq-t101
        readings.append(Reading("aq-t101", "temperature_air", T0 + i * STEP, 21.0, "Cel", AQ))
        readings.append(Reading("aq-mobile", "temperature_air", T0 + i * STEP, 26.0, "Cel", AQ))
    warehouse.land_batch(build_batch("gw-teach", 1, T0, readings, []), body_checksum="a" * 32,
                         received_ms=T0 + 3 * HOUR)
    warehouse.run_transforms()
    rows = dict(((d, h), n) for d, h, n in warehouse.query(
        "SELECT device_id, hour_ms, disagree_cnt FROM dws_qlt_device_1h WHERE disagree_cnt > 0")[1])
    # the step ending at 11:00 is counted in the 11:00 hour (its later reading), so hour 10 holds 5 steps
    assert rows == {("em-teach", T0 + HOUR): 6, ("aq-mobile", T0): 6}
    # the authoritative device is the reference, never the one that disagrees
    assert ("aq-t101", T0) not in rows


XIAOMI = ProfileRef("zigbee2mqtt.xiaomi_wsdcgq01lm", 1)  # temperature_air every 600 s (its profile)


def test_completeness_expects_the_profiles_sample_interval(warehouse: Warehouse, registry_demo: Path,
                                                           tmp_path: Path) -> None:
    doc: dict[str, Any] = yaml.safe_load(registry_demo.read_text(encoding="utf-8"))
    doc["profiles"].append({"ref": str(XIAOMI), "vendor": "Xiaomi", "model": "WSDCGQ01LM"})
    doc["devices"] += [{"id": f"th-{x}", "profile": str(XIAOMI), "gateway": "gw-teach", "room": "t102"}
                       for x in ("steady", "slow", "gappy")]
    p = tmp_path / "reg.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    warehouse.load_registry_file(p)
    assert warehouse.query("SELECT interval_s FROM dim_iot_profile_metric WHERE profile_ref = ? "
                           "AND metric_code = 'temperature_air'", (str(XIAOMI),))[1] == [(600.0,)]
    readings = []
    for i in range(24):  # four hours: steady every 600 s; slow every 1200 s all along; gappy misses 5 in a row
        ts = T0 + i * STEP
        readings.append(Reading("th-steady", "temperature_air", ts, 22.0 + i % 3 * 0.1, "Cel", XIAOMI))
        if i % 2 == 0:
            readings.append(Reading("th-slow", "temperature_air", ts, 22.0 + i % 3 * 0.1, "Cel", XIAOMI))
        if not 6 <= i <= 10:
            readings.append(Reading("th-gappy", "temperature_air", ts, 22.0 + i % 3 * 0.1, "Cel", XIAOMI))
    warehouse.land_batch(build_batch("gw-teach", 1, T0, readings, []), body_checksum="b" * 32,
                         received_ms=T0 + 5 * HOUR)
    warehouse.run_transforms()
    got = {d: (r, e) for d, r, e in warehouse.query(
        "SELECT device_id, reading_cnt, expected_cnt FROM dws_qlt_device_1d WHERE device_id LIKE 'th-%'")[1]}
    # the slow device keeps its own cadence all day (a median would expect nothing more): the profile expects
    # twice as many; the gap of 6 steps misses 5 readings
    assert got == {"th-steady": (24, 24), "th-slow": (12, 23), "th-gappy": (19, 24)}


def test_a_corrected_profile_interval_recomputes_completeness(warehouse: Warehouse, registry_demo: Path,
                                                              tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"  # a copy of the shipped profiles, corrected below
    shutil.copytree(Path(__file__).resolve().parents[2] / "device_profiles", profiles)
    src = profiles / "zigbee2mqtt" / "xiaomi_wsdcgq01lm.yaml"
    doc: dict[str, Any] = yaml.safe_load(registry_demo.read_text(encoding="utf-8"))
    doc["profiles"].append({"ref": str(XIAOMI), "vendor": "Xiaomi", "model": "WSDCGQ01LM"})
    doc["devices"].append({"id": "th-slow", "profile": str(XIAOMI), "gateway": "gw-teach", "room": "t102"})
    doc["profiles_dir"] = str(profiles)
    reg = tmp_path / "reg.yaml"
    reg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    warehouse.load_registry_file(reg)
    readings = [Reading("th-slow", "temperature_air", T0 + i * 2 * STEP, 22.0 + i % 3 * 0.1, "Cel", XIAOMI)
                for i in range(12)]
    warehouse.land_batch(build_batch("gw-teach", 1, T0, readings, []), body_checksum="c" * 32,
                         received_ms=T0 + 5 * HOUR)
    warehouse.run_transforms()
    sql = "SELECT reading_cnt, expected_cnt FROM dws_qlt_device_1d WHERE device_id = 'th-slow'"
    assert warehouse.query(sql)[1] == [(12, 23)]  # the profile says 600 s; the device reports every 1200 s
    # the repair: the profile is corrected to the device's real interval; reloading the registry recomputes
    src.write_text(src.read_text(encoding="utf-8").replace(
        "precision: 0.01, interval_s: 600}", "precision: 0.01, interval_s: 1200}", 1), encoding="utf-8")
    warehouse.load_registry_file(reg)
    warehouse.run_transforms()
    assert warehouse.query(sql)[1] == [(12, 12)]

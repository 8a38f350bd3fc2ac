"""One datum, one source (一数一源): the registry's authoritative device feeds the room summary; fallback flagged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_ingest.warehouse import RegistryError, Warehouse
from cloud_ingest.warehouse.registry import load_registry_file
from edge_agent.model import ProfileRef, Reading
from edge_agent.wire import build_batch

T0 = 1_725_242_400_000  # 2024-09-02 10:00 +08:00, before aq-mobile leaves t101 at noon
HOUR = 3_600_000
REF = ProfileRef("z2m_aq_co2", 1)


def _registry(registry_demo: Path, tmp_path: Path, authoritative: dict[str, list[str]]) -> Path:
    doc: dict[str, Any] = yaml.safe_load(registry_demo.read_text(encoding="utf-8"))
    for d in doc["devices"]:
        if d["id"] in authoritative:
            d["authoritative"] = authoritative[d["id"]]
    p = tmp_path / "reg.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return p


def _land(wh: Warehouse, seq: int, readings: list[Reading]) -> None:
    wh.land_batch(build_batch("gw-teach", seq, T0, readings, []), body_checksum=f"{seq:032d}",
                  received_ms=T0 + 2 * HOUR)


def _room(wh: Warehouse, metric: str) -> list[tuple[Any, ...]]:
    return wh.query("SELECT hour_ms, value_avg, device_cnt, source_device_id, is_fallback FROM dws_env_room_1h "
                    "WHERE room_id = 't101' AND metric_code = ? ORDER BY hour_ms", (metric,))[1]


def test_authoritative_device_is_used_and_its_silence_is_flagged(warehouse: Warehouse, registry_demo: Path,
                                                                 tmp_path: Path) -> None:
    warehouse.load_registry_file(_registry(registry_demo, tmp_path, {"aq-t101": ["temperature_air"]}))
    readings = []
    for i in range(6):  # 10:00-11:00: both sensors; 11:00-12:00: only the non-authoritative one
        ts = T0 + i * 600_000
        readings.append(Reading("aq-t101", "temperature_air", ts, 20.0, "Cel", REF))
        readings.append(Reading("aq-mobile", "temperature_air", ts, 24.0, "Cel", REF))
        readings.append(Reading("aq-mobile", "temperature_air", ts + HOUR, 25.0, "Cel", REF))
        readings.append(Reading("aq-t101", "humidity_rel", ts, 40.0, "%RH", REF))
        readings.append(Reading("aq-mobile", "humidity_rel", ts, 60.0, "%RH", REF))
    _land(warehouse, 1, readings)
    warehouse.run_transforms()
    assert [(r[1], r[2], r[3], bool(r[4])) for r in _room(warehouse, "temperature_air")] == [
        (pytest.approx(20.0), 1, "aq-t101", False),  # the authoritative source, not the mean 22
        (pytest.approx(25.0), 1, None, True)]  # silent: the fallback (mean of the others), flagged
    assert [(r[1], r[2], r[3], bool(r[4])) for r in _room(warehouse, "humidity_rel")] == [
        (pytest.approx(50.0), 2, None, False)]  # no authoritative source declared: the mean, not a fallback
    daily = warehouse.query("SELECT fallback_hour_cnt FROM dws_env_room_1d WHERE room_id = 't101' "
                            "AND metric_code = 'temperature_air'")[1]
    assert daily == [(1,)]

    # repair loop: the registry drops the declaration; the touched days are recomputed (idempotently)
    warehouse.load_registry_file(_registry(registry_demo, tmp_path, {}))
    warehouse.run_transforms()
    assert [(r[1], r[2], r[3], bool(r[4])) for r in _room(warehouse, "temperature_air")] == [
        (pytest.approx(22.0), 2, None, False), (pytest.approx(25.0), 1, None, False)]


def test_two_authoritative_sources_for_one_room_metric_are_refused(registry_demo: Path, tmp_path: Path) -> None:
    doc: dict[str, Any] = yaml.safe_load(registry_demo.read_text(encoding="utf-8"))
    doc["devices"].append({"id": "aq-t101b", "profile": "z2m_aq_co2@1", "gateway": "gw-teach", "room": "t101",
                           "authoritative": ["co2"]})
    doc["devices"][0]["authoritative"] = ["co2"]
    p = tmp_path / "reg.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"devices\[\d+\]\.authoritative: room 't101' already has 'aq-t101' "
                                            r"as the authoritative source of 'co2'"):
        load_registry_file(p)

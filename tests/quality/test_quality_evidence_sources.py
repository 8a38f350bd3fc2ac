"""Evidence against other sources: a main meter vs its sub-meters, a room sensor vs the authoritative one, and
gaps measured against the profile's declared sample interval."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_ingest.quality.evidence import evidence
from cloud_ingest.warehouse import Warehouse, open_warehouse
from edge_agent.model import ProfileRef, Reading
from edge_agent.wire import build_batch
from tests.cloud.test_warehouse_quality_sources import AQ, HOUR, STEP, T0, counter

ROOT = Path(__file__).resolve().parents[2]
DAY = "2024-09-02"
XIAOMI = ProfileRef("zigbee2mqtt.xiaomi_wsdcgq01lm", 1)  # temperature_air every 600 s (its profile)


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    tmp = tmp_path_factory.mktemp("qsrc")
    doc: dict[str, Any] = yaml.safe_load((ROOT / "tests" / "data" / "registry_demo.yaml").read_text(encoding="utf-8"))
    doc["devices"] += [{"id": f"sm-{x}", "profile": "tasmota_energy@1", "gateway": "gw-teach", "room": "t000",
                        "role": "sub", "parent": "em-teach"} for x in ("a", "b")]
    doc["devices"][0]["authoritative"] = ["temperature_air"]  # aq-t101
    doc["profiles"].append({"ref": str(XIAOMI), "vendor": "Xiaomi", "model": "WSDCGQ01LM"})
    doc["devices"].append({"id": "th-slow", "profile": str(XIAOMI), "gateway": "gw-teach", "room": "t102"})
    (tmp / "reg.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    w = open_warehouse(f"duckdb:///{tmp / 'wh.duckdb'}")
    w.load_registry_file(tmp / "reg.yaml")
    # 10:00-11:00 the sub-meters sum to 95 % of the main meter; 11:00-12:00 only to 60 %
    readings = [*counter("em-teach", [2.0] * 11), *counter("sm-a", [0.8] * 11),
                *counter("sm-b", [1.1] * 5 + [0.4] * 6)]
    for i in range(6):  # aq-mobile reads 5 °C above the authoritative aq-t101
        readings.append(Reading("aq-t101", "temperature_air", T0 + i * STEP, 21.0, "Cel", AQ))
        readings.append(Reading("aq-mobile", "temperature_air", T0 + i * STEP, 26.0, "Cel", AQ))
    # th-slow reports every 1200 s; its profile says 600 s
    readings += [Reading("th-slow", "temperature_air", T0 + i * 2 * STEP, 22.0 + i % 3 * 0.1, "Cel", XIAOMI)
                 for i in range(12)]
    w.land_batch(build_batch("gw-teach", 1, T0, readings, []), body_checksum="a" * 32, received_ms=T0 + 60_000)
    w.run_transforms()
    yield w
    w.close()


def test_main_meter_evidence_is_its_readings_of_the_mismatched_hour(wh: Warehouse) -> None:
    ev = evidence(wh, f"{DAY}:device:em-teach:consistency")
    assert ev.counted["submeter_mismatch"] == ev.total == 6
    for row in ev.rows:
        assert row["kind"] == "submeter_mismatch"
        assert row["hour_ms"] == T0 + HOUR
        assert row["hour_val"] == pytest.approx(12.0)  # six 2 kWh steps ending in 11:00-12:00
        assert row["ref_val"] == pytest.approx(6 * (0.8 + 0.4))
        assert abs(row["hour_val"] - row["ref_val"]) > row["tolerance_val"]
        assert (row["gateway_id"], row["batch_seq"]) == ("gw-teach", 1)


def test_room_sensor_is_judged_against_the_authoritative_device(wh: Warehouse) -> None:
    ev = evidence(wh, f"{DAY}:device:aq-mobile:consistency")
    assert ev.counted["room_disagreement"] == 6
    assert {(r["ref_device_id"], r["hour_val"], r["ref_val"]) for r in ev.rows} == {("aq-t101", 26.0, 21.0)}
    with pytest.raises(ValueError, match="no finding"):  # the authoritative device itself is never judged
        evidence(wh, f"{DAY}:device:aq-t101:consistency")


def test_gaps_are_measured_against_the_profile_interval(wh: Warehouse) -> None:
    ev = evidence(wh, f"{DAY}:device:th-slow:completeness")
    assert ev.counted["gap"] == 11  # expected 23, received 12
    assert {(r["interval_ms"], r["step_ms"], r["missing_cnt"]) for r in ev.rows} == {(600_000, 1_200_000, 1)}

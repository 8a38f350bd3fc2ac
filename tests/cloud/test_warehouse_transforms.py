"""ODS → DWD → DWS → ADS on both engines, checked against figures computed in plain Python from the raw
input (tests/cloud/campus_data.py): duplicates, replays, out-of-order and late batches, window versions,
a device moving rooms mid-day, idempotent re-runs, identical results on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from cloud_ingest.warehouse import Warehouse, open_warehouse
from tests.cloud import campus_data as cd

REL = 1e-9
SUMMARY_TABLES = ("dws_env_room_1h", "dws_env_room_1d", "dws_occ_room_1h", "dws_energy_building_1h",
                  "dws_energy_building_1d", "dws_energy_campus_1d", "dws_iot_device_1d",
                  "ads_env_co2_compliance_1d", "ads_energy_intensity_1d", "ads_iot_online_rate_1d",
                  "ads_occ_room_util_1d")


def land_all(wh: Warehouse, batches: list[tuple[Any, str]], received_ms: int = 1) -> list[str]:
    return [wh.land_batch(b, body_checksum=c, received_ms=received_ms).status for b, c in batches]


def table(wh: Warehouse, name: str) -> list[tuple[Any, ...]]:
    """All rows but the load_id bookkeeping column, floats rounded, sorted: comparable across engines."""
    cols, rows = wh.query(f"SELECT * FROM {name}")
    keep = [i for i, c in enumerate(cols) if c != "load_id"]
    out = [tuple(round(r[i], 9) if isinstance(r[i], float) else r[i] for i in keep) for r in rows]
    return sorted(out, key=lambda r: tuple((x is None, str(x)) for x in r))


def loaded(wh: Warehouse, registry: Path, batches: list[tuple[Any, str]]) -> Warehouse:
    wh.load_registry_file(registry)
    land_all(wh, batches)
    wh.run_transforms()
    return wh


@pytest.fixture(scope="module")
def traffic() -> tuple[list[cd.R], list[cd.E], list[tuple[Any, str]]]:
    readings, events = cd.generate()
    return readings, events, cd.batches(readings, events)


def test_ads_match_independent_computation(warehouse: Warehouse, registry_demo: Path,
                                           traffic: tuple[list[cd.R], list[cd.E], list[Any]]) -> None:
    readings, events, batches = traffic
    shuffled = batches[:]
    random.Random(3).shuffle(shuffled)  # sequences arrive out of order across and within gateways
    wh = warehouse
    wh.load_registry_file(registry_demo)
    assert set(land_all(wh, shuffled)) == {"stored"}
    assert set(land_all(wh, shuffled[:5])) == {"duplicate"}  # replays of the same bodies
    rows = wh.run_transforms()
    assert rows["dwd_env_reading_di"] > 0
    clean = cd.dedupe(readings)

    _, got = wh.query("SELECT dt, occupied_hour_cnt, measured_hour_cnt, compliant_hour_cnt, compliance_rate "
                      "FROM ads_env_co2_compliance_1d WHERE campus_id = ?", (cd.CAMPUS,))
    exp = cd.expected_co2(clean)
    assert {r[0]: r[1:4] for r in got} == {d: v[:3] for d, v in exp.items()}
    for d, *_, rate in got:
        assert rate == pytest.approx(exp[d][3], rel=REL) if exp[d][3] is not None else rate is None
    assert exp[cd.FIRST_DAY][3] is not None
    assert 0 < exp[cd.FIRST_DAY][3] < 1  # a meaningful mix

    _, got = wh.query("SELECT building_id, dt, energy_kwh, floor_area_m2, kwh_per_m2 FROM "
                      "ads_energy_intensity_1d")
    exp_e = cd.expected_energy(clean)
    assert {(b, d) for b, d, *_ in got} == set(exp_e)
    for b, d, kwh, area, per_m2 in got:
        assert kwh == pytest.approx(exp_e[(b, d)], rel=REL)
        assert area == cd.FLOOR_AREA[b]
        assert per_m2 == pytest.approx(exp_e[(b, d)] / cd.FLOOR_AREA[b], rel=REL)

    _, got = wh.query("SELECT dt, device_cnt, online_device_cnt, online_rate FROM ads_iot_online_rate_1d")
    exp_o = cd.expected_online(clean, events)
    assert {d: (n, k) for d, n, k, _ in got} == exp_o
    assert all(rate == pytest.approx(k / n) for _, n, k, rate in got)

    _, got = wh.query("SELECT room_id, dt, occupied_hour_cnt, util_rate, people_avg, seat_cnt, "
                      "seat_util_rate "
                      "FROM ads_occ_room_util_1d")
    exp_u = cd.expected_util(clean)
    assert {(r, d) for r, d, *_ in got} == set(exp_u)
    for room, d, occ, util, people, seats, seat_util in got:
        e_occ, e_util, e_people = exp_u[(room, d)]
        assert (occ, seats) == (e_occ, cd.SEATS[room])
        assert util == pytest.approx(e_util, rel=REL)
        if e_people is None:
            assert people is None
            assert seat_util is None
        else:
            assert people == pytest.approx(e_people, rel=REL)
            assert seat_util == pytest.approx(e_people / cd.SEATS[room], rel=REL)

    _, got = wh.query("SELECT room_id, hour_ms, value_avg FROM dws_env_room_1h WHERE metric_code = 'co2'")
    exp_h = cd.env_room_hour(clean, "co2")
    assert {(r, h): v for r, h, v in got} == pytest.approx(exp_h, rel=REL)


def test_dwd_cleaning_and_provenance(warehouse: Warehouse, registry_demo: Path,
                                     traffic: tuple[list[cd.R], list[cd.E], list[Any]]) -> None:
    readings, _, batches = traffic
    wh = loaded(warehouse, registry_demo, batches)
    n_dwd = sum(wh.query(f"SELECT COUNT(*) FROM {t}")[1][0][0] for t in (
        "dwd_env_reading_di", "dwd_energy_reading_di", "dwd_occ_reading_di", "dwd_iot_reading_di"))
    assert n_dwd == len(cd.dedupe(readings)) == len(readings) - 1  # only the re-versioned window collapsed
    # highest window version wins
    _, rows = wh.query("SELECT value, window_ver, quality_flag FROM dwd_env_reading_di WHERE device_id = "
                       "'aq-t102' "
                       "AND metric_code = 'co2' AND agg_code = 'mean' AND ts_ms = ?",
                       (cd.local_ms(cd.FIRST_DAY, 10),))
    assert len(rows) == 1
    assert rows[0][1] == 1
    assert rows[0][2] & 16
    # Wh → kWh, out of range flagged, unconvertible unit → NULL + 256, unregistered device → 512
    _, rows = wh.query("SELECT MIN(value), MAX(value), MIN(unit_code) FROM dwd_energy_reading_di "
                       "WHERE device_id = 'em-lab'")
    assert rows[0][2] == "kWh"
    assert 200 < rows[0][0] < rows[0][1] < 1000
    _, rows = wh.query("SELECT quality_flag FROM dwd_env_reading_di WHERE value = 50000")
    assert rows == [(1,)]
    _, rows = wh.query("SELECT value, quality_flag, unit_code FROM dwd_env_reading_di WHERE metric_code = "
                       "'humidity_rel'")
    assert rows == [(None, 256, "%RH")]
    _, rows = wh.query("SELECT DISTINCT quality_flag, room_id, campus_id FROM dwd_env_reading_di "
                       "WHERE device_id = 'aq-ghost'")
    assert rows == [(512, None, cd.CAMPUS)]
    # every DWD row points back to an ODS batch of the same gateway
    _, rows = wh.query("SELECT COUNT(*) FROM dwd_env_reading_di d WHERE NOT EXISTS (SELECT 1 FROM "
                       "ods_iot_batch_di b "
                       "WHERE b.gateway_id = d.gateway_id AND b.batch_seq = d.batch_seq AND b.load_id = "
                       "d.load_id)")
    assert rows == [(0,)]
    _, rows = wh.query("SELECT subject_pseudo, direction_code, result_code, room_id FROM dwd_acs_event_di")
    assert len(rows) == 4
    assert all(r[0].startswith("h:") for r in rows)
    assert all(r[1:] == ("in", "granted", "t101") for r in rows)
    # the natural key is unique in every DWD table (enforced by the transform on DuckDB)
    _, rows = wh.query("SELECT COUNT(*) FROM (SELECT device_id, metric_code, agg_code, window_s, ts_ms, "
                       "COUNT(*) "
                       "FROM dwd_env_reading_di GROUP BY 1, 2, 3, 4, 5 HAVING COUNT(*) > 1) x")
    assert rows == [(0,)]
    _, rows = wh.query("SELECT COUNT(*), SUM(CASE WHEN is_holiday THEN 1 ELSE 0 END) FROM dim_pub_date")
    assert rows == [(30, 3)]


def test_device_moving_mid_day_keeps_history_in_the_right_room(
        warehouse: Warehouse, registry_demo: Path, traffic: tuple[list[cd.R], list[cd.E], list[Any]]) -> None:
    wh = loaded(warehouse, registry_demo, traffic[2])
    _, rows = wh.query("SELECT room_id, MIN(ts_ms), MAX(ts_ms), MIN(building_id) FROM dwd_env_reading_di "
                       "WHERE device_id = 'aq-mobile' GROUP BY room_id ORDER BY room_id")
    assert [(r[0], r[3]) for r in rows] == [("l102", "bld-lab"), ("t101", "bld-teach")]
    assert rows[1][2] < cd.MOVE_MS <= rows[0][1]
    noon = cd.MOVE_MS
    sql = ("SELECT room_id, device_cnt FROM dws_env_room_1h WHERE metric_code = 'co2' AND hour_ms = ? "
           "AND room_id IN ('t101', 'l102') ORDER BY room_id")
    assert wh.query(sql, (noon,))[1] == [("l102", 2), ("t101", 1)]
    _, rows = wh.query(sql, (noon - cd.HOUR,))
    assert rows == [("l102", 1), ("t101", 2)]


def test_transforms_are_idempotent(warehouse: Warehouse, registry_demo: Path,
                                   traffic: tuple[list[cd.R], list[cd.E], list[Any]]) -> None:
    wh = loaded(warehouse, registry_demo, traffic[2])
    before = {t: table(wh, t) for t in SUMMARY_TABLES}
    assert sum(wh.run_transforms().values()) == 0  # nothing new: nothing written
    assert {t: table(wh, t) for t in SUMMARY_TABLES} == before
    # even a forced re-run over everything (watermarks reset) gives the same rows, no duplicates
    with wh.maintenance() as s, s.transaction():
        s.execute("DELETE FROM meta_etl_watermark_cur")
    assert sum(wh.run_transforms().values()) > 0
    assert {t: table(wh, t) for t in SUMMARY_TABLES} == before
    assert table(wh, "dwd_env_reading_di") == table(wh, "dwd_env_reading_di")


def test_late_and_replayed_data_update_the_right_days(
        warehouse: Warehouse, registry_demo: Path, traffic: tuple[list[cd.R], list[cd.E], list[Any]]) -> None:
    readings, events, _ = traffic
    wh = warehouse
    wh.load_registry_file(registry_demo)
    cutoff = cd.local_ms(cd.FIRST_DAY, 14)
    early = [r for r in readings if r.ts_ms < cutoff or r.device.startswith("em")]
    late = [r for r in readings if r.ts_ms >= cutoff and not r.device.startswith("em")]
    land_all(wh, cd.batches(early, events))
    wh.run_transforms()
    _, first = wh.query("SELECT occupied_hour_cnt FROM ads_env_co2_compliance_1d WHERE dt = ?",
                        (cd.FIRST_DAY,))
    # the afternoon arrives later, in new batches (seq 100+), newest first, plus a replay of old readings
    replay = [r for r in readings if r.device == "aq-t101" and r.ts_ms < cutoff][:50]
    for i, chunk in enumerate(reversed([late[k:k + 200] for k in range(0, len(late), 200)])):
        for gw in ("gw-teach", "gw-lab"):
            mine = [r for r in chunk if r.gateway == gw]
            if mine:
                b, c = cd.wire_roundtrip(cd.make_batch(gw, 100 + i, mine))
                assert wh.land_batch(b, body_checksum=c, received_ms=2).status == "stored"
    b, c = cd.wire_roundtrip(cd.make_batch("gw-teach", 999, replay))
    assert wh.land_batch(b, body_checksum=c, received_ms=3).status == "stored"
    rows = wh.run_transforms()
    assert rows["dwd_env_reading_di"] > 0
    _, got = wh.query("SELECT dt, occupied_hour_cnt, measured_hour_cnt, compliant_hour_cnt FROM "
                      "ads_env_co2_compliance_1d")
    exp = cd.expected_co2(cd.dedupe(readings))
    assert {r[0]: r[1:] for r in got} == {d: v[:3] for d, v in exp.items()}
    assert first[0][0] < exp[cd.FIRST_DAY][0]
    _, got = wh.query("SELECT room_id, dt, occupied_hour_cnt FROM ads_occ_room_util_1d")
    exp_u = cd.expected_util(cd.dedupe(readings))
    assert {(r, d): o for r, d, o in got} == {k: v[0] for k, v in exp_u.items()}


def test_window_version_order_does_not_matter(warehouse: Warehouse, registry_demo: Path) -> None:
    wh = warehouse
    wh.load_registry_file(registry_demo)
    ts = cd.local_ms(cd.FIRST_DAY, 9)
    v1 = cd.R("aq-t102", "co2", "ppm", "mean", 300, ts, 900.0, 16, 1)
    v0 = cd.R("aq-t102", "co2", "ppm", "mean", 300, ts, 600.0, 0, 0)
    v2 = cd.R("aq-t102", "co2", "ppm", "mean", 300, ts, 1100.0, 16, 2)
    for seq, r in ((1, v1), (2, v0)):  # the newer version arrives first
        b, c = cd.wire_roundtrip(cd.make_batch("gw-teach", seq, [r]))
        wh.land_batch(b, body_checksum=c, received_ms=1)
        wh.run_transforms()
    assert wh.query("SELECT value FROM dwd_env_reading_di")[1] == [(900.0,)]
    b, c = cd.wire_roundtrip(cd.make_batch("gw-teach", 3, [v2]))
    wh.land_batch(b, body_checksum=c, received_ms=1)
    wh.run_transforms()
    assert wh.query("SELECT value, window_ver FROM dwd_env_reading_di")[1] == [(1100.0, 2)]
    assert wh.query("SELECT value_avg FROM dws_env_room_1h")[1] == [(1100.0,)]


@pytest.mark.postgres
def test_duckdb_and_postgres_give_identical_summaries(
        duckdb_url: str, pg_url: str, registry_demo: Path,
        traffic: tuple[list[cd.R], list[cd.E], list[Any]]) -> None:
    results = []
    for url in (duckdb_url, pg_url):
        with open_warehouse(url) as wh:
            loaded(wh, registry_demo, traffic[2])
            names = (*SUMMARY_TABLES, "dwd_env_reading_di", "dwd_acs_event_di", "dim_iot_device",
                     "dim_pub_date")
            results.append({t: table(wh, t) for t in names})
    for name in results[0]:
        assert results[0][name] == results[1][name], name
        assert results[0][name], f"{name} is empty"


def test_dates_are_local_days(warehouse: Warehouse, registry_demo: Path) -> None:
    wh = warehouse
    wh.load_registry_file(registry_demo)
    ts = cd.local_ms(cd.FIRST_DAY, 0, 30)  # 00:30 local is still the previous day in UTC
    reading = cd.R("aq-t101", "co2", "ppm", "raw", 0, ts, 500.0)
    b, c = cd.wire_roundtrip(cd.make_batch("gw-teach", 1, [reading]))
    wh.land_batch(b, body_checksum=c, received_ms=1)
    wh.run_transforms()
    assert wh.query("SELECT dt FROM dwd_env_reading_di")[1] == [(cd.FIRST_DAY,)]
    assert wh.query("SELECT dt, weekday_no FROM dim_pub_date WHERE dt = ?", (cd.FIRST_DAY,))[1] == [
        (cd.FIRST_DAY, 1)]
    assert dt.datetime.fromtimestamp(ts / 1000, dt.UTC).date() == cd.FIRST_DAY - dt.timedelta(days=1)

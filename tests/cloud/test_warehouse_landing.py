"""ODS landing: idempotency on (gateway, seq) enforced by the database, thread safety, several ingest
replicas on one PostgreSQL, read-only queries, durability across reopen."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cloud_ingest.warehouse import ReadOnlyError, Warehouse, WarehouseError, open_warehouse
from cloud_ingest.warehouse.errors import EngineError
from tests.cloud import campus_data as cd


def _batches(n: int, gateway: str = "gw-teach", per: int = 50) -> list[tuple[object, str]]:
    out = []
    for seq in range(1, n + 1):
        ts0 = cd.local_ms(cd.FIRST_DAY, 8) + seq * per * 1000
        rows = [cd.R("aq-t101", "co2", "ppm", "raw", 0, ts0 + i * 1000, 400.0 + i) for i in range(per)]
        out.append(cd.wire_roundtrip(cd.make_batch(gateway, seq, rows)))
    return out


def _count(wh: Warehouse, table: str) -> int:
    return int(wh.query(f"SELECT COUNT(*) FROM {table}")[1][0][0])


def test_duplicate_and_conflict_write_nothing(warehouse: Warehouse) -> None:
    (b, c), = _batches(1)
    first = warehouse.land_batch(b, body_checksum=c, received_ms=10)
    assert (first.status, first.readings, first.events) == ("stored", 50, 0)
    again = warehouse.land_batch(b, body_checksum=c, received_ms=11)
    assert (again.status, again.readings) == ("duplicate", 0)
    other = warehouse.land_batch(b, body_checksum="f" * 64, received_ms=12)
    assert (other.status, other.readings) == ("conflict", 0)
    assert _count(warehouse, "ods_iot_reading_di") == 50
    _, rows = warehouse.query("SELECT gateway_id, batch_seq, received_ms, checksum, reading_cnt, event_cnt, "
                              "format_ver FROM ods_iot_batch_di")
    assert rows == [("gw-teach", 1, 10, c, 50, 0, 1)]


def test_rows_carry_series_key_and_provenance(warehouse: Warehouse) -> None:
    ts = cd.local_ms(cd.FIRST_DAY, 9)
    rows = [cd.R("aq-t102", "co2", "ppm", "mean", 300, ts, 812.5, 16, 2),
            cd.R("aq-t102", "temperature_air", "Cel", "raw", 0, ts + 1, 24.5)]
    ev = cd.E("rfid-t1", "card_swipe", ts + 2, (("card", "h:1234"), ("direction", "out")))
    b, c = cd.wire_roundtrip(cd.make_batch("gw-teach", 7, rows, [ev]))
    res = warehouse.land_batch(b, body_checksum=c, received_ms=99)
    assert (res.status, res.readings, res.events) == ("stored", 2, 1)
    _, got = warehouse.query(
        "SELECT gateway_id, batch_seq, device_id, metric_code, unit_code, profile_ref, agg_code, window_s, "
        "ts_ms, "
        "value, quality_flag, window_ver, received_ms, checksum, load_id FROM ods_iot_reading_di ORDER BY "
        "ts_ms")
    assert got[0][:14] == ("gw-teach", 7, "aq-t102", "co2", "ppm", "z2m_aq_co2@1", "mean", 300, ts, 812.5,
                           16, 2,
                           99, c)
    assert got[1][6:8] == ("raw", 0)
    assert got[0][14] == got[1][14] == res.load_id
    _, got = warehouse.query("SELECT device_id, event_kind, ts_ms, attrs_json, event_idx FROM "
                             "ods_iot_event_di")
    assert got == [("rfid-t1", "card_swipe", ts + 2, '{"card":"h:1234","direction":"out"}', 0)]


def test_land_batch_is_thread_safe(warehouse: Warehouse) -> None:
    batches = _batches(40)
    work = batches + batches[:10]  # ten bodies arrive twice, from different threads
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda bc: warehouse.land_batch(bc[0], body_checksum=bc[1],
                                                                 received_ms=1).status, work))
    assert statuses.count("stored") == 40
    assert statuses.count("duplicate") == 10
    assert _count(warehouse, "ods_iot_reading_di") == 40 * 50


def test_same_batch_from_many_threads_at_once(warehouse: Warehouse) -> None:
    """All threads start together so their transactions overlap: one stores, the rest see duplicates (the
    DuckDB commit conflict is retried), a different body with the same seq is a conflict."""
    (b, c), = _batches(1)
    start = threading.Barrier(6)

    def go(checksum: str) -> str:
        start.wait()
        return warehouse.land_batch(b, body_checksum=checksum, received_ms=1).status

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(go, [c] * 5 + ["0" * 64]))
    assert statuses[:5].count("stored") + (statuses[5] == "stored") == 1
    if statuses[5] == "stored":
        assert statuses[:5] == ["conflict"] * 5
    else:
        assert sorted(statuses) == ["conflict", "duplicate", "duplicate", "duplicate", "duplicate", "stored"]
    assert _count(warehouse, "ods_iot_reading_di") == 50


@pytest.mark.postgres
def test_several_ingest_replicas_on_one_postgres(pg_url: str) -> None:
    """Four replicas land the same batches concurrently while two of them also run transforms: every batch is
    stored exactly once and every reading reaches DWD exactly once (watermarks never skip a batch)."""
    batches = _batches(60, per=40)
    replicas = [open_warehouse(pg_url) for _ in range(4)]
    try:
        results: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def ingest(wh: Warehouse, offset: int) -> None:
            for i in range(len(batches)):
                b, c = batches[(i + offset) % len(batches)]
                status = wh.land_batch(b, body_checksum=c, received_ms=1).status
                with lock:
                    results.append(status)

        def transform(wh: Warehouse) -> None:
            while not stop.is_set():
                wh.run_transforms()

        movers = [threading.Thread(target=transform, args=(w,)) for w in replicas[:2]]
        for t in movers:
            t.start()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(ingest, replicas, [0, 15, 30, 45]))
        stop.set()
        for t in movers:
            t.join()
        replicas[0].run_transforms()
        assert results.count("stored") == 60
        assert results.count("duplicate") == 180
        wh = replicas[0]
        assert _count(wh, "ods_iot_batch_di") == 60
        assert _count(wh, "ods_iot_reading_di") == 60 * 40
        assert _count(wh, "dwd_env_reading_di") == 60 * 40
    finally:
        for w in replicas:
            w.close()


@pytest.mark.parametrize("sql", [
    "DELETE FROM ods_iot_batch_di",
    "INSERT INTO meta_pub_schema_log VALUES (99, 0)",
    "DROP TABLE ods_iot_batch_di",
    "UPDATE dim_pub_campus SET campus_name = 'x'",
    "SELECT 1; DELETE FROM ods_iot_batch_di",
    "CREATE TABLE x (a INTEGER)",
])
def test_query_refuses_writes(warehouse: Warehouse, sql: str) -> None:
    (b, c), = _batches(1)
    warehouse.land_batch(b, body_checksum=c, received_ms=1)
    with pytest.raises((ReadOnlyError, EngineError)):
        warehouse.query(sql)
    assert _count(warehouse, "ods_iot_batch_di") == 1
    assert warehouse.query("SELECT COUNT(*) FROM meta_pub_schema_log")[1] == [(1,)]


def test_query_takes_parameters_and_reports_bad_sql(warehouse: Warehouse) -> None:
    cols, rows = warehouse.query("SELECT ? AS a, ? AS b", (1, "x"))
    assert (cols, rows) == (["a", "b"], [(1, "x")])
    with pytest.raises(EngineError, match="no_such_table"):
        warehouse.query("SELECT * FROM no_such_table")


def test_duckdb_batches_survive_reopen(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    with open_warehouse(url) as wh:
        for b, c in _batches(3):
            wh.land_batch(b, body_checksum=c, received_ms=1)
    with open_warehouse(url) as wh:
        assert _count(wh, "ods_iot_reading_di") == 150
        (b, c) = _batches(1)[0]
        assert wh.land_batch(b, body_checksum=c, received_ms=1).status == "duplicate"


def test_closed_warehouse_refuses_and_bad_urls_are_explained(tmp_path: Path) -> None:
    wh = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    wh.close()
    wh.close()  # idempotent
    with pytest.raises(WarehouseError, match="closed"):
        wh.query("SELECT 1")
    with pytest.raises(WarehouseError, match="unsupported warehouse URL"):
        open_warehouse("mysql://x")
    with pytest.raises(EngineError, match="cannot connect") as err:
        open_warehouse("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(err.value)

"""The warehouse keeps which data-dictionary version produced each row: ``dict_ver`` on DWD rows and runs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cloud_ingest.governance import dictionary as dictionary_mod
from cloud_ingest.warehouse import Warehouse, open_warehouse
from tests.cloud.api_fixtures import make_batch

# the run-log route: a row with load_id L was produced by the run of its transform with lo_id < L <= hi_id
RUN_VERSION = """
SELECT DISTINCT l.dict_ver FROM {table} r
JOIN meta_etl_run_log l ON l.transform_name = ? AND r.load_id > l.lo_id AND r.load_id <= l.hi_id
WHERE r.batch_seq = ?
"""


def row_versions(wh: Warehouse, table: str, seq: int) -> list[tuple[object, ...]]:
    return wh.query(f"SELECT DISTINCT dict_ver FROM {table} WHERE batch_seq = ?", (seq,))[1]


def test_rows_carry_the_dictionary_version(warehouse: Warehouse, registry_demo: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse.load_registry_file(registry_demo)
    warehouse.land_batch(make_batch(1, n=20), body_checksum="a" * 32, received_ms=1_750_000_000_000)
    warehouse.run_transforms()
    current = dictionary_mod.dictionary_version()
    dwd, table = "dwd_reading", "dwd_iot_reading_di"  # make_batch readings have no business process
    assert warehouse.query(f"SELECT count(*) FROM {table} WHERE batch_seq = 1", ())[1][0][0] == 20
    assert row_versions(warehouse, table, 1) == [(current,)]
    assert warehouse.query(RUN_VERSION.format(table=table), (dwd, 1))[1] == [(current,)]
    # a new dictionary release: rows conformed afterwards carry it, older rows keep theirs
    monkeypatch.setattr(dictionary_mod, "dictionary_version", lambda: "9.9")
    warehouse.land_batch(make_batch(2, n=20, offset=3600.0), body_checksum="b" * 32,
                         received_ms=1_750_000_100_000)
    warehouse.run_transforms()
    assert row_versions(warehouse, table, 2) == [("9.9",)]
    assert row_versions(warehouse, table, 1) == [(current,)]
    assert warehouse.query(RUN_VERSION.format(table=table), (dwd, 2))[1] == [("9.9",)]
    versions = {r[0] for r in warehouse.query("SELECT dict_ver FROM meta_etl_run_log", ())[1]}
    assert versions == {current, "9.9"}
    for t in ("dwd_env_reading_di", "dwd_energy_reading_di", "dwd_occ_reading_di", "dwd_acs_event_di"):
        assert warehouse.query(f"SELECT count(*) FROM {t} WHERE dict_ver IS NULL", ())[1] == [(0,)]


def test_an_older_database_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    open_warehouse(f"duckdb:///{path}").close()
    con = duckdb.connect(str(path))  # as a database of the previous schema version left it
    for table in ("dwd_iot_reading_di", "meta_etl_run_log"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN dict_ver")
    con.close()
    wh = open_warehouse(f"duckdb:///{path}")
    try:
        wh.land_batch(make_batch(1, n=5), body_checksum="a" * 32, received_ms=1_750_000_000_000)
        wh.run_transforms()
        assert row_versions(wh, "dwd_iot_reading_di", 1) == [(dictionary_mod.dictionary_version(),)]
    finally:
        wh.close()

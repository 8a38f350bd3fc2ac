"""The warehouse keeps which data-dictionary version produced each row (via the run log's load_id range)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_ingest.governance import dictionary as dictionary_mod
from cloud_ingest.warehouse import Warehouse
from tests.cloud.api_fixtures import make_batch

ROW_VERSION = """
SELECT DISTINCT l.dict_ver FROM {table} r
JOIN meta_etl_run_log l ON l.transform_name = ? AND r.load_id > l.lo_id AND r.load_id <= l.hi_id
WHERE r.batch_seq = ?
"""


def test_rows_carry_the_dictionary_version(warehouse: Warehouse, registry_demo: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse.load_registry_file(registry_demo)
    warehouse.land_batch(make_batch(1, n=20), body_checksum="a" * 32, received_ms=1_750_000_000_000)
    warehouse.run_transforms()
    current = dictionary_mod.dictionary_version()
    dwd, table = "dwd_reading", "dwd_iot_reading_di"  # make_batch readings have no business process
    assert warehouse.query(f"SELECT count(*) FROM {table} WHERE batch_seq = 1", ())[1][0][0] == 20
    assert warehouse.query(ROW_VERSION.format(table=table), (dwd, 1))[1] == [(current,)]
    # a new dictionary release: rows conformed afterwards carry it, older rows keep theirs
    monkeypatch.setattr(dictionary_mod, "dictionary_version", lambda: "9.9")
    warehouse.land_batch(make_batch(2, n=20, offset=3600.0), body_checksum="b" * 32,
                         received_ms=1_750_000_100_000)
    warehouse.run_transforms()
    assert warehouse.query(ROW_VERSION.format(table=table), (dwd, 2))[1] == [("9.9",)]
    assert warehouse.query(ROW_VERSION.format(table=table), (dwd, 1))[1] == [(current,)]
    versions = {r[0] for r in warehouse.query("SELECT dict_ver FROM meta_etl_run_log", ())[1]}
    assert versions == {current, "9.9"}

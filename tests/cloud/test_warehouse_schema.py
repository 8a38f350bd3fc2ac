"""The schema as data: naming, metadata completeness, DDL per dialect (Citus placement), schema versions,
the transform DAG and the scheduler."""

from __future__ import annotations

import re
import time

import pytest

from cloud_ingest.warehouse import SchemaError, Warehouse, open_warehouse
from cloud_ingest.warehouse.ddl import render, render_script
from cloud_ingest.warehouse.errors import WarehouseError
from cloud_ingest.warehouse.scheduler import start_transform_scheduler
from cloud_ingest.warehouse.schema import LEVELS, load_schema
from cloud_ingest.warehouse.transforms import ALL
from cloud_ingest.warehouse.transforms.base import Transform
from cloud_ingest.warehouse.transforms.runner import order
from tests.cloud import campus_data as cd

REQUIRED = {"ods_iot_batch_di", "ods_iot_reading_di", "ods_iot_event_di", "dim_pub_campus",
            "dim_pub_building",
            "dim_pub_room", "dim_iot_gateway", "dim_iot_device", "dim_iot_profile", "dim_iot_metric",
            "dim_pub_date", "dwd_env_reading_di", "dwd_energy_reading_di", "dwd_occ_reading_di",
            "dwd_acs_event_di", "dws_env_room_1h", "dws_env_room_1d", "dws_energy_building_1d",
            "dws_occ_room_1h",
            "ads_env_co2_compliance_1d", "ads_energy_intensity_1d", "ads_iot_online_rate_1d",
            "ads_occ_room_util_1d"}


def test_tables_follow_naming_and_carry_metadata() -> None:
    schema = load_schema()
    names = {t.name for t in schema.tables}
    assert names >= REQUIRED
    for t in schema.tables:
        assert re.fullmatch(r"(ods|dim|dwd|dws|ads|meta)_[a-z]+_[a-z0-9]+(_[a-z0-9]+)*", t.name), t.name
        assert all((t.zh, t.definition, t.update, t.subject_domain)), t.name
        for c in t.columns:
            assert all((c.zh, c.definition)), (t.name, c.name)
            assert c.level in LEVELS, (t.name, c.name)
    assert schema.table("dim_iot_device").column_names[:3] == ("device_id", "valid_from_ms", "valid_to_ms")
    assert schema.table("dim_pub_building").column("floor_area_m2").unit == "m2"
    assert schema.table("dwd_acs_event_di").column("subject_pseudo").level == "L3"


def test_citus_ddl_distributes_every_fact_table_and_references_every_dim_table() -> None:
    schema = load_schema()
    script = "\n".join(render("citus"))
    distributed = dict(re.findall(r"create_distributed_table\('(\w+)', '(\w+)'", script))
    referenced = set(re.findall(r"create_reference_table\('(\w+)'\)", script))
    facts = {t.name for t in schema.tables if t.kind == "fact"}
    dims = {t.name for t in schema.tables if t.tier == "dim"}
    assert facts == set(distributed)
    assert dims <= referenced
    assert not facts & referenced
    by_gateway = {t for t, c in distributed.items() if c == "gateway_id"}
    assert {t for t in facts if t.startswith("ods_")} == by_gateway
    assert all(distributed[t] == "device_id" for t in facts if t.startswith("dwd_"))
    assert script.index("CREATE EXTENSION IF NOT EXISTS citus") < script.index("CREATE TABLE")
    # co-location: every table after the first of its distribution column joins that first table's group
    leads = re.findall(r"create_distributed_table\('(\w+)', '(\w+)', colocate_with => 'none'\)", script)
    assert sorted(c for _, c in leads) == sorted(set(distributed.values()))
    for table in schema.tables:
        if table.kind == "fact":
            for key in (table.primary_key, table.unique_key):
                assert not key or table.distribute_by in key, table.name


def test_ddl_differs_only_where_the_engines_do() -> None:
    duck, pg = render_script("duckdb"), render_script("postgres")
    assert "DOUBLE PRECISION" in pg
    assert "DOUBLE PRECISION" not in duck
    assert "USING brin" in pg
    assert "USING brin" not in duck
    assert "CREATE UNIQUE INDEX IF NOT EXISTS ux_dwd_env_reading_di" in pg
    assert duck.count("CREATE TABLE") == pg.count("CREATE TABLE") == len(load_schema().tables)
    with pytest.raises(ValueError, match="unknown dialect"):
        render("oracle")


def test_schema_is_applied_once_and_a_newer_database_is_refused(engine_url: str) -> None:
    with open_warehouse(engine_url) as wh:
        assert wh.query("SELECT schema_ver FROM meta_pub_schema_log")[1] == [(load_schema().version,)]
    with open_warehouse(engine_url) as wh:  # reopen: nothing applied twice
        assert wh.query("SELECT COUNT(*) FROM meta_pub_schema_log")[1] == [(1,)]
        with wh.maintenance() as s, s.transaction():
            s.execute("INSERT INTO meta_pub_schema_log VALUES (99, 0)")
    with pytest.raises(SchemaError, match="v99, newer"):
        open_warehouse(engine_url)


def test_transform_dag_orders_dependencies() -> None:
    names = [t.name for t in order(ALL)]
    for t in ALL:
        for dep in t.after:
            assert names.index(dep) < names.index(t.name)
    outputs = [o for t in ALL for o in t.outputs]
    assert len(outputs) == len(set(outputs))  # each table has one writer
    tables = {t.name for t in load_schema().tables}
    assert set(outputs) <= tables
    assert {i for t in ALL for i in t.inputs} <= tables

    def noop(_ctx: object) -> dict[str, int]:
        return {}

    with pytest.raises(WarehouseError, match="cycle"):
        order([Transform("a", noop, (), (), after=("b",)), Transform("b", noop, (), (), after=("a",))])
    with pytest.raises(WarehouseError, match="unknown transform"):
        order([Transform("a", noop, (), (), after=("zzz",))])


def test_scheduler_runs_transforms_in_process(warehouse: Warehouse) -> None:
    b, c = cd.wire_roundtrip(cd.make_batch("gw-teach", 1, [
        cd.R("aq-t101", "co2", "ppm", "raw", 0, cd.local_ms(cd.FIRST_DAY, 9), 500.0)]))
    warehouse.land_batch(b, body_checksum=c, received_ms=1)
    sched = start_transform_scheduler(warehouse, 0.2)
    try:
        deadline = time.monotonic() + 20
        while warehouse.watermarks().get("ads_occ_util", 0) < 1:
            assert time.monotonic() < deadline, "scheduled run did not happen"
            time.sleep(0.05)
    finally:
        sched.shutdown(wait=True)
    assert warehouse.query("SELECT COUNT(*) FROM dwd_env_reading_di")[1] == [(1,)]
    with pytest.raises(ValueError, match="interval_s"):
        start_transform_scheduler(warehouse, 0)

"""The ODS → DWD merge on both engines: one row per key (highest window version, then first arrival: lowest
load_id, then batch seq), whatever the mix of repeats inside a batch, inside one transform range and across
ranges; idempotent when the ranges are processed again. On PostgreSQL the merge must not depend on
statistics: its inserts use the unique index (``ON CONFLICT``) and hash joins, never the nested-loop
anti-join that made a fresh database quadratic."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from cloud_ingest.warehouse import Warehouse, open_warehouse
from cloud_ingest.warehouse.adapter import PostgresSession
from cloud_ingest.warehouse.schema import load_schema
from cloud_ingest.warehouse.transforms import dwd
from tests.cloud import campus_data as cd

# (device, metric, unit): env, occupancy, energy, device (iot) readings; aq-ghost is not in the registry
SERIES = (("aq-t101", "co2", "ppm"), ("aq-t102", "temperature_air", "Cel"), ("aq-l102", "co2", "ppm"),
          ("pc-t101", "people_count", "count"), ("em-teach", "energy_active_total", "kWh"),
          ("aq-t101", "battery_level", "%"), ("aq-ghost", "co2", "ppm"))
TABLES = tuple(dwd.PROCESS_TABLES.values())


def _copies(rng: random.Random) -> list[cd.R]:
    """Every key 1-4 times with versions 0-3 (equal versions too); each copy's value is unique."""
    out = []
    t0 = cd.local_ms(cd.FIRST_DAY, 9)
    for s, (device, metric, unit) in enumerate(SERIES):
        for k in range(12):
            ts = t0 + k * 300_000
            for c in range(rng.randint(1, 4)):
                out.append(cd.R(device, metric, unit, "mean", 300, ts, float(s * 1000 + k * 10 + c),
                                16 if c else 0, rng.randint(0, 3)))
    rng.shuffle(out)
    return out


def _rounds(rng: random.Random, copies: list[cd.R]) -> list[list[list[cd.R]]]:
    """Transform ranges of batches; a batch may repeat a key (never with the same version: that would tie)."""
    rounds: list[list[list[cd.R]]] = []
    i = 0
    while i < len(copies):
        batches: list[list[cd.R]] = []
        for _ in range(rng.randint(1, 4)):
            batch: list[cd.R] = []
            seen: set[tuple[Any, ...]] = set()
            size = rng.randint(5, 40)
            while i < len(copies) and len(batch) < size:
                r = copies[i]
                key = (r.device, r.metric, r.ts_ms, r.version, r.gateway)
                if key in seen:
                    break
                seen.add(key)
                batch.append(r)
                i += 1
            if batch:
                batches.append(batch)
        rounds.append(batches)
    return rounds


def _dwd(wh: Warehouse) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    out: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for table in TABLES:
        _, rows = wh.query(f"SELECT device_id, metric_code, agg_code, window_s, ts_ms, window_ver, value, "
                           f"gateway_id, batch_seq, load_id, '{table}' FROM {table}")
        for r in rows:
            assert r[:5] not in out, f"key {r[:5]} twice in DWD"
            out[r[:5]] = r[5:]
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_dwd_keeps_the_highest_version_then_the_first_arrival(warehouse: Warehouse, registry_demo: Path,
                                                              seed: int) -> None:
    rng = random.Random(seed)
    wh = warehouse
    wh.load_registry_file(registry_demo)
    best: dict[tuple[Any, ...], tuple[int, int, str, int, cd.R]] = {}  # key -> (-ver, load order, gw, seq, r)
    seq = {"gw-teach": 0, "gw-lab": 0}
    order = 0
    copies = _copies(rng)
    for batches in _rounds(rng, copies):
        for rows in batches:
            for gw in sorted({r.gateway for r in rows}):
                mine = [r for r in rows if r.gateway == gw]
                seq[gw] += 1
                order += 1
                b, c = cd.wire_roundtrip(cd.make_batch(gw, seq[gw], mine))
                assert wh.land_batch(b, body_checksum=c, received_ms=1).status == "stored"
                for r in mine:
                    key = (r.device, r.metric, r.agg, r.window_s, r.ts_ms)
                    cand = (-r.version, order, gw, seq[gw], r)
                    if key not in best or cand[:2] < best[key][:2]:
                        best[key] = cand
        wh.run_transforms(only=["dwd_reading"])
    got = _dwd(wh)
    assert len(got) == len(best) == len({(r.device, r.metric, r.ts_ms) for r in copies})
    for key, (_, _, gw, s, r) in best.items():
        ver, value, g, bseq = got[key][:4]
        assert (ver, value, g, bseq) == (r.version, r.value, gw, s), key
    assert {t for *_, t in got.values()} == set(TABLES)  # every process table took part
    # a second pass over every range (watermarks reset) changes nothing, not even lineage
    with wh.maintenance() as s, s.transaction():
        s.execute("DELETE FROM meta_etl_watermark_cur")
    assert sum(wh.run_transforms(only=["dwd_reading"]).values()) == 0
    assert _dwd(wh) == got


@pytest.mark.postgres
def test_duckdb_and_postgres_merge_identically(duckdb_url: str, pg_url: str, registry_demo: Path) -> None:
    results = []
    for url in (duckdb_url, pg_url):
        rng = random.Random(5)
        with open_warehouse(url) as wh:
            wh.load_registry_file(registry_demo)
            n = 0
            for batches in _rounds(rng, _copies(rng)):
                for rows in batches:
                    for gw in sorted({r.gateway for r in rows}):
                        n += 1
                        b, c = cd.wire_roundtrip(cd.make_batch(gw, n, [r for r in rows if r.gateway == gw]))
                        wh.land_batch(b, body_checksum=c, received_ms=1)
                wh.run_transforms(only=["dwd_reading"])
            results.append(_dwd(wh))
    assert results[0] == results[1]


def test_merge_keys_are_the_unique_keys_of_the_schema() -> None:
    """PostgreSQL's ``ON CONFLICT (key)`` needs the unique index of exactly that key."""
    schema = load_schema()
    for table in TABLES:
        assert schema.table(table).unique_key == dwd._KEY
    assert schema.table("dwd_acs_event_di").unique_key == dwd._ACS_KEY


@pytest.mark.postgres
def test_postgres_dwd_inserts_probe_the_unique_index_without_nested_loops(
        pg_url: str, registry_demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan shape, not time: every DWD insert (readings and access events) is planned, on a fresh database
    whose ODS has no statistics, with hash joins and the unique index as conflict arbiter."""
    plans: dict[str, str] = {}
    deletes: dict[str, str] = {}
    run, run_count = PostgresSession.execute, PostgresSession.execute_count

    def plan(self: PostgresSession, sql: str, params: Any) -> str:
        return "\n".join(r[0] for r in self.fetchall("EXPLAIN " + sql, params))

    def execute_count(self: PostgresSession, sql: str, params: Any = ()) -> int:
        if sql.startswith("INSERT INTO dwd_"):
            plans[sql.split()[2]] = plan(self, sql, params)
        return run_count(self, sql, params)

    def execute(self: PostgresSession, sql: str, params: Any = ()) -> None:
        if sql.startswith("DELETE FROM dwd_") and "USING tmp_dwd_newer" in sql:  # the merge's superseding
            deletes[sql.split()[2]] = plan(self, sql, params)
        run(self, sql, params)

    monkeypatch.setattr(PostgresSession, "execute_count", execute_count)
    monkeypatch.setattr(PostgresSession, "execute", execute)
    readings, events = cd.generate()
    with open_warehouse(pg_url) as wh:
        wh.load_registry_file(registry_demo)
        for b, c in cd.batches(readings[:3000], events[:200]):
            wh.land_batch(b, body_checksum=c, received_ms=1)
        wh.run_transforms(only=["dwd_reading", "dwd_acs_event"])
        # a late re-versioned copy of 500 stored readings: the superseding DELETE runs
        newer = [cd.R(r.device, r.metric, r.unit, r.agg, r.window_s, r.ts_ms, r.value + 1, r.quality, r.version + 1)
                 for r in readings[:500]]
        for gw in sorted({r.gateway for r in newer}):
            b, c = cd.wire_roundtrip(cd.make_batch(gw, 1000, [r for r in newer if r.gateway == gw]))
            assert wh.land_batch(b, body_checksum=c, received_ms=2).status == "stored"
        wh.run_transforms(only=["dwd_reading"])
        with wh.maintenance() as s, s.transaction():
            before = s.fetch_one_value("SELECT current_setting('enable_nestloop')")
            with s.hash_joins():
                inside = s.fetch_one_value("SELECT current_setting('enable_nestloop')")
            after = s.fetch_one_value("SELECT current_setting('enable_nestloop')")
    assert (before, inside, after) == ("on", "off", "on")
    assert set(plans) >= {"dwd_env_reading_di", "dwd_occ_reading_di", "dwd_energy_reading_di",
                          "dwd_acs_event_di"}
    for table, text in plans.items():
        assert f"Conflict Arbiter Indexes: ux_{table}" in text, text
        assert "Nested Loop" not in text, text
    assert "dwd_env_reading_di" in deletes
    for table, text in deletes.items():  # one unique-index lookup per superseding candidate, no scan of DWD
        assert f"Index Scan using ux_{table}" in text, text
        assert f"Seq Scan on {table}" not in text, text

"""The layered campus warehouse (ODS → DIM/DWD → DWS → ADS) on DuckDB or PostgreSQL.

Public surface::

    wh = open_warehouse("duckdb:///var/lib/campus/warehouse.duckdb")   # or "postgresql://…"
    wh.land_batch(batch, body_checksum=..., received_ms=...) -> LandResult("stored"|"duplicate"|"conflict", …)
    wh.run_transforms() -> {"dwd_env_reading_di": 1234, …}
    wh.load_registry_file("registry.yaml") -> RegistryReport  (or wh.load_registry(load_registry_file(path)))
    wh.query("SELECT … WHERE x = ?", (1,)) -> (columns, rows)
    wh.close()

The schema is data (``schema.yaml``); ``ddl.render(dialect)`` turns it into DDL for duckdb, postgres
and citus.
"""

from __future__ import annotations

from cloud_ingest.warehouse.dim_load import RegistryReport
from cloud_ingest.warehouse.errors import (
    EngineError,
    ReadOnlyError,
    RegistryError,
    SchemaError,
    TransformError,
    WarehouseError,
)
from cloud_ingest.warehouse.landing import LandResult
from cloud_ingest.warehouse.registry import Registry, load_registry_file
from cloud_ingest.warehouse.warehouse import Warehouse, open_warehouse

__all__ = [
    "EngineError",
    "LandResult",
    "ReadOnlyError",
    "Registry",
    "RegistryError",
    "RegistryReport",
    "SchemaError",
    "TransformError",
    "Warehouse",
    "WarehouseError",
    "load_registry_file",
    "open_warehouse",
]

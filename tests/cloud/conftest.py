"""Warehouse fixtures: a session-scoped real PostgreSQL server, a fresh database per test, a DuckDB file,
and ``engine_url`` parametrised over both engines so one test body runs on each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.warehouse import Warehouse, open_warehouse
from tests.cloud.api_fixtures import api_on_warehouse, open_test_warehouse

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_DEMO = ROOT / "tests" / "data" / "registry_demo.yaml"


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    return f"duckdb://{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> str:
    """The URL of an empty warehouse database on each engine in turn (duckdb, then postgres)."""
    name = "duckdb_url" if request.param == "duckdb" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine_url(engine: str) -> str:
    """Alias of ``engine`` (same parametrisation)."""
    return engine


@pytest.fixture
def warehouse(engine_url: str) -> Iterator[Warehouse]:
    """An open warehouse on each engine (schema applied), closed after the test."""
    wh = open_warehouse(engine_url)
    try:
        yield wh
    finally:
        wh.close()


@pytest.fixture
def registry_demo() -> Path:
    return REGISTRY_DEMO


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    """A DuckDB warehouse file for the API tests (tests needing both engines use ``warehouse``)."""
    wh = open_test_warehouse(tmp_path)
    yield wh
    wh.close()


@pytest.fixture
def api(wh: Warehouse):  # type: ignore[no-untyped-def]
    """The ingest API on ``wh``, served by a real uvicorn on 127.0.0.1."""
    with api_on_warehouse(wh) as server:
        yield server

"""Fixtures of the governance tests: a real DuckDB warehouse file, a real PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cloud_ingest.warehouse import Warehouse, open_warehouse
from tests.cloud.pgserver import PgServer, running_postgres

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_DEMO = ROOT / "tests" / "data" / "registry_demo.yaml"


@pytest.fixture
def duck_url(tmp_path: Path) -> str:
    return f"duckdb://{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture
def duck(duck_url: str) -> Iterator[Warehouse]:
    """An empty DuckDB warehouse (schema applied), closed after the test."""
    wh = open_warehouse(duck_url)
    try:
        yield wh
    finally:
        wh.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the governance tests that need one."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh database on the session server, dropped afterwards."""
    name = f"g_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.url(name)
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

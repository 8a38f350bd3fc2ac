"""Fixtures of the governance tests: a real DuckDB warehouse file, a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.warehouse import Warehouse, open_warehouse

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


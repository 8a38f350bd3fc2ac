"""Fixtures shared by every test package: real components, each started on a random loopback port."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis  # noqa: F401  (imported early: a lazy import at session end trips a CPython 3.11.7 AST bug)
import pytest

from tests.cloud.pgserver import PgServer, running_postgres
from tests.support.procs import Broker, running_broker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep proxies and TLS overrides of the developer's shell out of tests (everything is loopback)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "SSL_CERT_FILE", "SSL_CERT_DIR", "NOTIFY_SOCKET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto broker with persistence, on 127.0.0.1 and a free port."""
    with running_broker(tmp_path / "mosquitto") as b:
        yield b


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the whole session (initdb + pg_ctl, free port, temp directory)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session server; dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.url(name)
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def profiles_dir() -> Path:
    return ROOT / "device_profiles"


def pytest_report_header(config: pytest.Config) -> str:
    return f"campus-collector tests; CI={os.environ.get('CI', '')}"

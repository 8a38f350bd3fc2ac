"""The warehouse facade: land batches, run transforms, load the registry, answer read-only queries.

Threads: every method may be called from any thread. Up to ``LAND_SESSIONS`` batches land at once, each on
its own session (DuckDB appends from several connections of one process in parallel; PostgreSQL replicas
coordinate through the database: unique (gateway, seq) and advisory locks, see ``adapter``). Landings hold a
shared lock that a transform run's watermark snapshot takes exclusively. Transform runs and registry loads
use one more session under a run lock. ``query`` borrows a read session from a small pool.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cloud_ingest.warehouse import ddl
from cloud_ingest.warehouse.adapter import Engine, Params, Session, open_engine
from cloud_ingest.warehouse.dictionary import load_dictionary
from cloud_ingest.warehouse.dim_load import RegistryReport, apply_registry, write_dictionary
from cloud_ingest.warehouse.errors import EngineError, SchemaError, WarehouseError
from cloud_ingest.warehouse.landing import LandResult, land_batch
from cloud_ingest.warehouse.registry import Registry, load_registry_file
from cloud_ingest.warehouse.rwlock import SharedExclusiveLock
from cloud_ingest.warehouse.schema import load_schema
from cloud_ingest.warehouse.transforms import ALL as ALL_TRANSFORMS
from cloud_ingest.warehouse.transforms import runner
from edge_agent.wire import Batch

_LOGGER = logging.getLogger(__name__)

READER_POOL_SIZE = 4  # idle read sessions kept; more concurrent readers open (and then close) their own
# Concurrent landings (one session each); more callers wait. 4 covers the API's worker threads on 2-4 cores
# without idling the CPU; beyond the core count it only adds contention.
LAND_SESSIONS = 4
LAND_RETRIES = 5  # DuckDB: a concurrent upload of the same (gateway, seq) aborts one commit; retry it
HI_SQL = ("SELECT GREATEST(COALESCE((SELECT MAX(load_id) FROM ods_iot_batch_di), 0), "
          "COALESCE((SELECT MAX(load_id) FROM ods_iot_heartbeat_di), 0), "
          "COALESCE((SELECT MAX(load_id) FROM meta_etl_dirty_day_log), 0))")
_INSERT_HEARTBEAT = ("INSERT INTO ods_iot_heartbeat_di (gateway_id, load_id, received_ms, sent_ms, heartbeat_json) "
                     "VALUES (?, nextval('meta_etl_load_id_seq'), ?, ?, ?)")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def ensure_schema(session: Session, dialect: str, now_ms: int) -> None:
    """Create missing tables and columns (idempotent DDL) and record the schema version; refuse a newer database."""
    version = load_schema().version
    with session.transaction():
        session.snapshot_guard()  # replicas starting together: one creates, the others wait
        exists = session.fetch_one_value(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'meta_pub_schema_log'")
        if exists:
            have = session.fetch_one_value("SELECT MAX(schema_ver) FROM meta_pub_schema_log") or 0
            if int(have) > version:
                raise SchemaError(f"the database has warehouse schema v{have}, newer than this program's "
                                  f"v{version}: upgrade the program")
        else:
            have = 0
        if exists:  # an older database: add the columns new in this version to its tables
            present = {(str(t), str(c)) for t, c in session.fetchall(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()")}
            for stmt in ddl.add_columns(load_schema(), present, dialect):
                session.execute(stmt)
        for stmt in ddl.render(dialect):  # idempotent (IF NOT EXISTS): also adds tables new in this version
            session.execute(stmt)
        if not session.fetch_one_value("SELECT COUNT(*) FROM dim_iot_metric"):
            write_dictionary(session, load_dictionary())  # DWD can route by process before a registry load
        if int(have) < version:
            session.execute("INSERT INTO meta_pub_schema_log (schema_ver, applied_ms) VALUES (?, ?)",
                            (version, now_ms))
            _LOGGER.info("warehouse schema v%s applied", version)


class Warehouse:
    """One warehouse database. Build with :func:`open_warehouse`; close with :meth:`close`."""

    def __init__(self, engine: Engine, *, clock_ms: Callable[[], int] = _now_ms) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.url = engine.url
        self._clock = clock_ms
        self._landing = SharedExclusiveLock()
        self._land_slots = threading.BoundedSemaphore(LAND_SESSIONS)
        self._run_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._readers: list[Session] = []
        self._landers: list[Session] = []
        self._closed = False
        self._etl = engine.session()
        try:
            ensure_schema(self._etl, self.dialect, clock_ms())
        except BaseException:
            self._etl.close()
            raise

    # ---------------------------------------------------------------------------------------------- ingest

    def land_batch(self, batch: Batch, *, body_checksum: str, received_ms: int) -> LandResult:
        """Store ``batch`` in ODS, idempotently on (gateway, seq); durably committed when it returns.

        ``stored``: new; ``duplicate``: same (gateway, seq) and checksum already stored, nothing written;
        ``conflict``: same (gateway, seq) with another checksum, nothing written. Thread-safe; up to
        ``LAND_SESSIONS`` calls proceed in parallel.
        """
        with self._land_slots:
            self._check_open()
            session = self._borrow(self._landers)
            ok = False
            try:
                for attempt in range(LAND_RETRIES):
                    try:
                        with self._landing.shared():
                            result = land_batch(session, batch, body_checksum=body_checksum,
                                                received_ms=received_ms)
                        ok = True
                        return result
                    except EngineError as exc:
                        if not exc.conflict or attempt == LAND_RETRIES - 1:
                            raise
                        _LOGGER.info("batch %s/%s: concurrent commit conflict, retrying", batch.gateway,
                                     batch.seq)
                        time.sleep(0.002 * (attempt + 1))
                raise AssertionError("unreachable")  # pragma: no cover
            finally:
                self._give_back(self._landers, session, ok, LAND_SESSIONS)

    def land_heartbeat(self, gateway: str, *, sent_ms: int, received_ms: int, heartbeat_json: str) -> None:
        """Append one gateway heartbeat to ``ods_iot_heartbeat_di`` (history; its counters feed quality)."""
        with self._land_slots:
            self._check_open()
            session = self._borrow(self._landers)
            ok = False
            try:
                with self._landing.shared(), session.transaction():
                    session.landing_guard()  # the load_id follows the watermark protocol
                    session.execute(_INSERT_HEARTBEAT, (gateway, received_ms, sent_ms, heartbeat_json))
                ok = True
            finally:
                self._give_back(self._landers, session, ok, LAND_SESSIONS)

    def _borrow(self, pool: list[Session]) -> Session:
        with self._pool_lock:
            if pool:
                return pool.pop()
        return self.engine.session()

    def _give_back(self, pool: list[Session], session: Session, ok: bool, limit: int) -> None:
        with self._pool_lock:
            if ok and len(pool) < limit and not self._closed:
                pool.append(session)
                return
        session.close()

    # ----------------------------------------------------------------------------------------- transforms

    @contextlib.contextmanager
    def maintenance(self) -> Iterator[Session]:
        """The transform session under the run lock (transform runs, registry loads: one at a time)."""
        with self._run_lock:
            self._check_open()
            with self._etl.run_lock():
                yield self._etl

    def snapshot_hi(self, session: Session) -> int:
        """The highest change id such that every id up to it is committed (watermark protocol)."""
        with self._landing.exclusive(), session.transaction():
            session.snapshot_guard()
            return int(session.fetch_one_value(HI_SQL) or 0)

    def run_transforms(self, *, only: Sequence[str] = ()) -> dict[str, int]:
        """Run the transform DAG over everything landed so far; returns rows written per table.

        Idempotent: a second call with no new data writes nothing. Raises ``TransformError`` after running
        what does not depend on a failed transform.
        """
        with self.maintenance() as session:
            hi = self.snapshot_hi(session)
            return runner.run(session, ALL_TRANSFORMS, hi, now_ms=self._clock(), only=only)

    def load_registry(self, registry: Registry) -> RegistryReport:
        """Write a validated registry to the DIM tables and re-conform moved devices (one transaction)."""
        with self.maintenance() as session, self._landing.shared(), session.transaction():
            session.landing_guard()  # the dirty-day change id follows the watermark protocol
            return apply_registry(session, registry, self._clock())

    def load_registry_file(self, path: str | Path) -> RegistryReport:
        """Read, validate (``RegistryError`` names file, field, problem) and load a registry YAML file."""
        return self.load_registry(load_registry_file(path))

    def record_access(self, *, consumer: str, role: str, table: str, filters: str, rows: int) -> None:
        """Append one read of ADS data to ``meta_pub_audit_log`` (who, what, when, how many rows)."""
        with self.maintenance() as session, session.transaction():
            session.execute("INSERT INTO meta_pub_audit_log (consumer_name, role_code, table_name, filter_text, "
                            "row_cnt, read_ms) VALUES (?, ?, ?, ?, ?, ?)",
                            (consumer, role, table, filters, rows, self._clock()))

    def watermarks(self) -> dict[str, int]:
        with self._run_lock:
            return runner.watermarks(self._etl)

    # ---------------------------------------------------------------------------------------------- reads

    def query(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement (``?`` placeholders); returns (column names, rows).

        Raises ``ReadOnlyError`` for anything that could write (DuckDB: only a single SELECT is accepted;
        PostgreSQL: the statement runs in a READ ONLY transaction) and ``EngineError`` for bad SQL.
        """
        self._check_open()
        session = self._borrow(self._readers)
        ok = False
        try:
            result = session.read_only_table(sql, params)
            ok = True
            return result
        finally:
            self._give_back(self._readers, session, ok, READER_POOL_SIZE)

    # -------------------------------------------------------------------------------------------- closing

    def _check_open(self) -> None:
        if self._closed:
            raise WarehouseError(f"{self.url}: warehouse is closed")

    def close(self) -> None:
        """Close every session and the database (idempotent)."""
        with self._run_lock, self._landing.exclusive():
            if self._closed:
                return
            with self._pool_lock:
                self._closed = True
                for s in (*self._readers, *self._landers):
                    s.close()
                self._readers.clear()
                self._landers.clear()
            self._etl.close()
            self.engine.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_warehouse(url: str, *, clock_ms: Callable[[], int] = _now_ms) -> Warehouse:
    """Open (and create or upgrade the schema of) the warehouse at ``url``.

    ``duckdb:///path/file.duckdb`` (one file, zero setup; one writer process) or ``postgresql://…``
    (several ingest replicas may share it). Raises ``EngineError`` when the database cannot be opened.
    """
    return Warehouse(open_engine(url), clock_ms=clock_ms)

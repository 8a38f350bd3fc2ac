"""The one place where DuckDB and PostgreSQL differ: connections, parameters, bulk staging, locks, read-only.

Everything else writes SQL once, in the subset both engines accept, with ``?`` placeholders, and uses:

* ``Engine``: one database (``duckdb:///path/file.duckdb`` or ``postgresql://…``); ``session()`` opens a
  connection. DuckDB sessions are cursors of one in-process database (DuckDB allows one writer *process*;
  threads share it); PostgreSQL sessions are separate server connections.
* ``Session``: ``execute`` / ``fetchall`` / ``transaction``; ``stage(name, columns)`` makes numpy columns
  visible to SQL as a relation for the current transaction (DuckDB: a registered numpy dict, no copy;
  PostgreSQL: a temporary table filled by ``COPY … (FORMAT BINARY)`` built with one numpy structured array);
  ``landing_guard`` / ``snapshot_guard`` implement the watermark protocol across ingest replicas (below);
  ``idiv`` renders integer division (DuckDB ``//``, PostgreSQL ``/`` on integers); ``unique_keys`` says whether
  every table's logical ``unique_key`` is a unique index (PostgreSQL: ``INSERT … ON CONFLICT`` can use it;
  DuckDB: no index, see ``ddl.py``); ``analyze`` refreshes a (temporary) table's planner statistics.

Watermark protocol. Every ODS batch gets a ``load_id`` from a sequence when it lands. A transform run must
only advance its watermark to an id ``hi`` when every id ``<= hi`` is committed (or rolled back). Landing
transactions hold a *shared* lock from before they draw their id until they commit; the run takes the
*exclusive* lock just long enough to read ``hi``. On PostgreSQL these are transaction-level advisory locks,
so several ingest replicas on one database are safe; on DuckDB the warehouse's writer lock does it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud_ingest.warehouse.errors import EngineError, ReadOnlyError, WarehouseError

_LOGGER = logging.getLogger(__name__)

LAND_LOCK_KEY = 0x63616D70  # advisory lock: landings share it, a run's snapshot of hi takes it exclusively
RUN_LOCK_KEY = 0x63616D71  # advisory lock: one transform run at a time across replicas
CATALOG = "warehouse"  # DuckDB: the file is attached under this name (the default catalog is in memory)
# DuckDB row group size; appends of at least this many rows skip the WAL (written compressed at commit).
# Smaller = more batches take the fast path but more per-group metadata; 16384 fits 1 s-50 k-reading batches.
ROW_GROUP_SIZE = 16_384
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")

Params = Sequence[Any]
StageColumn = npt.NDArray[Any] | Sequence[Any]


class Session:
    """One connection. Not thread-safe: one thread uses a session at a time (the warehouse locks)."""

    dialect = ""
    # True when each table's logical unique_key is enforced by a unique index (``ON CONFLICT (key)`` works)
    unique_keys = False

    def execute(self, sql: str, params: Params = ()) -> None:
        raise NotImplementedError

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def execute_count(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT / UPDATE / DELETE and return how many rows it touched."""
        raise NotImplementedError

    def fetch_table(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        raise NotImplementedError

    def fetch_one_value(self, sql: str, params: Params = ()) -> Any:
        rows = self.fetchall(sql, params)
        return rows[0][0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield  # pragma: no cover

    def stage(self, name: str, columns: Mapping[str, StageColumn]) -> None:
        """Make ``columns`` (equal lengths) readable as relation ``name`` inside the current transaction."""
        raise NotImplementedError

    def unstage(self, name: str) -> None:
        raise NotImplementedError

    def landing_guard(self) -> None:
        """Inside a landing transaction, before drawing a load_id: hold the shared landing lock."""

    def snapshot_guard(self) -> None:
        """Inside a short transaction: wait until no landing is in flight (exclusive landing lock)."""

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """Held for a whole transform run (across replicas on PostgreSQL)."""
        yield

    def read_only_table(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement; refuse anything that could write (ReadOnlyError)."""
        raise NotImplementedError

    def idiv(self, a: str, b: str) -> str:
        """SQL for integer division of two integer expressions (both non-negative)."""
        raise NotImplementedError

    def analyze(self, table: str) -> None:
        """Refresh the planner's statistics of ``table`` (a temporary table just filled, typically)."""

    def key_hash(self, exprs: Sequence[str]) -> str | None:
        """SQL for one 64-bit hash of ``exprs`` (equal values, equal hash), or None where none is cheap."""
        return None

    @contextlib.contextmanager
    def hash_joins(self) -> Iterator[None]:
        """Inside a transaction: plan the statements run in the block without nested-loop joins.

        For statements that read a change range of an ODS table and join it to small DIM tables. The range is
        the newest data, beyond the table's statistics (or the table has none yet), so a cost-based planner
        estimates a handful of rows and picks nested loops, which per row rescan a DIM table (or worse): the
        range is really thousands to millions of rows, and hash joins are right at any size.
        """
        yield

    @contextlib.contextmanager
    def index_probes(self) -> Iterator[None]:
        """Inside a transaction: plan the block's joins as nested loops (a large table probed through an index).

        For a small, analysed relation matched against a large table on an indexed key: one index lookup
        per row at any size, where a merge or hash join would read the large table (or its index) whole.
        """
        yield

    def close(self) -> None:
        raise NotImplementedError


class Engine:
    """A database: opens sessions. ``dialect`` is ``duckdb`` or ``postgres``."""

    dialect = ""
    url = ""

    def session(self, *, read_only: bool = False) -> Session:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------- DuckDB


class DuckDBSession(Session):
    dialect = "duckdb"

    def __init__(self, con: Any) -> None:
        import duckdb

        self._con = con
        self._errors: tuple[type[BaseException], ...] = (duckdb.Error,)
        self._conflicts: tuple[type[BaseException], ...] = (duckdb.TransactionException,
                                                           duckdb.ConstraintException)

    def _run(self, sql: str, params: Params) -> Any:
        try:
            return self._con.execute(sql, list(params)) if params else self._con.execute(sql)
        except self._errors as exc:
            raise EngineError(f"duckdb: {exc} (in: {' '.join(sql.split())[:300]})",
                              conflict=isinstance(exc, self._conflicts)) from exc

    def execute(self, sql: str, params: Params = ()) -> None:
        self._run(sql, params)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._run(sql, params).fetchall())

    def execute_count(self, sql: str, params: Params = ()) -> int:
        rows = self._run(sql, params).fetchall()
        return int(rows[0][0]) if rows and rows[0] and rows[0][0] is not None else 0

    def fetch_table(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self._run(sql, params)
        cols = [d[0] for d in cur.description or []]
        return cols, list(cur.fetchall())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._run("BEGIN TRANSACTION", ())
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self._con.execute("ROLLBACK")
            raise
        self._run("COMMIT", ())

    def stage(self, name: str, columns: Mapping[str, StageColumn]) -> None:
        data = {k: v if isinstance(v, np.ndarray) else np.array(v, dtype=object) for k, v in columns.items()}
        self._con.register(name, data)

    def unstage(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self._con.unregister(name)

    def read_only_table(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        import duckdb

        try:
            stmts = self._con.extract_statements(sql)
        except duckdb.Error as exc:
            raise EngineError(f"duckdb: {exc}") from exc
        if len(stmts) != 1:
            raise ReadOnlyError(f"expected exactly one statement, got {len(stmts)}")
        if stmts[0].type != duckdb.StatementType.SELECT:
            raise ReadOnlyError(f"only SELECT is allowed here, not {stmts[0].type.name}")
        return self.fetch_table(sql, params)

    def idiv(self, a: str, b: str) -> str:
        return f"(({a}) // ({b}))"

    def key_hash(self, exprs: Sequence[str]) -> str | None:
        return f"hash({', '.join(exprs)})"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._con.close()


class DuckDBEngine(Engine):
    """One DuckDB file opened read-write by this process; sessions are cursors of it."""

    dialect = "duckdb"

    def __init__(self, url: str, path: str) -> None:
        import duckdb

        self.url = url
        self.path = path
        try:
            self._root = duckdb.connect(":memory:")
            # Small row groups: a batch of >= ROW_GROUP_SIZE readings is written compressed straight to the
            # file at commit ("optimistic write") instead of row by row through the WAL: 3-5x faster landing.
            quoted = path.replace("'", "''")
            try:
                self._root.execute(f"ATTACH '{quoted}' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
            except duckdb.BinderException:  # DuckDB < 1.2 has no ROW_GROUP_SIZE option: default groups
                self._root.execute(f"ATTACH '{quoted}' AS {CATALOG}")
            self._root.execute(f"USE {CATALOG}")
            # No file access from SQL (read_csv, COPY TO, ATTACH): data only enters through the warehouse.
            self._root.execute("SET enable_external_access = false")
        except duckdb.IOException as exc:
            raise EngineError(
                f"cannot open {path}: {exc}. DuckDB allows one writer process: stop the service that has "
                "it open (transforms run inside it on a schedule) or use PostgreSQL") from exc
        except duckdb.Error as exc:
            raise EngineError(f"cannot open {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False

    def session(self, *, read_only: bool = False) -> Session:
        with self._lock:
            if self._closed:
                raise WarehouseError(f"{self.url}: warehouse is closed")
            cur = self._root.cursor()
            cur.execute(f"USE {CATALOG}")  # a cursor is a new connection: it starts in the default catalog
            # Row order of inserts carries no meaning here; letting DuckDB drop it parallelises INSERT…SELECT.
            cur.execute("SET preserve_insertion_order = false")
            return DuckDBSession(cur)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(Exception):
                    self._root.execute("CHECKPOINT")
                self._root.close()


# --------------------------------------------------------------------------------------------- PostgreSQL


def _pg_sql(sql: str, params: Params) -> str:
    """``?`` placeholders → psycopg's ``%s`` (and a literal ``%`` → ``%%``) when there are parameters."""
    if not params:
        return sql
    return sql.replace("%", "%%").replace("?", "%s")


def _pg_type(arr: npt.NDArray[Any]) -> str:
    kind = arr.dtype.kind
    if kind in "iu":
        return "BIGINT"
    if kind == "f":
        return "DOUBLE PRECISION"
    if kind == "b":
        return "BOOLEAN"
    return "TEXT"


def pg_binary_copy(arrays: Sequence[npt.NDArray[Any]]) -> bytes:
    """A complete ``COPY … FROM STDIN (FORMAT BINARY)`` stream for fixed-width numeric columns.

    One numpy structured array holds every tuple (field count, then length + big-endian value per field), so
    building it costs a few vectorised copies instead of a Python loop per row.
    """
    n = len(arrays[0]) if arrays else 0
    fields: list[tuple[str, str]] = [("nf", ">i2")]
    for i, arr in enumerate(arrays):
        code = {"i": ">i8", "u": ">i8", "f": ">f8", "b": "u1"}[arr.dtype.kind]
        fields += [(f"l{i}", ">i4"), (f"v{i}", code)]
    rec = np.empty(n, dtype=fields)
    rec["nf"] = len(arrays)
    for i, arr in enumerate(arrays):
        rec[f"l{i}"] = 1 if arr.dtype.kind == "b" else 8
        rec[f"v{i}"] = arr
    return _PG_COPY_HEADER + rec.tobytes() + b"\xff\xff"


class PostgresSession(Session):
    dialect = "postgres"
    unique_keys = True  # ddl.create_indexes: a unique index on every unique_key

    def __init__(self, conn: Any) -> None:
        import psycopg

        self._conn = conn
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._staged: dict[str, tuple[str, ...]] = {}

    def _cursor_run(self, sql: str, params: Params) -> Any:
        try:
            cur = self._conn.cursor()
            cur.execute(_pg_sql(sql, params), list(params) if params else None)
            return cur
        except self._errors as exc:
            raise EngineError(f"postgres: {exc} (in: {' '.join(sql.split())[:300]})") from exc

    def execute(self, sql: str, params: Params = ()) -> None:
        self._cursor_run(sql, params).close()

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        cur = self._cursor_run(sql, params)
        try:
            return list(cur.fetchall())
        finally:
            cur.close()

    def execute_count(self, sql: str, params: Params = ()) -> int:
        cur = self._cursor_run(sql, params)
        try:
            return max(int(cur.rowcount), 0)
        finally:
            cur.close()

    def fetch_table(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self._cursor_run(sql, params)
        try:
            cols = [d.name for d in cur.description or []]
            return cols, list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self._conn.transaction():
                yield
        except self._errors as exc:
            raise EngineError(f"postgres: {exc}") from exc

    def stage(self, name: str, columns: Mapping[str, StageColumn]) -> None:
        arrays = {k: v if isinstance(v, np.ndarray) else np.array(v, dtype=object)
                  for k, v in columns.items()}
        names = tuple(arrays)
        if self._staged.get(name) != names:
            cols = ", ".join(f"{k} {_pg_type(a)}" for k, a in arrays.items())
            self.execute(f"DROP TABLE IF EXISTS {name}")
            self.execute(f"CREATE TEMP TABLE {name} ({cols}) ON COMMIT DELETE ROWS")
            self._staged[name] = names
        copy_sql = f"COPY {name} ({', '.join(names)}) FROM STDIN"
        try:
            with self._conn.cursor() as cur:
                if all(a.dtype.kind in "iufb" for a in arrays.values()):
                    with cur.copy(copy_sql + " (FORMAT BINARY)") as cp:
                        cp.write(pg_binary_copy(list(arrays.values())))
                else:
                    with cur.copy(copy_sql) as cp:
                        for row in zip(*(a.tolist() for a in arrays.values()), strict=True):
                            cp.write_row(row)
        except self._errors as exc:
            raise EngineError(f"postgres: COPY into {name}: {exc}") from exc

    def unstage(self, name: str) -> None:
        """Rows go at commit (ON COMMIT DELETE ROWS); the temporary table is kept for the next batch."""

    def landing_guard(self) -> None:
        self.execute(f"SELECT pg_advisory_xact_lock_shared({LAND_LOCK_KEY})")

    def snapshot_guard(self) -> None:
        self.execute(f"SELECT pg_advisory_xact_lock({LAND_LOCK_KEY})")

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        self.execute(f"SELECT pg_advisory_lock({RUN_LOCK_KEY})")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self.execute(f"SELECT pg_advisory_unlock({RUN_LOCK_KEY})")

    def read_only_table(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        # The server enforces it: a READ ONLY transaction refuses every write, whatever the SQL says.
        try:
            with self._conn.transaction():
                self.execute("SET TRANSACTION READ ONLY")
                return self.fetch_table(sql, params)
        except EngineError as exc:
            if "read-only transaction" in str(exc):
                raise ReadOnlyError(str(exc)) from exc
            raise
        except self._errors as exc:
            raise EngineError(f"postgres: {exc}") from exc

    def idiv(self, a: str, b: str) -> str:
        return f"(({a}) / ({b}))"

    @contextlib.contextmanager
    def _planner(self, **settings: str) -> Iterator[None]:
        """Transaction-local planner settings for the block, restored after it."""
        prev = {k: self.fetch_one_value(f"SELECT current_setting('{k}')") for k in settings}
        for k, v in settings.items():
            self.execute("SELECT set_config(?, ?, true)", (k, v))
        yield
        # not in a finally: after an error the transaction is aborted and rolls the settings back itself
        for k, v in prev.items():
            self.execute("SELECT set_config(?, ?, true)", (k, v))

    @contextlib.contextmanager
    def hash_joins(self) -> Iterator[None]:
        # JIT off as well: a large estimate compiles each statement (0.16 s measured), never repaid here
        with self._planner(enable_nestloop="off", jit="off"):
            yield

    @contextlib.contextmanager
    def index_probes(self) -> Iterator[None]:
        with self._planner(enable_hashjoin="off", enable_mergejoin="off", enable_memoize="off", jit="off"):
            yield

    def analyze(self, table: str) -> None:
        # A temporary table is never analysed by autovacuum: without this the planner guesses its size and
        # may choose nested loops that rescan a whole relation per row.
        self.execute(f"ANALYZE {table}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


class PostgresEngine(Engine):
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        s = self.session()  # fail now, with the reason, rather than on the first batch
        s.close()

    def session(self, *, read_only: bool = False) -> Session:
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, application_name="campus-cloud")
        except psycopg.Error as exc:
            raise EngineError(f"cannot connect to PostgreSQL ({_redact(self.url)}): {exc}") from exc
        return PostgresSession(conn)

    def close(self) -> None:
        pass


def _redact(url: str) -> str:
    """The URL without its password (secrets never reach logs or error messages)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


def open_engine(url: str) -> Engine:
    """``duckdb:///abs/path.duckdb``, ``duckdb://rel/path.duckdb``, ``duckdb:///:memory:`` or ``postgresql://…``."""
    if url.startswith("duckdb://"):
        path = url[len("duckdb://"):]
        if path.startswith("/:memory:"):
            path = ":memory:"
        if not path:
            raise WarehouseError(f"{url}: no file path (use duckdb:///path/to/file.duckdb)")
        return DuckDBEngine(url, path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresEngine(url)
    raise WarehouseError(f"unsupported warehouse URL {_redact(url)!r}: use duckdb:///path/file.duckdb or "
                         "postgresql://user@host:port/db")

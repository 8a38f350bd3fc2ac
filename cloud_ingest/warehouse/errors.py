"""Exception tree of the warehouse.

    WarehouseError                 anything the warehouse refuses on purpose
    ├── SchemaError                the schema data (schema.yaml) or a database's schema is wrong
    ├── RegistryError              a registry file is invalid (message names file, field and problem)
    ├── ReadOnlyError              a query passed to ``Warehouse.query`` would write
    ├── TransformError             a transform failed (names the transform); its transaction rolled back
    └── EngineError                the database refused a statement or is unreachable (driver error as cause)

Driver errors (duckdb, psycopg) are translated once, in ``adapter.py``, with ``raise ... from exc``.
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Root of every error the warehouse raises on purpose."""


class SchemaError(WarehouseError):
    """The schema definitions are inconsistent, or the database holds an unexpected schema version."""


class RegistryError(WarehouseError):
    """A registry file is invalid; ``str(err)`` reads ``"<file>: <field.path>: <problem>"``."""

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        super().__init__(f"{file}: {field}: {problem}" if field else f"{file}: {problem}")


class ReadOnlyError(WarehouseError):
    """A query given to the read-only query path is not a single read-only statement."""


class TransformError(WarehouseError):
    """A transform failed; ``transform`` names it. Its transaction was rolled back, its watermark kept."""

    def __init__(self, transform: str, problem: str) -> None:
        self.transform = transform
        self.problem = problem
        super().__init__(f"transform {transform}: {problem}")


class EngineError(WarehouseError):
    """The database engine refused a statement or the connection failed (driver error as ``__cause__``).

    ``conflict`` is True when the engine aborted the transaction because a concurrent one wrote the same key
    (DuckDB's optimistic concurrency): retrying the whole transaction is the right answer.
    """

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        self.conflict = conflict
        super().__init__(message)

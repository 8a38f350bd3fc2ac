"""Render the schema (``schema.yaml``) as DDL for one dialect: ``duckdb``, ``postgres`` or ``citus``.

Both engines get the same tables and columns. Differences, all here:

* types: ``DOUBLE`` vs ``DOUBLE PRECISION``, ``VARCHAR`` vs ``TEXT``;
* keys: primary keys everywhere; the logical ``unique_key`` of DWD/DWS/ADS tables becomes a unique index on
  PostgreSQL only (DuckDB's ART indexes slow bulk appends; there the transforms guarantee uniqueness and a
  test checks it); b-tree and BRIN indexes are PostgreSQL only (DuckDB has zone maps);
* ``citus`` = ``postgres`` + ``create_reference_table`` for every dim/meta table and
  ``create_distributed_table`` for every fact table, co-located by distribution column.

The output is idempotent (``IF NOT EXISTS``) so it can be applied to an existing database; columns added
to a table in a later schema version are added to an existing database by :func:`add_columns`.
"""

from __future__ import annotations

from cloud_ingest.warehouse.schema import Schema, Table, load_schema

DIALECTS = ("duckdb", "postgres", "citus")
LOAD_ID_SEQUENCE = "meta_etl_load_id_seq"  # change ids (load_id) for ODS batches and dirty-day records

_TYPES = {
    "duckdb": {"text": "VARCHAR", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
               "float64": "DOUBLE", "bool": "BOOLEAN", "date": "DATE"},
    "postgres": {"text": "TEXT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
                 "float64": "DOUBLE PRECISION", "bool": "BOOLEAN", "date": "DATE"},
}


def _check(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}")
    return "postgres" if dialect == "citus" else dialect


def create_table(table: Table, dialect: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one table (columns and primary key)."""
    types = _TYPES[_check(dialect)]
    lines = []
    for col in table.columns:
        null = " NOT NULL" if col.name in table.primary_key else ""
        lines.append(f"    {col.name} {types[col.type]}{null}")
    if table.primary_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n" + ",\n".join(lines) + "\n);"


def create_indexes(table: Table, dialect: str) -> list[str]:
    """Secondary indexes for one table (PostgreSQL and Citus only; empty for DuckDB)."""
    if _check(dialect) != "postgres":
        return []
    out = []
    if table.unique_key:
        out.append(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{table.name} ON {table.name} "
                   f"({', '.join(table.unique_key)});")
    for cols in table.indexes:
        out.append(f"CREATE INDEX IF NOT EXISTS ix_{table.name}_{'_'.join(cols)} ON {table.name} "
                   f"({', '.join(cols)});")
    for col in table.brin:
        out.append(f"CREATE INDEX IF NOT EXISTS bx_{table.name}_{col} ON {table.name} USING brin ({col});")
    return out


def add_columns(schema: Schema, existing: set[tuple[str, str]], dialect: str) -> list[str]:
    """``ALTER TABLE … ADD COLUMN`` for every schema column missing from ``existing`` (table, column) pairs.

    Upgrades a database created by an older schema version (columns are only ever added, never changed);
    tables absent from ``existing`` altogether are left to :func:`create_table`.
    """
    types = _TYPES[_check(dialect)]
    tables = {t for t, _ in existing}
    return [f"ALTER TABLE {table.name} ADD COLUMN {col.name} {types[col.type]};"
            for table in schema.tables if table.name in tables
            for col in table.columns if (table.name, col.name) not in existing]


def citus_placement(schema: Schema) -> list[str]:
    """``create_reference_table`` / ``create_distributed_table`` calls, co-locating by distribution column."""
    out = []
    for table in schema.tables:
        if table.kind != "fact":
            out.append(f"SELECT create_reference_table('{table.name}');")
    leaders: dict[str, str] = {}
    for table in schema.tables:
        if table.kind != "fact":
            continue
        lead = leaders.setdefault(table.distribute_by, table.name)
        # the first table of each distribution column starts its own co-location group
        colocate = "'none'" if lead == table.name else f"'{lead}'"
        out.append(f"SELECT create_distributed_table('{table.name}', '{table.distribute_by}', "
                   f"colocate_with => {colocate});")
    return out


def render(dialect: str, schema: Schema | None = None) -> list[str]:
    """All statements creating the warehouse in ``dialect``, in order."""
    base = _check(dialect)
    schema = schema or load_schema()
    stmts = ["CREATE EXTENSION IF NOT EXISTS citus;"] if dialect == "citus" else []
    stmts.append(f"CREATE SEQUENCE IF NOT EXISTS {LOAD_ID_SEQUENCE} START 1;")
    for table in schema.tables:
        stmts.append(create_table(table, dialect))
    if base == "postgres":
        for table in schema.tables:
            stmts.extend(create_indexes(table, dialect))
    if dialect == "citus":
        stmts.extend(citus_placement(schema))
    return stmts


def render_script(dialect: str) -> str:
    """The DDL as one SQL script with a header comment (``campus-cloud schema``)."""
    schema = load_schema()
    head = (f"-- campus-collector warehouse schema v{schema.version}, dialect {dialect}\n"
            "-- generated from cloud_ingest/warehouse/schema.yaml; do not edit by hand\n")
    return head + "\n\n".join(render(dialect, schema)) + "\n"

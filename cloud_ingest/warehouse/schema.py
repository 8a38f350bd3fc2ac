"""The warehouse schema as typed values, loaded from ``schema.yaml`` (each table and column defined once).

DDL (``ddl.py``), the catalog and the docs are generated from these values; nothing else spells a
column's type. Loading validates the file: every table column must be a defined column, keys must be
columns of their table, fact tables need a distribution column, names must follow
``<tier>_<domain>_<subject>_<suffix>``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from cloud_ingest.warehouse.errors import SchemaError

SCHEMA_FILE = "schema.yaml"
# Further schema files merged after SCHEMA_FILE, each with its own ``columns:`` and ``tables:`` (a subject area
# kept in its own file: fewer edit conflicts). A column may be defined in one file only.
EXTRA_FILES = ("schema_quality.yaml",)
TIERS = ("ods", "dim", "dwd", "dws", "ads", "meta")
KINDS = ("fact", "dim", "meta")
TYPES = ("text", "int16", "int32", "int64", "float64", "bool", "date")
LEVELS = ("L1", "L2", "L3", "L4")
_NAME_RE = re.compile(r"^(ods|dim|dwd|dws|ads|meta)_[a-z0-9]+_[a-z0-9]+(_[a-z0-9]+)*$")


@dataclass(slots=True, frozen=True)
class Column:
    """One column definition: the same name means the same thing in every table."""

    name: str
    type: str  # one of TYPES
    zh: str  # Chinese name (中文名)
    definition: str
    level: str  # classification level L1..L4
    unit: str = ""
    range: tuple[float, float] | None = None  # declared [min, max] of a numeric column (catalog)
    format: str = ""  # declared pattern or format of a text column (catalog)


@dataclass(slots=True, frozen=True)
class Table:
    """One table: its tier and domain (from the name), metadata, columns in order, keys and placement."""

    name: str
    zh: str
    definition: str
    kind: str  # fact | dim | meta
    subject_domain: str
    update: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique_key: tuple[str, ...] = ()  # logical key; enforced as a unique index on PostgreSQL only
    distribute_by: str = ""  # Citus distribution column (fact tables)
    indexes: tuple[tuple[str, ...], ...] = ()  # plain b-tree indexes (PostgreSQL)
    brin: tuple[str, ...] = ()  # BRIN indexes on append-ordered columns (PostgreSQL)
    owner: str = ""  # business owner: the table's own ``owner:``, else its domain's under ``owners:``

    @property
    def tier(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def domain(self) -> str:
        return self.name.split("_")[1]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(f"{self.name}: no column {name!r}")


@dataclass(slots=True, frozen=True)
class Schema:
    """All tables, in dependency-friendly order (the order of the file: ODS, DIM, DWD, DWS, ADS, META)."""

    version: int
    owner: str
    columns: dict[str, Column]
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise SchemaError(f"no table {name!r} in {SCHEMA_FILE}")

    def by_tier(self, tier: str) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if t.tier == tier)


def _tuple(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SchemaError(f"{SCHEMA_FILE}: {where}: must be a list of column names")
    return tuple(value)


def _column(name: str, raw: Any) -> Column:
    where = f"{SCHEMA_FILE}: columns.{name}"
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: must be a mapping")
    for key in ("type", "zh", "def", "level"):
        if key not in raw:
            raise SchemaError(f"{where}.{key}: missing")
    if raw["type"] not in TYPES:
        raise SchemaError(f"{where}.type: {raw['type']!r} is not one of {', '.join(TYPES)}")
    if raw["level"] not in LEVELS:
        raise SchemaError(f"{where}.level: {raw['level']!r} is not one of {', '.join(LEVELS)}")
    rng = raw.get("range")
    if rng is not None and not (isinstance(rng, list) and len(rng) == 2
                                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
                                and rng[0] <= rng[1]):
        raise SchemaError(f"{where}.range: must be [min, max] with min <= max")
    return Column(name, raw["type"], str(raw["zh"]), str(raw["def"]), raw["level"], str(raw.get("unit", "")),
                  (float(rng[0]), float(rng[1])) if rng is not None else None, str(raw.get("format", "")))


def _table(name: str, raw: Any, columns: dict[str, Column], owners: dict[str, str]) -> Table:
    where = f"{SCHEMA_FILE}: tables.{name}"
    if not _NAME_RE.match(name):
        raise SchemaError(f"{where}: name must be <tier>_<domain>_<subject>_<suffix> with tier in {TIERS}")
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: must be a mapping")
    for key in ("zh", "def", "kind", "columns", "subject_domain", "update"):
        if key not in raw:
            raise SchemaError(f"{where}.{key}: missing")
    if raw["kind"] not in KINDS:
        raise SchemaError(f"{where}.kind: {raw['kind']!r} is not one of {', '.join(KINDS)}")
    cols: list[Column] = []
    for cname in _tuple(raw["columns"], f"tables.{name}.columns"):
        if cname not in columns:
            raise SchemaError(f"{where}.columns: {cname!r} is not defined under columns:")
        cols.append(columns[cname])
    names = {c.name for c in cols}
    if len(names) != len(cols):
        raise SchemaError(f"{where}.columns: a column is listed twice")
    table = Table(
        name=name, zh=str(raw["zh"]), definition=str(raw["def"]), kind=raw["kind"],
        subject_domain=str(raw["subject_domain"]), update=str(raw["update"]), columns=tuple(cols),
        primary_key=_tuple(raw.get("primary_key"), f"tables.{name}.primary_key"),
        unique_key=_tuple(raw.get("unique_key"), f"tables.{name}.unique_key"),
        distribute_by=str(raw.get("distribute_by", "")),
        indexes=tuple(_tuple(ix, f"tables.{name}.indexes") for ix in raw.get("indexes", []) or []),
        brin=_tuple(raw.get("brin"), f"tables.{name}.brin"),
        owner=str(raw.get("owner") or owners.get(name.split("_")[1], "")),
    )
    keyed = [*table.primary_key, *table.unique_key, *table.brin, *(c for ix in table.indexes for c in ix)]
    if table.distribute_by:
        keyed.append(table.distribute_by)
    for cname in keyed:
        if cname not in names:
            raise SchemaError(f"{where}: key column {cname!r} is not a column of the table")
    if table.kind == "fact" and not table.distribute_by:
        raise SchemaError(f"{where}.distribute_by: a fact table needs a distribution column (Citus)")
    if table.kind == "fact" and table.distribute_by:
        for keycols in (table.primary_key, table.unique_key):
            if keycols and table.distribute_by not in keycols:
                raise SchemaError(f"{where}: key {list(keycols)} must include the distribution column "
                                  f"{table.distribute_by!r} (Citus)")
    return table


@functools.cache
def load_schema() -> Schema:
    """Load and validate the packaged ``schema.yaml`` (cached: the file is part of the code)."""
    text = resources.files("cloud_ingest.warehouse").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict) or "columns" not in raw or "tables" not in raw:
        raise SchemaError(f"{SCHEMA_FILE}: must be a mapping with columns: and tables:")
    columns = {name: _column(name, c) for name, c in raw["columns"].items()}
    owners = raw.get("owners") or {}
    if not isinstance(owners, dict) or not all(isinstance(v, str) and v for v in owners.values()):
        raise SchemaError(f"{SCHEMA_FILE}: owners: must map each domain to its owner (text)")
    raw_tables = dict(raw["tables"])
    for extra in EXTRA_FILES:
        more = yaml.safe_load(resources.files("cloud_ingest.warehouse").joinpath(extra).read_text(encoding="utf-8"))
        if not isinstance(more, dict):
            raise SchemaError(f"{extra}: must be a mapping with columns: and tables:")
        for name, c in (more.get("columns") or {}).items():
            if name in columns:
                raise SchemaError(f"{extra}: columns.{name}: already defined in another schema file")
            columns[name] = _column(name, c)
        owners = {**owners, **(more.get("owners") or {})}
        for name, t in (more.get("tables") or {}).items():
            if name in raw_tables:
                raise SchemaError(f"{extra}: tables.{name}: already defined in another schema file")
            raw_tables[name] = t
    tables = tuple(_table(name, t, columns, owners) for name, t in raw_tables.items())
    return Schema(int(raw.get("version", 1)), str(raw.get("owner", "")), columns, tables)

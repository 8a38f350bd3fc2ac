"""Where the project's names come from: the warehouse schema data, the metric registry, the profiles, and
(optionally) a live warehouse's information_schema.

Every function returns :class:`NameRef` values naming the name, what kind of name it is and where it was
found, so a naming problem can point at the file and field (or table and column) to fix. The schema is
read from ``cloud_ingest.warehouse.schema.load_schema()`` — the same values the DDL is rendered from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from cloud_ingest.warehouse.dictionary import ACS_EVENT_KINDS, DEFAULT_METRICS_FILE
from cloud_ingest.warehouse.schema import Schema, load_schema

_LOGGER = logging.getLogger(__name__)

NameKind = Literal["table", "column", "metric", "event"]
PROFILES_ROOT = DEFAULT_METRICS_FILE.parent  # the repository's device_profiles/
LIVE_SCHEMAS = ("main", "public")  # DuckDB's and PostgreSQL's default schema (temp/system ones skipped)


@dataclass(slots=True, frozen=True)
class NameRef:
    """A name to check: ``kind``, the name itself, and where it is defined / used (for messages)."""

    kind: NameKind
    name: str
    where: str


@dataclass(slots=True, frozen=True)
class LiveColumn:
    """One column of a live warehouse table, from information_schema."""

    table: str
    name: str
    data_type: str


def schema_names(schema: Schema | None = None) -> list[NameRef]:
    """Every table and column name of the warehouse schema data (columns once, with the tables using them)."""
    schema = schema or load_schema()
    out = [NameRef("table", t.name, f"schema.yaml: tables.{t.name}") for t in schema.tables]
    users: dict[str, list[str]] = {}
    for t in schema.tables:
        for c in t.columns:
            users.setdefault(c.name, []).append(t.name)
    for name in schema.columns:
        tables = users.get(name, [])
        shown = ", ".join(tables[:4]) + (f" and {len(tables) - 4} more" if len(tables) > 4 else "")
        out.append(NameRef("column", name, f"schema.yaml: columns.{name}" + (f" (in {shown})" if tables else
                                                                                " (in no table)")))
    return out


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        _LOGGER.warning("cannot read %s: %s", path, exc)
        return None


def metric_names(metrics_file: Path | None = None) -> list[NameRef]:
    """Canonical metric names of ``device_profiles/metrics.yaml`` and the warehouse's built-in event kinds."""
    path = metrics_file or DEFAULT_METRICS_FILE
    out: list[NameRef] = []
    raw = _load_yaml(path) if path.exists() else None
    if isinstance(raw, dict) and isinstance(raw.get("metrics"), dict):
        out += [NameRef("metric", str(m), f"{path.name}: metrics.{m}") for m in raw["metrics"]]
    out += [NameRef("event", k.code, "cloud_ingest/warehouse/dictionary.py: ACS_EVENT_KINDS")
            for k in ACS_EVENT_KINDS]
    return out


def profile_names(root: Path | None = None) -> list[NameRef]:
    """Metric names and event kinds of every profile file (read as YAML: a broken profile still counts)."""
    from edge_agent.profiles.loader import profile_files  # the loader's own notion of a profile file

    root = root or PROFILES_ROOT
    if not root.is_dir():
        _LOGGER.info("%s not found: profile names not checked", root)
        return []
    out: list[NameRef] = []
    for path in profile_files(root):
        raw = _load_yaml(path)
        if not isinstance(raw, dict):
            continue
        rel = f"{root.name}/{path.relative_to(root)}"
        metrics = raw.get("metrics") or []
        items = metrics.items() if isinstance(metrics, dict) else enumerate(metrics)
        for key, m in items:
            name = m.get("name", key) if isinstance(m, dict) else None
            if isinstance(name, str):
                out.append(NameRef("metric", name, f"{rel}: metrics[{key}].name"))
        for i, e in enumerate(raw.get("events") or []):
            if isinstance(e, dict) and isinstance(e.get("kind"), str):
                out.append(NameRef("event", e["kind"], f"{rel}: events[{i}].kind"))
    return out


def project_names(*, metrics_file: Path | None = None, profiles_root: Path | None = None) -> list[NameRef]:
    """All names the project defines: schema tables and columns, metric registry, profiles."""
    return [*schema_names(), *metric_names(metrics_file), *profile_names(profiles_root)]


def live_columns(warehouse: Any) -> list[LiveColumn]:
    """Columns of every base table in the warehouse's default schema (information_schema), in order."""
    placeholders = ", ".join("?" for _ in LIVE_SCHEMAS)
    _, rows = warehouse.query(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        f"WHERE t.table_type = 'BASE TABLE' AND c.table_schema IN ({placeholders}) "
        "ORDER BY c.table_name, c.ordinal_position", tuple(LIVE_SCHEMAS))
    return [LiveColumn(str(t), str(c), str(d)) for t, c, d in rows]


def live_names(columns: Iterable[LiveColumn]) -> list[NameRef]:
    """Table and column names of a live warehouse (each column with its table)."""
    out: list[NameRef] = []
    seen: set[str] = set()
    for col in columns:
        if col.table not in seen:
            seen.add(col.table)
            out.append(NameRef("table", col.table, f"live warehouse: table {col.table}"))
        out.append(NameRef("column", col.name, f"live warehouse: {col.table}.{col.name}"))
    return out

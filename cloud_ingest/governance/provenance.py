"""Row-level provenance (数据溯源): which gateway, batch, device and profile a warehouse row came from.

DWD rows carry their lineage columns (``gateway_id``, ``batch_seq``, ``load_id``, ``profile_ref``): a traced
DWD row is joined to its ODS batch (created and received time, checksum, wire format), to the ODS record(s)
exactly as received, to the device's placement valid at the row's time and to its profile.

DWS and ADS rows do not carry provenance: they are traced through their DWD inputs (found in the lineage
graph) by the key columns they share (campus, building, room, device, metric, hour, day). The result is
the set of candidate input rows — every DWD row of that key — summarised per batch. For summaries whose
rule reaches across the key (an energy delta uses the previous reading, possibly in the previous hour) the
list can miss that one neighbouring row; it never lists rows of another key.

Everything here reads through ``Warehouse.query`` (read-only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cloud_ingest.governance.classification import columns_hidden
from cloud_ingest.governance.errors import TraceError
from cloud_ingest.governance.lineage import LineageGraph, build_lineage
from cloud_ingest.warehouse.schema import Schema, Table, load_schema

LINEAGE_COLUMNS = ("gateway_id", "batch_seq")
IDENTITY = ("gateway_id", "batch_seq", "device_id", "metric_code", "event_kind", "agg_code", "window_s", "ts_ms")
TRACE_KEYS = ("campus_id", "building_id", "room_id", "device_id", "metric_code", "hour_ms", "dt")
BATCH_COLUMNS = ("gateway_id", "batch_seq", "load_id", "created_ms", "received_ms", "checksum", "format_ver",
                 "reading_cnt", "event_cnt")
MAX_BATCHES = 50  # batches listed per input table of a summary row (the total is always given)


@dataclass(slots=True, frozen=True)
class RowTrace:
    """Provenance of one DWD row."""

    table: str
    row: dict[str, Any]
    batch: dict[str, Any] | None  # the ODS batch row, None if it is gone (retention)
    received: list[dict[str, Any]]  # the ODS record(s) as received that became this row
    ods_table: str
    profile: dict[str, Any]  # profile_ref split into id and version, plus vendor/model when registered
    placement: dict[str, Any] | None  # the device's dim_iot_device row valid at the row's time


@dataclass(slots=True, frozen=True)
class InputSummary:
    """The DWD rows one summary row was computed from, in one input table, per batch."""

    table: str
    key: dict[str, Any]
    rows: int
    devices: int
    first_ts_ms: int | None
    last_ts_ms: int | None
    batches: list[dict[str, Any]] = field(default_factory=list)  # gateway, seq, load_id, received_ms, rows
    batch_total: int = 0


@dataclass(slots=True, frozen=True)
class SummaryTrace:
    """Provenance of one DWS/ADS row, through its DWD inputs."""

    table: str
    row: dict[str, Any]
    inputs: list[InputSummary]


def _typed(table: Table, column: str, text: str) -> Any:
    try:
        col = table.column(column)
    except Exception as exc:
        raise TraceError(f"{table.name} has no column {column!r}") from exc
    try:
        if col.type.startswith("int"):
            return int(text)
        if col.type == "float64":
            return float(text)
        if col.type == "bool":
            return text.lower() in ("1", "true", "t", "yes")
        if col.type == "date":
            return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise TraceError(f"{table.name}.{column}: {text!r} is not a valid {col.type}") from exc
    return text


def parse_keys(table: Table, pairs: Sequence[str]) -> dict[str, Any]:
    """``["device_id=aq-1", "ts_ms=123"]`` → typed values by the schema's column types."""
    out: dict[str, Any] = {}
    for pair in pairs:
        col, sep, value = pair.partition("=")
        if not sep:
            raise TraceError(f"--key {pair!r}: expected COLUMN=VALUE")
        out[col.strip()] = _typed(table, col.strip(), value.strip())
    return out


def _select(wh: Any, table: Table, where: str, params: Sequence[Any], limit: int) -> list[dict[str, Any]]:
    cols, rows = wh.query(f"SELECT {', '.join(table.column_names)} FROM {table.name} WHERE {where} "
                          f"LIMIT {int(limit)}", tuple(params))
    return [dict(zip(cols, r, strict=True)) for r in rows]


def find_rows(wh: Any, table: Table, *, where: str | None = None, keys: Mapping[str, Any] | None = None,
              row_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Rows of ``table`` selected by a SQL condition, by column values, or by the engine's row id."""
    if sum(x is not None and x != {} for x in (where, keys, row_id)) != 1:
        raise TraceError("give exactly one of --where, --key or --row-id")
    if keys:
        for k in keys:
            table.column(k)
        return _select(wh, table, " AND ".join(f"{k} = ?" for k in keys), list(keys.values()), limit)
    if row_id is not None:
        if str(getattr(wh, "dialect", "duckdb")).startswith("postgres"):
            return _select(wh, table, "ctid = CAST(? AS tid)", [row_id], limit)
        return _select(wh, table, "rowid = ?", [int(row_id)], limit)
    assert where is not None
    return _select(wh, table, f"({where})", [], limit)


def _one(wh: Any, sql: str, params: Sequence[Any]) -> dict[str, Any] | None:
    cols, rows = wh.query(sql, tuple(params))
    return dict(zip(cols, rows[0], strict=True)) if rows else None


def _ods_table(graph: LineageGraph, table: str) -> str:
    ods = [e.source for e in graph.parents(table) if graph.nodes[e.source].tier == "ods"]
    if not ods:
        raise TraceError(f"{table}: no ODS input in the transform graph")
    return ods[0]


def trace_dwd_row(wh: Any, table: Table, row: Mapping[str, Any], *, schema: Schema | None = None,
                  graph: LineageGraph | None = None) -> RowTrace:
    """Provenance of one DWD row (see the module docstring)."""
    schema = schema or load_schema()
    graph = graph or build_lineage(schema=schema)
    gw, seq = row.get("gateway_id"), row.get("batch_seq")
    batch = _one(wh, f"SELECT {', '.join(BATCH_COLUMNS)} FROM ods_iot_batch_di WHERE gateway_id = ? "
                     "AND batch_seq = ?", (gw, seq))
    ods_name = _ods_table(graph, table.name)
    ods = schema.table(ods_name)
    match = [c for c in IDENTITY if c in ods.column_names and c in row and row[c] is not None]
    received = _select(wh, ods, " AND ".join(f"{c} = ?" for c in match), [row[c] for c in match], 10)
    ref = str(row.get("profile_ref") or "")
    pid, _, ver = ref.rpartition("@")
    profile: dict[str, Any] = {"profile_ref": ref, "profile_id": pid or ref, "profile_ver": ver}
    reg = _one(wh, "SELECT vendor_name, model_name, subject_domain FROM dim_iot_profile WHERE profile_ref = ?",
               (ref,))
    if reg:
        profile.update(reg)
    placement = None
    if row.get("device_id") is not None and row.get("ts_ms") is not None:
        placement = _one(wh, "SELECT device_id, room_id, building_id, campus_id, gateway_id, device_role, "
                             "valid_from_ms, valid_to_ms FROM dim_iot_device WHERE device_id = ? AND "
                             "valid_from_ms <= ? AND valid_to_ms > ?",
                         (row["device_id"], row["ts_ms"], row["ts_ms"]))
    return RowTrace(table.name, dict(row), batch, received, ods_name, profile, placement)


def trace_summary_row(wh: Any, table: Table, row: Mapping[str, Any], *, schema: Schema | None = None,
                      graph: LineageGraph | None = None) -> SummaryTrace:
    """Provenance of one DWS/ADS row through the DWD tables upstream of it."""
    schema = schema or load_schema()
    graph = graph or build_lineage(schema=schema)
    dwd = sorted(n for n in graph.upstream(table.name) if graph.nodes[n].tier == "dwd")
    if not dwd:
        raise TraceError(f"{table.name}: no DWD table upstream in the transform graph")
    inputs = []
    for name in dwd:
        src = schema.table(name)
        key = {k: row[k] for k in TRACE_KEYS if k in table.column_names and k in src.column_names
               and row.get(k) is not None}
        if not key:
            continue
        cond = " AND ".join(f"d.{k} = ?" for k in key)
        params = tuple(key.values())
        stats = _one(wh, f"SELECT COUNT(*) AS n, COUNT(DISTINCT d.device_id) AS devices, MIN(d.ts_ms) AS lo, "
                         f"MAX(d.ts_ms) AS hi, COUNT(DISTINCT d.gateway_id || '/' || CAST(d.batch_seq AS VARCHAR)) "
                         f"AS batches FROM {name} d WHERE {cond}", params) or {}
        if not stats.get("n"):
            continue
        cols, rows = wh.query(
            f"SELECT d.gateway_id, d.batch_seq, MIN(b.load_id) AS load_id, MIN(b.received_ms) AS received_ms, "
            f"COUNT(*) AS rows FROM {name} d LEFT JOIN ods_iot_batch_di b ON b.gateway_id = d.gateway_id "
            f"AND b.batch_seq = d.batch_seq WHERE {cond} GROUP BY d.gateway_id, d.batch_seq "
            f"ORDER BY d.gateway_id, d.batch_seq LIMIT {MAX_BATCHES}", params)
        inputs.append(InputSummary(name, key, int(stats["n"]), int(stats["devices"]), stats.get("lo"),
                                   stats.get("hi"), [dict(zip(cols, r, strict=True)) for r in rows],
                                   int(stats["batches"])))
    return SummaryTrace(table.name, dict(row), inputs)


WITHHELD = "<withheld>"


def _redact(schema: Schema, table: str, row: Mapping[str, Any], role: str) -> dict[str, Any]:
    hidden = set(columns_hidden(role, table, schema=schema))
    return {k: (WITHHELD if k in hidden and v is not None else v) for k, v in row.items()}


def redact(t: RowTrace | SummaryTrace, role: str, schema: Schema | None = None) -> RowTrace | SummaryTrace:
    """``t`` with every value ``role`` may not read (by column level) replaced by ``WITHHELD``."""
    schema = schema or load_schema()
    if isinstance(t, SummaryTrace):
        return replace(t, row=_redact(schema, t.table, t.row, role))
    return replace(t, row=_redact(schema, t.table, t.row, role),
                   received=[_redact(schema, t.ods_table, r, role) for r in t.received],
                   batch=_redact(schema, "ods_iot_batch_di", t.batch, role) if t.batch else None)


def trace(wh: Any, table_name: str, *, where: str | None = None, keys: Mapping[str, Any] | None = None,
          row_id: str | None = None, limit: int = 20, role: str | None = None,
          schema: Schema | None = None) -> list[RowTrace | SummaryTrace]:
    """Trace the rows of ``table_name`` selected by ``where`` / ``keys`` / ``row_id``.

    With ``role``, values of columns above the role's classification level are withheld (the selection
    itself may still use them). Raises ``TraceError`` for a table without provenance path (ODS, DIM,
    META) or when nothing matches.
    """
    schema = schema or load_schema()
    try:
        table = schema.table(table_name)
    except Exception as exc:
        raise TraceError(f"no warehouse table {table_name!r}") from exc
    if table.tier not in ("dwd", "dws", "ads"):
        raise TraceError(f"{table_name}: trace DWD, DWS or ADS rows (ODS rows carry their batch themselves; "
                         "DIM rows come from the registry)")
    rows = find_rows(wh, table, where=where, keys=keys, row_id=row_id, limit=limit)
    if not rows:
        raise TraceError(f"{table_name}: no row matches")
    graph = build_lineage(schema=schema)
    out: list[RowTrace | SummaryTrace]
    if all(c in table.column_names for c in LINEAGE_COLUMNS):
        out = [trace_dwd_row(wh, table, r, schema=schema, graph=graph) for r in rows]
    else:
        out = [trace_summary_row(wh, table, r, schema=schema, graph=graph) for r in rows]
    return out if role is None else [redact(t, role, schema) for t in out]

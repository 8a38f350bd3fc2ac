"""``campus-cloud trace``: row-level provenance — the gateway, batch, device and profile a row came from."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import asdict
from typing import Any

from cloud_ingest.commands._warehouse_opts import add_warehouse_option, with_warehouse
from cloud_ingest.governance.classification import ROLE_MAX_LEVEL
from cloud_ingest.governance.errors import GovernanceError
from cloud_ingest.governance.provenance import RowTrace, SummaryTrace, parse_keys, trace
from cloud_ingest.warehouse import Warehouse
from cloud_ingest.warehouse.errors import SchemaError
from cloud_ingest.warehouse.schema import load_schema


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trace", help="row-level provenance of DWD/DWS/ADS rows (数据溯源)",
                       description="Select rows of a DWD, DWS or ADS table and show where they came from: "
                                   "ODS batch (gateway, sequence, created and received time, checksum), the "
                                   "record as received, device, profile and version, placement. DWS/ADS rows "
                                   "are traced through their DWD inputs by shared keys. Read-only.")
    add_warehouse_option(p)
    p.add_argument("--table", required=True, help="table of the row(s), e.g. dwd_env_reading_di")
    sel = p.add_mutually_exclusive_group(required=True)
    sel.add_argument("--where", metavar="SQL", help="condition, e.g. \"device_id='aq-1' AND ts_ms=1725...\"")
    sel.add_argument("--key", action="append", metavar="COLUMN=VALUE", help="column value (repeatable)")
    sel.add_argument("--row-id", metavar="ID", help="engine row id (DuckDB rowid, PostgreSQL ctid)")
    p.add_argument("--limit", type=int, default=20, help="at most this many rows (default 20)")
    p.add_argument("--role", default="data_steward", choices=sorted(ROLE_MAX_LEVEL),
                   help="show only values this role may read (docs/classification.md; default data_steward)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    p.set_defaults(func=run)


def _t(ms: Any) -> str:
    if ms is None:
        return "?"
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _kv(row: dict[str, Any], cols: tuple[str, ...]) -> str:
    return " ".join(f"{c}={row[c]}" for c in cols if c in row and row[c] is not None)


def format_row(i: int, tr: RowTrace) -> list[str]:
    r = tr.row
    out = [f"[{i}] {tr.table}: {_kv(r, ('device_id', 'metric_code', 'event_kind', 'agg_code', 'window_s', 'ts_ms'))}"
           f" ({_t(r.get('ts_ms'))})"]
    if "value" in r:
        out.append(f"    value {r.get('value')} {r.get('unit_code') or ''}, quality_flag {r.get('quality_flag')}")
    b = tr.batch
    if b is None:
        out.append(f"    batch: gateway {r.get('gateway_id')} seq {r.get('batch_seq')} — not in ODS any more")
    else:
        lag = (int(b["received_ms"]) - int(r["ts_ms"])) / 1000 if r.get("ts_ms") is not None else None
        out.append(f"    batch: gateway {b['gateway_id']} seq {b['batch_seq']} (load_id {b['load_id']}), created "
                   f"{_t(b['created_ms'])}, received {_t(b['received_ms'])}"
                   + (f" ({lag:.1f} s after measurement)" if lag is not None else ""))
        out.append(f"           checksum {str(b['checksum'])[:16]}…, wire format v{b['format_ver']}, "
                   f"{b['reading_cnt']} readings, {b['event_cnt']} events")
    p = tr.profile
    vendor = " ".join(str(p[k]) for k in ("vendor_name", "model_name") if p.get(k))
    out.append(f"    device {r.get('device_id')}, profile {p['profile_id']} version {p['profile_ver']}"
               + (f" ({vendor})" if vendor else ""))
    if tr.placement:
        pl = tr.placement
        out.append(f"    placement: room {pl['room_id']} / building {pl['building_id']} / campus {pl['campus_id']}"
                   f" since {_t(pl['valid_from_ms'])}")
    for rec in tr.received:
        shown = {k: v for k, v in rec.items() if k in ("value", "unit_code", "quality_flag", "window_ver",
                                                       "event_idx", "received_ms")}
        out.append(f"    as received in {tr.ods_table}: " + " ".join(f"{k}={v}" for k, v in shown.items()))
    if not tr.received:
        out.append(f"    as received in {tr.ods_table}: not found (ODS retention?)")
    return out


def format_summary(i: int, tr: SummaryTrace) -> list[str]:
    key = {k: v for k, v in tr.row.items() if k.endswith("_id") or k in ("metric_code", "hour_ms", "dt")}
    out = [f"[{i}] {tr.table}: " + " ".join(f"{k}={v}" for k, v in key.items() if v is not None)]
    if not tr.inputs:
        out.append("    no DWD input rows share this row's key")
    for s in tr.inputs:
        out.append(f"    from {s.table} where " + " AND ".join(f"{k}={v}" for k, v in s.key.items())
                   + f": {s.rows} rows, {s.devices} devices, {_t(s.first_ts_ms)} .. {_t(s.last_ts_ms)}, "
                   f"{s.batch_total} batches")
        for b in s.batches:
            out.append(f"      gateway {b['gateway_id']} seq {b['batch_seq']} (load_id {b['load_id']}, received "
                       f"{_t(b['received_ms'])}): {b['rows']} rows")
        if s.batch_total > len(s.batches):
            out.append(f"      … and {s.batch_total - len(s.batches)} more batches")
    return out


def _json_default(x: Any) -> Any:
    return x.isoformat() if isinstance(x, dt.date | dt.datetime) else str(x)


def run(args: argparse.Namespace) -> int:
    try:
        table = load_schema().table(args.table)
        keys = parse_keys(table, args.key) if args.key else None
    except (GovernanceError, SchemaError) as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 2

    def act(wh: Warehouse) -> int:
        try:
            traces = trace(wh, args.table, where=args.where, keys=keys, row_id=args.row_id, limit=args.limit,
                           role=args.role)
        except GovernanceError as exc:
            sys.stderr.write(f"campus-cloud: {exc}\n")
            return 1
        if args.format == "json":
            doc = [{"kind": "row" if isinstance(t, RowTrace) else "summary", **asdict(t)} for t in traces]
            sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=_json_default) + "\n")
            return 0
        lines: list[str] = []
        for i, t in enumerate(traces, 1):
            lines += format_row(i, t) if isinstance(t, RowTrace) else format_summary(i, t)
        sys.stdout.write("\n".join(lines) + "\n")
        return 0

    return with_warehouse(args, act)

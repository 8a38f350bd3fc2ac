"""``campus-cloud sql "SELECT …"``: run one read-only query against the warehouse and print a table."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from cloud_ingest.commands._warehouse_opts import add_warehouse_option, with_warehouse
from cloud_ingest.warehouse import Warehouse
from cloud_ingest.warehouse.errors import ReadOnlyError

MAX_CELL = 60  # wider cells are cut with an ellipsis in table output (use --format json for everything)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sql", help="run one read-only SQL query and print the result",
                       description="Run a single read-only statement (SELECT) against the warehouse. "
                                   "Writes are refused (DuckDB: only SELECT is accepted; PostgreSQL: the "
                                   "query runs in a READ ONLY transaction). Reads SQL from stdin when QUERY "
                                   "is '-'.")
    p.add_argument("query", help="the SQL text, or - for stdin")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument("--limit", type=int, default=1000, help="print at most this many rows (default 1000)")
    add_warehouse_option(p)
    p.set_defaults(func=run)


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A plain aligned text table with a header rule."""
    cells = [[_text(v) if len(_text(v)) <= MAX_CELL else _text(v)[:MAX_CELL - 1] + "…" for v in r]
             for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines) + "\n"


def _json_default(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def run(args: argparse.Namespace) -> int:
    query = sys.stdin.read() if args.query == "-" else args.query

    def action(wh: Warehouse) -> int:
        try:
            columns, rows = wh.query(query)
        except ReadOnlyError as exc:
            sys.stderr.write(f"campus-cloud: refused: {exc}\n")
            return 1
        shown = rows[:args.limit]
        if args.format == "json":
            sys.stdout.write(json.dumps([dict(zip(columns, r, strict=True)) for r in shown],
                                        default=_json_default, ensure_ascii=False) + "\n")
        elif args.format == "csv":
            import csv

            w = csv.writer(sys.stdout)
            w.writerow(columns)
            w.writerows(shown)
        else:
            sys.stdout.write(format_table(columns, shown))
            more = f" (first {len(shown)} shown)" if len(rows) > len(shown) else ""
            sys.stdout.write(f"({len(rows)} rows{more})\n")
        return 0

    return with_warehouse(args, action)

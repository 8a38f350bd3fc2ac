"""``campus-cloud access-log``: who read which ADS data through the API, when, and how many rows (数据去向).

Reads ``meta_pub_audit_log`` (one row per ``GET /v1/ads/{table}``, written before the rows are returned).
Filters are bound parameters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from typing import Any

from cloud_ingest.commands._warehouse_opts import add_warehouse_option, with_warehouse
from cloud_ingest.commands.sql import format_table
from cloud_ingest.warehouse import Warehouse

_AGO_RE = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
COLUMNS = ("read_at", "consumer", "role", "table", "rows", "filters")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("access-log", help="show who read which ADS data through the API (数据去向)",
                       description="Print reads of ADS indicator tables through the read API "
                                   "(meta_pub_audit_log), newest first: time, reader, role, table, rows returned "
                                   "and the filters and columns of the request.")
    p.add_argument("--since", metavar="WHEN",
                   help="only reads at or after WHEN: an ISO date or date-time (UTC unless it has an offset), "
                        "or an age such as 30m, 24h, 7d")
    p.add_argument("--consumer", help="only reads by this reader (its name in the tokens file)")
    p.add_argument("--table", help="only reads of this ADS table")
    p.add_argument("--limit", type=int, default=100, help="print at most this many reads (default 100)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    add_warehouse_option(p)
    p.set_defaults(func=run)


def since_ms(text: str, now: dt.datetime) -> int:
    """Epoch ms of ``--since``: an age (``30m``, ``24h``, ``7d``) before ``now`` or an ISO date/date-time.

    Raises ValueError naming the value.
    """
    ago = _AGO_RE.match(text.strip())
    if ago:
        return int((now.timestamp() - int(ago.group(1)) * _UNIT_S[ago.group(2)]) * 1000)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"--since has value {text!r}, not an ISO date/date-time or an age like 24h"
        raise ValueError(msg) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def read_log(wh: Warehouse, *, since: int | None = None, consumer: str | None = None,
             table: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` reads matching the filters, newest first."""
    where, params = [], []
    for cond, value in (("read_ms >= ?", since), ("consumer_name = ?", consumer), ("table_name = ?", table)):
        if value is not None:
            where.append(cond)
            params.append(value)
    sql = ("SELECT read_ms, consumer_name, role_code, table_name, row_cnt, filter_text FROM meta_pub_audit_log"
           + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY read_ms DESC LIMIT {int(limit)}")
    _, rows = wh.query(sql, tuple(params))
    return [{"read_at": dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC).isoformat(timespec="milliseconds"),
             "consumer": who, "role": role, "table": tab, "rows": int(n), "filters": json.loads(f or "{}")}
            for ms, who, role, tab, n, f in rows]


def run(args: argparse.Namespace) -> int:
    try:
        since = since_ms(args.since, dt.datetime.now(dt.UTC)) if args.since else None
    except ValueError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 2

    def action(wh: Warehouse) -> int:
        reads = read_log(wh, since=since, consumer=args.consumer, table=args.table, limit=args.limit)
        if args.format == "json":
            sys.stdout.write(json.dumps(reads, ensure_ascii=False) + "\n")
            return 0
        rows = [(r["read_at"], r["consumer"], r["role"], r["table"], r["rows"],
                 json.dumps(r["filters"], ensure_ascii=False, separators=(",", ":"))) for r in reads]
        sys.stdout.write(format_table(list(COLUMNS), rows))
        sys.stdout.write(f"({len(rows)} reads)\n")
        return 0

    return with_warehouse(args, action)

"""Helpers for DWS/ADS transforms: the set of campus days touched by a change range, and replacing them.

Summaries are recomputed per *campus day*: a change (new DWD rows with ``load_id`` in ``(lo, hi]``, or a
``meta_etl_dirty_day_log`` record from a registry re-conformance) marks its (campus_id, dt); the transform
deletes those days from its output and recomputes them from the full finer-grained table. Late and
out-of-order data therefore lands in the right day, and recomputing a day twice gives the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cloud_ingest.warehouse.sqlutil import insert_rows
from cloud_ingest.warehouse.transforms.base import Context

DAY_MS = 86_400_000
EPOCH = dt.date(1970, 1, 1)


# Tables touched_days and stage_days read besides their sources: transforms using them declare these inputs.
DAY_INPUTS = ("meta_etl_dirty_day_log", "dim_pub_campus")


def touched_days(ctx: Context, sources: Sequence[str]) -> set[tuple[str, dt.date]]:
    """(campus_id, dt) of rows of ``sources`` with load_id in (lo, hi], plus dirty days in that range."""
    s = ctx.session
    keys: set[tuple[str, dt.date]] = set()
    for table in (*sources, "meta_etl_dirty_day_log"):
        rows = s.fetchall(f"SELECT DISTINCT campus_id, dt FROM {table} "
                          "WHERE load_id > ? AND load_id <= ? AND campus_id IS NOT NULL", (ctx.lo, ctx.hi))
        keys.update((str(c), d) for c, d in rows)
    return keys


def stage_days(ctx: Context, name: str, keys: set[tuple[str, dt.date]]) -> int:
    """Create temp table ``name`` (campus_id, dt, day_start_ms, open_hour, close_hour) from ``keys``."""
    s = ctx.session
    campuses = {str(c): (int(o or 0), int(op), int(cl)) for c, o, op, cl in s.fetchall(
        "SELECT campus_id, utc_offset_min, open_hour, close_hour FROM dim_pub_campus")}
    s.execute(f"DROP TABLE IF EXISTS {name}")
    s.execute(f"CREATE TEMP TABLE {name} (campus_id VARCHAR, dt DATE, day_start_ms BIGINT, "
              "open_hour INTEGER, close_hour INTEGER)")
    rows = []
    for campus, day in sorted(keys):
        offset, open_h, close_h = campuses.get(campus, (0, 0, 24))
        rows.append((campus, day, (day - EPOCH).days * DAY_MS - offset * 60_000, open_h, close_h))
    return insert_rows(s, name, ("campus_id", "dt", "day_start_ms", "open_hour", "close_hour"), rows)


def delete_days(ctx: Context, table: str, days: str) -> None:
    """Delete the rows of ``table`` on the campus days listed in temp table ``days``."""
    ctx.session.execute(f"DELETE FROM {table} t WHERE EXISTS "
                        f"(SELECT 1 FROM {days} a WHERE a.campus_id = t.campus_id AND a.dt = t.dt)")


def replace_days(ctx: Context, table: str, days: str, insert_sql: str) -> int:
    """Delete ``table``'s rows on the staged days, run ``insert_sql`` (param: load_id); return its count."""
    delete_days(ctx, table, days)
    return ctx.session.execute_count(insert_sql, (ctx.hi,))

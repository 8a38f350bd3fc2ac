"""Heartbeats (ODS) → what each gateway quarantined, evicted and got late per campus day (``dws_qlt_gateway_loss_1d``).

Quarantined messages never reach the warehouse and evicted rows never reach it either; the edge counts both
in persisted cumulative counters that every heartbeat carries (``quarantined_by_reason``: reason → messages;
``evicted``: ``<class>.<table>`` and ``priority.<p>`` → rows). A day's count of one counter is the sum of its
increases between consecutive heartbeats received that day, starting from the last heartbeat before the day
(none: from zero). A decrease means the counters restarted (a new buffer file): the new value is the
increase. Cause ``quarantine`` rows count messages, ``evict`` rows count buffer rows; the eviction classes that
lose acknowledged data are the ``*_unsent`` ones (docs/buffer.md), ``LOSS_CLASSES`` below. Cause ``late`` rows
count the edge's late data (``late``: ``too_late`` readings for a window already emitted — their raw rows
still upload — and ``forced_early`` windows): timeliness causes, not losses.

The counting is in Python: a campus day has a few thousand heartbeats per gateway, and JSON functions differ
between DuckDB and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import orjson

from cloud_ingest.warehouse.sqlutil import insert_rows
from cloud_ingest.warehouse.transforms.base import Context, Transform
from cloud_ingest.warehouse.transforms.common import DAY_INPUTS, DAY_MS, EPOCH, delete_days, stage_days, touched_days

DAYS = "tmp_qlt_hb_days"
TABLE = "dws_qlt_gateway_loss_1d"
CAUSES = {"quarantine": "quarantined_by_reason", "evict": "evicted", "late": "late"}  # cause_code → heartbeat field
LOSS_CLASSES = ("raw_unsent", "aggregate_unsent", "event_unsent", "alarm_unsent")  # eviction of unsent data


def is_loss(cause: str, reason: str) -> bool:
    """True when the counter counts acknowledged data that will never reach the warehouse."""
    return cause == "quarantine" or (cause == "evict" and reason.split(".", 1)[0] in LOSS_CLASSES)


def _heartbeat_days(ctx: Context) -> set[tuple[str, dt.date]]:
    """(campus, local day) of the heartbeats with load_id in (lo, hi]."""
    rows = ctx.session.fetchall(
        "SELECT DISTINCT g.campus_id, c.utc_offset_min, CAST(h.received_ms / 3600000 AS BIGINT) "
        "FROM ods_iot_heartbeat_di h JOIN dim_iot_gateway g ON g.gateway_id = h.gateway_id "
        "JOIN dim_pub_campus c ON c.campus_id = g.campus_id WHERE h.load_id > ? AND h.load_id <= ?",
        (ctx.lo, ctx.hi))
    return {(str(campus), EPOCH + dt.timedelta(days=(int(hour) * 3_600_000 + int(off or 0) * 60_000) // DAY_MS))
            for campus, off, hour in rows}


def _counters(body: Any) -> dict[tuple[str, str], int]:
    try:
        hb = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    out: dict[tuple[str, str], int] = {}
    for cause, key in CAUSES.items():
        values = hb.get(key) if isinstance(hb, dict) else None
        if isinstance(values, dict):
            for reason, n in values.items():
                if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                    out[(cause, str(reason)[:100])] = n
    return out


def day_increases(bodies: list[Any], before: Any | None) -> dict[tuple[str, str], int]:
    """Sum of each counter's increases over ``bodies`` (in order), from ``before`` (or zero)."""
    prev = _counters(before) if before is not None else {}
    total: dict[tuple[str, str], int] = defaultdict(int)
    for body in bodies:
        cur = _counters(body)
        for k, v in cur.items():
            last = prev.get(k, 0)
            total[k] += v - last if v >= last else v
        prev = {**prev, **cur}
    return {k: v for k, v in total.items() if v > 0}


def qlt_gateway(ctx: Context) -> dict[str, int]:
    """Quarantined messages and evicted rows per gateway, cause, reason and campus day."""
    keys = _heartbeat_days(ctx) | touched_days(ctx, ())
    if stage_days(ctx, DAYS, keys) == 0:
        return {TABLE: 0}
    s = ctx.session
    delete_days(ctx, TABLE, DAYS)
    out = []
    for campus, day, start in s.fetchall(f"SELECT campus_id, dt, day_start_ms FROM {DAYS} ORDER BY campus_id, dt"):
        for (gw,) in s.fetchall("SELECT gateway_id FROM dim_iot_gateway WHERE campus_id = ? ORDER BY gateway_id",
                                (campus,)):
            bodies = [b for (b,) in s.fetchall(
                "SELECT heartbeat_json FROM ods_iot_heartbeat_di WHERE gateway_id = ? AND received_ms >= ? "
                "AND received_ms < ? ORDER BY received_ms, load_id", (gw, start, start + DAY_MS))]
            if not bodies:
                continue
            before = s.fetchall("SELECT heartbeat_json FROM ods_iot_heartbeat_di WHERE gateway_id = ? AND "
                                "received_ms < ? ORDER BY received_ms DESC, load_id DESC LIMIT 1", (gw, start))
            for (cause, reason), n in sorted(day_increases(bodies, before[0][0] if before else None).items()):
                out.append((campus, gw, day, cause, reason, n, ctx.hi))
    n = insert_rows(s, TABLE, ("campus_id", "gateway_id", "dt", "cause_code", "reason_code", "loss_cnt", "load_id"),
                    out)
    s.execute(f"DROP TABLE IF EXISTS {DAYS}")
    return {TABLE: n}


TRANSFORMS = (
    Transform("qlt_gateway", qlt_gateway, inputs=("ods_iot_heartbeat_di", "dim_iot_gateway", *DAY_INPUTS),
              outputs=(TABLE,), doc="heartbeats → quarantined messages and evicted rows per gateway and day"),
)

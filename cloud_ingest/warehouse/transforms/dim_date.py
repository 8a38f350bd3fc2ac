"""Extend ``dim_pub_date`` to every local day that DWD data falls on (insert-if-absent; holidays come from
the registry calendar, days added here are ordinary days until a registry load says otherwise)."""

from __future__ import annotations

import datetime as dt

from cloud_ingest.warehouse.sqlutil import insert_rows
from cloud_ingest.warehouse.transforms.base import Context, Transform
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES

DATE_COLUMNS = ("dt", "year_no", "month_no", "day_no", "week_no", "weekday_no", "is_weekend", "is_holiday")


def date_row(day: dt.date, holiday: bool = False) -> tuple[object, ...]:
    iso = day.isocalendar()
    return (day, day.year, day.month, day.day, iso.week, iso.weekday, iso.weekday >= 6, holiday)


def dim_date(ctx: Context) -> dict[str, int]:
    s = ctx.session
    days: set[dt.date] = set()
    for table in (*PROCESS_TABLES.values(), "dwd_acs_event_di"):
        days.update(d for (d,) in s.fetchall(
            f"SELECT DISTINCT dt FROM {table} WHERE load_id > ? AND load_id <= ?", (ctx.lo, ctx.hi)))
    if not days:
        return {"dim_pub_date": 0}
    have = {d for (d,) in s.fetchall("SELECT dt FROM dim_pub_date WHERE dt >= ? AND dt <= ?",
                                     (min(days), max(days)))}
    return {"dim_pub_date": insert_rows(s, "dim_pub_date", DATE_COLUMNS,
                                        [date_row(d) for d in sorted(days - have)])}


TRANSFORMS = (
    Transform("dim_date", dim_date, inputs=(*PROCESS_TABLES.values(), "dwd_acs_event_di"),
              outputs=("dim_pub_date",), after=("dwd_reading", "dwd_acs_event"),
              doc="calendar days covering the DWD data"),
)

"""Run the warehouse transforms in-process on a schedule (apscheduler 3, one background thread).

DuckDB allows one writer process, so the process that lands batches also runs the transforms: the API
service calls :func:`start_transform_scheduler` at startup and ``shutdown()`` at exit. A run that is still
going when the next is due is skipped (``max_instances=1``, ``coalesce``), never stacked.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler

from cloud_ingest.warehouse.errors import WarehouseError
from cloud_ingest.warehouse.warehouse import Warehouse

_LOGGER = logging.getLogger(__name__)
JOB_ID = "warehouse-transforms"


def _run_once(wh: Warehouse) -> None:
    try:
        rows = wh.run_transforms()
    except WarehouseError as exc:  # logged and retried on the next tick; the scheduler keeps going
        _LOGGER.error("scheduled transform run failed: %s", exc)
        return
    _LOGGER.info("scheduled transform run wrote %s rows", sum(rows.values()))


def start_transform_scheduler(wh: Warehouse, interval_s: float) -> BackgroundScheduler:
    """Start a background scheduler running ``wh.run_transforms`` every ``interval_s`` seconds (first now)."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, not {interval_s}")
    sched = BackgroundScheduler(daemon=True)
    sched.add_job(_run_once, "interval", args=(wh,), seconds=interval_s, id=JOB_ID, max_instances=1,
                  coalesce=True, next_run_time=dt.datetime.now())
    sched.start()
    return sched

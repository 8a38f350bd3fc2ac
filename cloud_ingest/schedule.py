"""The service's transform schedule: DWD soon after each landing, the whole DAG on a slower cadence.

``campus-cloud serve`` lands batches in ODS as they arrive; readings reach DWD only when a transform runs.
Two jobs on one apscheduler 3 background scheduler:

- **DWD** (``dwd_reading``, ``dwd_acs_event``) every ``dwd_every_s`` seconds (default 2), *only when a batch
  was stored since the last DWD run* (the API calls :meth:`TransformSchedule.landed`): an idle service runs
  nothing, a busy one at most once per interval. This is what bounds the sensor → DWD latency (issue 8:
  p99 < 5 s with a 1 s batch age at the edge).
- **the whole DAG** (DWD, DIM date, DWS, ADS, quality; each touched day is recomputed, which is the
  expensive part) every ``transform_every_s`` seconds (default 60), first at start.

The two never run at once: they share one lock (and :class:`~cloud_ingest.warehouse.Warehouse` serialises
every transform run on its own run lock as well, across replicas on PostgreSQL by an advisory lock). The
DAG run waits for a DWD run in progress; a DWD tick that finds the DAG running is skipped quietly and left
pending, so the next tick after the DAG picks up what landed meanwhile. Each job has ``max_instances=1``
and ``coalesce``: a late run is never stacked.

Failures are logged and retried: a failed DAG run on its next tick (as before); a failed DWD run stays
pending and is retried after a back-off that doubles from ``dwd_every_s`` up to ``DWD_RETRY_CAP_S``, so a
persistent fault logs a line a minute, not one a second.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

_LOGGER = logging.getLogger(__name__)

DWD_TRANSFORMS = ("dwd_reading", "dwd_acs_event")  # the DWD layer: readings and access events
DWD_RETRY_CAP_S = 60.0
DAG_JOB_ID = "warehouse-transforms"
DWD_JOB_ID = "warehouse-dwd"
DWD_EXECUTOR = "dwd"  # its own thread; its logger ("Running job …" every tick) is kept at WARNING


class Transformable(Protocol):
    """The part of :class:`cloud_ingest.warehouse.Warehouse` the schedule uses."""

    def run_transforms(self, *, only: Sequence[str] = ()) -> dict[str, int]: ...


class TransformSchedule:
    """Runs the DWD step after landings and the whole DAG periodically (see the module doc).

    ``transform_every_s`` or ``dwd_every_s`` ≤ 0 disables that job. :meth:`start` starts the background
    thread; :meth:`shutdown` stops it, waiting for a run in progress. :meth:`landed` is cheap and thread-safe
    (called from the API's event loop after every stored batch).
    """

    def __init__(self, warehouse: Transformable, *, transform_every_s: float, dwd_every_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._wh = warehouse
        self.transform_every_s = transform_every_s
        self.dwd_every_s = dwd_every_s
        self._clock = clock
        self._lock = threading.Lock()  # one transform run at a time (DAG or DWD)
        self._pending = threading.Event()  # a batch was stored since the last DWD run started
        self._failures = 0  # consecutive failed DWD runs
        self._retry_at = 0.0  # no DWD retry before this (clock) after a failure
        self.dwd_runs = 0  # DWD runs that completed (for tests and logs)
        self.dag_runs = 0
        self._sched: BackgroundScheduler | None = None

    # -- API side -------------------------------------------------------------------------------------

    def landed(self) -> None:
        """A batch was stored in ODS: the next DWD tick runs the DWD step."""
        self._pending.set()

    # -- jobs -----------------------------------------------------------------------------------------

    def run_dag(self) -> None:
        """One run of the whole DAG (waits for a DWD run in progress). Errors are logged, retried next tick."""
        with self._lock:
            try:
                rows = self._wh.run_transforms()
            except Exception as exc:  # logged and retried on the next tick; the scheduler keeps going
                _LOGGER.error("scheduled transform run failed: %s", exc, exc_info=not _expected(exc))
                return
            self.dag_runs += 1
        _LOGGER.info("scheduled transform run wrote %s rows", sum(rows.values()))

    def run_dwd(self) -> bool:
        """The DWD step if a batch landed since the last one and no other run is going; True if it ran."""
        if not self._pending.is_set() or self._clock() < self._retry_at:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # the DAG is running (it includes DWD); stay pending for the next tick
        try:
            self._pending.clear()  # a landing from now on is picked up by the next run
            try:
                rows = self._wh.run_transforms(only=DWD_TRANSFORMS)
            except Exception as exc:
                self._pending.set()
                self._failures += 1
                delay = min(DWD_RETRY_CAP_S, max(self.dwd_every_s, 1.0) * 2 ** (self._failures - 1))
                self._retry_at = self._clock() + delay
                _LOGGER.error("scheduled DWD run failed (%d in a row), retrying in %.0f s: %s", self._failures,
                              delay, exc, exc_info=not _expected(exc))
                return True
            if self._failures:
                _LOGGER.info("scheduled DWD run succeeded again after %d failures", self._failures)
            self._failures, self._retry_at = 0, 0.0
            self.dwd_runs += 1
        finally:
            self._lock.release()
        _LOGGER.debug("scheduled DWD run wrote %s rows", sum(rows.values()))
        return True

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> TransformSchedule:
        """Start the background scheduler (the DAG's first run is now); returns self."""
        if self._sched is not None:
            raise RuntimeError("the transform schedule is already started")
        sched = BackgroundScheduler(daemon=True)
        sched.add_executor(ThreadPoolExecutor(1), DWD_EXECUTOR)
        dwd_log = logging.getLogger(f"apscheduler.executors.{DWD_EXECUTOR}")
        if dwd_log.level == logging.NOTSET:
            dwd_log.setLevel(logging.WARNING)
        if self.transform_every_s > 0:
            sched.add_job(self.run_dag, "interval", seconds=self.transform_every_s, id=DAG_JOB_ID,
                          max_instances=1, coalesce=True, misfire_grace_time=None,
                          next_run_time=dt.datetime.now())
        if self.dwd_every_s > 0:
            sched.add_job(self.run_dwd, "interval", seconds=self.dwd_every_s, id=DWD_JOB_ID, max_instances=1,
                          coalesce=True, misfire_grace_time=None, executor=DWD_EXECUTOR)
        sched.start()
        self._sched = sched
        return self

    def shutdown(self) -> None:
        """Stop scheduling; waits for a run in progress (the warehouse may be closed afterwards)."""
        if self._sched is not None:
            self._sched.shutdown(wait=True)
            self._sched = None


def _expected(exc: BaseException) -> bool:
    """A warehouse error (its message says it all) rather than a bug (worth a traceback)."""
    from cloud_ingest.warehouse.errors import WarehouseError

    return isinstance(exc, WarehouseError)

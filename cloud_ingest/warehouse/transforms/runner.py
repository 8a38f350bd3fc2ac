"""Run the transform DAG: order by declared dependencies, one transaction per transform, watermark inside it.

``run(session, transforms, hi, now_ms)`` visits transforms in a topological order of ``after``; each one
with watermark ``wm < hi`` runs over ``(wm, hi]`` and commits its rows, its new watermark and a run-log row
atomically. A failing transform rolls back alone; transforms that depend on it are skipped this run (their
inputs did not change) and everything is retried on the next run.
"""

from __future__ import annotations

import graphlib
import logging
import time
import uuid
from collections.abc import Sequence

from cloud_ingest.warehouse.adapter import Session
from cloud_ingest.warehouse.errors import TransformError, WarehouseError
from cloud_ingest.warehouse.transforms.base import Context, Transform

_LOGGER = logging.getLogger(__name__)


def order(transforms: Sequence[Transform]) -> list[Transform]:
    """Topological order of ``transforms`` by ``after`` (ties in declaration order). Raises on a cycle."""
    by_name = {t.name: t for t in transforms}
    graph: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for t in transforms:
        for dep in t.after:
            if dep not in by_name:
                raise WarehouseError(f"transform {t.name}: depends on unknown transform {dep!r}")
        graph.add(t.name, *t.after)
    try:
        graph.prepare()
    except graphlib.CycleError as exc:
        raise WarehouseError(f"transform dependencies form a cycle: {exc.args[1]}") from exc
    rank = {t.name: i for i, t in enumerate(transforms)}
    out: list[Transform] = []
    while graph.is_active():
        ready = sorted(graph.get_ready(), key=rank.__getitem__)
        out.extend(by_name[n] for n in ready)
        graph.done(*ready)
    return out


def watermarks(session: Session) -> dict[str, int]:
    rows = session.fetchall("SELECT transform_name, watermark_id FROM meta_etl_watermark_cur")
    return {str(name): int(wm) for name, wm in rows}


def run(session: Session, transforms: Sequence[Transform], hi: int, *, now_ms: int | None = None,
        only: Sequence[str] = ()) -> dict[str, int]:
    """Run every transform (or ``only`` those named, plus nothing else) up to change id ``hi``.

    Returns rows written per output table (tables of transforms with nothing to do report 0).
    Raises :class:`TransformError` for the first failure after running what does not depend on it.
    """
    run_id = uuid.uuid4().hex[:12]
    done = watermarks(session)
    rows: dict[str, int] = {}
    failed: set[str] = set()
    first_error: TransformError | None = None
    dict_ver: str | None = None  # the data-dictionary version stamped on this run's log rows
    for t in order(transforms):
        for table in t.outputs:
            rows.setdefault(table, 0)
        if only and t.name not in only:
            continue
        if failed.intersection(t.after):
            failed.add(t.name)
            continue
        lo = done.get(t.name, 0)
        if lo >= hi:
            continue
        if dict_ver is None:
            # imported here: governance reads the warehouse schema, so a module-level import would be circular
            from cloud_ingest.governance.dictionary import dictionary_version

            dict_ver = dictionary_version()
        started = int(now_ms if now_ms is not None else time.time_ns() // 1_000_000)
        ctx = Context(session, lo, hi, run_id, started, dict_ver)
        t0 = time.perf_counter()
        try:
            with session.transaction():
                written = t.fn(ctx)
                total = sum(written.values())
                session.execute(
                    "INSERT INTO meta_etl_watermark_cur (transform_name, watermark_id, row_cnt, finished_ms) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (transform_name) DO UPDATE SET "
                    "watermark_id = excluded.watermark_id, row_cnt = excluded.row_cnt, "
                    "finished_ms = excluded.finished_ms", (t.name, hi, total, started))
                finished = started + int((time.perf_counter() - t0) * 1000)
                session.execute(
                    "INSERT INTO meta_etl_run_log (run_id, transform_name, lo_id, hi_id, row_cnt, "
                    "started_ms, finished_ms, dict_ver) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, t.name, lo, hi, total, started, finished, dict_ver))
        except WarehouseError as exc:
            failed.add(t.name)
            _LOGGER.error("transform %s failed over (%s, %s]: %s", t.name, lo, hi, exc,
                          extra={"transform": t.name, "run_id": run_id})
            first_error = first_error or TransformError(t.name, str(exc))
            continue
        for table, n in written.items():
            rows[table] = rows.get(table, 0) + n
        _LOGGER.info("transform %s (%s, %s]: %s rows in %.3fs", t.name, lo, hi, total,
                     time.perf_counter() - t0, extra={"transform": t.name, "run_id": run_id})
    if first_error is not None:
        raise first_error
    return rows

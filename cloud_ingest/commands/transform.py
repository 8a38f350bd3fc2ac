"""``campus-cloud transform``: run the warehouse transforms now, or on a schedule (``--every``)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from cloud_ingest.commands._warehouse_opts import add_warehouse_option, with_warehouse
from cloud_ingest.warehouse import Warehouse
from cloud_ingest.warehouse.errors import TransformError
from cloud_ingest.warehouse.scheduler import start_transform_scheduler
from cloud_ingest.warehouse.transforms import ALL

_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "transform", help="run the warehouse transforms (ODS → DWD → DWS → ADS)",
        description="Run every transform whose inputs changed since its watermark, in dependency order, "
                    "and print the rows written per table. Idempotent: running again with no new data writes "
                    "nothing. With DuckDB, stop the service first (one writer process) — the service runs "
                    "the same transforms on its own schedule.")
    add_warehouse_option(p)
    p.add_argument("--only", action="append", default=[], metavar="NAME", choices=[t.name for t in ALL],
                   help="run only this transform (repeatable); others keep their watermark")
    p.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                   help="keep running on this interval (apscheduler) until interrupted")
    p.add_argument("--list", action="store_true", help="list transforms and watermarks, run nothing")
    p.set_defaults(func=run)


def _print_rows(rows: dict[str, int]) -> None:
    width = max((len(t) for t in rows), default=5)
    for table, n in rows.items():
        sys.stdout.write(f"{table:<{width}}  {n:>10}\n")
    sys.stdout.write(f"{'total':<{width}}  {sum(rows.values()):>10}\n")


def _list(wh: Warehouse) -> int:
    marks = wh.watermarks()
    for t in ALL:
        after = ", ".join(t.after) or "-"
        sys.stdout.write(f"{t.name:<16} watermark {marks.get(t.name, 0):>8}  after {after:<28} {t.doc}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    def action(wh: Warehouse) -> int:
        if args.list:
            return _list(wh)
        if args.every > 0:
            stop = threading.Event()
            sched = start_transform_scheduler(wh, args.every)
            sys.stdout.write(f"running transforms every {args.every:g}s; Ctrl-C to stop\n")
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
            finally:
                sched.shutdown(wait=True)
            return 0
        try:
            rows = wh.run_transforms(only=args.only)
        except TransformError as exc:
            sys.stderr.write(f"campus-cloud: {exc}\n")
            return 1
        _print_rows(rows)
        return 0

    return with_warehouse(args, action)

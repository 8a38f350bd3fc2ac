"""``campus-cloud quality``: the data-quality report (JSON + HTML) and the findings (list, ack, fixed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cloud_ingest.commands._warehouse_opts import add_warehouse_option, with_warehouse
from cloud_ingest.quality.findings import FindingError, list_findings, set_status
from cloud_ingest.quality.report import PERIODS, write_report
from cloud_ingest.warehouse import Warehouse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("quality", help="data-quality report and findings (clause 六)",
                       description="Report the six quality dimensions computed by the qlt_* transforms, and "
                                   "track findings (open → acknowledged → fixed). See docs/quality.md.")
    qs = p.add_subparsers(dest="quality_cmd", required=True)
    r = qs.add_parser("report", help="write quality.json and quality.html (inline SVG charts)")
    add_warehouse_option(r)
    r.add_argument("--period", choices=PERIODS, default="day")
    r.add_argument("--out", type=Path, required=True, metavar="DIR")
    r.set_defaults(func=_report)
    f = qs.add_parser("findings", help="list findings, or acknowledge / mark one fixed")
    add_warehouse_option(f)
    g = f.add_mutually_exclusive_group()
    g.add_argument("--ack", metavar="ID", help="mark finding ID acknowledged")
    g.add_argument("--fixed", metavar="ID", help="mark finding ID fixed")
    f.add_argument("--note", default="", help="note stored with the status change")
    f.add_argument("--status", choices=("open", "acknowledged", "fixed"), help="list only this status")
    f.set_defaults(func=_findings)


def _report(args: argparse.Namespace) -> int:
    def action(wh: Warehouse) -> int:
        j, h = write_report(wh, args.out, args.period)
        sys.stdout.write(f"wrote {j}\nwrote {h}\n")
        return 0

    return with_warehouse(args, action)


def _findings(args: argparse.Namespace) -> int:
    def action(wh: Warehouse) -> int:
        target = args.ack or args.fixed
        if target:
            try:
                set_status(wh, target, "acknowledged" if args.ack else "fixed", args.note)
            except FindingError as exc:
                sys.stderr.write(f"campus-cloud: {exc}\n")
                return 1
            sys.stdout.write(f"{target}: {'acknowledged' if args.ack else 'fixed'}\n")
            return 0
        for row in list_findings(wh, args.status):
            sys.stdout.write("  ".join("" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
                                       for v in row) + "\n")
        return 0

    return with_warehouse(args, action)

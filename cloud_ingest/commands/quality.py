"""``campus-cloud quality``: the data-quality report (JSON + HTML), the findings (list, ack, fixed) and the
evidence behind a finding (the rows, with the ODS batch each came in)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cloud_ingest.commands._warehouse_opts import add_warehouse_option, with_warehouse
from cloud_ingest.commands.sql import format_table
from cloud_ingest.quality.evidence import DEFAULT_LIMIT, MAX_LIMIT, evidence
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
    e = qs.add_parser("evidence", help="the rows behind a finding (gaps, late readings, duplicates, flags...)",
                      description="Print the evidence of FINDING_ID (<dt>:<scope>:<id>:<dimension>): the rows its "
                                  "rate counted, each with gateway_id, batch_seq and load_id of its ODS batch, "
                                  "and per kind what the rate counted. See docs/quality.md.")
    add_warehouse_option(e)
    e.add_argument("finding_id", metavar="FINDING_ID")
    e.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT,
                   help=f"print at most N rows (1..{MAX_LIMIT}, default {DEFAULT_LIMIT})", metavar="N")
    e.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    e.set_defaults(func=_evidence)


def _limit(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= n <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{n} is not between 1 and {MAX_LIMIT}")
    return n


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


def _evidence(args: argparse.Namespace) -> int:
    def action(wh: Warehouse) -> int:
        try:
            ev = evidence(wh, args.finding_id, limit=args.limit)
        except FindingError as exc:
            sys.stderr.write(f"campus-cloud: {exc}\n")
            return 1
        if args.format == "json":
            sys.stdout.write(json.dumps(ev.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
            return 0
        r = ev.ref
        counted = ", ".join(f"{k} {v}" for k, v in ev.counted.items())
        sys.stdout.write(f"{r.finding_id}: {r.dimension_code} of {r.scope_code} {r.scope_id} on {r.dt} "
                         f"(campus {r.campus_id})\ncounted by the rate: {counted}\n")
        cols = list(ev.columns)
        sys.stdout.write(format_table(cols, [tuple(row[c] for c in cols) for row in ev.rows]))
        sys.stdout.write(f"({len(ev.rows)} of {ev.total} rows)\n")
        return 0

    return with_warehouse(args, action)

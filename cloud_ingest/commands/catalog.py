"""``campus-cloud catalog``: export the data catalog ("一数一标准") as Markdown, HTML or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cloud_ingest.governance.catalog import build_catalog, export_json, export_markdown
from cloud_ingest.governance.catalog_html import render_html
from cloud_ingest.governance.errors import GovernanceError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("catalog", help="data catalog (一数一标准): every table and column with its standard",
                       description="Generated from the warehouse schema data, the transform lineage, the data "
                                   "dictionary and the word roots: name, Chinese name, type, definition, unit, "
                                   "value range, source, update frequency, classification level, owner, tier "
                                   "and domain of every table and column.")
    acts = p.add_subparsers(dest="catalog_action", metavar="ACTION", required=True)
    e = acts.add_parser("export", help="write the catalog as md, html (one browsable page) or json")
    e.add_argument("--format", choices=("md", "html", "json"), default="html", help="format (default html)")
    e.add_argument("--out", type=Path, default=None, metavar="PATH", help="write here instead of stdout")
    e.set_defaults(func=run_export)
    g = acts.add_parser("gaps", help="list what the schema data does not say yet (exit 0)")
    g.set_defaults(func=run_gaps)


def run_export(args: argparse.Namespace) -> int:
    try:
        cat = build_catalog()
    except GovernanceError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 2
    if args.format == "json":
        text = json.dumps(export_json(cat), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "md":
        text = export_markdown(cat)
    else:
        text = render_html(cat)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {args.out}: {len(cat.tables)} tables, {cat.column_count} columns, "
                         f"{len(cat.gaps)} gaps\n")
    return 0


def run_gaps(args: argparse.Namespace) -> int:
    cat = build_catalog()
    by_field: dict[str, list[str]] = {}
    for gap in cat.gaps:
        by_field.setdefault(gap.field, []).append(f"{gap.column or gap.table}: {gap.note}")
    for fld, items in by_field.items():
        sys.stdout.write(f"{fld}: {len(items)}\n")
        for item in items:
            sys.stdout.write(f"  {item}\n")
    return 0

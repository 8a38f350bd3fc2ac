"""``campus-cloud schema --dialect duckdb|postgres|citus``: print the warehouse DDL (or the table list)."""

from __future__ import annotations

import argparse
import sys

from cloud_ingest.warehouse.ddl import DIALECTS, render_script
from cloud_ingest.warehouse.schema import load_schema


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schema", help="print the warehouse DDL for a dialect",
                       description="Print the CREATE statements of every warehouse table, generated from "
                                   "cloud_ingest/warehouse/schema.yaml. 'citus' adds reference tables for "
                                   "DIM/META and distributed, co-located fact tables (docs/scaling.md).")
    p.add_argument("--dialect", choices=DIALECTS, default="duckdb", help="SQL dialect (default duckdb)")
    p.add_argument("--tables", action="store_true", help="list tables (tier, name, Chinese name) instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.tables:
        for t in load_schema().tables:
            sys.stdout.write(f"{t.tier:<5} {t.name:<28} {t.kind:<5} {t.zh}\n")
        return 0
    sys.stdout.write(render_script(args.dialect))
    return 0

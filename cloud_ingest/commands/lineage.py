"""``campus-cloud lineage``: table-level lineage (溯源/去向) from the transform DAG, as text, DOT, SVG or PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cloud_ingest.governance.errors import GovernanceError
from cloud_ingest.governance.lineage import LineageGraph, build_lineage, render_text, to_dot
from cloud_ingest.governance.lineage_svg import render_png, render_svg


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lineage", help="table lineage (溯源/去向) from the transform DAG",
                       description="Show where a table's data comes from (up) and where it goes (down), read "
                                   "from the warehouse transforms' declared inputs and outputs. Without TABLE, "
                                   "the whole graph. SVG uses Graphviz 'dot' when installed, else a built-in "
                                   "layout; PNG needs 'dot'.")
    p.add_argument("table", nargs="?", help="warehouse table (default: the whole graph)")
    p.add_argument("--direction", choices=("up", "down", "both"), default="both",
                   help="upstream, downstream or both (default both)")
    p.add_argument("--format", choices=("text", "dot", "svg", "png"), default="text",
                   help="output format (default text)")
    p.add_argument("--engine", choices=("auto", "dot", "builtin"), default="auto",
                   help="SVG layout: Graphviz dot, the built-in layout, or dot when installed (default)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write here (required for png) instead of stdout")
    p.set_defaults(func=run)


def _whole_text(g: LineageGraph) -> str:
    lines = [f"{len([n for n in g.nodes if not n.startswith('source:')])} tables, {len(g.edges)} edges"]
    by_via: dict[str, list[str]] = {}
    for e in g.edges:
        by_via.setdefault(e.via, []).append(f"{e.source} → {e.target}")
    for via, items in by_via.items():
        lines.append(f"{via}:")
        lines += [f"  {x}" for x in items]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        full = build_lineage()
        g = full.subgraph(args.table, args.direction) if args.table else full
        if args.format == "text":
            data: str | bytes = render_text(full, args.table, args.direction) if args.table else _whole_text(g)
        elif args.format == "dot":
            data = to_dot(g, args.table)
        elif args.format == "svg":
            data = render_svg(g, args.table, engine=args.engine, title=args.table or "warehouse lineage")
        else:
            if args.out is None:
                sys.stderr.write("campus-cloud: --format png needs --out FILE\n")
                return 2
            data = render_png(g, args.table)
    except GovernanceError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 2
    if args.out is None:
        sys.stdout.write(data if isinstance(data, str) else data.decode())
    elif isinstance(data, bytes):
        args.out.write_bytes(data)
    else:
        args.out.write_text(data, encoding="utf-8")
    if args.out is not None:
        sys.stderr.write(f"wrote {args.out}\n")
    return 0

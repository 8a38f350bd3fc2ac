"""``campus-cloud naming``: check names against the word-root library, explain a name, render the docs."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from cloud_ingest.commands._warehouse_opts import with_warehouse
from cloud_ingest.governance.errors import GovernanceError
from cloud_ingest.governance.names import LiveColumn, live_columns, project_names
from cloud_ingest.governance.naming import NamingReport, check, format_report
from cloud_ingest.governance.roots import RootLibrary, load_roots, render_markdown
from cloud_ingest.warehouse import Warehouse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("naming", help="word-root library (词根库): check names, explain a name, render docs",
                       description="Every warehouse table and column name and every canonical metric and "
                                   "event name must be built from the registered word roots "
                                   "(cloud_ingest/governance/word_roots.yaml).")
    acts = p.add_subparsers(dest="naming_action", metavar="ACTION", required=True)

    c = acts.add_parser("check", help="check every name; exit 1 on any problem",
                        description="Check table names (<tier>_<domain>_<subject>_<suffix>), column names, "
                                    "metric names (device_profiles/metrics.yaml and profiles) and event "
                                    "kinds. Each unknown token is reported with where it came from and the "
                                    "nearest registered root. Exit 0 when clean, 1 on any problem, 2 on a "
                                    "bad library.")
    c.add_argument("--warehouse", metavar="URL", default=None,
                   help="also check a live warehouse's tables and columns and compare them with the schema")
    c.add_argument("--metrics", type=Path, default=None, metavar="FILE",
                   help="metric registry (default: device_profiles/metrics.yaml of the repository)")
    c.add_argument("--profiles", type=Path, default=None, metavar="DIR",
                   help="profile root (default: the repository's device_profiles/)")
    c.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    c.set_defaults(func=run_check)
    _roots_option(c)

    e = acts.add_parser("explain", help="split names into roots with their Chinese and English names")
    e.add_argument("names", nargs="+", metavar="NAME")
    e.set_defaults(func=run_explain)
    _roots_option(e)

    d = acts.add_parser("docs", help="render the library as Markdown (docs/word-roots.md)")
    d.add_argument("--out", type=Path, default=None, metavar="PATH", help="write here instead of stdout")
    d.set_defaults(func=run_docs)
    _roots_option(d)


def _roots_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--roots", type=Path, default=None, metavar="FILE",
                   help="word-root library to use (default: the packaged word_roots.yaml)")


def _library(args: argparse.Namespace) -> RootLibrary | None:
    try:
        return load_roots(args.roots)
    except GovernanceError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return None


def _emit(report: NamingReport, fmt: str) -> int:
    if fmt == "json":
        doc = {"ok": report.ok, "library_version": report.library_version, "checked": report.checked,
               "problems": [asdict(p) for p in report.problems]}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(format_report(report))
    return 0 if report.ok else 1


def run_check(args: argparse.Namespace) -> int:
    lib = _library(args)
    if lib is None:
        return 2
    refs = project_names(metrics_file=args.metrics, profiles_root=args.profiles)
    if args.warehouse is None:
        return _emit(check(lib, refs), args.format)

    def with_live(wh: Warehouse) -> int:
        live: list[LiveColumn] = live_columns(wh)
        return _emit(check(lib, refs, live), args.format)

    return with_warehouse(args, with_live)


def run_explain(args: argparse.Namespace) -> int:
    lib = _library(args)
    if lib is None:
        return 2
    status = 0
    for name in args.names:
        split = lib.split(name)
        parts = [f"{r.root}{f'({r.abbreviation})' if r.abbreviation else ''}={r.zh}" for r in split.roots]
        zh = "".join(r.zh.split("；")[0] for r in split.roots)
        sys.stdout.write(f"{name}: {' + '.join(parts)}  →  {zh}\n")
        for tok in split.unknown:
            status = 1
            sug = lib.suggest(tok)
            sys.stdout.write(f"  unknown token {tok!r}" + (f" (nearest: {sug!r})" if sug else "") + "\n")
    return status


def run_docs(args: argparse.Namespace) -> int:
    lib = _library(args)
    if lib is None:
        return 2
    text = render_markdown(lib)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {args.out}\n")
    return 0

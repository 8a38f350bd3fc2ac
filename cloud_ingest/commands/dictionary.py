"""``campus-cloud dictionary``: show, export and check the data dictionary (数据字典) code tables."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cloud_ingest.governance.dictionary import (
    DataDictionary,
    check_dictionary,
    dictionary_fingerprint,
    export_json,
    export_markdown,
    load_dictionary,
    range_text,
)
from cloud_ingest.governance.errors import GovernanceError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dictionary", help="data dictionary (数据字典): code tables with versions",
                       description="Code tables (device, room and building types, metric and unit codes, "
                                   "domains, classification levels, quarantine reasons, quality flags…) with "
                                   "code, names, unit, value range, reference source and version history. "
                                   "Tables live in cloud_ingest/governance/dictionary/; metric and unit "
                                   "codes "
                                   "are generated from device_profiles/metrics.yaml.")
    p.add_argument("--dir", type=Path, default=None, metavar="DIR",
                   help="code-table directory (default: the packaged one)")
    p.add_argument("--metrics", type=Path, default=None, metavar="FILE",
                   help="metric registry (default: device_profiles/metrics.yaml of the repository)")
    acts = p.add_subparsers(dest="dictionary_action", metavar="ACTION", required=True)
    s = acts.add_parser("show", help="list the tables, or show one table's codes and history")
    s.add_argument("table", nargs="?", help="code table name (default: list all tables)")
    s.set_defaults(func=run_show)
    e = acts.add_parser("export", help="export the whole dictionary as JSON or Markdown")
    e.add_argument("--format", choices=("json", "md"), default="json", help="output format (default json)")
    e.add_argument("--out", type=Path, default=None, metavar="PATH", help="write here instead of stdout")
    e.set_defaults(func=run_export)
    c = acts.add_parser("check", help="check versions and compare the tables with the programs' code lists",
                        description="Exit 1 when a table is not pinned at its version in release.yaml, has "
                                    "duplicate codes or names missing, or differs from the codes the "
                                    "programs use (registry types, edge reasons and quality bits, levels, "
                                    "event kinds).")
    c.set_defaults(func=run_check)
    v = acts.add_parser("version", help="print the dictionary version and content fingerprint")
    v.set_defaults(func=run_version)


def _load(args: argparse.Namespace) -> DataDictionary | None:
    try:
        return load_dictionary(args.dir, args.metrics)
    except GovernanceError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return None


def run_show(args: argparse.Namespace) -> int:
    d = _load(args)
    if d is None:
        return 2
    out = sys.stdout
    if not args.table:
        out.write(f"data dictionary {d.version} ({d.date})\n")
        for t in d.tables:
            gen = f"  [from metrics.yaml {t.generated_from}]" if t.generated_from else ""
            out.write(f"{t.name:<22} v{t.version:<3} {len(t.entries):>4} codes  {t.zh} / {t.en}{gen}\n")
        return 0
    try:
        t = d.table(args.table)
    except GovernanceError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 2
    out.write(f"{t.name} — {t.zh} ({t.en}), version {t.version}\n")
    for label, text in (("description", t.description), ("reference", t.reference),
                        ("columns", ", ".join(t.columns))):
        if text:
            out.write(f"  {label}: {text}\n")
    width = max((len(e.code) for e in t.entries), default=4)
    for e in t.entries:
        extra = "  ".join(x for x in (e.unit, range_text(e.range), e.limit and f"limit {e.limit}",
                                      e.reference and f"ref {e.reference}") if x)
        value = f"{e.value:>5} " if e.value is not None else ""
        out.write(f"  {e.code:<{width}}  {value}{e.zh} / {e.en}  {extra}\n".rstrip() + "\n")
    out.write("  history:\n")
    for c in reversed(t.history):
        out.write(f"    {c.version} ({c.date}): {'; '.join(c.changes)}\n")
    return 0


def run_export(args: argparse.Namespace) -> int:
    d = _load(args)
    if d is None:
        return 2
    if args.format == "json":
        text = json.dumps(export_json(d), ensure_ascii=False, indent=2) + "\n"
    else:
        text = export_markdown(d)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {args.out}\n")
    return 0


def run_check(args: argparse.Namespace) -> int:
    d = _load(args)
    if d is None:
        return 2
    findings = check_dictionary(d)
    for f in findings:
        sys.stdout.write(f"{f}\n")
    errors = [f for f in findings if f.severity == "error"]
    sys.stdout.write(f"FAILED: {len(errors)} problem(s)\n" if errors else
                     f"OK: data dictionary {d.version}, {len(d.tables)} tables\n")
    return 1 if errors else 0


def run_version(args: argparse.Namespace) -> int:
    d = _load(args)
    if d is None:
        return 2
    sys.stdout.write(f"{d.version} {dictionary_fingerprint(d)}\n")
    return 0

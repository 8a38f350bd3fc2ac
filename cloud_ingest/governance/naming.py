"""Naming check: every name the project uses is built from registered word roots (工作任务（四）).

Rules, from the word-root library (``word_roots.yaml``):

* a table name is ``<tier>_<domain>_<subject>_<suffix>``: the tier, domain and suffix tokens are roots of
  those categories, the subject is one or more registered roots; tiers listed under
  ``suffix_optional_tiers`` may omit the suffix; waived names are reported as ``waived``;
* a column, metric or event name is a sequence of registered roots or abbreviations;
* with a live warehouse, its tables and columns are checked too and compared with the schema data: a table
  or column in the database but not in the schema is drift, reported as an error.

Each problem names the name, where it came from, the offending token and the nearest registered spelling
(difflib) as a suggestion. ``NamingReport.ok`` is false when any error was found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cloud_ingest.governance.names import LiveColumn, NameRef, live_names
from cloud_ingest.governance.roots import RootLibrary
from cloud_ingest.warehouse.schema import load_schema

Severity = Literal["error", "warning", "waived"]


@dataclass(slots=True, frozen=True)
class Problem:
    """One finding. ``token`` is the offending part of ``name`` (may be empty), ``suggestion`` a root."""

    severity: Severity
    kind: str
    name: str
    where: str
    message: str
    token: str = ""
    suggestion: str = ""

    def __str__(self) -> str:
        hint = f" (nearest registered root: {self.suggestion!r})" if self.suggestion else ""
        return f"{self.severity.upper()} {self.kind} {self.name}: {self.message}{hint} [{self.where}]"


@dataclass(slots=True)
class NamingReport:
    """Result of a check: the findings and how many names of each kind were checked."""

    library_version: str
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _unknown(lib: RootLibrary, ref: NameRef, tokens: Iterable[str], part: str = "") -> list[Problem]:
    out = []
    for tok in tokens:
        sug = lib.suggest(tok)
        what = f"{part} token" if part else "token"
        out.append(Problem("error", ref.kind, ref.name, ref.where, f"unknown {what} {tok!r}", tok, sug))
    return out


def check_table(lib: RootLibrary, ref: NameRef) -> list[Problem]:
    """Problems of one table name (see the module docstring for the rule)."""
    name = ref.name
    tokens = name.split("_")
    problems: list[Problem] = []

    def bad(message: str, token: str = "", category: str | None = None) -> None:
        sug = lib.suggest(token, category) if token else ""
        problems.append(Problem("error", "table", name, ref.where, message, token, sug))

    tiers = lib.spellings_of("tier")
    tier = tokens[0]
    root = lib.lookup(tier)
    if root is None or not root.has("tier"):
        bad(f"tier {tier!r} is not one of {', '.join(tiers)}", tier, "tier")
    if len(tokens) < 3:
        bad(f"must be {'_'.join(('<tier>', '<domain>', '<subject>', '<suffix>'))}")
        return _waive(lib, problems)
    domain = lib.lookup(tokens[1])
    if domain is None or not domain.has("domain"):
        bad(f"domain {tokens[1]!r} is not a registered domain ({', '.join(lib.spellings_of('domain'))})",
            tokens[1], "domain")
    last = lib.lookup(tokens[-1])
    if len(tokens) >= 4 and last is not None and last.has("suffix"):
        subject = tokens[2:-1]
    elif tier in lib.suffix_optional_tiers:
        subject = tokens[2:]
    else:
        suffixes = ", ".join(lib.spellings_of("suffix"))
        if len(tokens) == 3:
            bad(f"no suffix: the name must end with one of {suffixes}")
            subject = tokens[2:]
        else:
            bad(f"last token {tokens[-1]!r} is not a registered suffix ({suffixes})", tokens[-1], "suffix")
            subject = tokens[2:-1]
    split = lib.split("_".join(subject))
    problems += _unknown(lib, ref, split.unknown, "subject")
    return _waive(lib, problems)


def _waive(lib: RootLibrary, problems: list[Problem]) -> list[Problem]:
    waived = {w.name: w for w in lib.waivers}
    out = []
    for p in problems:
        w = waived.get(p.name)
        if w is None:
            out.append(p)
        else:
            note = f"{p.message}; waived: {w.reason}"
            note += f"; to be renamed {w.proposed}" if w.proposed else ""
            out.append(Problem("waived", p.kind, p.name, p.where, note, p.token, p.suggestion))
    return out


def check_name(lib: RootLibrary, ref: NameRef) -> list[Problem]:
    """Problems of one column, metric or event name: every token must be a registered root."""
    if not ref.name or ref.name != ref.name.lower() or "__" in ref.name or ref.name.strip("_") != ref.name:
        return [Problem("error", ref.kind, ref.name, ref.where, "must be lower snake_case")]
    return _unknown(lib, ref, lib.split(ref.name).unknown)


def compare_live(live: Sequence[LiveColumn]) -> list[Problem]:
    """Drift between the schema data and a live warehouse."""
    schema = load_schema()
    want = {(t.name, c) for t in schema.tables for c in t.column_names}
    have = {(c.table, c.name) for c in live}
    want_tables = {t for t, _ in want}
    have_tables = {t for t, _ in have}
    out: list[Problem] = []
    for t in sorted(have_tables - want_tables):
        out.append(Problem("error", "table", t, "live warehouse",
                           "exists in the warehouse but not in schema.yaml"))
    for t in sorted(want_tables - have_tables):
        out.append(Problem("warning", "table", t, "schema.yaml", "defined but not in the live warehouse"))
    for t, c in sorted(have - want):
        if t in want_tables:
            out.append(Problem("error", "column", f"{t}.{c}", "live warehouse",
                               "exists in the warehouse but not in schema.yaml"))
    for t, c in sorted(want - have):
        if t in have_tables:
            out.append(Problem("warning", "column", f"{t}.{c}", "schema.yaml",
                               "defined but not in the live warehouse"))
    return out


def check(lib: RootLibrary, refs: Iterable[NameRef],
          live: Sequence[LiveColumn] | None = None) -> NamingReport:
    """Check ``refs`` (and a live warehouse's columns, when given) against the library."""
    report = NamingReport(lib.version)
    refs = list(refs)
    seen: set[tuple[str, str]] = set()
    all_refs = [*refs, *(live_names(live) if live is not None else [])]
    users: dict[str, set[str]] = {}
    for ref in all_refs:
        key = (ref.kind, ref.name)
        if key in seen:
            continue
        seen.add(key)
        report.checked[ref.kind] = report.checked.get(ref.kind, 0) + 1
        report.problems += check_table(lib, ref) if ref.kind == "table" else check_name(lib, ref)
        for root in lib.split(ref.name).roots:
            if root.homonym:
                users.setdefault(root.root, set()).add(ref.name)
    if live is not None:
        report.problems += compare_live(live)
    table_names = {r.name for r in all_refs if r.kind == "table"}
    for w in lib.waivers:
        if w.name not in table_names:
            report.problems.append(Problem("warning", "waiver", w.name, lib.file,
                                           "waived name no longer exists: remove the waiver"))
    by_root = {r.root: r for r in lib.roots}
    for root_name, names in sorted(users.items()):
        r = by_root[root_name]
        report.problems.append(Problem(
            "warning", "root", root_name, lib.file,
            f"homonym ({r.zh}) used by {', '.join(sorted(names))}: a reader must know which sense is meant"))
    return report


def format_report(report: NamingReport) -> str:
    """Human-readable report: one line per finding, then a summary line."""
    counts = ", ".join(f"{n} {k} names" for k, n in sorted(report.checked.items()))
    lines = [f"naming check against word roots v{report.library_version}: {counts}"]
    order = {"error": 0, "waived": 1, "warning": 2}
    lines += [str(p) for p in sorted(report.problems, key=lambda p: (order[p.severity], p.kind, p.name))]
    n = len(report.errors)
    lines.append(f"FAILED: {n} problem{'s' if n != 1 else ''}" if n else "OK: every name is built from "
                                                                         "registered roots")
    return "\n".join(lines) + "\n"


def check_names(lib: RootLibrary | None = None, live: Sequence[LiveColumn] | None = None) -> NamingReport:
    """Check every name of the project (schema, metric registry, profiles; a live warehouse's if given)."""
    from cloud_ingest.governance.names import project_names
    from cloud_ingest.governance.roots import load_roots

    return check(lib or load_roots(), project_names(), live)

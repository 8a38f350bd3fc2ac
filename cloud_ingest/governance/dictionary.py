"""The data dictionary (数据字典): versioned code tables with code, names, unit, range and reference source.

Code tables are YAML files in ``dictionary/`` (one table per file, each with its own version and history);
``dictionary/release.yaml`` pins every table's version into a dictionary release whose version
:func:`dictionary_version` returns, for the warehouse to stamp on what it writes. Two tables are generated
from ``device_profiles/metrics.yaml`` (metric and unit codes), their YAML files adding reference sources
and standard limits, so metric definitions exist once.

:func:`check_dictionary` compares the tables with the code lists the programs use (registry room and
building types, the edge agent's quarantine reasons and quality bits, the warehouse's levels, the profiles'
event kinds…), so the dictionary cannot silently drift from the code.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cloud_ingest.governance.errors import GovernanceError, GovernanceFileError
from cloud_ingest.governance.roots import Change, parse_history
from cloud_ingest.warehouse.dictionary import DEFAULT_METRICS_FILE, builtin_dictionary

DICTIONARY_DIR = Path(__file__).resolve().parent / "dictionary"
RELEASE_FILE = "release.yaml"
METRICS_SOURCE = "device_profiles/metrics.yaml"
_ENTRY_KEYS = ("code", "zh", "en", "unit", "range", "value", "definition", "reference", "limit")


@dataclass(slots=True, frozen=True)
class CodeEntry:
    """One code: number/name, names, unit, plausible range, reference source, optional standard limit."""

    code: str
    zh: str
    en: str
    unit: str = ""
    range: tuple[float | None, float | None] | None = None
    value: int | None = None  # numeric value of the code where it has one (bit of a flag, level number)
    definition: str = ""
    reference: str = ""
    limit: str = ""  # the limit a national/industry standard sets for the quantity, as text
    attrs: tuple[tuple[str, str], ...] = ()  # further attributes of generated entries (dimension, factor…)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "zh": self.zh, "en": self.en}
        for key in ("unit", "definition", "reference", "limit"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.range is not None:
            out["range"] = list(self.range)
        if self.value is not None:
            out["value"] = self.value
        out.update(self.attrs)
        return out


@dataclass(slots=True, frozen=True)
class CodeTable:
    """One code table and its version history."""

    name: str
    zh: str
    en: str
    description: str
    reference: str
    columns: tuple[str, ...]  # warehouse columns whose values are codes of this table
    version: int
    history: tuple[Change, ...]
    entries: tuple[CodeEntry, ...]
    file: str
    generated_from: str = ""  # "metrics" | "units": entries come from device_profiles/metrics.yaml

    def codes(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.entries)

    def entry(self, code: str) -> CodeEntry | None:
        return next((e for e in self.entries if e.code == code), None)


@dataclass(slots=True, frozen=True)
class DataDictionary:
    """A dictionary release: its version, history, pinned table versions and the tables."""

    version: str
    date: str
    owner: str
    history: tuple[Change, ...]
    pinned: dict[str, int]
    sources: dict[str, str]  # source file -> version the release was cut with
    source_versions: dict[str, str]  # source file -> version found now
    tables: tuple[CodeTable, ...]

    def table(self, name: str) -> CodeTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise GovernanceError(f"no code table {name!r}; tables: {', '.join(t.name for t in self.tables)}")

    def table_for_column(self, column: str) -> CodeTable | None:
        """The code table whose codes are the values of warehouse column ``column`` (None if none)."""
        return next((t for t in self.tables if column in t.columns), None)


@dataclass(slots=True, frozen=True)
class Finding:
    """A dictionary check result: ``error`` fails ``dictionary check``, ``warning`` does not."""

    severity: Literal["error", "warning"]
    table: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.table}: {self.message}"


# --------------------------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GovernanceFileError(str(path), "", f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise GovernanceFileError(str(path), "", f"not valid YAML: {exc}") from exc


def _str(raw: dict[str, Any], key: str, file: str, where: str, required: bool = False) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise GovernanceFileError(file, f"{where}.{key}", "missing")
        return ""
    if isinstance(value, dict | list):
        raise GovernanceFileError(file, f"{where}.{key}", "must be text")
    return str(value)


def _range(value: Any, file: str, where: str) -> tuple[float | None, float | None] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise GovernanceFileError(file, f"{where}.range", "must be [low, high] (null for open)")
    try:
        return (None if value[0] is None else float(value[0]), None if value[1] is None else float(value[1]))
    except (TypeError, ValueError) as exc:
        raise GovernanceFileError(file, f"{where}.range", "bounds must be numbers or null") from exc


def _entry(raw: Any, i: int, file: str, *, overlay: bool) -> CodeEntry:
    where = f"entries[{i}]"
    if not isinstance(raw, dict):
        raise GovernanceFileError(file, where, "must be a mapping")
    unknown = set(raw) - set(_ENTRY_KEYS)
    if unknown:
        raise GovernanceFileError(file, where, f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    code = _str(raw, "code", file, where, required=True)
    where = f"entries[{i}] ({code})"
    value = raw.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise GovernanceFileError(file, f"{where}.value", "must be an integer")
    return CodeEntry(code, _str(raw, "zh", file, where, required=not overlay),
                     _str(raw, "en", file, where, required=not overlay), _str(raw, "unit", file, where),
                     _range(raw.get("range"), file, where), value, _str(raw, "definition", file, where),
                     _str(raw, "reference", file, where), _str(raw, "limit", file, where))


def _num_text(x: Any) -> str:
    return f"{float(x):g}" if isinstance(x, int | float) else str(x)


def _generated(kind: str, overlay: dict[str, CodeEntry], metrics: Any) -> tuple[CodeEntry, ...]:
    """Entries of a table generated from metrics.yaml (``metrics`` is its parsed document or None)."""
    out: list[CodeEntry] = []
    if not isinstance(metrics, dict):  # no repository checkout: the warehouse's built-in core dictionary
        core = builtin_dictionary()
        if kind == "metrics":
            out = [CodeEntry(m.code, m.name_zh, m.code, m.unit, (m.range_min, m.range_max), None,
                             f"type {m.type}, process {m.process}", "built-in core metrics")
                   for m in core.metrics if m.type != "event"]
        else:
            out = [CodeEntry(u.code, u.code, u.code,
                             attrs=(("dimension", u.base), ("factor", f"{u.factor:g}"), ("offset", f"{u.offset:g}")))
                   for u in core.units]
    elif kind == "metrics":
        for code, m in (metrics.get("metrics") or {}).items():
            m = m if isinstance(m, dict) else {}
            rng = m.get("range")
            rng_t = (rng[0], rng[1]) if isinstance(rng, list) and len(rng) == 2 else None
            out.append(CodeEntry(
                str(code), str(m.get("name_zh", "")), str(m.get("name_en", "")), str(m.get("unit", "")),
                None if rng_t is None else (None if rng_t[0] is None else float(rng_t[0]),
                                            None if rng_t[1] is None else float(rng_t[1])),
                None, f"{m.get('type', 'gauge')}; business domain {m.get('domain', '')}", METRICS_SOURCE,
                attrs=(("type", str(m.get("type", "gauge"))), ("domain", str(m.get("domain", ""))))))
    else:
        for code, u in (metrics.get("units") or {}).items():
            u = u if isinstance(u, dict) else {}
            attrs = [("dimension", str(u.get("dimension", ""))), ("factor", _num_text(u.get("factor", 1))),
                     ("offset", _num_text(u.get("offset", 0))), ("symbol", str(u.get("symbol", "")))]
            if u.get("aliases"):
                attrs.append(("aliases", ", ".join(map(str, u["aliases"]))))
            conversion = f"base = value × {_num_text(u.get('factor', 1))} + {_num_text(u.get('offset', 0))}"
            out.append(CodeEntry(str(code), str(u.get("name_zh", "")), str(code), str(u.get("symbol", "")),
                                 definition=f"dimension {u.get('dimension', '')}, {conversion}",
                                 reference=METRICS_SOURCE, attrs=tuple(attrs)))
    merged = []
    for e in out:
        o = overlay.get(e.code)
        if o is None:
            merged.append(e)
            continue
        merged.append(CodeEntry(e.code, o.zh or e.zh, o.en or e.en, o.unit or e.unit, o.range or e.range,
                                o.value if o.value is not None else e.value, o.definition or e.definition,
                                o.reference or e.reference, o.limit or e.limit, e.attrs))
    return tuple(merged)


def _table(path: Path, metrics: Any) -> tuple[CodeTable, tuple[CodeEntry, ...]]:
    file = f"dictionary/{path.name}"
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise GovernanceFileError(file, "", "must be a mapping")
    name = _str(raw, "table", file, "", required=True)
    if name != path.stem:
        raise GovernanceFileError(file, "table", f"{name!r} must equal the file name {path.stem!r}")
    gen = _str(raw, "generated_from", file, "")
    if gen not in ("", "metrics", "units"):
        raise GovernanceFileError(file, "generated_from", "must be metrics or units")
    entries_raw = raw.get("entries") or []
    if not isinstance(entries_raw, list):
        raise GovernanceFileError(file, "entries", "must be a list")
    own = tuple(_entry(e, i, file, overlay=bool(gen)) for i, e in enumerate(entries_raw))
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise GovernanceFileError(file, "version", "must be an integer")
    history = parse_history(raw.get("history"), file, "history")
    if history[-1].version != str(version):
        raise GovernanceFileError(file, "history", f"the latest entry is version {history[-1].version}, "
                                                   f"the table is version {version}")
    cols = raw.get("columns") or []
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise GovernanceFileError(file, "columns", "must be a list of warehouse column names")
    entries = _generated(gen, {e.code: e for e in own}, metrics) if gen else own
    table = CodeTable(name, _str(raw, "zh", file, "", True), _str(raw, "en", file, "", True),
                      _str(raw, "description", file, ""), _str(raw, "reference", file, ""), tuple(cols),
                      version, history, entries, file, gen)
    return table, own


def load_dictionary(directory: Path | None = None, metrics_file: Path | None = None) -> DataDictionary:
    """Load the release and every code table. Raises ``GovernanceFileError`` naming file and field."""
    directory = directory or DICTIONARY_DIR
    metrics_path = metrics_file or DEFAULT_METRICS_FILE
    metrics = _read_yaml(metrics_path) if metrics_path.exists() else None
    release_file = f"dictionary/{RELEASE_FILE}"
    rel = _read_yaml(directory / RELEASE_FILE)
    if not isinstance(rel, dict):
        raise GovernanceFileError(release_file, "", "must be a mapping")
    version = _str(rel, "version", release_file, "", required=True)
    history = parse_history(rel.get("changes"), release_file)
    if history[-1].version != version:
        raise GovernanceFileError(release_file, "changes",
                                  f"the latest entry is version {history[-1].version}, "
                                                           f"the release is version {version}")
    pinned = rel.get("tables")
    if not isinstance(pinned, dict):
        raise GovernanceFileError(release_file, "tables", "must map table name -> pinned version")
    tables = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name != RELEASE_FILE:
            tables.append(_table(path, metrics)[0])
    order = {name: i for i, name in enumerate(pinned)}
    tables.sort(key=lambda t: (order.get(t.name, len(order)), t.name))
    sources = {str(k): str(v) for k, v in (rel.get("sources") or {}).items()}
    found = {METRICS_SOURCE: str(metrics.get("version", "")) if isinstance(metrics, dict) else "missing"}
    return DataDictionary(version, _str(rel, "date", release_file, ""), _str(rel, "owner", release_file, ""),
                          history, {str(k): int(v) for k, v in pinned.items()}, sources, found, tuple(tables))


@functools.cache
def default_dictionary() -> DataDictionary:
    """The packaged dictionary (cached: it is part of the code and of the repository's metrics.yaml)."""
    return load_dictionary()


@functools.cache
def dictionary_version() -> str:
    """The dictionary release version (e.g. ``"1.0"``) the warehouse stamps on rows and runs it writes."""
    rel = _read_yaml(DICTIONARY_DIR / RELEASE_FILE)
    if not isinstance(rel, dict) or not rel.get("version"):
        raise GovernanceFileError(f"dictionary/{RELEASE_FILE}", "version", "missing")
    return str(rel["version"])


def dictionary_fingerprint(d: DataDictionary | None = None) -> str:
    """A 12-hex digest of every table's content: differs whenever any code changes, versioned or not."""
    d = d or default_dictionary()
    body = json.dumps(export_json(d), ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest()[:12]


# --------------------------------------------------------------------------------------------- checking


@dataclass(slots=True)
class _Sync:
    """Codes a program uses, for comparison with a table: ``exact`` means the sets must be equal."""

    source: str
    codes: set[str] = field(default_factory=set)
    exact: bool = True
    values: dict[str, int] | None = None


def _program_codes() -> dict[str, _Sync]:
    """The code lists the programs define, keyed by code table (imports kept local: tools, not hot path)."""
    import typing

    from cloud_ingest.governance.names import profile_names
    from cloud_ingest.warehouse import registry
    from cloud_ingest.warehouse.dictionary import ACS_EVENT_KINDS
    from cloud_ingest.warehouse.schema import LEVELS
    from cloud_ingest.warehouse.transforms import dwd
    from edge_agent.model import Quality, Reason
    from edge_agent.profiles import schema as pschema
    from edge_agent.profiles.spec import LEVELS as PROFILE_LEVELS

    flags = {q.name.lower(): int(q.value) for q in Quality if q.value and q.name}
    cloud = {"unit_unconvertible": "Q_UNIT", "device_unregistered": "Q_NO_DEVICE",
             "gateway_unregistered": "Q_NO_GATEWAY"}
    flags.update({code: int(getattr(dwd, const)) for code, const in cloud.items() if hasattr(dwd, const)})
    aggs = {"raw", "delta", "rate", *typing.get_args(pschema.Aggregate), *typing.get_args(pschema.Feature)}
    reg = "cloud_ingest/warehouse/registry.py"
    kinds = {r.name for r in profile_names() if r.kind == "event"} | {k.code for k in ACS_EVENT_KINDS}
    return {
        "subject_domain": _Sync(f"{reg} SUBJECT_DOMAINS", set(registry.SUBJECT_DOMAINS)),
        "building_type": _Sync(f"{reg} BUILDING_TYPES", set(registry.BUILDING_TYPES)),
        "room_type": _Sync(f"{reg} ROOM_TYPES", set(registry.ROOM_TYPES)),
        "device_role": _Sync(f"{reg} DEVICE_ROLES", set(registry.DEVICE_ROLES)),
        "business_process": _Sync(f"{reg} PROCESSES", set(registry.PROCESSES)),
        "quarantine_reason": _Sync("edge_agent/model.py Reason", {str(r.value) for r in Reason}),
        "quality_flag": _Sync("edge_agent/model.py Quality and warehouse dwd.Q_*", set(flags), values=flags),
        "classification_level": _Sync("cloud_ingest/warehouse/schema.py LEVELS", set(LEVELS)),
        "profile_level": _Sync("edge_agent/profiles/spec.py LEVELS", set(PROFILE_LEVELS),
                               values=dict(PROFILE_LEVELS)),
        "aggregation": _Sync("edge_agent/profiles/schema.py Aggregate/Feature", aggs, exact=False),
        "event_kind": _Sync("profiles' events[].kind and ACS_EVENT_KINDS", kinds, exact=False),
    }


def check_dictionary(d: DataDictionary | None = None, *, sync: bool = True) -> list[Finding]:
    """Versioning and consistency findings; ``sync`` also compares tables with the programs' code lists."""
    d = d or default_dictionary()
    out: list[Finding] = []
    names = {t.name for t in d.tables}
    for name in sorted(set(d.pinned) - names):
        out.append(Finding("error", name, "pinned in release.yaml but no such table file"))
    for t in d.tables:
        if t.name not in d.pinned:
            out.append(Finding("error", t.name, f"not pinned in release.yaml: cut a release pinning version "
                                                f"{t.version}"))
        elif d.pinned[t.name] != t.version:
            out.append(Finding("error", t.name, f"table is version {t.version}, release {d.version} pins "
                                                f"version {d.pinned[t.name]}: cut a new release"))
        seen: set[str] = set()
        for e in t.entries:
            if e.code in seen:
                out.append(Finding("error", t.name, f"code {e.code!r} is listed twice"))
            seen.add(e.code)
            if not e.zh:
                out.append(Finding("error", t.name, f"code {e.code!r} has no Chinese name"))
    for src, ver in d.sources.items():
        now = d.source_versions.get(src)
        if now is not None and now != ver:
            out.append(Finding("warning", "release",
                               f"{src} is version {now}, release {d.version} was cut with version {ver}: "
                               "review the generated tables and cut a release"))
    if "metric_code" in names:
        overlay = {e.code for e in _overlay_codes(d.table("metric_code"))}
        stale = overlay - set(d.table("metric_code").codes())
        for code in sorted(stale):
            out.append(Finding("error", "metric_code", f"reference given for {code!r}, which "
                                                       f"{METRICS_SOURCE} does not define"))
        types = {dict(e.attrs).get("type", "") for e in d.table("metric_code").entries}
        if "metric_type" in names:
            for ty in sorted(types - set(d.table("metric_type").codes()) - {""}):
                out.append(Finding("error", "metric_type", f"metric type {ty!r} used in {METRICS_SOURCE} "
                                                           "is not a code"))
    if sync:
        out += _check_sync(d)
    return out


def _overlay_codes(t: CodeTable) -> Iterable[CodeEntry]:
    raw = _read_yaml(DICTIONARY_DIR / Path(t.file).name)
    for i, e in enumerate(raw.get("entries") or []):
        yield _entry(e, i, t.file, overlay=True)


def _check_sync(d: DataDictionary) -> list[Finding]:
    out: list[Finding] = []
    for name, want in _program_codes().items():
        try:
            t = d.table(name)
        except GovernanceError:
            out.append(Finding("error", name, f"no code table for the codes of {want.source}"))
            continue
        have = set(t.codes())
        for code in sorted(want.codes - have):
            out.append(Finding("error", name, f"code {code!r} used by {want.source} is missing"))
        if want.exact:
            for code in sorted(have - want.codes):
                out.append(Finding("error", name, f"code {code!r} is not used by {want.source}"))
        for code, value in (want.values or {}).items():
            e = t.entry(code)
            if e is not None and e.value != value:
                out.append(Finding("error", name, f"code {code!r} has value {e.value}, {want.source} says "
                                                  f"{value}"))
    return out


# --------------------------------------------------------------------------------------------- export


def export_json(d: DataDictionary) -> dict[str, Any]:
    """The whole dictionary as a JSON-ready document."""
    def hist(h: tuple[Change, ...]) -> list[dict[str, Any]]:
        return [{"version": c.version, "date": c.date, "changes": list(c.changes)} for c in h]

    return {
        "dictionary_version": d.version, "date": d.date, "owner": d.owner, "history": hist(d.history),
        "sources": {k: {"pinned": v, "found": d.source_versions.get(k, "")} for k, v in d.sources.items()},
        "tables": [{"table": t.name, "zh": t.zh, "en": t.en, "description": t.description,
                    "reference": t.reference, "columns": list(t.columns), "version": t.version,
                    "generated_from": t.generated_from, "history": hist(t.history),
                    "entries": [e.as_dict() for e in t.entries]} for t in d.tables],
    }


def _cell(x: Any) -> str:
    text = "" if x is None else str(x)
    return text.replace("|", "\\|").replace("\n", " ")


def _range_text(r: tuple[float | None, float | None] | None) -> str:
    if r is None:
        return ""
    return f"[{'' if r[0] is None else f'{r[0]:g}'}, {'' if r[1] is None else f'{r[1]:g}'}]"


def table_markdown(t: CodeTable) -> str:
    """One code table as a Markdown section."""
    lines = [f"## {t.name} — {t.zh} ({t.en}), version {t.version}", ""]
    if t.description:
        lines += [t.description, ""]
    if t.reference:
        lines += [f"Reference: {t.reference}", ""]
    if t.columns:
        lines += [f"Values of warehouse columns: {', '.join(f'`{c}`' for c in t.columns)}", ""]
    lines += ["| code | value | 中文 | English | unit | range | definition | reference | standard limit |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in t.entries:
        lines.append(f"| `{_cell(e.code)}` | {_cell(e.value)} | {_cell(e.zh)} | {_cell(e.en)} | "
                     f"{_cell(e.unit)} | {_range_text(e.range)} | {_cell(e.definition)} | "
                     f"{_cell(e.reference)} | {_cell(e.limit)} |")
    lines += ["", "History:", ""]
    lines += [f"- {c.version} ({c.date}): {'; '.join(c.changes)}" for c in reversed(t.history)]
    return "\n".join(lines) + "\n"


def export_markdown(d: DataDictionary) -> str:
    """The whole dictionary as one Markdown document."""
    head = [f"# Data dictionary (数据字典) {d.version}", "",
            f"Release {d.version} of {d.date}, owner {d.owner}. Generated by `campus-cloud dictionary export "
            "--format md`.", "", "| table | 中文 | version | codes |", "| --- | --- | --- | --- |"]
    head += [f"| [{t.name}](#{t.name}) | {t.zh} | {t.version} | {len(t.entries)} |" for t in d.tables]
    head += ["", "Release history:", ""]
    head += [f"- {c.version} ({c.date}): {'; '.join(c.changes)}" for c in reversed(d.history)]
    return "\n".join(head) + "\n\n" + "\n".join(table_markdown(t) for t in d.tables)


def range_text(r: tuple[float | None, float | None] | None) -> str:
    """``[lo, hi]`` with open bounds left empty; "" for no range."""
    return _range_text(r)

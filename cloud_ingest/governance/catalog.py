"""The data catalog ("一数一标准"): every warehouse table and column with its standard, from the schema data.

For each table: name, Chinese name, tier and data domain, subject domain, definition (口径), source (from
the lineage graph), update frequency, owner, classification level, keys; for each column: name, Chinese
name, logical and physical types, definition, unit, value range, classification level, and the table's
source, update frequency, owner, tier and domain, so a column's record stands on its own.

Sources, all generated, none copied: ``cloud_ingest.warehouse.schema.load_schema()`` (the values the DDL is
rendered from), the lineage graph, the data dictionary (value ranges of coded columns), the word roots
(Chinese names of tiers and domains). What the schema data does not say is listed under ``gaps`` instead
of being invented: a column's value range where neither the schema nor a code table gives one, a table's
own owner (``Table.owner``: the table's ``owner:`` or its domain's under ``owners:`` in schema.yaml; a table
with neither falls back to the schema owner and is listed).

Exports: :func:`export_json` (validated by :data:`CATALOG_JSON_SCHEMA`), :func:`export_markdown`, and
``catalog_html.render_html`` (one self-contained page with a search box).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cloud_ingest.governance.classification import policy, table_level
from cloud_ingest.governance.dictionary import DataDictionary, default_dictionary, range_text
from cloud_ingest.governance.lineage import LineageGraph, build_lineage, tables_of
from cloud_ingest.governance.roots import RootLibrary, load_roots
from cloud_ingest.warehouse import ddl
from cloud_ingest.warehouse.schema import Column, Schema, Table, load_schema

CATALOG_FORMAT = 1
MAX_CODES_SHOWN = 12
_TIME_UNIT = "ms since epoch (UTC)"


@dataclass(slots=True, frozen=True)
class ColumnEntry:
    """The standard of one column of one table."""

    name: str
    zh: str
    type: str
    type_duckdb: str
    type_postgres: str
    definition: str
    unit: str
    value_range: str
    range_source: str  # schema | dictionary:<table> | type | "" (unknown: a gap)
    classification_level: str
    level_zh: str
    code_table: str
    table: str
    tier: str
    domain: str
    source: str
    update_frequency: str
    owner: str
    is_key: bool


@dataclass(slots=True, frozen=True)
class TableEntry:
    """The standard of one table."""

    name: str
    zh: str
    tier: str
    tier_zh: str
    domain: str
    domain_zh: str
    subject_domain: str
    subject_domain_zh: str
    kind: str
    definition: str
    source: str
    upstream: list[str]
    downstream: list[str]
    produced_by: list[str]
    update_frequency: str
    owner: str
    owner_inherited: bool
    classification_level: str
    primary_key: list[str]
    unique_key: list[str]
    columns: list[ColumnEntry] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class Gap:
    """Something the catalog needs and the schema data does not give."""

    table: str
    column: str
    field: str
    note: str


@dataclass(slots=True, frozen=True)
class Catalog:
    """The whole catalog plus the versions it was built from."""

    schema_version: int
    dictionary_version: str
    word_roots_version: str
    owner: str
    tables: list[TableEntry]
    gaps: list[Gap]

    @property
    def column_count(self) -> int:
        return sum(len(t.columns) for t in self.tables)


def _physical_types(table: Table) -> dict[str, dict[str, str]]:
    """Column -> dialect -> SQL type, read back from the DDL the warehouse renders (one source of types)."""
    out: dict[str, dict[str, str]] = {}
    for dialect in ("duckdb", "postgres"):
        for line in ddl.create_table(table, dialect).splitlines()[1:]:
            parts = line.strip().rstrip(",").split(None, 1)
            if len(parts) == 2 and parts[0] in table.column_names:
                out.setdefault(parts[0], {})[dialect] = parts[1].replace(" NOT NULL", "")
    return out


def _codes_text(d: DataDictionary, column: str) -> tuple[str, str]:
    t = d.table_for_column(column)
    if t is None:
        return "", ""
    codes = list(t.codes())
    shown = ", ".join(codes[:MAX_CODES_SHOWN]) + (f", … ({len(codes)} codes)" if len(codes) > MAX_CODES_SHOWN else "")
    return f"codes of {t.name} ({t.zh}) v{t.version}: {shown}", t.name


_PER_METRIC = ("value", "value_avg", "value_min", "value_max")


def _declared(col: Column) -> str:
    """A range or format the schema data declares for the column (fields the schema may add later)."""
    for attr in ("range", "value_range", "format"):
        declared = getattr(col, attr, None)
        if isinstance(declared, list | tuple) and len(declared) == 2:
            return range_text((declared[0], declared[1]))
        if declared:
            return str(declared)
    return ""


def _value_range(col: Column, table: Table, d: DataDictionary) -> tuple[str, str, str]:
    """(range text, where it came from, code table) for a column; ("", "", "") when nothing says."""
    declared = _declared(col)
    if declared:
        return declared, "schema", ""
    text, code_table = _codes_text(d, col.name)
    if text:
        return text, f"dictionary:{code_table}", code_table
    if col.name in _PER_METRIC and "metric_code" in table.column_names:
        return ("per metric: the metric's range in the data dictionary (metric_code table); outside it the "
                "row carries quality bit 1"), "dictionary:metric_code", "metric_code"
    if col.type == "bool":
        return "true / false", "type", ""
    if col.type == "date":
        return "calendar date (campus local day)", "type", ""
    if "ratio 0-1" in col.unit:
        return "[0, 1]", "unit", ""
    if col.unit == _TIME_UNIT:
        return "≥ 0 (epoch milliseconds, UTC)", "unit", ""
    if col.unit in ("count", "h") and col.type.startswith("int"):
        return "≥ 0 (integer count)", "unit", ""
    return "", "", ""


def _source_text(g: LineageGraph, name: str) -> tuple[str, list[str]]:
    parents = g.parents(name)
    vias = list(dict.fromkeys(e.via for e in parents))
    parts = []
    for via in vias:
        ins = [e.source for e in parents if e.via == via]
        ext = [g.nodes[i].definition for i in ins if i.startswith("source:")]
        tabs = tables_of(g, ins)
        if ext:
            parts.append("; ".join(ext))
        if tabs:
            parts.append(f"transform {via} from {', '.join(tabs)}")
    return ("; ".join(parts) or "not derived from another table"), vias


def build_catalog(schema: Schema | None = None, *, dictionary: DataDictionary | None = None,
                  roots: RootLibrary | None = None, graph: LineageGraph | None = None) -> Catalog:
    """Build the catalog from the schema data, lineage, dictionary and word roots."""
    schema = schema or load_schema()
    d = dictionary or default_dictionary()
    lib = roots or load_roots()
    g = graph or build_lineage(schema=schema)
    domains = {e.code: e.zh for e in d.table("subject_domain").entries}
    tables: list[TableEntry] = []
    gaps: list[Gap] = []
    missing_range: dict[str, list[str]] = {}
    inherited: list[str] = []
    for t in schema.tables:
        in_graph = t.name in g.nodes
        source, vias = _source_text(g, t.name) if in_graph else (
            "written by the transform runner and the registry load (job bookkeeping)", [])
        own_owner = getattr(t, "owner", "") or ""
        owner = own_owner or schema.owner
        if not own_owner:
            inherited.append(t.name)
        tier_root, domain_root = lib.lookup(t.tier), lib.lookup(t.domain)
        if t.subject_domain not in domains:
            gaps.append(Gap(t.name, "", "subject_domain", f"{t.subject_domain!r} is not a subject_domain code"))
        phys = _physical_types(t)
        keys = set(t.primary_key) | set(t.unique_key)
        cols = []
        for c in t.columns:
            rng, rsrc, code_table = _value_range(c, t, d)
            if not rng:
                missing_range.setdefault(c.name, []).append(t.name)
            cols.append(ColumnEntry(
                c.name, c.zh, c.type, phys.get(c.name, {}).get("duckdb", ""), phys.get(c.name, {}).get("postgres", ""),
                c.definition, c.unit, rng, rsrc, c.level, policy(c.level).zh, code_table, t.name, t.tier, t.domain,
                source, t.update, owner, c.name in keys))
        tables.append(TableEntry(
            t.name, t.zh, t.tier, tier_root.zh if tier_root else "", t.domain, domain_root.zh if domain_root else "",
            t.subject_domain, domains.get(t.subject_domain, ""), t.kind, t.definition, source,
            tables_of(g, g.upstream(t.name)) if in_graph else [],
            tables_of(g, g.downstream(t.name)) if in_graph else [], vias, t.update, owner, not own_owner,
            table_level(t), list(t.primary_key), list(t.unique_key), cols))
    if inherited:
        gaps.append(Gap("*", "", "owner", f"{len(inherited)} of {len(schema.tables)} tables have no owner of "
                                          f"their own in schema.yaml (using the schema owner {schema.owner!r}); "
                                          "clause 十 wants the business owner per domain"))
    for col_name, used_in in missing_range.items():
        c = schema.columns[col_name]
        what = "pattern or format" if c.type == "text" else "[min, max] range"
        gaps.append(Gap("", col_name, "value_range", f"schema.yaml columns.{col_name} ({c.type}) declares no "
                                                     f"{what} and no code table covers it; used in "
                                                     f"{', '.join(used_in)}"))
    return Catalog(schema.version, d.version, lib.version, schema.owner, tables, gaps)


# --------------------------------------------------------------------------------------------- exports


def export_json(cat: Catalog) -> dict[str, Any]:
    """The catalog as a JSON-ready document (see :data:`CATALOG_JSON_SCHEMA`)."""
    return {
        "catalog_format": CATALOG_FORMAT, "schema_version": cat.schema_version,
        "dictionary_version": cat.dictionary_version, "word_roots_version": cat.word_roots_version,
        "owner": cat.owner, "table_count": len(cat.tables), "column_count": cat.column_count,
        "tables": [asdict(t) for t in cat.tables], "gaps": [asdict(g) for g in cat.gaps],
    }


def _cell(x: Any) -> str:
    return str(x if x is not None else "").replace("|", "\\|").replace("\n", " ")


def export_markdown(cat: Catalog) -> str:
    """The catalog as one Markdown document: an index, then a section per table."""
    out = ["# Data catalog (数据资源目录, 一数一标准)", "",
           f"Schema v{cat.schema_version}, data dictionary {cat.dictionary_version}, word roots "
           f"v{cat.word_roots_version}; {len(cat.tables)} tables, {cat.column_count} columns. Generated by "
           "`campus-cloud catalog export --format md`.", "",
           "| table | 中文名 | tier | domain | level | update |", "| --- | --- | --- | --- | --- | --- |"]
    out += [f"| [{t.name}](#{t.name}) | {t.zh} | {t.tier} {t.tier_zh} | {t.domain} {t.domain_zh} | "
            f"{t.classification_level} | {_cell(t.update_frequency)} |" for t in cat.tables]
    for t in cat.tables:
        out += ["", f"## {t.name}", "", f"**{t.zh}** — {_cell(t.definition)}", "",
                f"- tier: {t.tier} ({t.tier_zh}); data domain: {t.domain} ({t.domain_zh}); subject domain: "
                f"{t.subject_domain} ({t.subject_domain_zh})",
                f"- source: {_cell(t.source)}",
                f"- upstream: {', '.join(t.upstream) or '—'}; downstream: {', '.join(t.downstream) or '—'}",
                f"- update frequency: {t.update_frequency}; owner: {t.owner}"
                + (" (schema owner)" if t.owner_inherited else ""),
                f"- classification: {t.classification_level} (highest of its columns); keys: "
                f"{', '.join(t.primary_key or t.unique_key) or '—'}", "",
                "| column | 中文名 | type | definition (口径) | unit | value range | level |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        out += [f"| `{c.name}`{' 🔑' if c.is_key else ''} | {c.zh} | {c.type} | {_cell(c.definition)} | "
                f"{_cell(c.unit)} | {_cell(c.value_range)} | {c.classification_level} |" for c in t.columns]
    if cat.gaps:
        out += ["", "## Gaps (what the schema data does not say yet)", ""]
        out += [f"- {g.table or 'column'}{' ' + g.column if g.column else ''}: {g.field}: {g.note}"
                for g in cat.gaps]
    return "\n".join(out) + "\n"


_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_LEVEL = {"type": "string", "enum": ["L1", "L2", "L3", "L4"]}
_COLUMN_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["name", "zh", "type", "definition", "unit", "value_range", "classification_level", "table",
                 "tier", "domain", "source", "update_frequency", "owner"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9_]+$"}, "zh": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": ["text", "int16", "int32", "int64", "float64", "bool", "date"]},
        "type_duckdb": _STR, "type_postgres": _STR, "definition": {"type": "string", "minLength": 1},
        "unit": _STR, "value_range": _STR, "range_source": _STR, "classification_level": _LEVEL,
        "level_zh": _STR, "code_table": _STR, "table": _STR, "tier": _STR, "domain": _STR, "source": _STR,
        "update_frequency": _STR, "owner": _STR, "is_key": {"type": "boolean"},
    },
}
CATALOG_JSON_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["catalog_format", "schema_version", "tables", "gaps", "column_count"],
    "properties": {
        "catalog_format": {"type": "integer", "enum": [CATALOG_FORMAT]}, "schema_version": {"type": "integer"},
        "dictionary_version": _STR, "word_roots_version": _STR, "owner": _STR,
        "table_count": {"type": "integer"}, "column_count": {"type": "integer"},
        "tables": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "zh", "tier", "domain", "subject_domain", "definition", "source",
                         "update_frequency", "owner", "classification_level", "columns"],
            "properties": {
                "name": {"type": "string", "pattern": "^(ods|dim|dwd|dws|ads|meta)_[a-z0-9_]+$"},
                "zh": {"type": "string", "minLength": 1}, "tier": _STR, "tier_zh": _STR, "domain": _STR,
                "domain_zh": _STR, "subject_domain": _STR, "subject_domain_zh": _STR,
                "kind": {"type": "string", "enum": ["fact", "dim", "meta"]}, "definition": _STR, "source": _STR,
                "upstream": _STRS, "downstream": _STRS, "produced_by": _STRS, "update_frequency": _STR,
                "owner": _STR, "owner_inherited": {"type": "boolean"}, "classification_level": _LEVEL,
                "primary_key": _STRS, "unique_key": _STRS,
                "columns": {"type": "array", "minItems": 1, "items": _COLUMN_SCHEMA},
            }}},
        "gaps": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["table", "column", "field", "note"],
            "properties": {"table": _STR, "column": _STR, "field": _STR, "note": _STR}}},
    },
}

"""The catalog covers every column of a real warehouse (compared with its live information_schema), its JSON
validates against the catalog schema, and the HTML page parses and carries the search box."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cloud_ingest.cli import main
from cloud_ingest.governance.catalog import CATALOG_JSON_SCHEMA, build_catalog, export_json, export_markdown
from cloud_ingest.governance.catalog_html import render_html
from cloud_ingest.governance.jsonschema_lite import validate
from cloud_ingest.governance.names import live_columns
from cloud_ingest.warehouse import Warehouse


def test_catalog_covers_every_live_column(duck: Warehouse) -> None:
    live = {(c.table, c.name) for c in live_columns(duck)}
    doc = export_json(build_catalog())
    catalogued = {(t["name"], c["name"]) for t in doc["tables"] for c in t["columns"]}
    assert live, "the live warehouse has no columns"
    assert live - catalogued == set()  # 100 % of the warehouse's columns are catalogued
    assert catalogued - live == set()  # and nothing the warehouse does not have
    assert doc["column_count"] == len(live)


def test_every_column_has_its_standard(duck: Warehouse) -> None:
    types = {(c.table, c.name): c.data_type for c in live_columns(duck)}
    for t in build_catalog().tables:
        assert all((t.zh, t.definition, t.update_frequency, t.owner, t.source)), t.name
        for c in t.columns:
            assert c.zh, f"{t.name}.{c.name} has no Chinese name"
            assert c.definition, f"{t.name}.{c.name} has no definition"
            assert c.classification_level in ("L1", "L2", "L3", "L4")
            assert (c.tier, c.domain, c.update_frequency, c.owner) == (t.tier, t.domain, t.update_frequency,
                                                                       t.owner)
            assert c.type_duckdb == types[(t.name, c.name)], (t.name, c.name)


def test_declared_owner_and_format_reach_the_catalog() -> None:
    cat = {t.name: t for t in build_catalog().tables}
    assert cat["dwd_acs_event_di"].owner.startswith("保卫处")  # the acs domain's owner
    assert cat["meta_etl_run_log"].owner != cat["dwd_acs_event_di"].owner
    assert not cat["dwd_acs_event_di"].owner_inherited
    log = {c.name: c for c in cat["meta_pub_audit_log"].columns}
    assert "public_viewer" in log["role_code"].value_range
    assert log["role_code"].range_source == "schema"


def test_catalog_values_come_from_schema_dictionary_and_lineage() -> None:
    cat = {t.name: t for t in build_catalog().tables}
    room = {c.name: c for c in cat["dim_pub_room"].columns}
    assert room["room_type"].code_table == "room_type"
    assert "classroom" in room["room_type"].value_range
    acs = {c.name: c for c in cat["dwd_acs_event_di"].columns}
    assert acs["subject_pseudo"].classification_level == "L3"
    assert cat["dwd_acs_event_di"].classification_level == "L3"
    ads = cat["ads_env_co2_compliance_1d"]
    assert "ods_iot_reading_di" in ads.upstream
    assert ads.produced_by == ["ads_co2"]
    assert ads.subject_domain_zh == "服务域"
    assert ads.tier_zh == "数据应用层"
    assert "edge gateways" in cat["ods_iot_batch_di"].source
    rate = {c.name: c for c in ads.columns}["compliance_rate"]
    assert rate.value_range == "[0, 1]"
    assert rate.unit == "ratio 0-1"


def test_json_validates_against_the_catalog_schema(tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    assert main(["catalog", "export", "--format", "json", "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert validate(doc, CATALOG_JSON_SCHEMA) == []
    doc["tables"][0]["columns"][0]["classification_level"] = "L9"
    del doc["tables"][1]["zh"]
    errors = validate(doc, CATALOG_JSON_SCHEMA)
    assert "$.tables[0].columns[0].classification_level: 'L9' is not one of ['L1', 'L2', 'L3', 'L4']" in errors
    assert "$.tables[1]: missing required 'zh'" in errors


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.inputs: list[dict[str, str | None]] = []
        self.sections: list[str] = []
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag not in ("meta", "input", "br", "link"):
            self.stack.append(tag)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "input":
            self.inputs.append(a)
        if tag == "section" and a.get("data-table"):
            self.sections.append(str(a["data-table"]))
        if tag == "script":
            self.scripts += 1
            if a.get("src"):
                self.external.append(str(a["src"]))
        if tag == "link" and a.get("href"):
            self.external.append(str(a["href"]))

    def handle_endtag(self, tag: str) -> None:
        opened = self.stack.pop() if self.stack else ""
        assert opened == tag, f"</{tag}> closes <{opened}>"


def test_html_is_one_self_contained_page_with_a_search_box(tmp_path: Path) -> None:
    out = tmp_path / "catalog.html"
    assert main(["catalog", "export", "--format", "html", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.stack == []  # every element closed in order
    assert any(i.get("id") == "search" and i.get("type") == "search" for i in page.inputs)
    assert page.scripts == 1
    assert page.external == []  # no external assets
    cat = build_catalog()
    assert page.sections == [t.name for t in cat.tables]
    assert "addEventListener(\"input\"" in text
    for t in cat.tables:
        for c in t.columns:
            assert f"<code>{c.name}</code>" in text


def test_html_escapes_values() -> None:
    cat = build_catalog()
    t = cat.tables[0]
    evil = type(t)(**{**{f: getattr(t, f) for f in t.__dataclass_fields__}, "zh": "<script>x</script>"})
    text = render_html(type(cat)(**{**{f: getattr(cat, f) for f in cat.__dataclass_fields__}, "tables": [evil]}))
    assert "<script>x</script>" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text


def test_markdown_has_a_section_per_table(capsys: pytest.CaptureFixture[str]) -> None:
    md = export_markdown(build_catalog())
    for t in build_catalog().tables:
        assert f"## {t.name}" in md
    assert main(["catalog", "gaps"]) == 0
    assert "value_range" in capsys.readouterr().out

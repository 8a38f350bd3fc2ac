"""Data dictionary: code tables load, match the programs' code lists, are versioned through a release, and
export as JSON and Markdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cloud_ingest.cli import main
from cloud_ingest.governance.dictionary import (
    DICTIONARY_DIR,
    check_dictionary,
    default_dictionary,
    dictionary_fingerprint,
    dictionary_version,
    export_json,
    export_markdown,
    load_dictionary,
)
from cloud_ingest.governance.errors import GovernanceFileError
from cloud_ingest.warehouse.registry import ROOM_TYPES


def test_packaged_dictionary_is_consistent_with_the_programs() -> None:
    findings = check_dictionary()
    assert [f for f in findings if f.severity == "error"] == []


def test_release_version_is_what_the_warehouse_stamps() -> None:
    d = default_dictionary()
    assert dictionary_version() == d.version == "1.0"
    assert len(dictionary_fingerprint()) == 12


def test_metric_codes_are_generated_from_metrics_yaml_with_standard_references() -> None:
    d = default_dictionary()
    co2 = d.table("metric_code").entry("co2")
    assert co2 is not None
    assert (co2.zh, co2.unit, co2.range) == ("二氧化碳浓度", "ppm", (0.0, 40000.0))
    assert "GB/T 18883-2022" in co2.reference
    assert "1000 ppm" in co2.limit
    pm = d.table("metric_code").entry("pm2_5")
    assert pm is not None
    assert "50 µg/m³" in pm.limit
    kwh = d.table("unit_code").entry("kWh")
    assert kwh is not None
    assert dict(kwh.attrs)["dimension"] == "energy"
    assert d.table_for_column("room_type") is d.table("room_type")
    assert d.table("room_type").codes() == ROOM_TYPES


def test_domains_have_the_clause_two_chinese_names() -> None:
    t = default_dictionary().table("subject_domain")
    assert [(e.code, e.zh) for e in t.entries] == [
        ("public", "公共域"), ("teaching", "教学域"), ("research", "研究域"), ("service", "服务域"),
        ("management", "管理域")]


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "dictionary"
    shutil.copytree(DICTIONARY_DIR, target)
    return target


def _edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_changed_table_needs_a_new_release(tmp_path: Path) -> None:
    target = _copy(tmp_path)

    def bump(raw: dict) -> None:  # type: ignore[type-arg]
        raw["version"] = 2
        raw["history"].append({"version": 2, "date": "2026-12-01", "changes": ["add studio"]})
        raw["entries"].append({"code": "studio", "zh": "琴房", "en": "Music studio"})

    _edit(target / "room_type.yaml", bump)
    d = load_dictionary(target)
    msgs = [str(f) for f in check_dictionary(d)]
    assert "ERROR room_type: table is version 2, release 1.0 pins version 1: cut a new release" in msgs
    assert any("code 'studio' is not used by cloud_ingest/warehouse/registry.py" in m for m in msgs)


def test_a_table_history_must_end_at_its_version(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    _edit(target / "room_type.yaml", lambda raw: raw.update(version=2))
    with pytest.raises(GovernanceFileError, match=r"dictionary/room_type.yaml: history: the latest entry is "
                                                  r"version 1"):
        load_dictionary(target)


def test_an_entry_without_chinese_name_is_refused_with_file_and_field(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    _edit(target / "building_type.yaml", lambda raw: raw["entries"][0].pop("zh"))
    with pytest.raises(GovernanceFileError, match=r"building_type.yaml: entries\[0\] \(teaching\).zh"):
        load_dictionary(target)


def test_a_reference_for_an_unknown_metric_is_an_error(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text("version: 1\nunits: {ppm: {dimension: mixing_ratio}}\n"
                       "metrics: {co2: {unit: ppm, name_zh: 二氧化碳浓度, type: gauge}}\n", encoding="utf-8")
    d = load_dictionary(metrics_file=metrics)
    msgs = [str(f) for f in check_dictionary(d, sync=False)]
    assert any("reference given for 'pm2_5'" in m for m in msgs)


def test_exports_cover_every_table(tmp_path: Path) -> None:
    d = default_dictionary()
    doc = json.loads(json.dumps(export_json(d), ensure_ascii=False))
    assert {t["table"] for t in doc["tables"]} == {t.name for t in d.tables}
    assert doc["dictionary_version"] == "1.0"
    md = export_markdown(d)
    for t in d.tables:
        assert f"## {t.name} — {t.zh}" in md
    out = tmp_path / "dict.json"
    assert main(["dictionary", "export", "--format", "json", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["tables"]


def test_cli_show_and_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dictionary", "show"]) == 0
    assert "quality_flag" in capsys.readouterr().out
    assert main(["dictionary", "show", "metric_code"]) == 0
    out = capsys.readouterr().out
    assert "co2" in out
    assert "GB/T 18883-2022" in out
    assert main(["dictionary", "show", "nope"]) == 2
    assert main(["dictionary", "check"]) == 0

"""Word-root library and naming check: the project's own names pass; planted bad names are reported with
where they came from and the nearest registered root."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from cloud_ingest.cli import main
from cloud_ingest.governance.errors import GovernanceFileError
from cloud_ingest.governance.names import NameRef, live_columns, project_names, schema_names
from cloud_ingest.governance.naming import check, check_table
from cloud_ingest.governance.roots import ROOTS_FILE, load_roots, parse_library, render_markdown
from cloud_ingest.warehouse import open_warehouse
from cloud_ingest.warehouse.schema import load_schema

ROOT = Path(__file__).resolve().parents[2]
LIB_PATH = ROOT / "cloud_ingest" / "governance" / ROOTS_FILE


def test_every_project_name_is_built_from_registered_roots() -> None:
    report = check(load_roots(), project_names())
    assert report.ok, "\n".join(map(str, report.errors))
    schema = load_schema()
    assert report.checked["table"] == len(schema.tables)
    assert report.checked["column"] == len(schema.columns)
    assert report.checked["metric"] >= 30


def test_every_table_name_has_tier_domain_subject_and_suffix_or_a_waiver() -> None:
    lib = load_roots()
    for t in load_schema().tables:
        problems = check_table(lib, NameRef("table", t.name, "schema.yaml"))
        assert all(p.severity == "waived" for p in problems), problems


def test_planted_bad_names_are_reported_with_origin_and_suggestion() -> None:
    lib = load_roots()
    refs = [NameRef("column", "valu_avg", "schema.yaml: columns.valu_avg (in dws_env_room_1h)"),
            NameRef("metric", "temprature_air", "metrics.yaml: metrics.temprature_air"),
            NameRef("table", "dws_envx_room_1h", "schema.yaml: tables.dws_envx_room_1h"),
            NameRef("table", "dws_env_room_hourly", "schema.yaml: tables.dws_env_room_hourly"),
            NameRef("table", "dwx_env_room_1h", "schema.yaml: tables.dwx_env_room_1h"),
            NameRef("table", "dws_env_roomz_1h", "schema.yaml: tables.dws_env_roomz_1h")]
    report = check(lib, refs)
    assert not report.ok
    by = {(p.name, p.token): p for p in report.errors}
    p = by[("valu_avg", "valu")]
    assert p.suggestion == "value"
    assert "in dws_env_room_1h" in str(p)
    assert "'valu'" in str(p)
    assert by[("temprature_air", "temprature")].suggestion == "temperature"
    assert by[("dws_envx_room_1h", "envx")].suggestion == "env"
    assert "not a registered suffix" in by[("dws_env_room_hourly", "hourly")].message
    assert "tier 'dwx'" in by[("dwx_env_room_1h", "dwx")].message
    assert by[("dws_env_roomz_1h", "roomz")].suggestion == "room"


def test_three_token_names_need_a_suffix_except_in_suffix_optional_tiers() -> None:
    lib = load_roots()
    assert check_table(lib, NameRef("table", "dim_pub_room", "x")) == []
    [p] = check_table(lib, NameRef("table", "dws_env_room", "x"))
    assert "no suffix" in p.message


def _write_lib(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(LIB_PATH.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "roots.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_cli_check_fails_when_a_used_root_is_unregistered(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    lib = _write_lib(tmp_path, lambda raw: raw.update(roots=[r for r in raw["roots"] if r["root"] != "seat"]))
    assert main(["naming", "check", "--roots", str(lib)]) == 1
    out = capsys.readouterr().out
    assert "ERROR column seat_cnt: unknown token 'seat'" in out
    assert "ads_occ_room_util_1d" in out  # the table the column came from
    assert "FAILED" in out


def test_cli_check_reports_a_bad_metric_in_the_registry(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text("version: 1\nunits: {}\nmetrics:\n  temprature_air: {unit: Cel}\n", encoding="utf-8")
    assert main(["naming", "check", "--metrics", str(metrics), "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert '"token": "temprature"' in out
    assert '"suggestion": "temperature"' in out
    assert "metrics.yaml: metrics.temprature_air" in out


def test_cli_check_passes_on_the_project(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["naming", "check"]) == 0
    assert "OK" in capsys.readouterr().out


def test_library_refuses_a_spelling_registered_twice(tmp_path: Path) -> None:
    raw = yaml.safe_load(LIB_PATH.read_text(encoding="utf-8"))
    raw["roots"].append({"root": "countdown", "abbreviation": "cnt", "zh": "倒计时", "en": "Countdown",
                         "definition": "x", "category": "measure"})
    with pytest.raises(GovernanceFileError, match=r"roots \(countdown\): 'cnt' is already registered"):
        parse_library(raw, "roots.yaml")
    raw["roots"][-1] = {"root": "x", "zh": "x", "en": "x", "definition": "x", "category": "thing"}
    with pytest.raises(GovernanceFileError, match=r"roots.yaml: roots\[\d+\] \(x\).category: 'thing'"):
        parse_library(raw, "roots.yaml")


def test_library_history_must_end_at_its_version(tmp_path: Path) -> None:
    lib = _write_lib(tmp_path, lambda raw: raw.update(version=99))
    with pytest.raises(GovernanceFileError, match="the library is version 99"):
        load_roots(lib)


def test_live_warehouse_drift_and_names_are_checked(duck_url: str) -> None:
    wh = open_warehouse(duck_url)
    try:
        live = live_columns(wh)
        assert {c.table for c in live} == {t.name for t in load_schema().tables}
        assert check(load_roots(), schema_names(), live).ok
    finally:
        wh.close()
    con = duckdb.connect(duck_url.removeprefix("duckdb://"))
    con.execute("CREATE TABLE dws_env_romo_1h (valu DOUBLE)")
    con.execute("ALTER TABLE dim_pub_room ADD COLUMN seat_cnt_x INTEGER")
    con.close()
    wh = open_warehouse(duck_url)
    try:
        report = check(load_roots(), schema_names(), live_columns(wh))
    finally:
        wh.close()
    msgs = [str(p) for p in report.errors]
    assert any("dws_env_romo_1h: exists in the warehouse but not in schema.yaml" in m for m in msgs)
    assert any("dim_pub_room.seat_cnt_x: exists in the warehouse" in m for m in msgs)
    assert any("unknown subject token 'romo'" in m and "'room'" in m for m in msgs)
    assert any("column valu: unknown token 'valu'" in m and "live warehouse: dws_env_romo_1h.valu" in m
               for m in msgs)


def test_word_roots_doc_is_generated_from_the_library() -> None:
    doc = (ROOT / "docs" / "word-roots.md").read_text(encoding="utf-8")
    hint = "regenerate: campus-cloud naming docs --out docs/word-roots.md"
    assert doc == render_markdown(load_roots()), hint


def test_explain_splits_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["naming", "explain", "dws_env_room_1h", "pm2_5"]) == 0
    out = capsys.readouterr().out
    assert "room=房间" in out
    assert "pm2_5=PM2.5" in out

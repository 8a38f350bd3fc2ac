"""Table lineage from the transform DAG: ADS indicators reach the ODS tables and the external sources; text,
DOT and pictures (built-in SVG always, Graphviz when installed)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cloud_ingest.cli import main
from cloud_ingest.governance.errors import GovernanceError
from cloud_ingest.governance.lineage import GATEWAYS, REGISTRY, build_lineage, render_text, to_dot
from cloud_ingest.governance.lineage_svg import builtin_svg, layout, render_svg
from cloud_ingest.warehouse.schema import load_schema
from cloud_ingest.warehouse.transforms import ALL

ADS = [t.name for t in load_schema().by_tier("ads")]


@pytest.mark.parametrize("table", ADS)
def test_every_ads_indicator_reaches_ods_and_the_gateways(table: str) -> None:
    up = build_lineage().upstream(table)
    assert up & {"ods_iot_reading_di", "ods_iot_event_di"}
    assert GATEWAYS in up
    assert REGISTRY in up
    assert any(n.startswith("dwd_") for n in up)


def test_edges_are_the_transforms_declarations() -> None:
    g = build_lineage()
    declared = {(i, o, t.name) for t in ALL for i in t.inputs for o in t.outputs if not i.startswith("meta_")}
    internal = {(e.source, e.target, e.via) for e in g.edges if not e.source.startswith("source:")}
    assert internal == declared
    assert {e.target for e in g.edges if e.source == GATEWAYS} == {
        "ods_iot_reading_di", "ods_iot_event_di", "ods_iot_batch_di", "ods_iot_heartbeat_di"}


def test_co2_indicator_lineage_is_exact() -> None:
    g = build_lineage()
    up = g.upstream("ads_env_co2_compliance_1d")
    assert {"dws_env_room_1h", "dws_occ_room_1h", "dwd_env_reading_di", "dwd_occ_reading_di",
            "ods_iot_reading_di", "dim_pub_room"} <= up
    assert "ods_iot_event_di" not in up  # card swipes do not feed the CO2 indicator
    assert "ads_env_co2_compliance_1d" in g.downstream("ods_iot_reading_di")
    assert g.downstream("ads_env_co2_compliance_1d") == set()


def test_text_tree_and_unknown_table() -> None:
    g = build_lineage()
    text = render_text(g, "dws_env_room_1h", "both")
    assert text.startswith("dws_env_room_1h  房间环境小时汇总表 [DWS]")
    assert "← dws_env: dwd_env_reading_di" in text
    assert "→ ads_co2: ads_env_co2_compliance_1d" in text
    with pytest.raises(GovernanceError, match="no table 'nope'"):
        g.upstream("nope")


def test_builtin_svg_is_valid_and_laid_out_left_to_right() -> None:
    g = build_lineage()
    svg = builtin_svg(g, "ads_iot_online_rate_1d", "all")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    boxes, width, height = layout(g)
    for e in g.edges:
        assert boxes[e.source].x + boxes[e.source].w < boxes[e.target].x  # data flows to the right
    items = list(boxes.values())
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + 40 <= b.y or b.y + 40 <= a.y
            assert apart, (a.name, b.name)
        assert a.x >= 0
        assert a.x + a.w <= width
        assert 0 <= a.y <= height
    assert svg.count("<rect") == len(g.nodes) + 1


def test_dot_output_is_well_formed() -> None:
    dot = to_dot(build_lineage().subgraph("ads_energy_intensity_1d", "up"), "ads_energy_intensity_1d")
    assert dot.startswith("digraph lineage {")
    assert '"dws_energy_building_1d" -> "ads_energy_intensity_1d" [label="ads_energy"];' in dot
    assert dot.count("{") == dot.count("}")


def test_graphviz_renders_svg_and_png(tmp_path: Path) -> None:
    g = build_lineage().subgraph("ads_env_co2_compliance_1d", "up")
    assert ET.fromstring(render_svg(g, engine="dot").encode()).tag.endswith("svg")
    out = tmp_path / "l.png"
    assert main(["lineage", "ads_env_co2_compliance_1d", "--format", "png", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lineage", "ads_iot_online_rate_1d", "--direction", "up"]) == 0
    out = capsys.readouterr().out
    assert "ods_iot_event_di" in out
    assert "ods_iot_reading_di" in out
    svg = tmp_path / "l.svg"
    assert main(["lineage", "dwd_env_reading_di", "--format", "svg", "--engine", "builtin", "--out", str(svg)]) == 0
    ET.parse(svg)
    assert main(["lineage", "--format", "dot"]) == 0
    assert "digraph" in capsys.readouterr().out
    assert main(["lineage", "no_such_table"]) == 2
    if shutil.which("dot") is None:
        assert main(["lineage", "dwd_env_reading_di", "--format", "png", "--out", str(tmp_path / "x.png")]) == 2

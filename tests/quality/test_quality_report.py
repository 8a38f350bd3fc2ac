"""The report renders (HTML parses, inline SVG, JSON keys) and findings move open → acknowledged → fixed."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cloud_ingest.cli import main
from cloud_ingest.quality.findings import FindingError, list_findings, set_status
from cloud_ingest.warehouse import open_warehouse
from tests.quality import sim_run


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("script", "link") or (tag == "img" and any(k == "src" for k, _ in attrs)):
            self.external.append(tag)


@pytest.fixture(scope="module")
def wh_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"duckdb:///{tmp_path_factory.mktemp('qrep') / 'wh.duckdb'}"
    with open_warehouse(url) as wh:
        sim_run.run(wh, "gaps=0.03,duplicates=0.02", devices=20, n=2500)
    return url


def test_report_writes_json_and_self_contained_html(wh_url: str, tmp_path: Path) -> None:
    assert main(["quality", "report", "--period", "day", "--out", str(tmp_path), "--warehouse", wh_url]) == 0
    report = json.loads((tmp_path / "quality.json").read_text(encoding="utf-8"))
    assert set(report) >= {"period", "dimensions", "campus", "campus_hourly", "worst_devices", "worst_rooms", "gaps",
                           "findings"}
    assert report["campus"][0]["quality_score"] > 0
    assert report["gaps"]
    page = (tmp_path / "quality.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    assert parser.tags.count("svg") >= 3  # daily and hourly trend, gap timeline
    assert parser.external == []


def test_findings_are_acknowledged_then_fixed_and_survive_a_recompute(wh_url: str) -> None:
    with open_warehouse(wh_url) as wh:
        fid = list_findings(wh, "open")[0][0]
        set_status(wh, fid, "acknowledged", "gateway battery replaced")
        assert (fid, "acknowledged") in {r[:2] for r in list_findings(wh)}
        with wh.maintenance() as s:
            s.execute("UPDATE meta_etl_watermark_cur SET watermark_id = 0 WHERE transform_name LIKE 'qlt_%'")
        wh.run_transforms()
        assert (fid, "acknowledged") in {r[:2] for r in list_findings(wh)}
        with pytest.raises(FindingError, match="no finding"):
            set_status(wh, "nope", "fixed")
    assert main(["quality", "findings", "--fixed", fid, "--warehouse", wh_url]) == 0
    with open_warehouse(wh_url) as wh:
        assert (fid, "fixed") in {r[:2] for r in list_findings(wh)}

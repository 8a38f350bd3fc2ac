"""quality.json validates against its JSON Schema (report.schema.json, draft 2020-12); broken reports do not."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cloud_ingest.quality.report import SCHEMA_FILE, build_report, report_json, report_schema
from tests.quality.conftest import Faulty


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(report_schema(), format_checker=jsonschema.FormatChecker())


def _errors(report: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(report)]


@pytest.fixture(scope="module")
def report(faulty: Faulty) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(report_json(build_report(faulty.wh)))
    return body


def test_schema_is_valid_draft_2020_12_and_packaged() -> None:
    schema = report_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    packaged = resources.files("cloud_ingest.quality").joinpath(SCHEMA_FILE)
    assert json.loads(packaged.read_text(encoding="utf-8")) == schema
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"cloud_ingest.quality" = ["*.json"]' in pyproject  # shipped in the wheel, not only in the tree


def test_report_json_validates(report: dict[str, Any], faulty: Faulty) -> None:
    assert _errors(report) == []  # report_json(...) is quality.json's text (write_report writes it)
    assert all(report[k] for k in ("campus", "campus_hourly", "worst_devices", "worst_rooms", "gaps", "findings"))
    empty = json.loads(report_json(build_report(faulty.wh, campus_id="nowhere")))
    assert _errors(empty) == []


def _broken(report: dict[str, Any], change: Any) -> dict[str, Any]:
    bad = copy.deepcopy(report)
    change(bad)
    return bad


@pytest.mark.parametrize(("what", "change", "where"), [
    ("rate above 1", lambda r: r["campus"][0].__setitem__("accuracy_rate", 1.5), "campus/0/accuracy_rate"),
    ("negative rate", lambda r: r["worst_devices"][0].__setitem__("validity_rate", -0.1),
     "worst_devices/0/validity_rate"),
    ("score above 100", lambda r: r["campus_hourly"][0].__setitem__("quality_score", 100.5),
     "campus_hourly/0/quality_score"),
    ("score missing", lambda r: r["worst_rooms"][0].pop("quality_score"), "worst_rooms/0"),
    ("rate as text", lambda r: r["campus"][0].__setitem__("timeliness_rate", "0.9"), "campus/0/timeliness_rate"),
    ("count negative", lambda r: r["gaps"][0].__setitem__("missing_cnt", -1), "gaps/0/missing_cnt"),
    ("count as float", lambda r: r["campus"][0].__setitem__("reading_cnt", 1.5), "campus/0/reading_cnt"),
    ("bad date", lambda r: r["findings"][0].__setitem__("dt", "02/09/2024"), "findings/0/dt"),
    ("unknown status", lambda r: r["findings"][0].__setitem__("status_code", "closed"), "findings/0/status_code"),
    ("unknown dimension", lambda r: r["findings"][0].__setitem__("dimension_code", "beauty"),
     "findings/0/dimension_code"),
    ("no evidence link", lambda r: r["findings"][0].pop("evidence"), "findings/0"),
    ("section missing", lambda r: r.pop("gaps"), ""),
    ("unknown key", lambda r: r.__setitem__("extra", []), ""),
    ("unknown period", lambda r: r.__setitem__("period", "week"), "period"),
    ("dimension twice", lambda r: r["dimensions"].append("accuracy"), "dimensions"),
])
def test_broken_reports_fail(report: dict[str, Any], what: str, change: Any, where: str) -> None:
    errors = _errors(_broken(report, change))
    assert errors, what
    assert any(e.split(": ", 1)[0] == where for e in errors), (what, errors)

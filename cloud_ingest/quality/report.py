"""The quality report: JSON and a self-contained HTML page with inline SVG charts (no external JS or CSS).

``build_report(wh, period)`` reads the quality tables into a plain mapping (the JSON, described by the JSON
Schema ``report.schema.json`` next to this module); ``render_html`` draws it: a trend line per dimension over
the days, the worst devices and rooms, a gap timeline, and the findings with the first rows of their evidence.
``GET /v1/quality/report`` serves the same mapping (``report_json``) as ``quality.json``.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cloud_ingest.quality.config import DIMENSIONS
from cloud_ingest.quality.evidence import Evidence, evidence
from cloud_ingest.quality.findings import Queryable
from cloud_ingest.warehouse.transforms.quality_losses import TABLE as LOSS_TABLE

WORST_N = 10  # rows in the worst-devices / worst-rooms tables; more is noise on a large campus
PERIODS = ("day",)
SCHEMA_FILE = "report.schema.json"
EVIDENCE_SAMPLE = 5  # evidence rows shown per finding in the HTML report
LAG_COLUMNS = "lag_p95_ms, lag_max_ms, dwd_lag_p95_ms, dwd_lag_max_ms"  # measure → ODS and → DWD
EVIDENCE_FINDINGS_MAX = 200  # findings whose evidence the HTML report lists (each costs two queries)


def evidence_path(finding_id: str) -> str:
    """The API path of a finding's evidence (the id percent-encoded: device ids may contain '/')."""
    return f"/v1/quality/findings/{quote(finding_id, safe=':')}/evidence"


@functools.cache
def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``quality.json`` / ``GET /v1/quality/report``."""
    text = resources.files("cloud_ingest.quality").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _rows(wh: Queryable, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cols, rows = wh.query(sql, tuple(params))
    return [{c: (str(v) if c == "dt" else v) for c, v in zip(cols, r, strict=True)} for r in rows]


def _where(campus_col: str, campus_id: str | None, date_from: dt.date | None, date_to: dt.date | None,
           *extra: str) -> tuple[str, list[Any]]:
    conds, params = list(extra), []  # extra: fixed SQL of ours, never request text
    for cond, value in ((f"{campus_col} = ?", campus_id), ("dt >= ?", date_from), ("dt <= ?", date_to)):
        if value is not None:
            conds.append(cond)
            params.append(value)
    return (" WHERE " + " AND ".join(conds) if conds else ""), params


def build_report(wh: Queryable, period: str = "day", *, campus_id: str | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None) -> dict[str, Any]:
    """The report as a JSON-ready mapping: campus days and hours, worst devices/rooms, gaps, findings.

    ``campus_id``, ``date_from`` and ``date_to`` (inclusive, local days) narrow every section. Each finding
    carries ``evidence``: the API path of the rows behind it (:mod:`cloud_ingest.quality.evidence`).
    """
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")
    rates = ", ".join(f"{d}_rate" for d in DIMENSIONS)

    def where(campus_col: str = "campus_id", *extra: str) -> tuple[str, list[Any]]:
        return _where(campus_col, campus_id, date_from, date_to, *extra)

    w_campus, p_campus = where()
    w_hourly, p_hourly = where("scope_id", "scope_code = 'campus'")
    w_dev, p_dev = where("campus_id", "scope_code = 'device'")
    w_room, p_room = where("campus_id", "scope_code = 'room'")
    w_gap, p_gap = where("campus_id", "gap_cnt > 0")
    findings = _rows(wh, "SELECT finding_id, scope_code, scope_id, dt, dimension_code, value, threshold_val, "
                         f"status_code FROM meta_qlt_finding_cur{w_campus} ORDER BY dt, scope_code, scope_id, "
                         "dimension_code", p_campus)
    for f in findings:
        f["evidence"] = evidence_path(str(f["finding_id"]))
    return {
        "period": period,
        "dimensions": list(DIMENSIONS),
        "campus": _rows(wh, f"SELECT campus_id, dt, device_cnt, reading_cnt, {rates}, quality_score "
                            f"FROM ads_qlt_campus_score_1d{w_campus} ORDER BY campus_id, dt", p_campus),
        "campus_hourly": _rows(wh, f"SELECT scope_id AS campus_id, hour_ms, dt, reading_cnt, {rates}, quality_score "
                                   f"FROM dws_qlt_scope_1h{w_hourly} ORDER BY scope_id, hour_ms", p_hourly),
        "worst_devices": _rows(wh, f"SELECT scope_id AS device_id, dt, quality_score, {rates} FROM dws_qlt_scope_1d"
                                   f"{w_dev} ORDER BY quality_score, scope_id, dt LIMIT {WORST_N}", p_dev),
        "worst_rooms": _rows(wh, f"SELECT scope_id AS room_id, dt, quality_score, {rates} FROM dws_qlt_scope_1d"
                                 f"{w_room} ORDER BY quality_score, scope_id, dt LIMIT {WORST_N}", p_room),
        "timeliness": _rows(wh, "SELECT scope_id AS campus_id, dt, reading_cnt, reading_cnt - timely_cnt AS late_cnt, "
                                f"COALESCE((SELECT SUM(l.loss_cnt) FROM {LOSS_TABLE} l WHERE l.campus_id = s.scope_id "
                                "AND l.dt = s.dt AND l.cause_code = 'late' AND l.reason_code = 'too_late'), 0) "
                                f"AS edge_late_cnt, {LAG_COLUMNS} FROM dws_qlt_scope_1d s{w_hourly} "
                                "ORDER BY scope_id, dt", p_hourly),
        "gaps": _rows(wh, "SELECT device_id, hour_ms, gap_cnt, gap_max_ms, expected_cnt - reading_cnt AS missing_cnt "
                          f"FROM dws_qlt_device_1h{w_gap} ORDER BY hour_ms, device_id", p_gap),
        "findings": findings,
    }


def report_json(report: Mapping[str, Any]) -> str:
    """``quality.json``'s text (also the body of ``GET /v1/quality/report``)."""
    return json.dumps(report, indent=2, ensure_ascii=False, default=str)


def _trend_svg(campus: list[dict[str, Any]], key: str = "dt") -> str:
    w, h, pad = 640, 220, 30
    days = sorted({r[key] for r in campus})
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
             'aria-label="dimension trend">',
             f'<rect x="{pad}" y="10" width="{w - 2 * pad}" height="{h - 40}" fill="none" stroke="#999"/>']
    for i, d in enumerate(DIMENSIONS):
        pts = []
        for j, day in enumerate(days):
            vals = [r[f"{d}_rate"] for r in campus if r[key] == day and r[f"{d}_rate"] is not None]
            if not vals:
                continue
            x = pad + (w - 2 * pad) * (j + 0.5) / max(1, len(days))
            y = 10 + (h - 40) * (1 - min(vals))
            pts.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colours[i]}"/>')
        if len(pts) > 1:
            parts.append(f'<polyline fill="none" stroke="{colours[i]}" points="{" ".join(pts)}"/>')
        parts.append(f'<text x="{pad + i * 100}" y="{h - 8}" font-size="11" fill="{colours[i]}">{d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _gap_svg(gaps: list[dict[str, Any]]) -> str:
    w, row = 640, 14
    devices = sorted({g["device_id"] for g in gaps})[:40]
    if not devices:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="20"><text y="14">no gaps</text></svg>'
    lo = min(g["hour_ms"] for g in gaps)
    hi = max(g["hour_ms"] for g in gaps) + 3_600_000
    h = row * len(devices) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="gap timeline">']
    for i, dev in enumerate(devices):
        parts.append(f'<text x="0" y="{i * row + 11}" font-size="10">{html.escape(dev)}</text>')
        for g in (g for g in gaps if g["device_id"] == dev):
            x = 160 + (w - 170) * (g["hour_ms"] - lo) / (hi - lo)
            bw = max(2.0, (w - 170) * 3_600_000 / (hi - lo))
            parts.append(f'<rect x="{x:.1f}" y="{i * row + 2}" width="{bw:.1f}" height="{row - 4}" fill="#d62728" '
                         f'opacity="{min(1.0, 0.3 + 0.1 * g["gap_cnt"]):.2f}"><title>{g["gap_cnt"]} gaps, '
                         f'{g["missing_cnt"]} missing</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _findings_html(findings: list[dict[str, Any]], ev: Mapping[str, Evidence]) -> str:
    """The findings table (ids link to their evidence section) and one evidence section per finding."""
    cols = ["finding_id", "dimension_code", "value", "threshold_val", "status_code", "evidence"]
    anchors = {fid: f"ev-{i}" for i, fid in enumerate(ev)}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for f in findings:
        fid = str(f["finding_id"])
        e = ev.get(fid)
        link = (f'<a href="#{anchors[fid]}">{e.total} rows</a>' if e is not None
                else f"<code>campus-cloud quality evidence {html.escape(fid)}</code>")
        value = f"{f['value']:.3f}" if isinstance(f["value"], float) else html.escape(str(f["value"]))
        body.append(f"<tr><td>{html.escape(fid)}</td><td>{html.escape(str(f['dimension_code']))}</td>"
                    f"<td>{value}</td><td>{f['threshold_val']}</td><td>{html.escape(str(f['status_code']))}</td>"
                    f"<td>{link}</td></tr>")
    parts = [f"<table><tr>{head}</tr>{''.join(body)}</table>"]
    if len(ev) < len(findings):
        parts.append(f"<p>Evidence is listed for the first {len(ev)} of {len(findings)} findings; "
                     "<code>campus-cloud quality evidence FINDING_ID</code> or "
                     "<code>GET /v1/quality/findings/{id}/evidence</code> gives the rest.</p>")
    if ev:
        parts.append("<h2>Evidence</h2>")
    for fid, e in ev.items():
        counted = ", ".join(f"{k} {v}" for k, v in e.counted.items() if v)
        parts.append(f'<h3 id="{anchors[fid]}">{html.escape(fid)}</h3>'
                     f"<p>{e.total} evidence rows; counted by the rate: {html.escape(counted) or 'nothing'}. The first "
                     f"{min(EVIDENCE_SAMPLE, len(e.rows))} with their ODS batch (gateway_id, batch_seq, load_id):"
                     "</p>" + _table(e.rows[:EVIDENCE_SAMPLE], list(e.columns)))
    return "".join(parts)


def render_html(report: dict[str, Any], evidence_by_id: Mapping[str, Evidence] | None = None) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts); findings link to their evidence rows."""
    rate_cols = [f"{d}_rate" for d in DIMENSIONS]
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Data quality report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
        f"<h1>Data quality report ({html.escape(report['period'])})</h1>"
        "<h2>Campus score and dimensions</h2>"
        + _table(report["campus"], ["campus_id", "dt", "quality_score", *rate_cols])
        + "<h2>Trend per dimension (days)</h2>" + _trend_svg(report["campus"])
        + "<h2>Trend per dimension (hours)</h2>" + _trend_svg(report["campus_hourly"], "hour_ms")
        + "<h2>Timeliness: lag from measurement to ODS and to DWD (ms; worst device's p95)</h2>"
        + _table(report["timeliness"], ["campus_id", "dt", "reading_cnt", "late_cnt", "edge_late_cnt",
                                       *LAG_COLUMNS.split(", ")])
        + "<h2>Worst devices</h2>" + _table(report["worst_devices"], ["device_id", "dt", "quality_score", *rate_cols])
        + "<h2>Worst rooms</h2>" + _table(report["worst_rooms"], ["room_id", "dt", "quality_score", *rate_cols])
        + "<h2>Gap timeline</h2>" + _gap_svg(report["gaps"])
        + "<h2>Findings</h2>" + _findings_html(report["findings"], evidence_by_id or {})
        + "</body></html>")


def report_evidence(wh: Queryable, report: Mapping[str, Any],
                    max_findings: int = EVIDENCE_FINDINGS_MAX) -> dict[str, Evidence]:
    """The first EVIDENCE_SAMPLE evidence rows of each of the report's first ``max_findings`` findings."""
    return {str(f["finding_id"]): evidence(wh, str(f["finding_id"]), limit=EVIDENCE_SAMPLE)
            for f in report["findings"][:max_findings]}


def write_report(wh: Queryable, out: Path, period: str = "day") -> tuple[Path, Path]:
    """Write ``quality.json`` and ``quality.html`` into ``out``; returns their paths."""
    report = build_report(wh, period)
    out.mkdir(parents=True, exist_ok=True)
    j, h = out / "quality.json", out / "quality.html"
    j.write_text(report_json(report), encoding="utf-8")
    h.write_text(render_html(report, report_evidence(wh, report)), encoding="utf-8")
    return j, h

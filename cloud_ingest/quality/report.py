"""The quality report: JSON and a self-contained HTML page with inline SVG charts (no external JS or CSS).

``build_report(wh, period)`` reads the quality tables into a plain mapping (the JSON); ``render_html``
draws it: a trend line per dimension over the days, the worst devices and rooms, and a gap timeline.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from cloud_ingest.quality.config import DIMENSIONS
from cloud_ingest.warehouse import Warehouse

WORST_N = 10  # rows in the worst-devices / worst-rooms tables; more is noise on a large campus
PERIODS = ("day",)


def _rows(wh: Warehouse, sql: str) -> list[dict[str, Any]]:
    cols, rows = wh.query(sql)
    return [{c: (str(v) if c == "dt" else v) for c, v in zip(cols, r, strict=True)} for r in rows]


def build_report(wh: Warehouse, period: str = "day") -> dict[str, Any]:
    """The report as a JSON-ready mapping: campus days and hours, worst devices/rooms, gaps, findings."""
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")
    rates = ", ".join(f"{d}_rate" for d in DIMENSIONS)
    return {
        "period": period,
        "dimensions": list(DIMENSIONS),
        "campus": _rows(wh, f"SELECT campus_id, dt, device_cnt, reading_cnt, {rates}, quality_score "
                            "FROM ads_qlt_campus_score_1d ORDER BY campus_id, dt"),
        "campus_hourly": _rows(wh, f"SELECT scope_id AS campus_id, hour_ms, dt, reading_cnt, {rates}, quality_score "
                                   "FROM dws_qlt_scope_1h WHERE scope_code = 'campus' ORDER BY scope_id, hour_ms"),
        "worst_devices": _rows(wh, f"SELECT scope_id AS device_id, dt, quality_score, {rates} FROM dws_qlt_scope_1d "
                                   f"WHERE scope_code = 'device' ORDER BY quality_score, scope_id LIMIT {WORST_N}"),
        "worst_rooms": _rows(wh, f"SELECT scope_id AS room_id, dt, quality_score, {rates} FROM dws_qlt_scope_1d "
                                 f"WHERE scope_code = 'room' ORDER BY quality_score, scope_id LIMIT {WORST_N}"),
        "gaps": _rows(wh, "SELECT device_id, hour_ms, gap_cnt, gap_max_ms, expected_cnt - reading_cnt AS missing_cnt "
                          "FROM dws_qlt_device_1h WHERE gap_cnt > 0 ORDER BY hour_ms, device_id"),
        "findings": _rows(wh, "SELECT finding_id, scope_code, scope_id, dt, dimension_code, value, threshold_val, "
                              "status_code FROM meta_qlt_finding_cur ORDER BY dt, scope_code, scope_id, "
                              "dimension_code"),
    }


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


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts)."""
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
        + "<h2>Worst devices</h2>" + _table(report["worst_devices"], ["device_id", "dt", "quality_score", *rate_cols])
        + "<h2>Worst rooms</h2>" + _table(report["worst_rooms"], ["room_id", "dt", "quality_score", *rate_cols])
        + "<h2>Gap timeline</h2>" + _gap_svg(report["gaps"])
        + "<h2>Findings</h2>" + _table(report["findings"], ["finding_id", "dimension_code", "value",
                                                           "threshold_val", "status_code"])
        + "</body></html>")


def write_report(wh: Warehouse, out: Path, period: str = "day") -> tuple[Path, Path]:
    """Write ``quality.json`` and ``quality.html`` into ``out``; returns their paths."""
    report = build_report(wh, period)
    out.mkdir(parents=True, exist_ok=True)
    j, h = out / "quality.json", out / "quality.html"
    j.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    h.write_text(render_html(report), encoding="utf-8")
    return j, h

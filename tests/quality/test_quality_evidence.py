"""Evidence of findings: per dimension, the rows behind a finding really have the fault, carry their ODS batch,
and add up to exactly what the scope-day's rate counted."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cloud_ingest.quality.config import DIMENSIONS, default_config
from cloud_ingest.quality.evidence import KINDS, evidence
from cloud_ingest.quality.findings import FindingError
from cloud_ingest.quality.report import build_report, evidence_path, report_schema, write_report
from cloud_ingest.warehouse import Warehouse
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES
from tests.quality.conftest import GHOST, ODD_UNIT, Faulty

# per dimension: counter of the scope-day's row in dws_qlt_scope_1d (SQL) → the evidence kinds that add up to it
COUNTERS = {
    "completeness": {"expected_cnt - reading_cnt": ("gap", "leading_gap", "trailing_gap", "silent")},
    "timeliness": {"reading_cnt - timely_cnt": ("late",)},
    "uniqueness": {"dup_cnt": ("duplicate",)},
    "accuracy": {"out_range_cnt": ("out_of_range",), "spike_cnt": ("spike",), "stuck_cnt": ("stuck",)},
    "consistency": {"decrease_cnt": ("decrease",), "skew_cnt": ("clock_skew",),
                    "disagree_cnt": ("room_disagreement", "submeter_mismatch")},
    "validity": {"invalid_cnt": ("unconvertible_unit", "unregistered_device", "unregistered_gateway"),
                 "COALESCE(quarantine_cnt, 0)": ("quarantine",)},
}
DWD = " UNION ALL ".join(f"SELECT * FROM {t}" for t in PROCESS_TABLES.values())
KEY = ("device_id", "metric_code", "agg_code", "window_s", "ts_ms")


def _findings(wh: Warehouse) -> list[tuple[str, str, str]]:
    return [(str(f), str(s), str(d)) for f, s, d in
            wh.query("SELECT finding_id, scope_code, dimension_code FROM meta_qlt_finding_cur ORDER BY 1")[1]]


def _pick(wh: Warehouse, dimension: str, kind: str | None = None) -> str:
    """The finding of ``dimension`` at the narrowest scope whose evidence has rows (of ``kind``)."""
    rank = {"device": 0, "room": 1, "gateway": 2, "campus": 3}
    for fid, _, _ in sorted((f for f in _findings(wh) if f[2] == dimension), key=lambda f: (rank[f[1]], f[0])):
        if evidence(wh, fid, limit=1).counted.get(kind or KINDS[dimension][0], 0) > 0:
            return fid
    raise AssertionError(f"no {dimension} finding with {kind} evidence")


def _dwd_row(wh: Warehouse, row: dict[str, Any]) -> dict[str, Any]:
    cols, rows = wh.query(f"SELECT * FROM ({DWD}) d WHERE " + " AND ".join(f"d.{k} = ?" for k in KEY),
                          tuple(row[k] for k in KEY))
    assert len(rows) == 1, row
    return dict(zip(cols, rows[0], strict=True))


def _check_provenance(wh: Warehouse, row: dict[str, Any]) -> None:
    """The row's (gateway_id, batch_seq, load_id) is an ODS batch that holds the reading's key."""
    n = wh.query("SELECT COUNT(*) FROM ods_iot_reading_di WHERE gateway_id = ? AND batch_seq = ? AND load_id = ? AND "
                 + " AND ".join(f"{k} = ?" for k in KEY),
                 (row["gateway_id"], row["batch_seq"], row["load_id"], *(row[k] for k in KEY)))[1][0][0]
    assert n >= 1, row


def test_every_dimension_has_a_finding(faulty: Faulty) -> None:
    assert {d for _, _, d in _findings(faulty.wh)} == set(DIMENSIONS)


def _assert_adds_up(wh: Warehouse, fid: str, dim: str) -> None:
    ev = evidence(wh, fid, limit=1)
    r = ev.ref
    sums = COUNTERS[dim]
    assert sorted(k for kinds in sums.values() for k in kinds) == sorted(KINDS[dim])
    got = wh.query(f"SELECT {', '.join(sums)} FROM dws_qlt_scope_1d WHERE campus_id = ? AND scope_code = ? "
                   "AND scope_id = ? AND dt = ?", (r.campus_id, r.scope_code, r.scope_id, r.dt))[1][0]
    want = {expr: int(v) for expr, v in zip(sums, got, strict=True)}
    have = {expr: sum(ev.counted[k] for k in kinds) for expr, kinds in sums.items()}
    assert have == want, fid
    assert ev.total >= 1, fid
    assert len(ev.rows) == 1, fid


def test_evidence_adds_up_to_the_scope_counters(faulty: Faulty) -> None:
    for fid, _, dim in _findings(faulty.wh):
        _assert_adds_up(faulty.wh, fid, dim)


@pytest.mark.postgres
def test_evidence_adds_up_on_postgres(pg_url: str) -> None:
    from cloud_ingest.warehouse import open_warehouse
    from tests.quality import sim_run

    with open_warehouse(pg_url) as wh:
        sim_run.run(wh, "gaps=0.03,duplicates=0.03,out_of_range=0.03,spikes=0.02,skew=0.03,resets=0.03,"
                        "malformed=0.08", devices=12, n=1200, mix="all", late_every=3, silent_devices=1)
        findings = _findings(wh)
        assert {d for _, _, d in findings} >= {"completeness", "timeliness", "uniqueness", "accuracy",
                                               "consistency"}
        for fid, _, dim in findings:
            _assert_adds_up(wh, fid, dim)
        sample = evidence(wh, findings[0][0], limit=5).as_dict()
        assert json.loads(json.dumps(sample)) == sample  # plain JSON values (no Decimal, no date objects)


def test_completeness_evidence_is_real_gaps(faulty: Faulty) -> None:
    wh, cfg = faulty.wh, default_config()
    ev = evidence(wh, _pick(wh, "completeness"), limit=200)
    assert ev.rows
    assert "gap" in {row["kind"] for row in ev.rows}
    for row in ev.rows:
        assert row["kind"] in ("gap", "leading_gap", "trailing_gap")
        assert row["step_ms"] == row["ts_ms"] - row["from_ts_ms"] > cfg.gap_factor * row["interval_ms"]
        assert row["missing_cnt"] == round(row["step_ms"] / row["interval_ms"]) - 1 >= 1
        between = wh.query(f"SELECT COUNT(*) FROM ({DWD}) d WHERE d.device_id = ? AND d.metric_code = ? AND "
                           "d.agg_code = ? AND d.window_s = ? AND d.ts_ms >= ? AND d.ts_ms <= ?",
                           (row["device_id"], row["metric_code"], row["agg_code"], row["window_s"],
                            row["from_ts_ms"], row["ts_ms"]))[1][0][0]
        # a gap between two readings holds only those; a leading / trailing gap only the series' first / last
        assert between == (2 if row["kind"] == "gap" else 1), row
        _check_provenance(wh, {**row, "ts_ms": row["from_ts_ms"] if row["kind"] == "trailing_gap" else row["ts_ms"]})


def test_completeness_evidence_names_the_silent_device(faulty: Faulty) -> None:
    wh = faulty.wh
    ev = evidence(wh, _pick(wh, "completeness", "silent"), limit=200)
    silent = [r for r in ev.rows if r["kind"] == "silent"]
    assert len(silent) == ev.counted["silent"] // silent[0]["missing_cnt"] == 1
    (row,) = silent
    assert "-silent" in row["device_id"]
    assert wh.query(f"SELECT COUNT(*) FROM ({DWD}) d WHERE d.device_id = ?", (row["device_id"],))[1][0][0] == 0
    owed = wh.query("SELECT expected_cnt, gap_max_ms FROM dws_qlt_device_1d WHERE device_id = ?",
                    (row["device_id"],))[1]
    assert owed == [(row["missing_cnt"], row["step_ms"])]
    assert row["missing_cnt"] > 0


def test_timeliness_evidence_is_late_batches(faulty: Faulty) -> None:
    wh, cfg = faulty.wh, default_config()
    ev = evidence(wh, _pick(wh, "timeliness"), limit=300)
    for row in ev.rows:
        received = wh.query("SELECT received_ms FROM ods_iot_batch_di WHERE gateway_id = ? AND batch_seq = ?",
                            (row["gateway_id"], row["batch_seq"]))[1][0][0]
        assert received == row["received_ms"]
        assert row["lag_ms"] == received - row["ts_ms"] > cfg.timely_target_s * 1000
        _check_provenance(wh, row)
    assert [r["lag_ms"] for r in ev.rows] == sorted((r["lag_ms"] for r in ev.rows), reverse=True)


def test_uniqueness_evidence_keys_are_in_ods_more_than_once(faulty: Faulty) -> None:
    wh = faulty.wh
    ev = evidence(wh, _pick(wh, "uniqueness"), limit=500)
    keys: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in ev.rows:
        keys.setdefault(tuple(row[k] for k in KEY), []).append(row)
        _check_provenance(wh, row)  # each copy is an ODS row of its own batch
    for key, copies in keys.items():
        n = wh.query("SELECT COUNT(*) FROM ods_iot_reading_di WHERE " + " AND ".join(f"{k} = ?" for k in KEY),
                     key)[1][0][0]
        assert n == copies[0]["copy_cnt"] >= 2, key
        if len(copies) == n:  # not cut by the limit
            assert sorted(c["copy_no"] for c in copies) == list(range(1, n + 1))
        _dwd_row(wh, copies[0])  # the key was kept in DWD once


def test_accuracy_evidence_rows_are_out_of_range_spikes_or_stuck(faulty: Faulty) -> None:
    wh, cfg = faulty.wh, default_config()
    seen = set()
    for kind in ("out_of_range", "spike"):
        ev = evidence(wh, _pick(wh, "accuracy", kind), limit=500)
        for row in ev.rows:
            seen.add(row["kind"])
            stored = _dwd_row(wh, row)
            assert stored["quality_flag"] == row["quality_flag"]
            _check_provenance(wh, row)
            if row["kind"] == "out_of_range":
                assert row["quality_flag"] & 1
            elif row["kind"] == "spike":
                step_min = max((row["ts_ms"] - row["prev_ts_ms"]) / 60000, 1.0)
                assert abs(row["value"] - row["prev_value"]) > cfg.max_rate_per_min[row["metric_code"]] * step_min
                prev = _dwd_row(wh, {**row, "ts_ms": row["prev_ts_ms"]})
                assert prev["value"] == row["prev_value"]
            else:
                assert row["kind"] == "stuck"
                last = wh.query(f"SELECT value FROM ({DWD}) d WHERE d.device_id = ? AND d.metric_code = ? "
                                "AND d.agg_code = ? AND d.window_s = ? AND d.ts_ms <= ? ORDER BY d.ts_ms DESC "
                                f"LIMIT {cfg.stuck_samples}", tuple(row[k] for k in KEY))[1]
                assert len(last) == cfg.stuck_samples
                assert {v for (v,) in last} == {row["value"]}
    assert {"out_of_range", "spike"} <= seen


def test_consistency_evidence_rows_are_resets_skew_or_room_disagreement(faulty: Faulty) -> None:
    wh, cfg = faulty.wh, default_config()
    seen = set()
    for kind in ("decrease", "clock_skew", "room_disagreement"):
        ev = evidence(wh, _pick(wh, "consistency", kind), limit=400)
        for row in ev.rows:
            seen.add(row["kind"])
            stored = _dwd_row(wh, row)
            _check_provenance(wh, row)
            if row["kind"] == "decrease":
                assert row["value"] < row["prev_value"]
                assert wh.query("SELECT metric_type FROM dim_iot_metric WHERE metric_code = ?",
                                (row["metric_code"],))[1][0][0] == "counter"
            elif row["kind"] == "clock_skew":
                assert stored["quality_flag"] & 2
            else:
                assert abs(row["hour_val"] - row["ref_val"]) > row["tolerance_val"]
                assert row["tolerance_val"] == cfg.room_tolerance[row["metric_code"]]
                assert stored["hour_ms"] == row["hour_ms"]
    assert seen == {"decrease", "clock_skew", "room_disagreement"}
    hot = evidence(wh, f"{_day(wh)}:device:{faulty.hot_device}:consistency", limit=10_000)
    assert hot.counted["room_disagreement"] > 0
    assert {r["device_id"] for r in hot.rows} == {faulty.hot_device}


def _day(wh: Warehouse) -> str:
    return str(wh.query("SELECT MIN(dt) FROM dws_qlt_scope_1d")[1][0][0])


def test_validity_evidence_is_flagged_rows_and_quarantined_messages(faulty: Faulty) -> None:
    wh = faulty.wh
    ghost = evidence(wh, f"{_day(wh)}:device:{GHOST}:validity")
    assert ghost.counted["unregistered_device"] == ghost.total == 20
    assert all(_dwd_row(wh, r)["quality_flag"] & 512 for r in ghost.rows)
    gw = evidence(wh, _pick(wh, "validity", "quarantine"), limit=1000)
    assert gw.ref.scope_code in ("gateway", "campus")
    assert gw.counted["unconvertible_unit"] == 5
    assert gw.counted["quarantine"] == sum(faulty.run.quarantined.values())
    reasons = {r["reason_code"]: r["loss_cnt"] for r in gw.rows if r["kind"] == "quarantine"}
    assert reasons == dict(faulty.run.quarantined)
    for row in gw.rows:
        if row["kind"] == "quarantine":
            assert row["gateway_id"]
            assert row["load_id"]
            continue
        stored = _dwd_row(wh, row)
        assert stored["quality_flag"] & (256 | 512 | 1024)
        assert (stored["quality_flag"] & 256 != 0) == (row["kind"] == "unconvertible_unit")
        _check_provenance(wh, row)
    odd = [r for r in gw.rows if r["kind"] == "unconvertible_unit"]
    assert {r["device_id"] for r in odd} == {faulty.odd_unit_device}
    assert wh.query("SELECT DISTINCT unit_code FROM ods_iot_reading_di WHERE device_id = ? AND ts_ms = ?",
                    (odd[0]["device_id"], odd[0]["ts_ms"]))[1] == [(ODD_UNIT,)]


def test_limit_bounds_the_rows_not_the_counts(faulty: Faulty) -> None:
    fid = _pick(faulty.wh, "timeliness")
    one, many = evidence(faulty.wh, fid, limit=1), evidence(faulty.wh, fid, limit=10_000)
    assert (one.total, one.counted) == (many.total, many.counted)
    assert len(one.rows) == 1
    assert len(many.rows) == many.total
    assert one.rows[0] == many.rows[0]
    with pytest.raises(FindingError, match="no finding"):
        evidence(faulty.wh, "2024-09-02:device:nope:accuracy")
    with pytest.raises(ValueError, match="limit"):
        evidence(faulty.wh, fid, limit=0)


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))


def test_report_links_findings_to_their_evidence(faulty: Faulty, tmp_path: Path) -> None:
    wh = faulty.wh
    j, h = write_report(wh, tmp_path)
    report = json.loads(j.read_text(encoding="utf-8"))
    assert report == json.loads(json.dumps(build_report(wh), default=str))
    assert not list(jsonschema.Draft202012Validator(report_schema()).iter_errors(report))
    assert report["findings"]
    for f in report["findings"]:
        assert f["evidence"] == evidence_path(f["finding_id"])
        assert "/" not in f["evidence"].removeprefix("/v1/quality/findings/").removesuffix("/evidence")
    page = _Html()
    page.feed(h.read_text(encoding="utf-8"))
    anchors = [x.removeprefix("#") for x in page.hrefs if x.startswith("#")]
    assert len(anchors) == min(len(report["findings"]), 200)
    assert set(anchors) <= page.ids  # every link lands on an evidence section
    text = h.read_text(encoding="utf-8")
    assert "gateway_id" in text
    assert "batch_seq" in text
    assert "load_id" in text


def test_cli_prints_evidence(faulty: Faulty, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    import cloud_ingest.commands.quality as cmd
    from cloud_ingest.cli import main

    # DuckDB: the session's warehouse holds the file, so the command gets that warehouse instead of opening it
    monkeypatch.setattr(cmd, "with_warehouse", lambda args, action: action(faulty.wh))
    fid = _pick(faulty.wh, "uniqueness")
    assert main(["quality", "evidence", fid, "--limit", "3", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finding_id"] == fid
    assert len(out["rows"]) == 3
    assert out["total"] > 3
    assert main(["quality", "evidence", fid, "--limit", "3"]) == 0
    text = capsys.readouterr().out
    assert "counted by the rate: duplicate" in text
    assert f"(3 of {out['total']} rows)" in text
    assert main(["quality", "evidence", "nope"]) == 1
    assert "no finding" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quality", "evidence", fid, "--limit", "0"])
    assert "--limit" in capsys.readouterr().err

"""Quality dimensions measured on campus-sim traffic with faults injected at known rates.

The traffic goes through the real edge decoder, wire batches (encode → decode) and Warehouse.land_batch on
DuckDB; the transforms compute the quality tables. Each figure is checked against the simulator's own
account of the faults it injected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.quality.config import default_config
from cloud_ingest.quality.evidence import FindingRef, evidence_for
from cloud_ingest.quality.report import build_report
from cloud_ingest.warehouse import Warehouse, open_warehouse
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES
from tests.quality import sim_run

FAULTS = "gaps=0.03,duplicates=0.03,out_of_range=0.02,spikes=0.02"


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Warehouse, sim_run.SimRun]]:
    path: Path = tmp_path_factory.mktemp("qlt") / "wh.duckdb"
    wh = open_warehouse(f"duckdb:///{path}")
    run = sim_run.run(wh, FAULTS)
    yield wh, run
    wh.close()


def _campus(wh: Warehouse) -> dict[str, object]:
    cols, rows = wh.query("SELECT * FROM dws_qlt_scope_1d WHERE scope_code = 'campus'")
    assert len(rows) == 1
    return dict(zip(cols, rows[0], strict=True))


def test_duplicates_removed_match_the_injected_duplicates(landed: tuple[Warehouse, sim_run.SimRun]) -> None:
    wh, run = landed
    c = _campus(wh)
    assert c["dup_cnt"] == run.fault_readings["duplicates"]  # exact: every copy's readings
    injected = run.faults["duplicates"] / run.messages
    assert abs((1 - c["uniqueness_rate"]) - injected) < 0.01  # per-reading rate ≈ per-message rate


def test_out_of_range_flags_match_the_injected_values(landed: tuple[Warehouse, sim_run.SimRun]) -> None:
    wh, run = landed
    c = _campus(wh)
    assert c["out_range_cnt"] == run.faults["out_of_range"]  # one value per faulty message
    assert c["spike_cnt"] >= 0.5 * run.faults["spikes"]  # spikes in range: caught by the rate-of-change check
    assert c["accuracy_rate"] < 1.0


def test_gaps_lower_completeness_by_the_suppressed_share(landed: tuple[Warehouse, sim_run.SimRun]) -> None:
    wh, run = landed
    c = _campus(wh)
    per_message = run.readings / run.messages
    missing = c["expected_cnt"] - c["reading_cnt"]
    assert missing == pytest.approx(run.gap_missing * per_message, rel=0.15)
    assert c["gap_cnt"] > 0
    assert c["gap_max_ms"] > 0


def test_scores_and_findings_exist_for_every_scope(landed: tuple[Warehouse, sim_run.SimRun]) -> None:
    wh, _ = landed
    hourly = wh.query("SELECT SUM(reading_cnt), SUM(expected_cnt), SUM(dup_cnt) FROM dws_qlt_scope_1h "
                      "WHERE scope_code = 'campus'")[1][0]
    daily = wh.query("SELECT reading_cnt, expected_cnt, dup_cnt FROM dws_qlt_scope_1d "
                     "WHERE scope_code = 'campus'")[1][0]
    assert hourly == daily
    scopes = dict(wh.query("SELECT scope_code, COUNT(*) FROM dws_qlt_scope_1d GROUP BY scope_code")[1])
    assert set(scopes) == {"device", "room", "building", "gateway", "campus"}
    score = wh.query("SELECT quality_score FROM ads_qlt_campus_score_1d")[1]
    assert len(score) == 1
    assert 0 < score[0][0] < 100
    dims = {d for (d,) in wh.query("SELECT DISTINCT dimension_code FROM meta_qlt_finding_cur")[1]}
    assert {"completeness", "uniqueness"} <= dims


def test_running_transforms_again_changes_nothing(landed: tuple[Warehouse, sim_run.SimRun]) -> None:
    wh, _ = landed
    tables = ("dws_qlt_device_1h", "dws_qlt_device_1d", "dws_qlt_scope_1d", "dws_qlt_scope_1h",
              "ads_qlt_campus_score_1d", "meta_qlt_finding_cur")
    before = {t: sorted(map(repr, wh.query(f"SELECT * FROM {t}")[1])) for t in tables}
    wh.run_transforms()
    with wh.maintenance() as s:  # force a recompute of the same range: delete-and-recompute is idempotent
        s.execute("UPDATE meta_etl_watermark_cur SET watermark_id = 0 WHERE transform_name LIKE 'qlt_%'")
    wh.run_transforms()
    after = {t: sorted(map(repr, wh.query(f"SELECT * FROM {t}")[1])) for t in tables}
    for t in tables:
        if t == "meta_qlt_finding_cur":
            continue
        assert after[t] == before[t], t
    ids = lambda rows: sorted(r.split(",")[0] for r in rows)  # noqa: E731
    assert ids(after["meta_qlt_finding_cur"]) == ids(before["meta_qlt_finding_cur"])


def test_clock_skew_and_counter_resets_lower_consistency(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        run = sim_run.run(wh, "skew=0.03,resets=0.02", mix="all", n=5000)
        c = _campus(wh)
    assert run.faults["skew"] > 50
    assert c["skew_cnt"] == run.fault_readings["skew"]  # the edge flags every reading of a skewed message
    # a reset shows as a decrease unless the counter was still at zero or it hit a series' first reading
    assert 0.5 * run.faults["resets"] <= c["decrease_cnt"] <= 2 * run.faults["resets"]
    injected = (run.fault_readings["skew"] + run.faults["resets"]) / run.readings
    assert abs((1 - c["consistency_rate"]) - injected) < 0.01


def test_late_batches_lower_timeliness_by_their_share(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        run = sim_run.run(wh, "", n=3000, devices=20, late_every=4)
        c = _campus(wh)
        (shown,) = build_report(wh)["timeliness"]
    assert run.late_readings > 0
    assert c["timely_cnt"] == c["reading_cnt"] - run.late_readings  # no duplicates: every reading is kept
    assert c["lag_max_ms"] >= sim_run.LATE_MS
    assert shown["late_cnt"] == run.late_readings
    assert shown["lag_max_ms"] == c["lag_max_ms"]
    assert shown["dwd_lag_max_ms"] >= shown["lag_max_ms"]  # DWD is loaded after ODS
    assert shown["edge_late_cnt"] == run.edge_too_late > 0  # the edge's own late data, from its heartbeats


def test_malformed_messages_lower_validity_through_the_heartbeat_counters(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        run = sim_run.run(wh, "malformed=0.04", n=4000)
        c = _campus(wh)
        gw = wh.query("SELECT quarantine_cnt, validity_rate FROM dws_qlt_scope_1d WHERE scope_code = 'gateway'")[1]
        losses = dict(wh.query("SELECT reason_code, loss_cnt FROM dws_qlt_gateway_loss_1d "
                               "WHERE cause_code = 'quarantine'")[1])
    quarantined = sum(run.quarantined.values())
    assert run.faults["malformed"] > 100
    # every malformed message is refused by the decoder, and nothing else is (the counter is exact)
    assert run.malformed_quarantined == run.faults["malformed"] == quarantined
    assert losses == dict(run.quarantined)  # per reason, from the cumulative heartbeat counters
    assert c["quarantine_cnt"] == gw[0][0] == quarantined
    assert c["invalid_cnt"] == 0
    assert c["validity_rate"] == pytest.approx(1 - quarantined / (c["reading_cnt"] + quarantined))
    assert gw[0][1] == pytest.approx(c["validity_rate"])
    # per message, the refused share is the injected rate
    assert abs(quarantined / run.messages - 0.04) < 0.01
    assert c["evict_cnt"] == 0


def _dwd_union(extra: str = "") -> str:
    return " UNION ALL ".join(f"SELECT device_id, metric_code, agg_code, ts_ms{extra} FROM {t}"
                              for t in PROCESS_TABLES.values())


def _horizon(wh: Warehouse) -> tuple[int, int]:
    """The day's data horizon: the median device's first and last reading (one campus-day in these runs)."""
    lo, hi = wh.query(f"SELECT CAST(median(f) AS BIGINT), CAST(median(l) AS BIGINT) FROM (SELECT device_id, "
                      f"MIN(ts_ms) AS f, MAX(ts_ms) AS l FROM ({_dwd_union()}) u GROUP BY device_id) d")[1][0]
    return int(lo), int(hi)


def _dwd_span(wh: Warehouse) -> tuple[int, int]:
    lo, hi = wh.query(f"SELECT MIN(ts_ms), MAX(ts_ms) FROM ({_dwd_union()}) u")[1][0]
    return int(lo), int(hi)


def test_lag_to_dwd_is_measured_from_the_transform_run_that_loaded_it(tmp_path: Path) -> None:
    now = [0]
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}", clock_ms=lambda: now[0]) as wh:
        now[0] = sim_run.START_MS + 6 * 3_600_000  # the transforms run at this (injected) time
        sim_run.run(wh, "", n=2000, devices=10)
        lo, hi = _dwd_span(wh)
        finished = wh.query("SELECT MIN(finished_ms), MAX(finished_ms) FROM meta_etl_run_log "
                            "WHERE transform_name = 'dwd_reading'")[1][0]
        _cols, rows = wh.query("SELECT lag_p50_ms, dwd_lag_p50_ms, dwd_lag_p95_ms, dwd_lag_max_ms "
                              "FROM dws_qlt_device_1d")
        c = _campus(wh)
    assert finished[0] >= now[0]  # one run: every reading reached DWD when it finished
    assert len(rows) == 10
    for ods_p50, p50, p95, mx in rows:
        assert ods_p50 < p50  # DWD is loaded hours after ODS here
        assert finished[0] - hi <= p50 <= p95 <= mx <= finished[1] - lo
    assert finished[0] - lo <= c["dwd_lag_max_ms"] <= finished[1] - lo
    assert c["dwd_lag_p95_ms"] == max(r[2] for r in rows)  # the worst device's


def test_a_device_silent_all_day_owes_its_profile_readings(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        run = sim_run.run(wh, "", n=3000, devices=20, silent_devices=2)
        lo, hi = _horizon(wh)
        day = wh.query("SELECT device_id, reading_cnt, expected_cnt, gap_cnt, gap_max_ms, profile_ref "
                       "FROM dws_qlt_device_1d q JOIN dim_iot_device d USING (device_id) "
                       "WHERE device_id LIKE '%-silent%' ORDER BY device_id")[1]
        intervals = dict(wh.query("SELECT profile_ref, SUM(CEIL(? / (interval_s * 1000.0))) "
                                  "FROM dim_iot_profile_metric WHERE interval_s > 0 GROUP BY profile_ref",
                                  (hi - lo,))[1])
        hourly = dict(wh.query("SELECT device_id, SUM(expected_cnt) FROM dws_qlt_device_1h "
                               "WHERE reading_cnt = 0 GROUP BY device_id")[1])
        c = _campus(wh)
        sent = wh.query("SELECT SUM(reading_cnt), SUM(expected_cnt) FROM dws_qlt_device_1d "
                        "WHERE device_id NOT LIKE '%-silent%'")[1][0]
    assert run.readings > 0
    assert len(day) == 2
    owed = 0
    for device, readings, expected, gaps, gap_max, profile in day:
        assert (readings, gaps, gap_max) == (0, 1, hi - lo)  # the campus's data horizon that day
        assert expected == intervals[profile] > 0  # one reading per declared interval over the horizon
        assert hourly[device] == expected  # the hours add up to the day
        owed += expected
    assert c["expected_cnt"] == sent[1] + owed
    assert c["completeness_rate"] == pytest.approx(sent[0] / (sent[1] + owed))
    assert c["device_cnt"] == 22


def test_a_device_that_stops_early_has_a_trailing_gap_to_the_horizon(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        run = sim_run.run(wh, "", n=12000, devices=10, stop_at=0.25)
        _, hi = _horizon(wh)
        # per raw series of the device: its last reading and the interval it is held to beyond it: the profile's
        # declared interval, or its median step when that is longer (here it reports far faster than declared);
        # none for a metric without a declared interval (link_quality here): not extrapolated
        series = wh.query(f"""
            SELECT s.metric_code, MAX(s.ts_ms), CASE WHEN MIN(pm.interval_s) IS NOT NULL
                THEN GREATEST(MIN(pm.interval_s) * 1000, median(s.step)) END
            FROM (SELECT metric_code, ts_ms, profile_ref,
                         ts_ms - LAG(ts_ms) OVER (PARTITION BY metric_code ORDER BY ts_ms) AS step
                  FROM ({_dwd_union(", profile_ref")}) u WHERE device_id = ? AND agg_code = 'raw') s
            LEFT JOIN dim_iot_profile_metric pm ON pm.profile_ref = s.profile_ref AND pm.metric_code = s.metric_code
            GROUP BY s.metric_code""", (run.stopped,))[1]
        day = wh.query("SELECT reading_cnt, expected_cnt, gap_cnt, gap_max_ms FROM dws_qlt_device_1d "
                       "WHERE device_id = ?", (run.stopped,))[1][0]
        hour = wh.query("SELECT SUM(gap_cnt) FROM dws_qlt_device_1h WHERE device_id = ? AND hour_ms = ?",
                        (run.stopped, hi - hi % 3_600_000))[1][0][0]
        others = wh.query("SELECT SUM(expected_cnt - reading_cnt) FROM dws_qlt_device_1d WHERE device_id <> ?",
                          (run.stopped,))[1][0][0]
        (dt,) = wh.query("SELECT dt FROM dws_qlt_device_1d WHERE device_id = ?", (run.stopped,))[1][0]
        fid = f"{dt}:device:{run.stopped}:completeness"  # above the threshold: no finding, the evidence all the same
        ev = evidence_for(wh, FindingRef(fid, "cmp-q", "device", run.stopped, dt, "completeness"), limit=100)
    assert run.stopped
    # gaps where the time since the last reading exceeds gap_factor x the interval: round(step / interval) - 1
    # readings each, as if a reading stood at the horizon's end
    factor = default_config().gap_factor
    gapped = [(m, last, iv) for m, last, iv in series if iv is not None and hi - last > factor * iv]
    assert 3 <= len(gapped) < len(series)  # the 600 s metrics have a gap; not the hourly battery ones, link_quality
    owed = sum(round((hi - last) / iv) - 1 for _, last, iv in gapped)
    readings, expected, gaps, gap_max = day
    assert expected - readings == owed == ev.counted["trailing_gap"] > 0
    assert gaps == len(gapped)
    assert gap_max == max(hi - last for _, last, _ in gapped)
    assert max(last for _, last, _ in series) < run.stopped_ts_ms < hi
    assert hour == len(gapped)  # placed in the hour the horizon ends in
    # the finding's evidence: one trailing gap per gapped series, from its last reading to the horizon's end
    assert sorted((r["metric_code"], r["from_ts_ms"], r["ts_ms"]) for r in ev.rows) == sorted(
        (m, last, hi) for m, last, _ in gapped)
    assert {r["kind"] for r in ev.rows} == {"trailing_gap"}
    assert others == 0  # nobody else stopped or started late, and no faults: no other gaps


def test_silent_devices_count_only_on_a_day_most_devices_reported(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        # 10 devices report, 12 more are registered and silent: 10 of 22 is below silent_min_share (0.5), so
        # the day's horizon is not taken as proof that the 12 should have reported
        sim_run.run(wh, "", n=1500, devices=10, silent_devices=12)
        silent = wh.query("SELECT COUNT(*) FROM dws_qlt_device_1d WHERE reading_cnt = 0")[1][0][0]
        reporting = wh.query("SELECT COUNT(*) FROM dws_qlt_device_1d")[1][0][0]
    assert default_config().silent_min_share == 0.5
    assert (silent, reporting) == (0, 10)

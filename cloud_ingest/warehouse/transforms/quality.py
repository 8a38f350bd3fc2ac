"""DWD (+ ODS) → data-quality tables (clause 六): per device and hour/day, per scope and day, campus score.

Like DWS, each transform recomputes the campus days its inputs touched (delete-and-recompute: idempotent).
Per kept reading of those days (all DWD reading tables) one staged row carries: the step since the
series' previous reading, the value change, the lags to ODS (``received_ms - ts_ms``) and to DWD, and flags for
spike, stuck and counter decrease. The rules themselves (expected interval, gap, spike, stuck, room and
sub-meter checks) are SQL in :mod:`.quality_rules`, shared with the evidence of findings. Registered devices
that sent nothing all day owe their profile's readings (``_stage_silent``).
Limits and weights come from ``cloud_ingest/quality/quality.yaml``; docs/quality.md gives the formulas.
"""

from __future__ import annotations

from cloud_ingest.quality.config import DIMENSIONS, QualityConfig, default_config
from cloud_ingest.warehouse.transforms import quality_rules as rules
from cloud_ingest.warehouse.transforms.base import Context, Transform
from cloud_ingest.warehouse.transforms.common import DAY_INPUTS, replace_days, stage_days, touched_days
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES
from cloud_ingest.warehouse.transforms.quality_losses import LOSS_CLASSES
from cloud_ingest.warehouse.transforms.quality_losses import TABLE as LOSS_TABLE
from cloud_ingest.warehouse.transforms.quality_rules import F8, Q_INVALID

DAYS = "tmp_qlt_days"
COUNTS = ("reading_cnt", "expected_cnt", "gap_cnt", "dup_cnt", "timely_cnt", "out_range_cnt", "spike_cnt",
          "stuck_cnt", "decrease_cnt", "skew_cnt", "disagree_cnt", "invalid_cnt")


def _stage_readings(ctx: Context, cfg: QualityConfig) -> None:
    s = ctx.session
    union = " UNION ALL ".join(
        f"SELECT e.campus_id, e.building_id, e.room_id, e.gateway_id, e.device_id, e.metric_code, e.agg_code, "
        f"e.window_s, e.ts_ms, e.hour_ms, e.dt, e.value, e.quality_flag, e.batch_seq, e.load_id, e.profile_ref "
        f"FROM {t} e "
        f"JOIN {DAYS} a ON a.campus_id = e.campus_id AND a.dt = e.dt" for t in PROCESS_TABLES.values())
    part = "PARTITION BY r.device_id, r.metric_code, r.agg_code, r.window_s, r.dt ORDER BY r.ts_ms"
    s.execute("DROP TABLE IF EXISTS tmp_qlt_rd")
    s.execute(f"""
CREATE TEMP TABLE tmp_qlt_rd AS
WITH r AS ({union}), ld AS (
    -- when each ODS load reached DWD: the dwd_reading run whose (lo_id, hi_id] holds it (the first, after a
    -- rebuild)
    -- (the run log grows by a row per DWD run: only runs ending at or after the first load are looked at)
    SELECT x.load_id, MIN(g.finished_ms) AS dwd_ms
    FROM (SELECT DISTINCT load_id FROM r) x
    JOIN meta_etl_run_log g ON g.transform_name = 'dwd_reading' AND x.load_id > g.lo_id AND x.load_id <= g.hi_id
    WHERE g.hi_id >= (SELECT MIN(load_id) FROM r)
    GROUP BY x.load_id
), w AS (
    SELECT r.*, b.received_ms - r.ts_ms AS lag_ms, ld.dwd_ms - r.ts_ms AS dwd_lag_ms, m.metric_type,
        r.ts_ms - LAG(r.ts_ms) OVER ({part}) AS step_ms,
        r.value - LAG(r.value) OVER ({part}) AS delta_val,
        {rules.run_windows(cfg, "r", part)}
    FROM r
    LEFT JOIN ods_iot_batch_di b ON b.gateway_id = r.gateway_id AND b.batch_seq = r.batch_seq
    LEFT JOIN ld ON ld.load_id = r.load_id
    LEFT JOIN dim_iot_metric m ON m.metric_code = r.metric_code
)
SELECT w.campus_id, w.building_id, w.room_id, w.gateway_id, w.device_id, w.metric_code, w.agg_code, w.window_s,
    w.profile_ref, w.ts_ms, w.hour_ms, w.dt, w.value, w.quality_flag, w.lag_ms, w.dwd_lag_ms, w.step_ms,
    w.delta_val,
    CASE WHEN {rules.is_spike(cfg, "w", "w.delta_val", "w.step_ms")} THEN 1 ELSE 0 END AS is_spike,
    CASE WHEN {rules.is_stuck(cfg, "w")} THEN 1 ELSE 0 END AS is_stuck,
    CASE WHEN {rules.is_decrease("w", "w.delta_val")} THEN 1 ELSE 0 END AS is_decrease
FROM w""")
    # gaps: steps longer than gap_factor x the series-day's expected interval (rules.interval_ctes), and raw
    # series starting late or stopping early within the campus's data horizon (placed in the hour of the
    # reading that ends the gap, or of the horizon's end)
    keys = (*rules.SERIES, "dt")
    # each campus-day's data horizon, once: the edge gaps here and the silent devices (_stage_silent) use it
    s.execute("DROP TABLE IF EXISTS tmp_qlt_hz")
    s.execute(f"CREATE TEMP TABLE tmp_qlt_hz AS WITH {rules.horizon_cte('tmp_qlt_rd')} SELECT * FROM hz")
    s.execute("DROP TABLE IF EXISTS tmp_qlt_gap")
    s.execute(f"""
CREATE TEMP TABLE tmp_qlt_gap AS
WITH {rules.interval_ctes("tmp_qlt_rd", keys)}, hz AS (SELECT * FROM tmp_qlt_hz),
    {rules.edge_gap_ctes(cfg, "tmp_qlt_rd", keys)}
SELECT r.device_id, r.hour_ms, r.dt, r.step_ms, {rules.gap_missing("r.step_ms", "iv.interval_ms")} AS missing_n
FROM tmp_qlt_rd r
JOIN iv ON {rules.join_on("iv", "r", keys)}
WHERE {rules.is_gap(cfg, "r.step_ms", "iv.interval_ms")}
UNION ALL
SELECT eg.device_id, eg.to_ms - eg.to_ms % 3600000, eg.dt, eg.to_ms - eg.from_ms,
    {rules.gap_missing("eg.to_ms - eg.from_ms", "eg.interval_ms")}
FROM eg""")
    # duplicates: ODS rows of each kept key beyond the first
    s.execute("DROP TABLE IF EXISTS tmp_qlt_dup")
    s.execute("""
CREATE TEMP TABLE tmp_qlt_dup AS
SELECT k.device_id, k.hour_ms, COUNT(*) - COUNT(DISTINCT k.ts_ms || ':' || k.metric_code || ':' || k.agg_code
                                                 || ':' || CAST(k.window_s AS VARCHAR)) AS dup_n
FROM tmp_qlt_rd k
JOIN ods_iot_reading_di o ON o.device_id = k.device_id AND o.metric_code = k.metric_code
    AND o.agg_code = k.agg_code AND o.window_s = k.window_s AND o.ts_ms = k.ts_ms
GROUP BY k.device_id, k.hour_ms""")
    # consistency across sources: device-hours off their room's reference; main meters whose hour the
    # sub-meters' sum misses (every reading of that device-hour counts)
    s.execute("DROP TABLE IF EXISTS tmp_qlt_dis")
    s.execute(f"""
CREATE TEMP TABLE tmp_qlt_dis AS
WITH {rules.room_disagreement_ctes(cfg, "tmp_qlt_rd")}, {rules.submeter_ctes("tmp_qlt_rd", "er.delta_val")}
SELECT x.device_id, x.hour_ms, SUM(x.n) AS dis_n FROM x GROUP BY x.device_id, x.hour_ms
UNION ALL
SELECT e.device_id, e.hour_ms, e.n
FROM e JOIN subs ON subs.main_id = e.device_id AND subs.hour_ms = e.hour_ms
WHERE {rules.is_submeter_mismatch(cfg)}""")


def _stage_silent(ctx: Context, cfg: QualityConfig) -> None:
    """Device-hours of registered devices that sent nothing all day, with the readings they owed.

    A staged campus day's data horizon runs from the median device's first to the median device's last
    reading (``tmp_qlt_hz``, staged by ``_stage_readings`` with ``rules.horizon_cte``: the day so far, for
    today). A device placed in the campus over part of that horizon with no reading that day owes, per metric
    its profile gives an interval, one reading per interval from the start of its span:
    ``ceil((t - lo) / interval)`` readings are due before ``t``; an hour owes the difference at its two ends
    (the hours add up to the day). Only on days when at least ``silent_min_share`` of the campus's registered
    devices reported: a few stray readings do not make everyone else silent.
    """
    s = ctx.session
    s.execute("DROP TABLE IF EXISTS tmp_qlt_sil")
    s.execute(f"""
CREATE TEMP TABLE tmp_qlt_sil AS
WITH hz AS (SELECT * FROM tmp_qlt_hz), placed AS (
    SELECT d.*, hz.dt, GREATEST(hz.lo_ms, d.valid_from_ms) AS span_lo, LEAST(hz.hi_ms, d.valid_to_ms) AS span_hi,
        hz.device_n
    FROM dim_iot_device d
    JOIN hz ON hz.campus_id = d.campus_id AND d.valid_from_ms <= hz.hi_ms AND d.valid_to_ms > hz.lo_ms
), reg AS (
    SELECT p.campus_id, p.dt, COUNT(DISTINCT p.device_id) AS reg_n FROM placed p GROUP BY p.campus_id, p.dt
), dev AS (
    SELECT p.campus_id, p.building_id, p.room_id, p.gateway_id, p.device_id, p.profile_ref, p.dt,
        p.span_lo AS lo_ms, p.span_hi AS hi_ms
    FROM placed p JOIN reg ON reg.campus_id = p.campus_id AND reg.dt = p.dt
    WHERE p.device_n >= {float(cfg.silent_min_share)!r} * reg.reg_n
        AND NOT EXISTS (SELECT 1 FROM tmp_qlt_rd r WHERE r.device_id = p.device_id AND r.dt = p.dt)
), h AS (
    SELECT dev.*, pm.interval_s * 1000 AS iv_ms, a.day_start_ms - a.day_start_ms % 3600000 + g.k * 3600000 AS hour_ms
    FROM dev
    JOIN {DAYS} a ON a.campus_id = dev.campus_id AND a.dt = dev.dt
    JOIN dim_iot_profile_metric pm ON pm.profile_ref = dev.profile_ref AND pm.interval_s > 0
    CROSS JOIN generate_series(0, 24) AS g(k)
), due AS (
    SELECT h.*, CEIL(CAST(LEAST(GREATEST(h.hour_ms + 3600000, h.lo_ms), h.hi_ms) - h.lo_ms AS {F8}) / h.iv_ms)
        - CEIL(CAST(LEAST(GREATEST(h.hour_ms, h.lo_ms), h.hi_ms) - h.lo_ms AS {F8}) / h.iv_ms) AS due_n
    FROM h
)
SELECT MIN(campus_id) AS campus_id, MIN(building_id) AS building_id, MIN(room_id) AS room_id,
    MIN(gateway_id) AS gateway_id, device_id, hour_ms, dt, CAST(SUM(due_n) AS BIGINT) AS expected_n,
    MIN(lo_ms) AS lo_ms, MAX(hi_ms) AS hi_ms
FROM due GROUP BY device_id, hour_ms, dt HAVING SUM(due_n) > 0""")


def _silent_sql(table: str, grain: str) -> str:
    """Rows of the silent device-hours / device-days (``tmp_qlt_sil``): nothing received, all expected.

    The whole horizon is one gap; the hourly table places it in the device's last hour, as other gaps are
    placed in the hour of the reading that ends them.
    """
    zeros = ", ".join("0" for c in COUNTS if c not in ("reading_cnt", "expected_cnt", "gap_cnt", "dup_cnt"))
    if grain == "hour_ms":
        return f"""
INSERT INTO {table} (campus_id, building_id, room_id, gateway_id, device_id, hour_ms, dt, reading_cnt, expected_cnt,
    gap_cnt, gap_max_ms, dup_cnt, {", ".join(c for c in COUNTS[4:])}, load_id)
SELECT x.campus_id, x.building_id, x.room_id, x.gateway_id, x.device_id, x.hour_ms, x.dt, 0, x.expected_n,
    CASE WHEN x.hour_ms = l.last_ms THEN 1 ELSE 0 END, CASE WHEN x.hour_ms = l.last_ms THEN l.span_ms END, 0,
    {zeros}, ?
FROM tmp_qlt_sil x
JOIN (SELECT device_id, dt, MAX(hour_ms) AS last_ms, MAX(hi_ms) - MIN(lo_ms) AS span_ms FROM tmp_qlt_sil
      GROUP BY device_id, dt) l ON l.device_id = x.device_id AND l.dt = x.dt"""
    return f"""
INSERT INTO {table} (campus_id, building_id, room_id, gateway_id, device_id, dt, reading_cnt, expected_cnt,
    gap_cnt, gap_max_ms, dup_cnt, {", ".join(c for c in COUNTS[4:])}, load_id)
SELECT MIN(x.campus_id), MIN(x.building_id), MIN(x.room_id), MIN(x.gateway_id), x.device_id, x.dt, 0,
    SUM(x.expected_n), 1, MAX(x.hi_ms) - MIN(x.lo_ms), 0, {zeros}, ?
FROM tmp_qlt_sil x GROUP BY x.device_id, x.dt"""


def _device_sql(ctx: Context, cfg: QualityConfig, table: str, grain: str) -> str:
    hour = "r.hour_ms, " if grain == "hour_ms" else ""
    key = "r.device_id, r.hour_ms" if grain == "hour_ms" else "r.device_id, r.dt"
    gap_key = "g.device_id, g.hour_ms" if grain == "hour_ms" else "g.device_id, g.dt"
    dup_join = ("d.device_id = r.device_id AND d.hour_ms = r.hour_ms" if grain == "hour_ms" else
                "d.device_id = r.device_id AND d.dt = r.dt")
    return f"""
INSERT INTO {table} (campus_id, building_id, room_id, gateway_id, device_id, {hour.replace("r.", "")}dt,
    reading_cnt, expected_cnt, gap_cnt, gap_max_ms, dup_cnt, lag_p50_ms, lag_p95_ms, lag_max_ms, dwd_lag_p50_ms,
    dwd_lag_p95_ms, dwd_lag_max_ms, timely_cnt, out_range_cnt, spike_cnt, stuck_cnt, decrease_cnt, skew_cnt,
    disagree_cnt, invalid_cnt, load_id)
WITH g AS (
    SELECT {gap_key}, COUNT(*) AS gap_n, SUM(g.missing_n) AS missing_n, MAX(g.step_ms) AS gap_max
    FROM tmp_qlt_gap g GROUP BY {gap_key}
), d AS (
    SELECT x.device_id, {"x.hour_ms" if grain == "hour_ms" else "y.dt"}, SUM(x.dup_n) AS dup_n
    FROM tmp_qlt_dup x {"" if grain == "hour_ms" else
                        "JOIN (SELECT DISTINCT device_id, hour_ms, dt FROM tmp_qlt_rd) y "
                        "ON y.device_id = x.device_id AND y.hour_ms = x.hour_ms"}
    GROUP BY x.device_id, {"x.hour_ms" if grain == "hour_ms" else "y.dt"}
), c AS (
    SELECT x.device_id, {"x.hour_ms" if grain == "hour_ms" else "y.dt"}, SUM(x.dis_n) AS dis_n
    FROM tmp_qlt_dis x {"" if grain == "hour_ms" else
                        "JOIN (SELECT DISTINCT device_id, hour_ms, dt FROM tmp_qlt_rd) y "
                        "ON y.device_id = x.device_id AND y.hour_ms = x.hour_ms"}
    GROUP BY x.device_id, {"x.hour_ms" if grain == "hour_ms" else "y.dt"}
), a AS (
    SELECT MIN(r.campus_id) AS campus_id, MIN(r.building_id) AS building_id, MIN(r.room_id) AS room_id,
        MIN(r.gateway_id) AS gateway_id, {key}{", MIN(r.dt) AS dt" if grain == "hour_ms" else ""},
        COUNT(*) AS reading_n,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY r.lag_ms) AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY r.lag_ms) AS p95, MAX(r.lag_ms) AS lag_max,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY r.dwd_lag_ms) AS dwd_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY r.dwd_lag_ms) AS dwd_p95, MAX(r.dwd_lag_ms) AS dwd_max,
        SUM(CASE WHEN {rules.is_timely(cfg, "r.lag_ms")} THEN 1 ELSE 0 END) AS timely_n,
        SUM(CASE WHEN {rules.is_out_of_range("r.quality_flag")} THEN 1 ELSE 0 END) AS oor_n,
        SUM(r.is_spike) AS spike_n, SUM(r.is_stuck) AS stuck_n, SUM(r.is_decrease) AS dec_n,
        SUM(CASE WHEN {rules.is_clock_skew("r.quality_flag")} THEN 1 ELSE 0 END) AS skew_n,
        SUM(CASE WHEN (r.quality_flag & {Q_INVALID}) <> 0 THEN 1 ELSE 0 END) AS invalid_n
    FROM tmp_qlt_rd r
    GROUP BY {key}
)
SELECT r.campus_id, r.building_id, r.room_id, r.gateway_id, r.device_id, {hour}r.dt, r.reading_n,
    r.reading_n + COALESCE(g.missing_n, 0), COALESCE(g.gap_n, 0), g.gap_max, COALESCE(d.dup_n, 0),
    r.p50, r.p95, r.lag_max, r.dwd_p50, r.dwd_p95, r.dwd_max, r.timely_n, r.oor_n, r.spike_n, r.stuck_n, r.dec_n,
    r.skew_n,
    COALESCE(c.dis_n, 0), r.invalid_n, ?
FROM a r
LEFT JOIN g ON g.device_id = r.device_id AND g.{grain} = r.{grain}
LEFT JOIN d ON {dup_join}
LEFT JOIN c ON c.device_id = r.device_id AND c.{grain} = r.{grain}"""


def qlt_device(ctx: Context) -> dict[str, int]:
    """Per device and hour / day quality counts for the touched campus days."""
    if stage_days(ctx, DAYS, touched_days(ctx, tuple(PROCESS_TABLES.values()))) == 0:
        return {"dws_qlt_device_1h": 0, "dws_qlt_device_1d": 0}
    cfg = default_config()
    _stage_readings(ctx, cfg)
    _stage_silent(ctx, cfg)
    hourly = replace_days(ctx, "dws_qlt_device_1h", DAYS, _device_sql(ctx, cfg, "dws_qlt_device_1h", "hour_ms"))
    daily = replace_days(ctx, "dws_qlt_device_1d", DAYS, _device_sql(ctx, cfg, "dws_qlt_device_1d", "dt"))
    for table, grain in (("dws_qlt_device_1h", "hour_ms"), ("dws_qlt_device_1d", "dt")):
        n = ctx.session.execute_count(_silent_sql(table, grain), (ctx.hi,))
        hourly, daily = (hourly + n, daily) if grain == "hour_ms" else (hourly, daily + n)
    for t in ("tmp_qlt_rd", "tmp_qlt_hz", "tmp_qlt_gap", "tmp_qlt_dup", "tmp_qlt_dis", "tmp_qlt_sil"):
        ctx.session.execute(f"DROP TABLE IF EXISTS {t}")
    return {"dws_qlt_device_1h": hourly, "dws_qlt_device_1d": daily}


def rates_sql(cfg: QualityConfig, quarantined: str = "0") -> dict[str, str]:
    """SQL of each dimension rate and the score over summed counts (columns of a scope row).

    ``quarantined``: SQL of the scope's quarantined messages; each counts as one invalid record.
    """
    n = f"CAST(NULLIF(SUM(reading_cnt), 0) AS {F8})"
    rates = {
        "completeness": f"CAST(SUM(reading_cnt) AS {F8}) / NULLIF(SUM(expected_cnt), 0)",
        "timeliness": f"SUM(timely_cnt) / {n}",
        "uniqueness": f"1 - SUM(dup_cnt) / CAST(NULLIF(SUM(reading_cnt) + SUM(dup_cnt), 0) AS {F8})",
        # GREATEST ignores a NULL: no readings must give no rate, not 0
        "accuracy": f"CASE WHEN SUM(reading_cnt) > 0 THEN "
                    f"GREATEST(0, 1 - (SUM(out_range_cnt) + SUM(spike_cnt) + SUM(stuck_cnt)) / {n}) END",
        "consistency": f"CASE WHEN SUM(reading_cnt) > 0 THEN "
                       f"GREATEST(0, 1 - (SUM(decrease_cnt) + SUM(skew_cnt) + SUM(disagree_cnt)) / {n}) END",
        "validity": f"1 - (SUM(invalid_cnt) + {quarantined}) "
                    f"/ CAST(NULLIF(SUM(reading_cnt) + {quarantined}, 0) AS {F8})",
    }
    total = sum(cfg.weights.values())
    score = " + ".join(f"{cfg.weights[d] / total!r} * COALESCE({rates[d]}, 1)" for d in DIMENSIONS)
    return {**rates, "score": f"100 * ({score})"}


def qlt_scope(ctx: Context) -> dict[str, int]:
    """Per scope (device/room/building/gateway/campus) and hour/day: rates and score; campus score; findings."""
    if stage_days(ctx, "tmp_qlt_sdays", touched_days(ctx, ("dws_qlt_device_1d", LOSS_TABLE))) == 0:
        return {"dws_qlt_scope_1d": 0, "dws_qlt_scope_1h": 0, "ads_qlt_campus_score_1d": 0,
                "meta_qlt_finding_cur": 0}
    cfg = default_config()
    rate_cols = ", ".join(f"{d}_rate" for d in DIMENSIONS)
    n = _scope_rows(ctx, cfg, "dws_qlt_scope_1d", "dws_qlt_device_1d", "")
    n_hour = _scope_rows(ctx, cfg, "dws_qlt_scope_1h", "dws_qlt_device_1h", "hour_ms")
    ads = replace_days(ctx, "ads_qlt_campus_score_1d", "tmp_qlt_sdays", f"""
INSERT INTO ads_qlt_campus_score_1d (campus_id, dt, device_cnt, reading_cnt, {rate_cols}, quality_score, load_id)
SELECT s.campus_id, s.dt, s.device_cnt, s.reading_cnt, {rate_cols}, s.quality_score, ?
FROM dws_qlt_scope_1d s
JOIN tmp_qlt_sdays a ON a.campus_id = s.campus_id AND a.dt = s.dt
WHERE s.scope_code = 'campus'""")
    found = _findings(ctx, cfg)
    return {"dws_qlt_scope_1d": n, "dws_qlt_scope_1h": n_hour, "ads_qlt_campus_score_1d": ads,
            "meta_qlt_finding_cur": found}


def _loss_sql(scope: str, cause: str) -> str:
    """Correlated SQL of a gateway / campus scope-day's quarantined messages or evicted unsent rows."""
    key = {"gateway": "l.gateway_id = d.gateway_id", "campus": "l.campus_id = d.campus_id"}.get(scope)
    if key is None:
        return "0"
    extra = "" if cause == "quarantine" else " AND (" + " OR ".join(
        f"l.reason_code LIKE '{c}.%'" for c in LOSS_CLASSES) + ")"
    return (f"COALESCE((SELECT SUM(l.loss_cnt) FROM {LOSS_TABLE} l WHERE {key} AND l.dt = d.dt "
            f"AND l.cause_code = '{cause}'{extra}), 0)")


def _scope_rows(ctx: Context, cfg: QualityConfig, table: str, source: str, hour: str) -> int:
    """Replace ``table``'s rows of the staged days by per-scope sums of ``source`` (per hour if ``hour``).

    Daily rows of gateways and campuses also carry the edge's quarantined messages and evicted unsent rows
    (``dws_qlt_gateway_loss_1d``, from heartbeats); quarantined messages count against validity.
    """
    cols = ", ".join(c for c in COUNTS if c != "reading_cnt")
    sums = ", ".join(f"SUM({c})" for c in COUNTS if c != "reading_cnt")
    rate_cols = ", ".join(f"{d}_rate" for d in DIMENSIONS)
    h_col, h_sel = ("hour_ms, ", "d.hour_ms, ") if hour else ("", "")
    s = ctx.session
    s.execute(f"DELETE FROM {table} t WHERE EXISTS "
              "(SELECT 1 FROM tmp_qlt_sdays a WHERE a.campus_id = t.campus_id AND a.dt = t.dt)")
    n = 0
    for scope in ("device", "room", "building", "gateway", "campus"):
        sid = f"d.{scope}_id"
        quarantined, evicted = ("0", "0") if hour else (_loss_sql(scope, "quarantine"), _loss_sql(scope, "evict"))
        r = rates_sql(cfg, quarantined)
        rate_vals = ", ".join(r[d] for d in DIMENSIONS)
        loss_cols, loss_vals = ("", "") if hour else ("quarantine_cnt, evict_cnt, ", f"{quarantined}, {evicted}, ")
        n += s.execute_count(f"""
INSERT INTO {table} (campus_id, scope_code, scope_id, {h_col}dt, device_cnt, reading_cnt, {cols}, gap_max_ms,
    lag_p95_ms, lag_max_ms, dwd_lag_p95_ms, dwd_lag_max_ms, {loss_cols}{rate_cols}, quality_score, load_id)
SELECT d.campus_id, '{scope}', {sid}, {h_sel}d.dt, COUNT(DISTINCT d.device_id), SUM(reading_cnt), {sums},
    MAX(gap_max_ms), MAX(lag_p95_ms), MAX(lag_max_ms), MAX(dwd_lag_p95_ms), MAX(dwd_lag_max_ms),
    {loss_vals}{rate_vals}, {r["score"]}, ?
FROM {source} d
JOIN tmp_qlt_sdays a ON a.campus_id = d.campus_id AND a.dt = d.dt
WHERE {sid} IS NOT NULL
GROUP BY d.campus_id, {sid}, {h_sel}d.dt""", (ctx.hi,))
    return n


def _findings(ctx: Context, cfg: QualityConfig) -> int:
    """Refresh open findings of the staged days; acknowledged and fixed findings are kept as they are."""
    s = ctx.session
    s.execute("DELETE FROM meta_qlt_finding_cur t WHERE t.status_code = 'open' AND EXISTS "
              "(SELECT 1 FROM tmp_qlt_sdays a WHERE a.campus_id = t.campus_id AND a.dt = t.dt)")
    scopes = ", ".join(f"'{x}'" for x in cfg.finding_scopes) or "''"
    n = 0
    for dim in DIMENSIONS:
        if dim not in cfg.thresholds:
            continue
        n += s.execute_count(f"""
INSERT INTO meta_qlt_finding_cur (finding_id, campus_id, scope_code, scope_id, dt, dimension_code, value,
    threshold_val, status_code, opened_ms, updated_ms, note_text)
SELECT CAST(s.dt AS VARCHAR) || ':' || s.scope_code || ':' || s.scope_id || ':{dim}', s.campus_id, s.scope_code,
    s.scope_id, s.dt, '{dim}', s.{dim}_rate, {cfg.thresholds[dim]!r}, 'open', ?, ?, NULL
FROM dws_qlt_scope_1d s
JOIN tmp_qlt_sdays a ON a.campus_id = s.campus_id AND a.dt = s.dt
WHERE s.scope_code IN ({scopes}) AND s.{dim}_rate < {cfg.thresholds[dim]!r}
    AND NOT EXISTS (SELECT 1 FROM meta_qlt_finding_cur f WHERE f.finding_id =
        CAST(s.dt AS VARCHAR) || ':' || s.scope_code || ':' || s.scope_id || ':{dim}')""",
                             (ctx.now_ms, ctx.now_ms))
    return n


_DWD = tuple(PROCESS_TABLES.values())
TRANSFORMS = (
    Transform("qlt_device", qlt_device,
              inputs=(*_DWD, "ods_iot_reading_di", "ods_iot_batch_di", "dim_iot_metric", "dim_iot_authority",
                      "dim_iot_device", "dim_iot_profile_metric", *DAY_INPUTS),
              outputs=("dws_qlt_device_1h", "dws_qlt_device_1d"), after=("dwd_reading",),
              doc="DWD/ODS readings → per device and hour/day: completeness, lag, duplicates, accuracy, consistency"),
    Transform("qlt_scope", qlt_scope, inputs=("dws_qlt_device_1d", "dws_qlt_device_1h", LOSS_TABLE, *DAY_INPUTS),
              # also refreshes meta_qlt_finding_cur: bookkeeping, like the watermark table, so not a lineage output
              outputs=("dws_qlt_scope_1d", "dws_qlt_scope_1h", "ads_qlt_campus_score_1d"),
              after=("qlt_device", "qlt_gateway"),
              doc="per scope and day: six dimension rates, quality score, findings"),
)

"""DWD → DWS: summaries per room / building / campus / device, per hour and per local day.

Every transform recomputes the campus days touched by its change range (see ``common``). Rows flagged out
of range (quality bit 1) and values that could not be unit-converted (NULL) are left out of summaries.
Where a device uploads both raw samples and window means of one metric, an hour uses the raw samples
(they are finer) and otherwise the means — never both, which would count the hour twice.
One datum, one source (一数一源): where the registry names a room's authoritative device for a metric
(``dim_iot_authority``), the room's hourly environment value is that device's; in an hour when it sent nothing
valid, the mean of the room's other devices is used and the row is flagged ``is_fallback``.
"""

from __future__ import annotations

import datetime as dt

from cloud_ingest.warehouse.transforms.base import Context, Transform
from cloud_ingest.warehouse.transforms.common import DAY_INPUTS, replace_days, stage_days, touched_days
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES

DAYS = "tmp_dws_days"
ENERGY_METRIC = "energy_active_total"
PEOPLE_METRIC = "people_count"
PRESENCE_METRIC = "occupancy"
_VALID = "e.value IS NOT NULL AND (e.quality_flag & 1) = 0"
_PREFER_RAW = "CASE WHEN agg_code = 'raw' THEN 0 ELSE 1 END"
# One datum, one source (一数一源): is an authoritative device declared for {room}'s {metric}, placed there at {ms}?
_DECLARED = ("EXISTS (SELECT 1 FROM dim_iot_authority x JOIN dim_iot_device d ON d.device_id = x.device_id "
             "WHERE x.metric_code = {metric} AND d.room_id = {room} AND d.valid_from_ms <= {ms} "
             "AND d.valid_to_ms > {ms})")


def _stage(ctx: Context, sources: tuple[str, ...], *, next_day: bool = False) -> bool:
    keys = touched_days(ctx, sources)
    if next_day:  # a counter delta crossing midnight belongs to the later day: recompute it as well
        keys |= {(c, d + dt.timedelta(days=1)) for c, d in keys}
    return stage_days(ctx, DAYS, keys) > 0


def dws_env(ctx: Context) -> dict[str, int]:
    if not _stage(ctx, ("dwd_env_reading_di",)):
        return {"dws_env_room_1h": 0, "dws_env_room_1d": 0}
    hourly = replace_days(ctx, "dws_env_room_1h", DAYS, f"""
INSERT INTO dws_env_room_1h (campus_id, building_id, room_id, metric_code, hour_ms, dt, device_cnt,
    sample_cnt, value_avg, value_min, value_max, source_device_id, is_fallback, load_id)
WITH dev AS (
    SELECT e.campus_id, e.building_id, e.room_id, e.device_id, e.metric_code, e.hour_ms, e.dt, e.agg_code,
        COUNT(*) AS n, AVG(e.value) AS v_avg, MIN(e.value) AS v_min, MAX(e.value) AS v_max
    FROM dwd_env_reading_di e
    JOIN {DAYS} a ON a.campus_id = e.campus_id AND a.dt = e.dt
    WHERE e.room_id IS NOT NULL AND {_VALID} AND e.agg_code IN ('raw', 'mean')
    GROUP BY e.campus_id, e.building_id, e.room_id, e.device_id, e.metric_code, e.hour_ms, e.dt, e.agg_code
), best AS (
    SELECT dev.*, ROW_NUMBER() OVER (PARTITION BY dev.room_id, dev.device_id, dev.metric_code, dev.hour_ms
                                     ORDER BY {_PREFER_RAW.replace("agg_code", "dev.agg_code")}) AS rk,
        CASE WHEN x.device_id IS NULL THEN 0 ELSE 1 END AS is_auth
    FROM dev LEFT JOIN dim_iot_authority x ON x.device_id = dev.device_id AND x.metric_code = dev.metric_code
), pick AS (
    SELECT best.*, MAX(is_auth) OVER (PARTITION BY room_id, metric_code, hour_ms) AS has_auth
    FROM best WHERE rk = 1
)
SELECT campus_id, building_id, room_id, metric_code, hour_ms, dt, COUNT(*), CAST(SUM(n) AS BIGINT),
    AVG(v_avg), MIN(v_min), MAX(v_max), CASE WHEN MAX(has_auth) = 1 THEN MIN(device_id) END,
    MAX(has_auth) = 0 AND {_DECLARED.format(room="pick.room_id", metric="pick.metric_code", ms="pick.hour_ms")}, ?
FROM pick WHERE is_auth = 1 OR has_auth = 0
GROUP BY campus_id, building_id, room_id, metric_code, hour_ms, dt""")
    daily = replace_days(ctx, "dws_env_room_1d", DAYS, f"""
INSERT INTO dws_env_room_1d (campus_id, building_id, room_id, metric_code, dt, hour_cnt, sample_cnt,
    value_avg, value_min, value_max, fallback_hour_cnt, load_id)
SELECT h.campus_id, h.building_id, h.room_id, h.metric_code, h.dt, COUNT(*),
    CAST(SUM(h.sample_cnt) AS BIGINT), AVG(h.value_avg), MIN(h.value_min), MAX(h.value_max),
    SUM(CASE WHEN h.is_fallback THEN 1 ELSE 0 END), ?
FROM dws_env_room_1h h
JOIN {DAYS} a ON a.campus_id = h.campus_id AND a.dt = h.dt
GROUP BY h.campus_id, h.building_id, h.room_id, h.metric_code, h.dt""")
    return {"dws_env_room_1h": hourly, "dws_env_room_1d": daily}


def dws_occ(ctx: Context) -> dict[str, int]:
    if not _stage(ctx, ("dwd_occ_reading_di",)):
        return {"dws_occ_room_1h": 0}
    n = replace_days(ctx, "dws_occ_room_1h", DAYS, f"""
INSERT INTO dws_occ_room_1h (campus_id, building_id, room_id, hour_ms, dt, sample_cnt, people_avg, people_max,
    is_occupied, load_id)
WITH dev AS (
    SELECT e.campus_id, e.building_id, e.room_id, e.device_id, e.metric_code, e.hour_ms, e.dt, e.agg_code,
        COUNT(*) AS n, AVG(e.value) AS v_avg, MAX(e.value) AS v_max
    FROM dwd_occ_reading_di e
    JOIN {DAYS} a ON a.campus_id = e.campus_id AND a.dt = e.dt
    WHERE e.room_id IS NOT NULL AND {_VALID} AND e.agg_code IN ('raw', 'mean')
        AND e.metric_code IN ('{PEOPLE_METRIC}', '{PRESENCE_METRIC}')
    GROUP BY e.campus_id, e.building_id, e.room_id, e.device_id, e.metric_code, e.hour_ms, e.dt, e.agg_code
), best AS (
    SELECT dev.*, ROW_NUMBER() OVER (PARTITION BY room_id, device_id, metric_code, hour_ms
                                     ORDER BY {_PREFER_RAW}) AS rk
    FROM dev
)
SELECT campus_id, building_id, room_id, hour_ms, dt, CAST(SUM(n) AS BIGINT),
    AVG(CASE WHEN metric_code = '{PEOPLE_METRIC}' THEN v_avg END),
    MAX(CASE WHEN metric_code = '{PEOPLE_METRIC}' THEN v_max END),
    MAX(CASE WHEN (metric_code = '{PEOPLE_METRIC}' AND v_max > 0)
              OR (metric_code = '{PRESENCE_METRIC}' AND v_max >= 1) THEN 1 ELSE 0 END) = 1,
    ?
FROM best WHERE rk = 1
GROUP BY campus_id, building_id, room_id, hour_ms, dt""")
    return {"dws_occ_room_1h": n}


RESET_FRACTION = 0.1  # a meter that drops below this share of its previous reading was reset


def dws_energy(ctx: Context) -> dict[str, int]:
    """Main-meter counter deltas → kWh per building hour and day, and per campus day.

    A delta is the difference between consecutive readings of one meter (raw samples, or window ``last``
    values when the meter sends no raw samples), counted in the hour and building of the later reading.
    A drop to below ``RESET_FRACTION`` of the previous reading is a counter reset and counts the new
    reading's value; a smaller backwards step (a glitch, a reordered or spiked reading) counts 0 — counting
    it as a reset would add the meter's whole lifetime total. The day before each touched day is read too,
    so a day's first delta has its predecessor.
    """
    out = {"dws_energy_building_1h": 0, "dws_energy_building_1d": 0, "dws_energy_campus_1d": 0}
    if not _stage(ctx, ("dwd_energy_reading_di",), next_day=True):
        return out
    s = ctx.session
    s.execute("DROP TABLE IF EXISTS tmp_energy_delta")
    s.execute(f"""
CREATE TEMP TABLE tmp_energy_delta AS
WITH src AS (
    SELECT e.device_id, e.ts_ms, e.hour_ms, e.dt, e.campus_id, e.building_id, e.value,
        CASE WHEN e.agg_code = 'raw' THEN 0 ELSE 1 END AS pref
    FROM dwd_energy_reading_di e
    WHERE e.metric_code = '{ENERGY_METRIC}' AND {_VALID} AND e.agg_code IN ('raw', 'last')
        AND EXISTS (SELECT 1 FROM {DAYS} a
                    WHERE a.campus_id = e.campus_id AND (a.dt = e.dt OR a.dt - 1 = e.dt))
), pick AS (
    SELECT src.*, MIN(pref) OVER (PARTITION BY device_id) AS best FROM src
), seq AS (
    SELECT p.*, LAG(p.value) OVER (PARTITION BY p.device_id ORDER BY p.ts_ms) AS prev
    FROM pick p WHERE p.pref = p.best
)
SELECT q.campus_id, q.building_id, q.device_id, q.hour_ms, q.dt,
    CASE WHEN q.value >= q.prev THEN q.value - q.prev
         WHEN q.value < {RESET_FRACTION} * q.prev THEN q.value ELSE 0 END AS delta_kwh
FROM seq q
JOIN dim_iot_device d ON d.device_id = q.device_id AND q.ts_ms >= d.valid_from_ms AND q.ts_ms < d.valid_to_ms
WHERE q.prev IS NOT NULL AND q.building_id IS NOT NULL AND d.device_role <> 'sub'
    AND EXISTS (SELECT 1 FROM {DAYS} a WHERE a.campus_id = q.campus_id AND a.dt = q.dt)""")
    out["dws_energy_building_1h"] = replace_days(ctx, "dws_energy_building_1h", DAYS, """
INSERT INTO dws_energy_building_1h (campus_id, building_id, hour_ms, dt, meter_cnt, energy_kwh, load_id)
SELECT campus_id, building_id, hour_ms, dt, COUNT(DISTINCT device_id), SUM(delta_kwh), ?
FROM tmp_energy_delta GROUP BY campus_id, building_id, hour_ms, dt""")
    out["dws_energy_building_1d"] = replace_days(ctx, "dws_energy_building_1d", DAYS, """
INSERT INTO dws_energy_building_1d (campus_id, building_id, dt, meter_cnt, energy_kwh, load_id)
SELECT campus_id, building_id, dt, COUNT(DISTINCT device_id), SUM(delta_kwh), ?
FROM tmp_energy_delta GROUP BY campus_id, building_id, dt""")
    out["dws_energy_campus_1d"] = replace_days(ctx, "dws_energy_campus_1d", DAYS, f"""
INSERT INTO dws_energy_campus_1d (campus_id, dt, meter_cnt, energy_kwh, floor_area_m2, load_id)
SELECT e.campus_id, e.dt, CAST(SUM(e.meter_cnt) AS BIGINT), SUM(e.energy_kwh), SUM(b.floor_area_m2), ?
FROM dws_energy_building_1d e
JOIN {DAYS} a ON a.campus_id = e.campus_id AND a.dt = e.dt
LEFT JOIN dim_pub_building b ON b.building_id = e.building_id
GROUP BY e.campus_id, e.dt""")
    s.execute("DROP TABLE tmp_energy_delta")
    return out


_ACTIVITY_SOURCES = (*PROCESS_TABLES.values(), "dwd_acs_event_di")


def dws_iot_device(ctx: Context) -> dict[str, int]:
    if not _stage(ctx, _ACTIVITY_SOURCES):
        return {"dws_iot_device_1d": 0}
    branches = []
    for table in _ACTIVITY_SOURCES:
        reading, event = ("0", "1") if table == "dwd_acs_event_di" else ("1", "0")
        branches.append(
            f"SELECT x.campus_id, x.device_id, x.dt, x.hour_ms, x.ts_ms, {reading} AS r, {event} AS ev "
            f"FROM {table} x JOIN {DAYS} a ON a.campus_id = x.campus_id AND a.dt = x.dt")
    n = replace_days(ctx, "dws_iot_device_1d", DAYS, f"""
INSERT INTO dws_iot_device_1d (campus_id, device_id, dt, reading_cnt, event_cnt, hour_cnt, first_ts_ms,
    last_ts_ms, load_id)
WITH x AS ({' UNION ALL '.join(branches)})
SELECT campus_id, device_id, dt, CAST(SUM(r) AS BIGINT), CAST(SUM(ev) AS BIGINT), COUNT(DISTINCT hour_ms),
    MIN(ts_ms), MAX(ts_ms), ?
FROM x GROUP BY campus_id, device_id, dt""")
    return {"dws_iot_device_1d": n}


TRANSFORMS = (
    Transform("dws_env", dws_env, inputs=("dwd_env_reading_di", "dim_iot_authority", "dim_iot_device", *DAY_INPUTS),
              outputs=("dws_env_room_1h", "dws_env_room_1d"), after=("dwd_reading",),
              doc="environment readings → room hourly and daily mean/min/max per metric"),
    Transform("dws_occ", dws_occ, inputs=("dwd_occ_reading_di", *DAY_INPUTS), outputs=("dws_occ_room_1h",),
              after=("dwd_reading",), doc="people counts and presence → room hourly occupancy"),
    Transform("dws_energy", dws_energy,
              inputs=("dwd_energy_reading_di", "dim_iot_device", "dim_pub_building", *DAY_INPUTS),
              outputs=("dws_energy_building_1h", "dws_energy_building_1d", "dws_energy_campus_1d"),
              after=("dwd_reading",),
              doc="main-meter energy counters → kWh per building hour/day and campus day"),
    Transform("dws_iot_device", dws_iot_device, inputs=(*_ACTIVITY_SOURCES, *DAY_INPUTS),
              outputs=("dws_iot_device_1d",),
              after=("dwd_reading", "dwd_acs_event"), doc="all DWD rows → per device and day activity"),
)

"""DWS → ADS: the indicators analysts and the read API publish, per campus / building / room and day.

* ``ads_env_co2_compliance_1d``: of the occupied classroom hours (room type ``classroom``, hourly occupancy
  flag) that have CO2 data, the share whose hourly mean CO2 is at most 1000 ppm;
* ``ads_energy_intensity_1d``: building kWh per m2 of floor area per day;
* ``ads_iot_online_rate_1d``: registered devices (a placement valid at any time of the day) that sent at
  least one reading or event that day, over registered devices;
* ``ads_occ_room_util_1d``: occupied hours inside the campus opening hours over the opening hours, and the
  mean people count of those hours over the room's seats.

Like DWS, each transform recomputes the campus days its inputs touched.
"""

from __future__ import annotations

from cloud_ingest.warehouse.transforms.base import Context, Transform
from cloud_ingest.warehouse.transforms.common import DAY_INPUTS, replace_days, stage_days, touched_days

DAYS = "tmp_ads_days"
CO2_LIMIT_PPM = 1000.0  # GB/T 18883-2022 indoor air quality: CO2 <= 0.10 % (1000 ppm), daily mean
CLASSROOM = "classroom"
F8 = "DOUBLE PRECISION"  # spelled the same in DuckDB and PostgreSQL


def _stage(ctx: Context, *sources: str) -> bool:
    return stage_days(ctx, DAYS, touched_days(ctx, sources)) > 0


def ads_co2(ctx: Context) -> dict[str, int]:
    if not _stage(ctx, "dws_env_room_1h", "dws_occ_room_1h"):
        return {"ads_env_co2_compliance_1d": 0}
    n = replace_days(ctx, "ads_env_co2_compliance_1d", DAYS, f"""
INSERT INTO ads_env_co2_compliance_1d (campus_id, dt, occupied_hour_cnt, measured_hour_cnt,
    compliant_hour_cnt, compliance_rate, load_id)
WITH occ AS (
    SELECT o.campus_id, o.dt, o.room_id, o.hour_ms
    FROM dws_occ_room_1h o
    JOIN dim_pub_room r ON r.room_id = o.room_id
    JOIN {DAYS} a ON a.campus_id = o.campus_id AND a.dt = o.dt
    WHERE r.room_type = '{CLASSROOM}' AND o.is_occupied
), j AS (
    SELECT occ.campus_id, occ.dt, e.value_avg
    FROM occ
    LEFT JOIN dws_env_room_1h e ON e.campus_id = occ.campus_id AND e.room_id = occ.room_id
        AND e.hour_ms = occ.hour_ms AND e.metric_code = 'co2'
)
SELECT a.campus_id, a.dt, COUNT(j.dt), COUNT(j.value_avg),
    COALESCE(SUM(CASE WHEN j.value_avg <= {CO2_LIMIT_PPM} THEN 1 ELSE 0 END), 0),
    CASE WHEN COUNT(j.value_avg) > 0
         THEN CAST(SUM(CASE WHEN j.value_avg <= {CO2_LIMIT_PPM} THEN 1 ELSE 0 END) AS {F8})
              / COUNT(j.value_avg) END,
    ?
FROM {DAYS} a
LEFT JOIN j ON j.campus_id = a.campus_id AND j.dt = a.dt
GROUP BY a.campus_id, a.dt""")
    return {"ads_env_co2_compliance_1d": n}


def ads_energy(ctx: Context) -> dict[str, int]:
    if not _stage(ctx, "dws_energy_building_1d"):
        return {"ads_energy_intensity_1d": 0}
    n = replace_days(ctx, "ads_energy_intensity_1d", DAYS, f"""
INSERT INTO ads_energy_intensity_1d (campus_id, building_id, dt, energy_kwh, floor_area_m2, kwh_per_m2,
    load_id)
SELECT e.campus_id, e.building_id, e.dt, e.energy_kwh, b.floor_area_m2,
    CASE WHEN b.floor_area_m2 > 0 THEN e.energy_kwh / b.floor_area_m2 END, ?
FROM dws_energy_building_1d e
JOIN {DAYS} a ON a.campus_id = e.campus_id AND a.dt = e.dt
LEFT JOIN dim_pub_building b ON b.building_id = e.building_id""")
    return {"ads_energy_intensity_1d": n}


def ads_online(ctx: Context) -> dict[str, int]:
    if not _stage(ctx, "dws_iot_device_1d"):
        return {"ads_iot_online_rate_1d": 0}
    n = replace_days(ctx, "ads_iot_online_rate_1d", DAYS, f"""
INSERT INTO ads_iot_online_rate_1d (campus_id, dt, device_cnt, online_device_cnt, online_rate, load_id)
WITH reg AS (
    SELECT DISTINCT a.campus_id, a.dt, d.device_id
    FROM {DAYS} a
    JOIN dim_iot_device d ON d.campus_id = a.campus_id
        AND d.valid_from_ms < a.day_start_ms + 86400000 AND d.valid_to_ms > a.day_start_ms
)
SELECT reg.campus_id, reg.dt, COUNT(*), COUNT(s.device_id), CAST(COUNT(s.device_id) AS {F8}) / COUNT(*), ?
FROM reg
LEFT JOIN dws_iot_device_1d s ON s.campus_id = reg.campus_id AND s.dt = reg.dt AND s.device_id = reg.device_id
    AND s.reading_cnt + s.event_cnt > 0
GROUP BY reg.campus_id, reg.dt""")
    return {"ads_iot_online_rate_1d": n}


def ads_occ_util(ctx: Context) -> dict[str, int]:
    if not _stage(ctx, "dws_occ_room_1h"):
        return {"ads_occ_room_util_1d": 0}
    hour = ctx.session.idiv("o.hour_ms - a.day_start_ms", "3600000")
    in_open = "h.is_occupied AND h.local_hour >= h.open_hour AND h.local_hour < h.close_hour"
    n = replace_days(ctx, "ads_occ_room_util_1d", DAYS, f"""
INSERT INTO ads_occ_room_util_1d (campus_id, building_id, room_id, dt, room_type, open_hour_cnt,
    occupied_hour_cnt, util_rate, people_avg, seat_cnt, seat_util_rate, load_id)
WITH h AS (
    SELECT o.campus_id, o.building_id, o.room_id, o.dt, o.is_occupied, o.people_avg, {hour} AS local_hour,
        a.open_hour, a.close_hour
    FROM dws_occ_room_1h o
    JOIN {DAYS} a ON a.campus_id = o.campus_id AND a.dt = o.dt
)
SELECT h.campus_id, h.building_id, h.room_id, h.dt, r.room_type, h.close_hour - h.open_hour,
    SUM(CASE WHEN {in_open} THEN 1 ELSE 0 END),
    CAST(SUM(CASE WHEN {in_open} THEN 1 ELSE 0 END) AS {F8}) / (h.close_hour - h.open_hour),
    AVG(CASE WHEN {in_open} THEN h.people_avg END),
    r.seat_cnt,
    CASE WHEN r.seat_cnt > 0 THEN AVG(CASE WHEN {in_open} THEN h.people_avg END) / r.seat_cnt END,
    ?
FROM h
JOIN dim_pub_room r ON r.room_id = h.room_id
GROUP BY h.campus_id, h.building_id, h.room_id, h.dt, r.room_type, r.seat_cnt, h.open_hour, h.close_hour""")
    return {"ads_occ_room_util_1d": n}


TRANSFORMS = (
    Transform("ads_co2", ads_co2, inputs=("dws_env_room_1h", "dws_occ_room_1h", "dim_pub_room", *DAY_INPUTS),
              outputs=("ads_env_co2_compliance_1d",), after=("dws_env", "dws_occ"),
              doc="share of occupied classroom hours with hourly mean CO2 <= 1000 ppm, per campus day"),
    Transform("ads_energy", ads_energy, inputs=("dws_energy_building_1d", "dim_pub_building", *DAY_INPUTS),
              outputs=("ads_energy_intensity_1d",), after=("dws_energy",),
              doc="building kWh per m2 per day"),
    Transform("ads_online", ads_online, inputs=("dws_iot_device_1d", "dim_iot_device", *DAY_INPUTS),
              outputs=("ads_iot_online_rate_1d",), after=("dws_iot_device",),
              doc="device online rate per campus day"),
    Transform("ads_occ_util", ads_occ_util, inputs=("dws_occ_room_1h", "dim_pub_room", "dim_pub_campus"),
              outputs=("ads_occ_room_util_1d",), after=("dws_occ",),
              doc="room utilisation (occupied open hours / open hours) and seat utilisation per day"),
)

"""ODS → DWD: clean, unit-normalise, de-duplicate and conform readings and events, per business process.

Readings of ODS batches with ``load_id`` in ``(lo, hi]`` become candidates. Within them one row per key
``(device, metric, aggregate, window, ts)`` survives: the highest window version, then the first arrival
(lowest load_id, then batch sequence). Against DWD the same rule holds: a candidate replaces a stored row
only with a strictly higher window version; otherwise the stored row (first arrival) stays. Both steps are
insert-if-absent / delete-if-superseded, so a repeated range changes nothing.

Cleaning: the value is converted to the metric's canonical unit (``dim_iot_metric.unit_code``) through
``dim_pub_unit``; an unconvertible unit keeps the row with value NULL and quality bit 256. Values outside
the metric's plausible range get bit 1. Conformance: the device's room/building/campus *at the reading's
time* (SCD2 ``dim_iot_device``), the campus of the gateway when the device is not registered (bit 512) and
bit 1024 when the gateway is not registered either. ``dt`` is the local day in the campus's UTC offset.

The business process comes from the metric (``dim_iot_metric.process_code``): env, energy, occ; anything
else lands in ``dwd_iot_reading_di`` so no received reading is lost between ODS and DWD.
"""

from __future__ import annotations

from cloud_ingest.warehouse.transforms.base import Context, Transform

PROCESS_TABLES = {
    "env": "dwd_env_reading_di",
    "energy": "dwd_energy_reading_di",
    "occ": "dwd_occ_reading_di",
    "iot": "dwd_iot_reading_di",
}
FAR_FUTURE_MS = 253402300799999  # 9999-12-31T23:59:59.999Z: valid_to of current dimension rows
Q_OUT_OF_RANGE = 1
Q_UNIT = 256
Q_NO_DEVICE = 512
Q_NO_GATEWAY = 1024

DWD_READING_COLUMNS = ("device_id", "metric_code", "agg_code", "window_s", "ts_ms", "dt", "hour_ms", "value",
                       "unit_code", "quality_flag", "window_ver", "profile_ref", "room_id", "building_id",
                       "campus_id", "gateway_id", "batch_seq", "load_id")
_KEY = ("device_id", "metric_code", "agg_code", "window_s", "ts_ms")


def local_day_sql(ctx: Context, ts: str, offset_min: str) -> str:
    """SQL for the local calendar day (DATE) of epoch-ms ``ts`` in a zone ``offset_min`` minutes from UTC."""
    days = ctx.session.idiv(f"{ts} + COALESCE({offset_min}, 0) * 60000", "86400000")
    return f"(DATE '1970-01-01' + CAST({days} AS INTEGER))"


def _device_filter(alias: str, table: str | None) -> str:
    return f" AND {alias}.device_id IN (SELECT device_id FROM {table})" if table else ""


def _process_filter(process: str) -> str:
    if process == "iot":  # everything without a business process of its own
        others = ", ".join(f"'{p}'" for p in PROCESS_TABLES if p != "iot")
        return f"COALESCE(m.process_code, 'iot') NOT IN ({others})"
    return f"m.process_code = '{process}'"


_RANK = ("ROW_NUMBER() OVER (PARTITION BY r.device_id, r.metric_code, r.agg_code, r.window_s, r.ts_ms "
         "ORDER BY r.window_ver DESC, r.load_id, r.batch_seq)")


def candidates_sql(ctx: Context, process: str, device_filter: str | None, *, dedupe: bool = True) -> str:
    """SELECT of the cleaned, de-duplicated, conformed candidates of one process (params: lo, hi).

    ``dedupe=False`` skips the ranking window when the caller knows the range holds no repeated key.
    """
    convertible = ("fu.base_unit_code IS NOT NULL AND fu.base_unit_code = tu.base_unit_code "
                   "AND tu.scale_factor <> 0")
    return f"""
WITH src AS (
    SELECT r.device_id, r.metric_code, r.unit_code, r.profile_ref, r.agg_code, r.window_s, r.ts_ms, r.value,
        r.quality_flag, r.window_ver, r.gateway_id, r.batch_seq, r.load_id,
        m.unit_code AS m_unit, m.range_min, m.range_max, {_RANK if dedupe else "1"} AS rn
    FROM ods_iot_reading_di r
    LEFT JOIN dim_iot_metric m ON m.metric_code = r.metric_code
    WHERE r.load_id > ? AND r.load_id <= ? AND {_process_filter(process)}{_device_filter("r", device_filter)}
), conv AS (
    SELECT s.device_id, s.metric_code, s.agg_code, s.window_s, s.ts_ms, s.window_ver, s.profile_ref,
        s.gateway_id, s.batch_seq, s.load_id,
        CASE WHEN s.m_unit IS NULL OR s.unit_code = s.m_unit THEN s.value
             WHEN {convertible}
             THEN ((s.value * fu.scale_factor + fu.offset_val) - tu.offset_val) / tu.scale_factor
             ELSE NULL END AS value,
        COALESCE(s.m_unit, s.unit_code) AS unit_code,
        s.quality_flag
          | CASE WHEN s.m_unit IS NULL OR s.unit_code = s.m_unit OR ({convertible}) THEN 0
                 ELSE {Q_UNIT} END
          | CASE WHEN d.device_id IS NULL THEN {Q_NO_DEVICE} ELSE 0 END
          | CASE WHEN g.gateway_id IS NULL AND d.device_id IS NULL THEN {Q_NO_GATEWAY} ELSE 0 END
          AS quality_flag,
        s.range_min, s.range_max,
        d.room_id, d.building_id, COALESCE(d.campus_id, g.campus_id) AS campus_id
    FROM src s
    LEFT JOIN dim_pub_unit fu ON fu.unit_code = s.unit_code
    LEFT JOIN dim_pub_unit tu ON tu.unit_code = s.m_unit
    LEFT JOIN dim_iot_device d
        ON d.device_id = s.device_id AND s.ts_ms >= d.valid_from_ms AND s.ts_ms < d.valid_to_ms
    LEFT JOIN dim_iot_gateway g ON g.gateway_id = s.gateway_id
    WHERE s.rn = 1
)
SELECT c.device_id, c.metric_code, c.agg_code, c.window_s, c.ts_ms,
    {local_day_sql(ctx, "c.ts_ms", "cp.utc_offset_min")} AS dt,
    c.ts_ms - c.ts_ms % 3600000 AS hour_ms,
    c.value, c.unit_code,
    c.quality_flag | CASE WHEN c.value < c.range_min OR c.value > c.range_max THEN {Q_OUT_OF_RANGE} ELSE 0 END
        AS quality_flag,
    c.window_ver, c.profile_ref, c.room_id, c.building_id, c.campus_id, c.gateway_id, c.batch_seq, c.load_id
FROM conv c
LEFT JOIN dim_pub_campus cp ON cp.campus_id = c.campus_id
"""


def merge(ctx: Context, cand: str, params: tuple[object, ...], table: str, key: tuple[str, ...],
          columns: tuple[str, ...], span: tuple[int, int], version_col: str | None) -> int:
    """Delete rows of ``table`` superseded by a candidate (higher ``version_col``), insert absent keys.

    Inserted rows get ``dict_ver = ctx.dict_ver``: the data-dictionary version they were conformed under.

    ``cand`` is a relation (table name or parenthesised SELECT taking ``params``) holding at most one row per
    ``key``. ``key`` must be the table's ``unique_key`` (schema.yaml).

    * Superseding: only a candidate with a version above 0 can replace a stored row (versions are >= 0), and
      such candidates are few (late windows), so they are copied to an analysed temporary table first and the
      DELETE looks each of them up (PostgreSQL: nested loop over the unique index, never a scan of the whole
      DWD table) instead of trusting a guess of the size of the ODS range.
    * Inserting: where the key is a unique index (PostgreSQL) ``ON CONFLICT (key) DO NOTHING`` decides, one
      index probe per row, and the candidates are joined to the DIM tables with hash joins
      (``Session.hash_joins``). An anti-join (``NOT EXISTS``) there was planned from statistics of the ODS range
      and of the DWD table being filled (none on a fresh database) as a nested loop rescanning the DWD table
      for every candidate, including the rows this same statement had already inserted: quadratic, 948
      readings/s. DuckDB has no index on the key (it would slow appends) and hashes the anti-join; existing
      rows are only looked for inside the candidates' time ``span`` so it reads a slice of the table (zone
      maps), not all of it.
    """
    s = ctx.session
    match = " AND ".join(f"c.{k} = t.{k}" for k in key)
    in_span = f"t.ts_ms >= {int(span[0])} AND t.ts_ms <= {int(span[1])}"
    if version_col:
        newer = "tmp_dwd_newer"
        s.execute(f"DROP TABLE IF EXISTS {newer}")
        with s.hash_joins():
            s.execute(f"CREATE TEMP TABLE {newer} AS SELECT {', '.join('c.' + k for k in key)}, "
                      f"c.{version_col} FROM {cand} c WHERE c.{version_col} > 0", params)
        s.analyze(newer)
        # USING (an inner join; one row per key in the candidates), not EXISTS: the version comparison in a
        # semi-join keeps PostgreSQL from driving it from the candidates, it would scan DWD row by row instead.
        # No span there: its default selectivity makes the DWD table look tiny (a scan per candidate).
        span_cond = "" if s.unique_keys else f"{in_span} AND "
        with s.index_probes():
            s.execute(f"DELETE FROM {table} t USING {newer} c WHERE {span_cond}{match} "
                      f"AND c.{version_col} > t.{version_col}")
        s.execute(f"DROP TABLE {newer}")
    cols = ", ".join(columns)
    # the dictionary version is a bound parameter; it precedes the candidates' parameters in the text
    insert = (f"INSERT INTO {table} ({cols}, dict_ver) SELECT {', '.join('c.' + c for c in columns)}, "
              f"CAST(? AS VARCHAR) FROM {cand} c")
    if not s.unique_keys:
        return s.execute_count(f"{insert} WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {in_span} AND {match})",
                               (ctx.dict_ver, *params))
    with s.hash_joins():
        return s.execute_count(f"{insert} ON CONFLICT ({', '.join(key)}) DO NOTHING", (ctx.dict_ver, *params))


def dwd_readings(ctx: Context, device_filter: str | None = None) -> dict[str, int]:
    """ODS readings in (lo, hi] → DWD tables; ``device_filter`` names a table of device ids to restrict to.

    One INSERT … SELECT per process straight from ODS (no materialised candidate table: the scan of the ODS
    range is cheap, copying its strings is not). Two fast paths, both exact: the ranking window is skipped
    when no key repeats inside the range (a hash aggregate is half the cost of the window; on DuckDB a count
    of distinct key hashes in the statistics scan, cheaper still), and the
    superseding DELETE only runs when the range holds a re-versioned window (version-0 rows never replace).
    """
    s = ctx.session
    where = f"WHERE r.load_id > ? AND r.load_id <= ?{_device_filter('r', device_filter)}"
    # Where the engine hashes cheaply (DuckDB), the repeat check rides on the same scan: as many distinct key
    # hashes as rows means no key repeats (equal keys hash equally); fewer means a repeat or, with odds of
    # ~n^2/2^65, a collision, and then the ranking window runs: exact either way, at 0.6x the CPU of grouping.
    key_hash = s.key_hash([f"r.{k}" for k in _KEY])
    distinct = f", COUNT(DISTINCT {key_hash})" if key_hash else ""
    lo_ts, hi_ts, n, max_ver, *hashes = s.fetchall(
        f"SELECT MIN(r.ts_ms), MAX(r.ts_ms), COUNT(*), MAX(r.window_ver){distinct} FROM ods_iot_reading_di r "
        f"{where}", (ctx.lo, ctx.hi))[0]
    out = dict.fromkeys(PROCESS_TABLES.values(), 0)
    if not n:
        return out
    if hashes:
        repeats = int(hashes[0]) < int(n)
    else:
        repeats = bool(s.fetch_one_value(
            f"SELECT COUNT(*) FROM (SELECT 1 AS x FROM ods_iot_reading_di r {where} "
            "GROUP BY r.device_id, r.metric_code, r.agg_code, r.window_s, r.ts_ms HAVING COUNT(*) > 1) k",
            (ctx.lo, ctx.hi)))
    for process, table in PROCESS_TABLES.items():
        cand = f"({candidates_sql(ctx, process, device_filter, dedupe=bool(repeats))})"
        out[table] = merge(ctx, cand, (ctx.lo, ctx.hi), table, _KEY, DWD_READING_COLUMNS,
                           (int(lo_ts), int(hi_ts)), "window_ver" if max_ver else None)
    return out


_ACS_COLUMNS = ("device_id", "event_kind", "ts_ms", "dt", "hour_ms", "subject_pseudo", "direction_code",
                "result_code", "attrs_json", "quality_flag", "profile_ref", "room_id", "building_id",
                "campus_id", "gateway_id", "batch_seq", "load_id")
_ACS_KEY = ("device_id", "event_kind", "ts_ms", "attrs_json")
# Attribute names the access-control profiles use for the (pseudonymised) person, direction and result.
ACS_SUBJECT_KEYS = ("card", "card_id", "subject", "user", "person")
ACS_DIRECTION_KEYS = ("direction", "dir")
ACS_RESULT_KEYS = ("result", "granted", "access")


def _json_first(keys: tuple[str, ...]) -> str:
    parts = [f"CAST(CAST(e.attrs_json AS JSON) ->> '{k}' AS VARCHAR)" for k in keys]
    return "COALESCE(" + ", ".join(parts) + ")"


def dwd_acs_events(ctx: Context, device_filter: str | None = None) -> dict[str, int]:
    """Access events (kinds whose ``dim_iot_metric.process_code`` is ``acs``) → ``dwd_acs_event_di``."""
    s = ctx.session
    s.execute("DROP TABLE IF EXISTS tmp_acs_cand")
    with s.hash_joins():  # the event range has no statistics yet (see Session.hash_joins)
        s.execute(f"""
CREATE TEMP TABLE tmp_acs_cand AS
WITH src AS (
    SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.device_id, e.event_kind, e.ts_ms, e.attrs_json
                                   ORDER BY e.load_id, e.batch_seq, e.event_idx) AS rn
    FROM ods_iot_event_di e
    JOIN dim_iot_metric m ON m.metric_code = e.event_kind AND m.process_code = 'acs'
    WHERE e.load_id > ? AND e.load_id <= ?{_device_filter("e", device_filter)}
), conf AS (
    SELECT e.*, d.device_id AS dim_device, d.room_id, d.building_id,
        COALESCE(d.campus_id, g.campus_id) AS campus_id, g.gateway_id AS dim_gateway
    FROM src e
    LEFT JOIN dim_iot_device d
        ON d.device_id = e.device_id AND e.ts_ms >= d.valid_from_ms AND e.ts_ms < d.valid_to_ms
    LEFT JOIN dim_iot_gateway g ON g.gateway_id = e.gateway_id
    WHERE e.rn = 1
)
SELECT e.device_id, e.event_kind, e.ts_ms,
    {local_day_sql(ctx, "e.ts_ms", "cp.utc_offset_min")} AS dt,
    e.ts_ms - e.ts_ms % 3600000 AS hour_ms,
    {_json_first(ACS_SUBJECT_KEYS)} AS subject_pseudo,
    COALESCE({_json_first(ACS_DIRECTION_KEYS)}, 'unknown') AS direction_code,
    COALESCE({_json_first(ACS_RESULT_KEYS)}, 'unknown') AS result_code,
    e.attrs_json,
    e.quality_flag | CASE WHEN e.dim_device IS NULL THEN {Q_NO_DEVICE} ELSE 0 END
        | CASE WHEN e.dim_device IS NULL AND e.dim_gateway IS NULL THEN {Q_NO_GATEWAY} ELSE 0 END
        AS quality_flag,
    e.profile_ref, e.room_id, e.building_id, e.campus_id, e.gateway_id, e.batch_seq, e.load_id
FROM conf e
LEFT JOIN dim_pub_campus cp ON cp.campus_id = e.campus_id
""", (ctx.lo, ctx.hi))
    lo_ts, hi_ts, n = s.fetchall("SELECT MIN(ts_ms), MAX(ts_ms), COUNT(*) FROM tmp_acs_cand")[0]
    if n:
        n = merge(ctx, "tmp_acs_cand", (), "dwd_acs_event_di", _ACS_KEY, _ACS_COLUMNS, (lo_ts, hi_ts), None)
    s.execute("DROP TABLE tmp_acs_cand")
    return {"dwd_acs_event_di": n}


TRANSFORMS = (
    Transform("dwd_reading", dwd_readings,
              inputs=("ods_iot_reading_di", "dim_iot_metric", "dim_pub_unit", "dim_iot_device",
                      "dim_iot_gateway", "dim_pub_campus"),
              outputs=tuple(PROCESS_TABLES.values()),
              doc="ODS readings → cleaned, unit-normalised, de-duplicated, conformed DWD readings"),
    Transform("dwd_acs_event", dwd_acs_events,
              inputs=("ods_iot_event_di", "dim_iot_metric", "dim_iot_device", "dim_iot_gateway",
                      "dim_pub_campus"),
              outputs=("dwd_acs_event_di",),
              doc="ODS access-control events → de-duplicated, conformed DWD events (person as pseudonym)"),
)

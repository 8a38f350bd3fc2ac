"""The data-quality rules as SQL, in one place: the ``qlt_*`` transforms count with them, the evidence of a
finding (:mod:`cloud_ingest.quality.evidence`) lists the rows they match. A rule changed here changes both.

Each function returns an SQL fragment over the column expressions or the source relation it is given, so the
transform (over its staged day of readings, with precomputed steps and deltas) and the evidence (over one
scope-day, with window functions of its own) apply the same predicates and thresholds. Limits come from
:class:`~cloud_ingest.quality.config.QualityConfig` (``quality.yaml``); docs/quality.md gives the formulas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cloud_ingest.quality.config import QualityConfig
from cloud_ingest.warehouse.transforms.dws import ENERGY_METRIC

F8 = "DOUBLE PRECISION"
Q_OUT_OF_RANGE, Q_CLOCK_SKEW, Q_INVALID = 1, 2, 256 | 512 | 1024  # DWD quality bits (docs/warehouse.md)
SERIES = ("device_id", "metric_code", "agg_code", "window_s")  # one series of readings
ROOM_HOUR = "PARTITION BY m.room_id, m.metric_code, m.hour_ms"


def quoted(text: str) -> str:
    """An SQL string literal of a configured name (quotes dropped: names are identifiers, never free text)."""
    return "'" + text.replace("'", "") + "'"


def in_list(values: Iterable[str]) -> str:
    """``'a', 'b'`` for an IN list; ``''`` (matches nothing real) when empty."""
    return ", ".join(quoted(v) for v in values) or "''"


def case_sql(column: str, mapping: Mapping[str, float], default: str = "NULL") -> str:
    """``CASE column WHEN 'k' THEN v … ELSE default END`` of a configured per-metric limit."""
    if not mapping:
        return default
    whens = " ".join(f"WHEN {quoted(k)} THEN {float(v)!r}" for k, v in sorted(mapping.items()))
    return f"CASE {column} {whens} ELSE {default} END"


def join_on(left: str, right: str, keys: Sequence[str]) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in keys)


# ------------------------------------------------------------------------------------------- completeness
def interval_ctes(src: str, keys: Sequence[str]) -> str:
    """CTEs ``md`` and ``iv``: the expected interval (``interval_ms``) of each series of ``src`` per ``keys``.

    ``src`` has the reading columns plus ``step_ms`` (since the series' previous reading). An aggregate's
    interval is its window; a raw series' is its profile's declared interval, unless the series keeps a
    cadence more than twice as fast (a device configured to report more often) or the profile declares none:
    then the median step (which gaps do not move). ``edge_ms`` is the interval a series is held to beyond its
    first and last reading (:func:`edge_gap_ctes`): the declared one, or the median step when that is longer —
    what the device must keep at least; a device configured to report faster is not extrapolated at its speed,
    and a metric its profile declares no interval for (reported on change, say) is not extrapolated at all.
    """
    cols = ", ".join(f"s.{k}" for k in keys)
    md_cols = ", ".join(f"md.{k}" for k in keys)
    return f"""md AS (
    SELECT {cols}, MIN(s.profile_ref) AS profile_ref,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY s.step_ms) AS median_ms
    FROM {src} s WHERE s.step_ms > 0 GROUP BY {cols}
), iv AS (
    SELECT {md_cols}, CASE
        WHEN md.agg_code <> 'raw' AND md.window_s > 0 THEN CAST(md.window_s AS {F8}) * 1000
        WHEN pm.interval_s IS NOT NULL AND md.median_ms >= pm.interval_s * 500 THEN pm.interval_s * 1000
        ELSE md.median_ms END AS interval_ms,
        CASE WHEN md.agg_code <> 'raw' AND md.window_s > 0 THEN CAST(md.window_s AS {F8}) * 1000
        WHEN pm.interval_s IS NOT NULL THEN GREATEST(pm.interval_s * 1000, md.median_ms) END AS edge_ms
    FROM md LEFT JOIN dim_iot_profile_metric pm ON pm.profile_ref = md.profile_ref
        AND pm.metric_code = md.metric_code
)"""


def horizon_cte(src: str, *, per_day: bool = True) -> str:
    """CTEs ``hd``, ``hz``: each campus-day's data horizon, from the median device's first reading to the median
    device's last (the day so far, for today), and ``device_n``, the devices that reported.

    Medians, not the extremes: a few readings with wrong clocks or stamped on arrival must not stretch the
    span every device is held to. ``per_day=False`` for a ``src`` of one campus-day without a ``dt`` column.
    """
    keys = "s.campus_id, s.dt" if per_day else "s.campus_id"
    hd_keys = "hd.campus_id, hd.dt" if per_day else "hd.campus_id"
    return f"""hd AS (
    SELECT {keys}, s.device_id, MIN(s.ts_ms) AS first_ms, MAX(s.ts_ms) AS last_ms FROM {src} s
    GROUP BY {keys}, s.device_id
), hz AS (
    SELECT {hd_keys}, CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY hd.first_ms) AS BIGINT) AS lo_ms,
        CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY hd.last_ms) AS BIGINT) AS hi_ms, COUNT(*) AS device_n
    FROM hd GROUP BY {hd_keys}
)"""


def edge_gap_ctes(cfg: QualityConfig, src: str, keys: Sequence[str]) -> str:
    """CTEs ending in ``eg``: raw series of ``src`` that start late or stop early within their campus-day.

    Needs ``hz`` (:func:`horizon_cte`) and ``iv`` (:func:`interval_ctes`) before it. The horizon is narrowed to
    the device's registered placements (dim_iot_device). A ``leading_gap`` runs from the horizon's start to the
    series' first reading, a ``trailing_gap`` from its last reading to the horizon's end; either counts when it
    is a gap (:func:`is_gap`, against the series' ``edge_ms``) and misses ``round(step / interval) - 1``
    readings, as if a reading stood at the horizon's edge. ``eg`` has ``keys``, ``kind``, ``from_ms``,
    ``to_ms``, ``at_ms`` (the series' reading at the gap: its first or last) and ``interval_ms``. Aggregate
    series are left out: the edge emits a window only after its lateness allowance, so their last window
    always trails the raw data.
    """
    cols = ", ".join(f"s.{k}" for k in keys)
    eb_cols = ", ".join(f"eb.{k}" for k in keys)
    day = " AND hz.dt = se.dt" if "dt" in keys else ""
    return f"""se AS (
    SELECT {cols}, MIN(s.campus_id) AS campus_id, MIN(s.ts_ms) AS first_ms, MAX(s.ts_ms) AS last_ms
    FROM {src} s WHERE s.agg_code = 'raw' GROUP BY {cols}
), pl AS (
    SELECT d.device_id, MIN(d.valid_from_ms) AS from_ms, MAX(d.valid_to_ms) AS to_ms
    FROM dim_iot_device d GROUP BY d.device_id
), eb AS (
    SELECT se.*, iv.edge_ms AS interval_ms, GREATEST(hz.lo_ms, COALESCE(pl.from_ms, hz.lo_ms)) AS lo_ms,
        LEAST(hz.hi_ms, COALESCE(pl.to_ms, hz.hi_ms)) AS hi_ms
    FROM se
    JOIN hz ON hz.campus_id = se.campus_id{day}
    JOIN iv ON {join_on("iv", "se", keys)}
    LEFT JOIN pl ON pl.device_id = se.device_id
), eg AS (
    SELECT {eb_cols}, 'leading_gap' AS kind, eb.lo_ms AS from_ms, eb.first_ms AS to_ms, eb.first_ms AS at_ms,
        eb.interval_ms
    FROM eb WHERE {is_gap(cfg, "eb.first_ms - eb.lo_ms", "eb.interval_ms")}
    UNION ALL
    SELECT {eb_cols}, 'trailing_gap' AS kind, eb.last_ms AS from_ms, eb.hi_ms AS to_ms, eb.last_ms AS at_ms,
        eb.interval_ms
    FROM eb WHERE {is_gap(cfg, "eb.hi_ms - eb.last_ms", "eb.interval_ms")}
)"""


def is_gap(cfg: QualityConfig, step: str, interval: str) -> str:
    """A step longer than gap_factor x the expected interval is a gap."""
    return f"{interval} > 0 AND {step} > {cfg.gap_factor!r} * {interval}"


def gap_missing(step: str, interval: str) -> str:
    """Readings a gap misses: ``round(step / interval) - 1``."""
    return f"CAST(ROUND(CAST({step} AS {F8}) / {interval}) AS BIGINT) - 1"


# --------------------------------------------------------------------------------------------- timeliness
def is_timely(cfg: QualityConfig, lag: str) -> str:
    """A reading whose ODS batch arrived within target_s of its measurement."""
    return f"{lag} <= {int(cfg.timely_target_s * 1000)}"


# ----------------------------------------------------------------------------------------------- accuracy
def is_out_of_range(flag: str) -> str:
    return f"({flag} & {Q_OUT_OF_RANGE}) <> 0"


def is_spike(cfg: QualityConfig, a: str, delta: str, step: str) -> str:
    """A raw reading of ``a`` that changed faster than max_rate_per_min[metric] x max(step minutes, 1)."""
    return (f"{a}.agg_code = 'raw' AND {delta} IS NOT NULL AND ABS({delta}) > "
            f"{case_sql(f'{a}.metric_code', cfg.max_rate_per_min)} * GREATEST(CAST({step} AS {F8}) / 60000.0, 1.0)")


def run_windows(cfg: QualityConfig, a: str, partition: str) -> str:
    """Window columns ``run_n, run_min, run_max`` over the stuck_samples readings ending at each one."""
    frame = f"{partition} ROWS BETWEEN {cfg.stuck_samples - 1} PRECEDING AND CURRENT ROW"
    return (f"COUNT({a}.value) OVER ({frame}) AS run_n, MIN({a}.value) OVER ({frame}) AS run_min, "
            f"MAX({a}.value) OVER ({frame}) AS run_max")


def is_stuck(cfg: QualityConfig, a: str) -> str:
    """A reading of a listed metric that ends stuck_samples identical values (``run_windows`` of ``a``)."""
    return (f"{a}.metric_code IN ({in_list(cfg.stuck_metrics)}) AND {a}.run_n = {cfg.stuck_samples} "
            f"AND {a}.run_min = {a}.run_max")


# -------------------------------------------------------------------------------------------- consistency
def is_decrease(a: str, delta: str) -> str:
    """A raw counter reading below the previous one (``a`` has metric_type from dim_iot_metric)."""
    return f"{a}.metric_type = 'counter' AND {a}.agg_code = 'raw' AND {delta} < 0"


def is_clock_skew(flag: str) -> str:
    return f"({flag} & {Q_CLOCK_SKEW}) <> 0"


def used_for_room(a: str) -> str:
    """Readings that enter the room comparison: placed, valued, in range, raw or mean."""
    return (f"{a}.room_id IS NOT NULL AND {a}.value IS NOT NULL AND ({a}.quality_flag & {Q_OUT_OF_RANGE}) = 0 "
            f"AND {a}.agg_code IN ('raw', 'mean')")


def room_disagreement_ctes(cfg: QualityConfig, src: str) -> str:
    """CTEs ``m``, ``o``, ``x``: device-hours of ``src`` whose mean is off their room's reference.

    The reference is the room's authoritative device for the metric when it reported that hour (it is not
    judged itself), else the mean of the room's other sensors (at least two devices). ``x`` has per off
    device-hour: ``v`` (its mean), ``n`` (its readings), ``ref_v``, ``ref_device_id`` (the authoritative one,
    when it was the reference) and ``tol`` (consistency.room_tolerance of the metric).
    """
    return f"""m AS (
    SELECT r.room_id, r.metric_code, r.hour_ms, r.device_id, AVG(r.value) AS v, COUNT(*) AS n,
        MAX(CASE WHEN x.device_id IS NULL THEN 0 ELSE 1 END) AS is_auth
    FROM {src} r
    LEFT JOIN dim_iot_authority x ON x.device_id = r.device_id AND x.metric_code = r.metric_code
    WHERE {used_for_room("r")}
    GROUP BY r.room_id, r.metric_code, r.hour_ms, r.device_id
), o AS (
    SELECT m.*, SUM(m.v) OVER ({ROOM_HOUR}) AS v_sum, COUNT(*) OVER ({ROOM_HOUR}) AS dev_n,
        MAX(CASE WHEN m.is_auth = 1 THEN m.v END) OVER ({ROOM_HOUR}) AS v_auth,
        MAX(CASE WHEN m.is_auth = 1 THEN m.device_id END) OVER ({ROOM_HOUR}) AS auth_id,
        {case_sql("m.metric_code", cfg.room_tolerance)} AS tol
    FROM m
), x AS MATERIALIZED (  -- small; without statistics PostgreSQL would recompute it per reading
    SELECT o.room_id, o.metric_code, o.hour_ms, o.device_id, o.v, o.n, o.tol,
        CASE WHEN o.v_auth IS NOT NULL THEN o.v_auth ELSE (o.v_sum - o.v) / (o.dev_n - 1) END AS ref_v,
        CASE WHEN o.v_auth IS NOT NULL THEN o.auth_id END AS ref_device_id
    FROM o
    WHERE o.tol IS NOT NULL AND o.is_auth = 0 AND CASE
        WHEN o.v_auth IS NOT NULL THEN ABS(o.v - o.v_auth) > o.tol
        ELSE o.dev_n >= 2 AND ABS(o.v - (o.v_sum - o.v) / (o.dev_n - 1)) > o.tol END
)"""


def submeter_ctes(src: str, delta: str) -> str:
    """CTEs ``e`` (kWh per energy meter and hour: the positive deltas, and its readings ``n``) and ``subs``
    (per main meter and hour: its sub-meters' summed kWh, from dim_iot_device.parent_device_id).

    ``src`` (alias ``er`` inside) holds raw energy readings and ``delta`` is the change since the previous one.
    """
    return f"""e AS (
    SELECT er.device_id, er.hour_ms, COUNT(*) AS n,
        SUM(CASE WHEN {delta} > 0 THEN {delta} ELSE 0 END) AS kwh
    FROM {src} er
    WHERE er.metric_code = {quoted(ENERGY_METRIC)} AND er.agg_code = 'raw'
    GROUP BY er.device_id, er.hour_ms
), subs AS (
    SELECT d.parent_device_id AS main_id, e.hour_ms, SUM(e.kwh) AS kwh
    FROM e JOIN dim_iot_device d ON d.device_id = e.device_id AND d.is_current
    WHERE d.parent_device_id IS NOT NULL
    GROUP BY d.parent_device_id, e.hour_ms
)"""


def submeter_limit(cfg: QualityConfig) -> str:
    """The mismatch a main meter's hour may have with its sub-meters' sum (``e`` of ``submeter_ctes``)."""
    return f"{float(cfg.submeter_tolerance)!r} * e.kwh + 0.01"


def is_submeter_mismatch(cfg: QualityConfig) -> str:
    return f"ABS(subs.kwh - e.kwh) > {submeter_limit(cfg)}"

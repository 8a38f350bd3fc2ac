"""Evidence of a finding: the rows behind ``<dt>:<scope>:<id>:<dimension>``, each with its ODS provenance.

A finding says a scope-day's rate fell below its threshold; its evidence is what the rate counted, found
again in the warehouse with the same rules and limits as the ``qlt_*`` transforms (``quality.yaml`` through
:mod:`cloud_ingest.quality.config`, quality bits of the DWD transform):

============  ==========================================================================================
dimension     evidence rows (``kind``)
============  ==========================================================================================
completeness  ``gap``: a step longer than gap_factor x the series' expected interval; from/to ts, missing
              readings; ``silent``: a registered device that sent nothing all day (step: the campus's data
              horizon, missing: the readings its profile owed over it)
timeliness    ``late``: a reading whose ODS batch arrived more than target_s after it was measured
uniqueness    ``duplicate``: every ODS copy of a kept DWD key that reached ODS more than once
accuracy      ``out_of_range`` (quality bit 1), ``spike`` (change faster than max_rate_per_min),
              ``stuck`` (ends stuck_samples identical values); with the previous value
consistency   ``decrease`` (a counter below its previous reading), ``clock_skew`` (bit 2),
              ``room_disagreement`` (a reading of a device-hour whose mean is off the room's other sensors)
validity      ``unconvertible_unit`` (256), ``unregistered_device`` (512), ``unregistered_gateway`` (1024);
              gateway and campus scopes also ``quarantine``: messages the edge quarantined, per reason
============  ==========================================================================================

Every row carries ``gateway_id``, ``batch_seq`` and ``load_id``: the ODS batch a person opens to see what
arrived (a quarantine row: the gateway and the load of its day's counts). The scope's devices are those of
its rows in ``dws_qlt_device_1d``, so a room finding's evidence is the readings its rate was computed from.

``counted`` gives, per kind, the number the dimension's formula counted (missing readings, ODS copies beyond
the first, late/flagged readings, quarantined messages): it equals the scope-day's counters in
``dws_qlt_scope_1d``. ``total`` is the number of evidence rows; at most ``limit`` of them are returned.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from dataclasses import dataclass, field
from typing import Any

from cloud_ingest.quality.config import DIMENSIONS, SCOPES, QualityConfig, default_config
from cloud_ingest.quality.findings import FindingError, Queryable
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES, Q_NO_DEVICE, Q_NO_GATEWAY, Q_UNIT
from cloud_ingest.warehouse.transforms.dws import ENERGY_METRIC
from cloud_ingest.warehouse.transforms.quality import Q_CLOCK_SKEW, Q_INVALID, Q_OUT_OF_RANGE
from cloud_ingest.warehouse.transforms.quality_losses import TABLE as LOSS_TABLE

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
F8 = "DOUBLE PRECISION"
PROVENANCE = ("gateway_id", "batch_seq", "load_id")
_SERIES = "PARTITION BY r.device_id, r.metric_code, r.agg_code, r.window_s ORDER BY r.ts_ms"
_KEY = ("device_id", "metric_code", "agg_code", "window_s", "ts_ms")
_READ = ("campus_id", "room_id", "gateway_id", "device_id", "metric_code", "agg_code", "window_s", "ts_ms",
         "hour_ms", "value", "quality_flag", "batch_seq", "load_id", "profile_ref")

# columns of the evidence rows, per dimension (every row of a dimension has all of them; None where n/a)
COLUMNS: dict[str, tuple[str, ...]] = {
    "completeness": ("kind", *_KEY[:4], "from_ts_ms", "ts_ms", "step_ms", "interval_ms", "missing_cnt",
                     *PROVENANCE),
    "timeliness": ("kind", *_KEY, "received_ms", "lag_ms", *PROVENANCE),
    "uniqueness": ("kind", *_KEY, "copy_no", "copy_cnt", "value", "window_ver", "received_ms", *PROVENANCE),
    "accuracy": ("kind", *_KEY, "value", "prev_ts_ms", "prev_value", "quality_flag", *PROVENANCE),
    "consistency": ("kind", *_KEY, "value", "prev_ts_ms", "prev_value", "quality_flag", "hour_ms", "hour_val",
                    "ref_val", "ref_device_id", "tolerance_val", *PROVENANCE),
    "validity": ("kind", *_KEY, "value", "quality_flag", "reason_code", "loss_cnt", *PROVENANCE),
}
KINDS: dict[str, tuple[str, ...]] = {
    "completeness": ("gap", "silent"),
    "timeliness": ("late",),
    "uniqueness": ("duplicate",),
    "accuracy": ("out_of_range", "spike", "stuck"),
    "consistency": ("decrease", "clock_skew", "room_disagreement", "submeter_mismatch"),
    "validity": ("unconvertible_unit", "unregistered_device", "unregistered_gateway", "quarantine"),
}
_ORDER = {
    "completeness": "missing_cnt DESC, device_id, metric_code, agg_code, window_s, ts_ms",
    "timeliness": "lag_ms DESC NULLS FIRST, device_id, metric_code, agg_code, window_s, ts_ms",
    "uniqueness": "device_id, metric_code, agg_code, window_s, ts_ms, copy_no",
    "accuracy": "kind, device_id, metric_code, agg_code, window_s, ts_ms",
    "consistency": "kind, device_id, metric_code, agg_code, window_s, ts_ms",
    "validity": "kind, device_id NULLS LAST, metric_code, agg_code, window_s, ts_ms, gateway_id, reason_code",
}


@dataclass(frozen=True, slots=True)
class FindingRef:
    """Where a finding points: the campus, scope and day, and the dimension."""

    finding_id: str
    campus_id: str
    scope_code: str
    scope_id: str
    dt: dt.date
    dimension_code: str


@dataclass(slots=True)
class Evidence:
    """The rows behind one finding (at most ``limit`` of ``total``), with per-kind counts."""

    ref: FindingRef
    limit: int
    total: int
    counted: dict[str, int]
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        r = self.ref
        return {"finding_id": r.finding_id, "campus_id": r.campus_id, "scope_code": r.scope_code,
                "scope_id": r.scope_id, "dt": r.dt.isoformat(), "dimension_code": r.dimension_code,
                "total": self.total, "limit": self.limit, "counted": dict(self.counted),
                "columns": list(self.columns), "rows": [dict(x) for x in self.rows]}


def finding_ref(wh: Queryable, finding_id: str) -> FindingRef:
    """The finding's scope, day and dimension from ``meta_qlt_finding_cur``; FindingError if there is none."""
    rows = wh.query("SELECT finding_id, campus_id, scope_code, scope_id, dt, dimension_code "
                    "FROM meta_qlt_finding_cur WHERE finding_id = ?", (finding_id,))[1]
    if not rows:
        raise FindingError(f"no finding {finding_id[:200]!r}")
    fid, campus, scope, sid, day, dim = rows[0]
    if scope not in SCOPES or dim not in DIMENSIONS:
        raise FindingError(f"finding {fid!r} has scope {scope!r} / dimension {dim!r}: not known here")
    if not isinstance(day, dt.date):
        day = dt.date.fromisoformat(str(day))
    return FindingRef(str(fid), str(campus), str(scope), str(sid), day, str(dim))


def _case(column: str, mapping: dict[str, float]) -> str:
    if not mapping:
        return "NULL"
    whens = " ".join(f"WHEN '{k.replace(chr(39), '')}' THEN {float(v)!r}" for k, v in sorted(mapping.items()))
    return f"CASE {column} {whens} ELSE NULL END"


def _readings(ref: FindingRef, *, scoped: bool) -> tuple[str, list[Any]]:
    """SQL (a UNION over the DWD reading tables) of the campus-day's readings, or only the scope's devices."""
    where = "e.campus_id = ? AND e.dt = ?"
    params: list[Any] = [ref.campus_id, ref.dt]
    if scoped:  # scope_code is one of SCOPES (checked in finding_ref): the column name is ours
        where += (" AND e.device_id IN (SELECT d.device_id FROM dws_qlt_device_1d d "
                  f"WHERE d.campus_id = ? AND d.dt = ? AND d.{ref.scope_code}_id = ?)")
        params += [ref.campus_id, ref.dt, ref.scope_id]
    cols = ", ".join(f"e.{c}" for c in _READ)
    sql = " UNION ALL ".join(f"SELECT {cols} FROM {t} e WHERE {where}" for t in PROCESS_TABLES.values())
    return sql, params * len(PROCESS_TABLES)


_TEXT = ("kind", "device_id", "metric_code", "agg_code", "gateway_id", "reason_code", "ref_device_id")
_FLOAT = ("interval_ms", "value", "prev_value", "hour_val", "ref_val", "tolerance_val")


def _null(column: str) -> str:
    """A typed NULL (PostgreSQL resolves an untyped NULL of a UNION branch as text)."""
    return f"CAST(NULL AS {'VARCHAR' if column in _TEXT else F8 if column in _FLOAT else 'BIGINT'})"


def _select(dimension: str, values: dict[str, str], weight: str) -> str:
    """One SELECT list in the dimension's column order; columns not in ``values`` are typed NULLs."""
    return ", ".join([*(f"{values.get(c) or _null(c)} AS {c}" for c in COLUMNS[dimension]),
                      f"{weight} AS weight_n"])


def _row_values(prefix: str = "w") -> dict[str, str]:
    return {c: f"{prefix}.{c}" for c in (*_KEY, "value", "quality_flag", "hour_ms", *PROVENANCE)}


def _completeness(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    missing = f"CAST(ROUND(CAST(w.step_ms AS {F8}) / iv.interval_ms) AS BIGINT) - 1"
    v = {**_row_values(), "kind": "'gap'", "from_ts_ms": "w.ts_ms - w.step_ms", "step_ms": "w.step_ms",
         "interval_ms": "iv.interval_ms", "missing_cnt": missing}
    silent = {"kind": "'silent'", "device_id": "q.device_id", "step_ms": "q.gap_max_ms",
              "missing_cnt": "q.expected_cnt", "gateway_id": "q.gateway_id", "load_id": "q.load_id"}
    # the expected interval, as in the transform: an aggregate's window; the profile's declared interval unless
    # the series reports more than twice as fast or the profile declares none; else the day's median step
    return f"""
WITH r AS ({r}), w AS (
    SELECT r.*, r.ts_ms - LAG(r.ts_ms) OVER ({_SERIES}) AS step_ms FROM r
), md AS (
    SELECT w.device_id, w.metric_code, w.agg_code, w.window_s, MIN(w.profile_ref) AS profile_ref,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY w.step_ms) AS median_ms
    FROM w WHERE w.step_ms > 0 GROUP BY w.device_id, w.metric_code, w.agg_code, w.window_s
), iv AS (
    SELECT md.device_id, md.metric_code, md.agg_code, md.window_s, CASE
        WHEN md.agg_code <> 'raw' AND md.window_s > 0 THEN CAST(md.window_s AS {F8}) * 1000
        WHEN pm.interval_s IS NOT NULL AND md.median_ms >= pm.interval_s * 500 THEN pm.interval_s * 1000
        ELSE md.median_ms END AS interval_ms
    FROM md LEFT JOIN dim_iot_profile_metric pm ON pm.profile_ref = md.profile_ref
        AND pm.metric_code = md.metric_code
), ev AS (
    SELECT {_select("completeness", v, missing)}
    FROM w JOIN iv ON iv.device_id = w.device_id AND iv.metric_code = w.metric_code
        AND iv.agg_code = w.agg_code AND iv.window_s = w.window_s
    WHERE iv.interval_ms > 0 AND w.step_ms > {cfg.gap_factor!r} * iv.interval_ms
    UNION ALL
    SELECT {_select("completeness", silent, "q.expected_cnt")}
    FROM dws_qlt_device_1d q
    WHERE q.campus_id = ? AND q.dt = ? AND q.{ref.scope_code}_id = ? AND q.reading_cnt = 0
)""", [*params, ref.campus_id, ref.dt, ref.scope_id]


def _timeliness(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    target = int(cfg.timely_target_s * 1000)
    v = {**_row_values("r"), "kind": "'late'", "received_ms": "b.received_ms", "lag_ms": "b.received_ms - r.ts_ms"}
    return f"""
WITH r AS ({r}), ev AS (
    SELECT {_select("timeliness", v, "1")}
    FROM r LEFT JOIN ods_iot_batch_di b ON b.gateway_id = r.gateway_id AND b.batch_seq = r.batch_seq
    WHERE b.received_ms IS NULL OR b.received_ms - r.ts_ms > {target}
)""", params


def _uniqueness(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    key = " AND ".join(f"o.{c} = r.{c}" for c in _KEY)
    part = "PARTITION BY o.device_id, o.metric_code, o.agg_code, o.window_s, o.ts_ms"
    c = {**{k: f"c.{k}" for k in (*_KEY, "value", "window_ver", "received_ms", *PROVENANCE)},
         "kind": "'duplicate'", "copy_no": "c.copy_no", "copy_cnt": "c.copy_cnt"}
    return f"""
WITH r AS ({r}), c AS (
    SELECT o.device_id, o.metric_code, o.agg_code, o.window_s, o.ts_ms, o.value, o.window_ver, o.received_ms,
        o.gateway_id, o.batch_seq, o.load_id,
        ROW_NUMBER() OVER ({part} ORDER BY o.window_ver DESC, o.load_id, o.batch_seq) AS copy_no,
        COUNT(*) OVER ({part}) AS copy_cnt
    FROM r JOIN ods_iot_reading_di o ON {key}
), ev AS (
    SELECT {_select("uniqueness", c, "CASE WHEN c.copy_no > 1 THEN 1 ELSE 0 END")} FROM c WHERE c.copy_cnt > 1
)""", params


def _accuracy(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    n = cfg.stuck_samples
    stuck_in = ", ".join(f"'{m.replace(chr(39), '')}'" for m in cfg.stuck_metrics) or "''"
    run = f"{_SERIES} ROWS BETWEEN {n - 1} PRECEDING AND CURRENT ROW"
    v = {**_row_values(), "prev_ts_ms": "w.prev_ts_ms", "prev_value": "w.prev_value"}
    spike = (f"w.agg_code = 'raw' AND w.value - w.prev_value IS NOT NULL AND ABS(w.value - w.prev_value) > "
             f"{_case('w.metric_code', cfg.max_rate_per_min)} * "
             f"GREATEST(CAST(w.ts_ms - w.prev_ts_ms AS {F8}) / 60000.0, 1.0)")
    stuck = f"w.metric_code IN ({stuck_in}) AND w.run_n = {n} AND w.run_min = w.run_max"
    kinds = (("out_of_range", f"(w.quality_flag & {Q_OUT_OF_RANGE}) <> 0"), ("spike", spike), ("stuck", stuck))
    union = " UNION ALL ".join(f"SELECT {_select('accuracy', {**v, 'kind': repr(k)}, '1')} FROM w WHERE {cond}"
                               for k, cond in kinds)
    return f"""
WITH r AS ({r}), w AS (
    SELECT r.*, LAG(r.ts_ms) OVER ({_SERIES}) AS prev_ts_ms, LAG(r.value) OVER ({_SERIES}) AS prev_value,
        COUNT(r.value) OVER ({run}) AS run_n, MIN(r.value) OVER ({run}) AS run_min,
        MAX(r.value) OVER ({run}) AS run_max
    FROM r
), ev AS ({union})""", params


def _consistency(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    ra, all_params = _readings(ref, scoped=False)  # the room's other sensors and a meter's subs may be outside
    v = {**_row_values(), "prev_ts_ms": "w.prev_ts_ms", "prev_value": "w.prev_value"}
    decrease = "w.metric_type = 'counter' AND w.agg_code = 'raw' AND w.value - w.prev_value < 0"
    used = f"r.room_id IS NOT NULL AND r.value IS NOT NULL AND (r.quality_flag & {Q_OUT_OF_RANGE}) = 0 " \
           "AND r.agg_code IN ('raw', 'mean')"
    room = {**_row_values("r"), "kind": "'room_disagreement'", "hour_val": "x.v", "ref_val": "x.ref_v",
            "ref_device_id": "x.ref_device_id", "tolerance_val": "x.tol"}
    sub = {**_row_values("q"), "kind": "'submeter_mismatch'", "prev_ts_ms": "q.prev_ts_ms",
           "prev_value": "q.prev_value", "hour_val": "e.kwh", "ref_val": "subs.kwh",
           "tolerance_val": _sub_limit(cfg)}
    # as in the transform: a room sensor's hourly mean against the room's authoritative device when it reported
    # that hour (the authoritative one is not judged), else against the other sensors' mean; a main meter's
    # hourly kWh against the sum of its sub-meters' (dim_iot_device.parent_device_id)
    return f"""
WITH r AS ({r}), w AS (
    SELECT r.*, m.metric_type, LAG(r.ts_ms) OVER ({_SERIES}) AS prev_ts_ms,
        LAG(r.value) OVER ({_SERIES}) AS prev_value
    FROM r LEFT JOIN dim_iot_metric m ON m.metric_code = r.metric_code
), ra AS ({ra}), m AS (
    SELECT r.room_id, r.metric_code, r.hour_ms, r.device_id, AVG(r.value) AS v,
        MAX(CASE WHEN x.device_id IS NULL THEN 0 ELSE 1 END) AS is_auth
    FROM ra r
    LEFT JOIN dim_iot_authority x ON x.device_id = r.device_id AND x.metric_code = r.metric_code
    WHERE {used}
    GROUP BY r.room_id, r.metric_code, r.hour_ms, r.device_id
), o AS (
    SELECT m.*, SUM(m.v) OVER (PARTITION BY m.room_id, m.metric_code, m.hour_ms) AS v_sum,
        COUNT(*) OVER (PARTITION BY m.room_id, m.metric_code, m.hour_ms) AS dev_n,
        MAX(CASE WHEN m.is_auth = 1 THEN m.v END) OVER (PARTITION BY m.room_id, m.metric_code, m.hour_ms) AS v_auth,
        MAX(CASE WHEN m.is_auth = 1 THEN m.device_id END)
            OVER (PARTITION BY m.room_id, m.metric_code, m.hour_ms) AS auth_id,
        {_case("m.metric_code", cfg.room_tolerance)} AS tol
    FROM m
), x AS MATERIALIZED (  -- small; without statistics PostgreSQL would recompute it per reading
    SELECT o.room_id, o.metric_code, o.hour_ms, o.device_id, o.v, o.tol,
        CASE WHEN o.v_auth IS NOT NULL THEN o.v_auth ELSE (o.v_sum - o.v) / (o.dev_n - 1) END AS ref_v,
        CASE WHEN o.v_auth IS NOT NULL THEN o.auth_id END AS ref_device_id
    FROM o
    WHERE o.tol IS NOT NULL AND o.is_auth = 0 AND CASE
        WHEN o.v_auth IS NOT NULL THEN ABS(o.v - o.v_auth) > o.tol
        ELSE o.dev_n >= 2 AND ABS(o.v - (o.v_sum - o.v) / (o.dev_n - 1)) > o.tol END
), er AS (
    SELECT r.*, LAG(r.ts_ms) OVER ({_SERIES}) AS prev_ts_ms, LAG(r.value) OVER ({_SERIES}) AS prev_value
    FROM ra r WHERE r.metric_code = '{ENERGY_METRIC}' AND r.agg_code = 'raw'
), e AS (
    SELECT er.device_id, er.hour_ms,
        SUM(CASE WHEN er.value - er.prev_value > 0 THEN er.value - er.prev_value ELSE 0 END) AS kwh
    FROM er GROUP BY er.device_id, er.hour_ms
), subs AS (
    SELECT d.parent_device_id AS main_id, e.hour_ms, SUM(e.kwh) AS kwh
    FROM e JOIN dim_iot_device d ON d.device_id = e.device_id AND d.is_current
    WHERE d.parent_device_id IS NOT NULL
    GROUP BY d.parent_device_id, e.hour_ms
), ev AS (
    SELECT {_select("consistency", {**v, "kind": "'decrease'"}, "1")} FROM w WHERE {decrease}
    UNION ALL
    SELECT {_select("consistency", {**v, "kind": "'clock_skew'"}, "1")} FROM w
    WHERE (w.quality_flag & {Q_CLOCK_SKEW}) <> 0
    UNION ALL
    SELECT {_select("consistency", room, "1")} FROM r
    JOIN x ON x.room_id = r.room_id AND x.metric_code = r.metric_code AND x.hour_ms = r.hour_ms
        AND x.device_id = r.device_id
    WHERE {used}
    UNION ALL
    SELECT {_select("consistency", sub, "1")} FROM er q
    JOIN e ON e.device_id = q.device_id AND e.hour_ms = q.hour_ms
    JOIN subs ON subs.main_id = q.device_id AND subs.hour_ms = q.hour_ms
    WHERE q.device_id IN (SELECT DISTINCT r.device_id FROM r) AND ABS(subs.kwh - e.kwh) > {_sub_limit(cfg)}
)""", params + all_params


def _sub_limit(cfg: QualityConfig) -> str:
    return f"{float(cfg.submeter_tolerance)!r} * e.kwh + 0.01"


def _validity(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    kind = (f"CASE WHEN (r.quality_flag & {Q_NO_GATEWAY}) <> 0 THEN 'unregistered_gateway' "
            f"WHEN (r.quality_flag & {Q_NO_DEVICE}) <> 0 THEN 'unregistered_device' "
            f"WHEN (r.quality_flag & {Q_UNIT}) <> 0 THEN 'unconvertible_unit' END")
    sql = f"""
WITH r AS ({r}), ev AS (
    SELECT {_select("validity", {**_row_values("r"), "kind": kind}, "1")} FROM r
    WHERE (r.quality_flag & {Q_INVALID}) <> 0"""
    if ref.scope_code in ("gateway", "campus"):  # quarantined messages count against validity here
        q = {"kind": "'quarantine'", "reason_code": "l.reason_code", "loss_cnt": "l.loss_cnt",
             "gateway_id": "l.gateway_id", "load_id": "l.load_id"}
        sql += f"""
    UNION ALL
    SELECT {_select("validity", q, "l.loss_cnt")} FROM {LOSS_TABLE} l
    WHERE l.campus_id = ? AND l.dt = ? AND l.{ref.scope_code}_id = ? AND l.cause_code = 'quarantine'
        AND l.loss_cnt > 0"""
        params = [*params, ref.campus_id, ref.dt, ref.scope_id]
    return sql + "\n)", params


_BUILDERS = {"completeness": _completeness, "timeliness": _timeliness, "uniqueness": _uniqueness,
             "accuracy": _accuracy, "consistency": _consistency, "validity": _validity}


def _plain(value: Any) -> Any:
    """A JSON-ready cell: dates as ISO text, decimals as numbers, NaN as None."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evidence_for(wh: Queryable, ref: FindingRef, *, limit: int = DEFAULT_LIMIT,
                 config: QualityConfig | None = None) -> Evidence:
    """The evidence rows of the finding ``ref`` (the first ``limit``) and per-kind counts."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit {limit} is not between 1 and {MAX_LIMIT}")
    cfg = config or default_config()
    ctes, params = _BUILDERS[ref.dimension_code](ref, cfg)
    counted = dict.fromkeys(KINDS[ref.dimension_code], 0)
    total = 0
    for kind, n, weight in wh.query(f"{ctes} SELECT ev.kind, COUNT(*), SUM(ev.weight_n) FROM ev GROUP BY ev.kind",
                                    tuple(params))[1]:
        counted[str(kind)] = int(weight or 0)
        total += int(n)
    columns = COLUMNS[ref.dimension_code]
    order = _ORDER[ref.dimension_code]
    _, rows = wh.query(f"{ctes} SELECT {', '.join(columns)} FROM ev ORDER BY {order} LIMIT {int(limit)}",
                       tuple(params))
    return Evidence(ref, limit, total, counted, columns,
                    [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows])


def evidence(wh: Queryable, finding_id: str, *, limit: int = DEFAULT_LIMIT,
             config: QualityConfig | None = None) -> Evidence:
    """The evidence of finding ``finding_id``; raises FindingError when there is no such finding."""
    return evidence_for(wh, finding_ref(wh, finding_id), limit=limit, config=config)

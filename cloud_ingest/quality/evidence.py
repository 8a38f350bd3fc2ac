"""Evidence of a finding: the rows behind ``<dt>:<scope>:<id>:<dimension>``, each with its ODS provenance.

A finding says a scope-day's rate fell below its threshold; its evidence is what the rate counted, found
again in the warehouse with the same rules and limits as the ``qlt_*`` transforms (``quality.yaml`` through
:mod:`cloud_ingest.quality.config`, quality bits of the DWD transform):

============  ==========================================================================================
dimension     evidence rows (``kind``)
============  ==========================================================================================
completeness  ``gap``: a step longer than gap_factor x the series' expected interval; from/to ts, missing
              readings; ``leading_gap`` / ``trailing_gap``: a raw series starting late / stopping early in the
              campus-day's data horizon (from/to: the horizon's edge and the series' reading); ``silent``:
              a registered device that sent nothing all day (step: the campus's data horizon, missing: the
              readings its profile owed over it)
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
from cloud_ingest.warehouse.transforms import quality_rules as rules
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES, Q_NO_DEVICE, Q_NO_GATEWAY, Q_UNIT
from cloud_ingest.warehouse.transforms.dws import ENERGY_METRIC
from cloud_ingest.warehouse.transforms.quality_losses import TABLE as LOSS_TABLE
from cloud_ingest.warehouse.transforms.quality_rules import F8, Q_INVALID

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
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
    "completeness": ("gap", "leading_gap", "trailing_gap", "silent"),
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
    missing = rules.gap_missing("w.step_ms", "iv.interval_ms")
    v = {**_row_values(), "kind": "'gap'", "from_ts_ms": "w.ts_ms - w.step_ms", "step_ms": "w.step_ms",
         "interval_ms": "iv.interval_ms", "missing_cnt": missing}
    silent = {"kind": "'silent'", "device_id": "q.device_id", "step_ms": "q.gap_max_ms",
              "missing_cnt": "q.expected_cnt", "gateway_id": "q.gateway_id", "load_id": "q.load_id"}
    edge_missing = rules.gap_missing("eg.to_ms - eg.from_ms", "eg.interval_ms")
    edge = {**_row_values(), "kind": "eg.kind", "from_ts_ms": "eg.from_ms", "ts_ms": "eg.to_ms",
            "step_ms": "eg.to_ms - eg.from_ms", "interval_ms": "eg.interval_ms", "missing_cnt": edge_missing}
    ra, all_params = _readings(ref, scoped=False)  # the horizon is the whole campus-day's
    return f"""
WITH r AS ({r}), w AS (
    SELECT r.*, r.ts_ms - LAG(r.ts_ms) OVER ({_SERIES}) AS step_ms FROM r
), ra AS ({ra}), {rules.interval_ctes("w", rules.SERIES)}, {rules.horizon_cte("ra", per_day=False)},
    {rules.edge_gap_ctes(cfg, "w", rules.SERIES)}, ev AS (
    SELECT {_select("completeness", v, missing)}
    FROM w JOIN iv ON {rules.join_on("iv", "w", rules.SERIES)}
    WHERE {rules.is_gap(cfg, "w.step_ms", "iv.interval_ms")}
    UNION ALL
    SELECT {_select("completeness", edge, edge_missing)}
    FROM eg JOIN w ON {rules.join_on("w", "eg", rules.SERIES)} AND w.ts_ms = eg.at_ms
    UNION ALL
    SELECT {_select("completeness", silent, "q.expected_cnt")}
    FROM dws_qlt_device_1d q
    WHERE q.campus_id = ? AND q.dt = ? AND q.{ref.scope_code}_id = ? AND q.reading_cnt = 0
)""", [*params, *all_params, ref.campus_id, ref.dt, ref.scope_id]


def _timeliness(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    v = {**_row_values("r"), "kind": "'late'", "received_ms": "b.received_ms", "lag_ms": "b.received_ms - r.ts_ms"}
    return f"""
WITH r AS ({r}), ev AS (
    SELECT {_select("timeliness", v, "1")}
    FROM r LEFT JOIN ods_iot_batch_di b ON b.gateway_id = r.gateway_id AND b.batch_seq = r.batch_seq
    WHERE b.received_ms IS NULL OR NOT ({rules.is_timely(cfg, "b.received_ms - r.ts_ms")})
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
    v = {**_row_values(), "prev_ts_ms": "w.prev_ts_ms", "prev_value": "w.prev_value"}
    kinds = (("out_of_range", rules.is_out_of_range("w.quality_flag")),
             ("spike", rules.is_spike(cfg, "w", "w.value - w.prev_value", "w.ts_ms - w.prev_ts_ms")),
             ("stuck", rules.is_stuck(cfg, "w")))
    union = " UNION ALL ".join(f"SELECT {_select('accuracy', {**v, 'kind': repr(k)}, '1')} FROM w WHERE {cond}"
                               for k, cond in kinds)
    return f"""
WITH r AS ({r}), w AS (
    SELECT r.*, LAG(r.ts_ms) OVER ({_SERIES}) AS prev_ts_ms, LAG(r.value) OVER ({_SERIES}) AS prev_value,
        {rules.run_windows(cfg, "r", _SERIES)}
    FROM r
), ev AS ({union})""", params


def _consistency(ref: FindingRef, cfg: QualityConfig) -> tuple[str, list[Any]]:
    r, params = _readings(ref, scoped=True)
    ra, all_params = _readings(ref, scoped=False)  # the room's other sensors and a meter's subs may be outside
    v = {**_row_values(), "prev_ts_ms": "w.prev_ts_ms", "prev_value": "w.prev_value"}
    room = {**_row_values("r"), "kind": "'room_disagreement'", "hour_val": "x.v", "ref_val": "x.ref_v",
            "ref_device_id": "x.ref_device_id", "tolerance_val": "x.tol"}
    sub = {**_row_values("q"), "kind": "'submeter_mismatch'", "prev_ts_ms": "q.prev_ts_ms",
           "prev_value": "q.prev_value", "hour_val": "e.kwh", "ref_val": "subs.kwh",
           "tolerance_val": rules.submeter_limit(cfg)}
    # the transform's rules (quality_rules) over the campus-day, each reading of the scope's off device-hours
    # (room) or main meters' hours (sub-meters) listed
    return f"""
WITH r AS ({r}), w AS (
    SELECT r.*, m.metric_type, LAG(r.ts_ms) OVER ({_SERIES}) AS prev_ts_ms,
        LAG(r.value) OVER ({_SERIES}) AS prev_value
    FROM r LEFT JOIN dim_iot_metric m ON m.metric_code = r.metric_code
), ra AS ({ra}), {rules.room_disagreement_ctes(cfg, "ra")}, er AS (
    SELECT r.*, LAG(r.ts_ms) OVER ({_SERIES}) AS prev_ts_ms, LAG(r.value) OVER ({_SERIES}) AS prev_value
    FROM ra r WHERE r.metric_code = {rules.quoted(ENERGY_METRIC)} AND r.agg_code = 'raw'
), {rules.submeter_ctes("er", "er.value - er.prev_value")}, ev AS (
    SELECT {_select("consistency", {**v, "kind": "'decrease'"}, "1")} FROM w
    WHERE {rules.is_decrease("w", "w.value - w.prev_value")}
    UNION ALL
    SELECT {_select("consistency", {**v, "kind": "'clock_skew'"}, "1")} FROM w
    WHERE {rules.is_clock_skew("w.quality_flag")}
    UNION ALL
    SELECT {_select("consistency", room, "1")} FROM r
    JOIN x ON x.room_id = r.room_id AND x.metric_code = r.metric_code AND x.hour_ms = r.hour_ms
        AND x.device_id = r.device_id
    WHERE {rules.used_for_room("r")}
    UNION ALL
    SELECT {_select("consistency", sub, "1")} FROM er q
    JOIN e ON e.device_id = q.device_id AND e.hour_ms = q.hour_ms
    JOIN subs ON subs.main_id = q.device_id AND subs.hour_ms = q.hour_ms
    WHERE q.device_id IN (SELECT DISTINCT r.device_id FROM r) AND {rules.is_submeter_mismatch(cfg)}
)""", params + all_params


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

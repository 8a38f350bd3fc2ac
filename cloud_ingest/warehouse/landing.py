"""Land one decoded batch in the ODS tier: batch row, readings and events, in one transaction.

Idempotency is the database's: ``INSERT … ON CONFLICT (gateway_id, batch_seq) DO NOTHING`` on the batch
table's primary key decides, even between several ingest replicas. When the batch row is not inserted the
existing checksum is compared: the same body is a ``duplicate`` (nothing written), another body with the
same sequence number is a ``conflict`` (nothing written).

Readings are staged as their compact wire columns (series index, ts, value, quality, version) next to the
small series table, and one ``INSERT … SELECT … JOIN`` expands the series key into each ODS row inside the
engine: no Python loop per reading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

from cloud_ingest.warehouse.adapter import Session
from cloud_ingest.warehouse.errors import WarehouseError
from edge_agent.wire import FORMAT_VERSION, Batch

_LOGGER = logging.getLogger(__name__)

LandStatus = Literal["stored", "duplicate", "conflict"]

_INSERT_BATCH = (
    "INSERT INTO ods_iot_batch_di (gateway_id, batch_seq, load_id, created_ms, received_ms, checksum, "
    "reading_cnt, event_cnt, format_ver) VALUES (?, ?, nextval('meta_etl_load_id_seq'), ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (gateway_id, batch_seq) DO NOTHING RETURNING load_id"
)
_INSERT_READINGS = (
    "INSERT INTO ods_iot_reading_di (gateway_id, batch_seq, load_id, device_id, metric_code, unit_code, "
    "profile_ref, agg_code, window_s, ts_ms, value, quality_flag, window_ver, received_ms, checksum) "
    "SELECT ?, ?, ?, s.device_id, s.metric_code, s.unit_code, s.profile_ref, s.agg_code, s.window_s, "
    "r.ts_ms, r.value, r.quality_flag, r.window_ver, ?, ? "
    "FROM stg_ods_reading r JOIN stg_ods_series s ON s.series_idx = r.series_idx"
)
_INSERT_EVENTS = (
    "INSERT INTO ods_iot_event_di (gateway_id, batch_seq, load_id, event_idx, device_id, profile_ref, "
    "event_kind, ts_ms, quality_flag, attrs_json, received_ms, checksum) "
    "SELECT ?, ?, ?, event_idx, device_id, profile_ref, event_kind, ts_ms, quality_flag, attrs_json, ?, ? "
    "FROM stg_ods_event"
)


@dataclass(slots=True, frozen=True)
class LandResult:
    """What ``land_batch`` did: ``stored`` (with row counts), ``duplicate`` or ``conflict`` (0 rows)."""

    status: LandStatus
    readings: int
    events: int
    load_id: int = 0  # the batch's change id when stored (0 otherwise)


def _check_indexes(batch: Batch) -> None:
    """Refuse a batch whose index columns point outside its dictionaries (a decoder bug, not bad input)."""
    checks = (
        ("s_device", batch.s_device, len(batch.devices)), ("s_metric", batch.s_metric, len(batch.metrics)),
        ("s_unit", batch.s_unit, len(batch.units)), ("s_profile", batch.s_profile, len(batch.profiles)),
        ("s_agg", batch.s_agg, len(batch.aggs)), ("r_series", batch.r_series, len(batch.s_device)),
        ("e_device", batch.e_device, len(batch.devices)), ("e_profile", batch.e_profile, len(batch.profiles)),
    )
    for name, arr, size in checks:
        if arr.shape[0] and int(arr.max()) >= size:
            raise WarehouseError(f"batch {batch.gateway}/{batch.seq}: {name} index {int(arr.max())} "
                                 f">= {size}")
    if len(batch.e_kind) != batch.n_events:
        raise WarehouseError(f"batch {batch.gateway}/{batch.seq}: e_kind has {len(batch.e_kind)} entries "
                             f"for {batch.n_events} events")


def _pick(names: tuple[str, ...], idx: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.array(names, dtype=object)[idx] if len(names) else np.empty(0, dtype=object)


def _series_columns(batch: Batch) -> dict[str, Any]:
    n = int(batch.s_device.shape[0])
    return {
        "series_idx": np.arange(n, dtype=np.int64),
        "device_id": _pick(batch.devices, batch.s_device),
        "metric_code": _pick(batch.metrics, batch.s_metric),
        "unit_code": _pick(batch.units, batch.s_unit),
        "profile_ref": _pick(batch.profiles, batch.s_profile),
        "agg_code": _pick(batch.aggs, batch.s_agg),
        "window_s": batch.s_window_s.astype(np.int64),
    }


def _event_columns(batch: Batch) -> dict[str, Any]:
    attrs = batch.e_attrs or ({},) * batch.n_events
    return {
        "event_idx": np.arange(batch.n_events, dtype=np.int64),
        "device_id": _pick(batch.devices, batch.e_device),
        "profile_ref": _pick(batch.profiles, batch.e_profile),
        "event_kind": np.array(batch.e_kind, dtype=object),
        "ts_ms": batch.e_ts_ms.astype(np.int64),
        "quality_flag": batch.e_quality.astype(np.int64),
        # canonical JSON (sorted keys): equal attributes give equal text, which DWD de-duplicates on
        "attrs_json": np.array([orjson.dumps(a, option=orjson.OPT_SORT_KEYS).decode() for a in attrs],
                               dtype=object),
    }


def land_batch(session: Session, batch: Batch, *, body_checksum: str, received_ms: int,
               format_version: int = FORMAT_VERSION) -> LandResult:
    """Write ``batch`` to ODS in one transaction on ``session``; see the module docstring for the statuses.

    The caller serialises calls per session (and, on DuckDB, per database). Raises ``EngineError`` when the
    database fails; nothing is committed then.
    """
    _check_indexes(batch)
    gw, seq = batch.gateway, int(batch.seq)
    with session.transaction():
        session.landing_guard()
        rows = session.fetchall(_INSERT_BATCH, (gw, seq, int(batch.created_ms), int(received_ms),
                                                body_checksum, batch.n_readings, batch.n_events,
                                                int(format_version)))
        if not rows:
            existing = session.fetch_one_value(
                "SELECT checksum FROM ods_iot_batch_di WHERE gateway_id = ? AND batch_seq = ?", (gw, seq))
            status: LandStatus = "duplicate" if existing == body_checksum else "conflict"
            _LOGGER.info("batch %s/%s is a %s", gw, seq, status, extra={"gateway": gw, "batch_seq": seq})
            return LandResult(status, 0, 0)
        load_id = int(rows[0][0])
        tail = (int(received_ms), body_checksum)
        if batch.n_readings:
            session.stage("stg_ods_series", _series_columns(batch))
            session.stage("stg_ods_reading", {
                "series_idx": batch.r_series.astype(np.int64),
                "ts_ms": batch.r_ts_ms,
                "value": batch.r_value,
                "quality_flag": batch.r_quality.astype(np.int64),
                "window_ver": batch.r_version.astype(np.int64),
            })
            try:
                session.execute(_INSERT_READINGS, (gw, seq, load_id, *tail))
            finally:
                session.unstage("stg_ods_reading")
                session.unstage("stg_ods_series")
        if batch.n_events:
            session.stage("stg_ods_event", _event_columns(batch))
            try:
                session.execute(_INSERT_EVENTS, (gw, seq, load_id, *tail))
            finally:
                session.unstage("stg_ods_event")
    return LandResult("stored", batch.n_readings, batch.n_events, load_id)

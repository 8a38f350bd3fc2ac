"""A warehouse with a fault behind every quality dimension, shared by the evidence and API tests.

campus-sim traffic (all fleet mixes) with gaps, duplicates, out-of-range values, spikes, clock skew, counter
resets and malformed messages, every 4th batch late (``sim_run.run``), then one more batch the simulator
cannot produce: readings of an unregistered device and of an unknown unit (validity), and a copy of one
room sensor's temperature readings 15 °C higher, 1 ms after each original (its hourly mean leaves the room's
other sensors: room disagreement).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cloud_ingest.warehouse import Warehouse, open_warehouse
from edge_agent.model import ProfileRef, Reading
from edge_agent.wire import decode as wire_decode
from edge_agent.wire import encode
from tests.governance import edge_run
from tests.quality import sim_run

FAULTS = "gaps=0.03,duplicates=0.03,out_of_range=0.02,spikes=0.02,skew=0.03,resets=0.02,malformed=0.06"
GHOST = "ghost-dev-1"  # never registered: quality bit 512
ODD_UNIT = "furlong"  # no conversion to the metric's unit: quality bit 256


@dataclass
class Faulty:
    wh: Warehouse
    url: str
    run: sim_run.SimRun
    hot_device: str  # the room sensor whose copied readings disagree with its room
    odd_unit_device: str


def _extra_batch(wh: Warehouse) -> tuple[str, str]:
    """Land the validity and room-disagreement readings; returns (hot device, odd-unit device)."""
    room, = wh.query("SELECT room_id FROM dwd_env_reading_di WHERE metric_code = 'temperature_air' "
                     "AND room_id IS NOT NULL GROUP BY room_id HAVING COUNT(DISTINCT device_id) >= 3 "
                     "ORDER BY room_id LIMIT 1")[1][0]
    hot, profile = wh.query("SELECT o.device_id, MIN(o.profile_ref) FROM ods_iot_reading_di o "
                            "JOIN dwd_env_reading_di d ON d.device_id = o.device_id AND d.ts_ms = o.ts_ms "
                            "AND d.metric_code = o.metric_code WHERE d.room_id = ? "
                            "AND d.metric_code = 'temperature_air' AND (d.quality_flag & 1) = 0 "
                            "GROUP BY o.device_id ORDER BY o.device_id LIMIT 1", (room,))[1][0]
    ref = ProfileRef.parse(profile)
    temps = wh.query("SELECT ts_ms, value FROM dwd_env_reading_di WHERE device_id = ? AND "
                     "metric_code = 'temperature_air' AND agg_code = 'raw' AND value IS NOT NULL "
                     "AND (quality_flag & 1) = 0 ORDER BY ts_ms", (hot,))[1]
    readings = [Reading(hot, "temperature_air", int(ts) + 1, float(v) + 15.0, "Cel", ref) for ts, v in temps]
    odd = str(wh.query("SELECT MIN(device_id) FROM dwd_env_reading_di WHERE room_id = ? AND device_id <> ?",
                       (room, hot))[1][0][0])
    t0 = sim_run.START_MS + 600_000
    readings += [Reading(GHOST, "temperature_air", t0 + i * 10_000, 21.0 + i / 10, "Cel", ref) for i in range(20)]
    readings += [Reading(odd, "temperature_air", t0 + 7 + i * 10_000, 70.0, ODD_UNIT, ref) for i in range(5)]
    seq = int(wh.query("SELECT MAX(batch_seq) FROM ods_iot_batch_di WHERE gateway_id = ?",
                       (sim_run.GATEWAY,))[1][0][0]) + 1
    created = max(r.ts_ms for r in readings) + 1000
    body = encode(edge_run.make_batch(sim_run.GATEWAY, seq, readings, [], created))
    wh.land_batch(wire_decode(body), body_checksum=hashlib.sha256(body).hexdigest(), received_ms=created + 500)
    return hot, odd


@pytest.fixture(scope="session")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    url = f"duckdb:///{tmp_path_factory.mktemp('qfaulty') / 'wh.duckdb'}"
    wh = open_warehouse(url)
    try:
        run = sim_run.run(wh, FAULTS, devices=30, n=4000, mix="all", late_every=4, silent_devices=1)
        hot, odd = _extra_batch(wh)
        wh.run_transforms()
        yield Faulty(wh, url, run, hot, odd)
    finally:
        wh.close()

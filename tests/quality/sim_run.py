"""campus-sim traffic with injected faults → real edge decoder → wire batches → DuckDB warehouse, transformed."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cloud_ingest.warehouse import Warehouse
from cloud_ingest.warehouse.registry import parse_registry
from edge_agent.decode import decode
from edge_agent.model import Message, Reading
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet
from edge_agent.wire import decode as wire_decode
from edge_agent.wire import encode
from gateway.simulator import Simulator
from gateway.simulator.registry_export import registry_for
from tests.governance import edge_run

ROOT = Path(__file__).resolve().parents[2]
START_MS = 1_725_235_200_000  # 2024-09-02T00:00:00Z
GATEWAY = "gw-qlt"
LATE_MS = 3_600_000  # delay of a late batch: well past the timeliness target (quality.yaml, 300 s)


@dataclass
class SimRun:
    readings: int = 0  # readings decoded and landed (copies of duplicated messages included)
    faults: Counter[str] = field(default_factory=Counter)  # fault kind → messages
    fault_readings: Counter[str] = field(default_factory=Counter)  # fault kind → readings of those messages
    gap_missing: int = 0  # messages suppressed by gaps (simulator ledger)
    messages: int = 0
    late_readings: int = 0  # readings in batches received LATE_MS after they were cut
    quarantined: Counter[str] = field(default_factory=Counter)  # decoder quarantine reason → messages
    malformed_quarantined: int = 0  # messages with the malformed fault that the decoder quarantined
    edge_too_late: int = 0  # the heartbeats' late.too_late counter (cumulative), last value sent
    stopped: str = ""  # the device that went quiet (stop_at)
    stopped_ts_ms: int = 0  # its first message that was dropped


def run(wh: Warehouse, faults: str, *, devices: int = 40, n: int = 6000, seed: int = 7, mix: str = "zigbee2mqtt",
        late_every: int = 0, heartbeat_every: int = 500, silent_devices: int = 0, stop_at: float = 0.0) -> SimRun:
    """Simulate, decode, land (every ``late_every``-th batch LATE_MS late) and transform; the faults' account.

    ``silent_devices`` more devices are registered (``<id>-silent<i>``, copies of the simulated devices:
    same profile and room) that never send anything. With ``stop_at`` (0..1) the first registered device goes
    quiet after that share of the messages (``SimRun.stopped``: its id; ``stopped_ts_ms``: when).

    Every ``heartbeat_every`` messages (and at the end) a heartbeat with the cumulative quarantine counters is
    stored the way the API stores one (``Warehouse.land_heartbeat``).
    """
    sim = Simulator.build(devices, seed=seed, start_ms=START_MS, rate=200, time_scale=60, faults=faults, mix=mix)
    reg = registry_for(sim, campus_id="cmp-q", gateway_id=GATEWAY, profile_versions={})
    reg["devices"] += [{**d, "id": f"{d['id']}-silent{i}"}
                       for i, d in zip(range(silent_devices), itertools.cycle(reg["devices"]), strict=False)]
    wh.load_registry(parse_registry(reg, "sim"))
    profiles = ProfileSet.load(ROOT / "device_profiles", timezone="Asia/Shanghai")
    pz = Pseudonymizer.from_text(edge_run.KEY_TEXT)
    out = SimRun()
    pending: list[Reading] = []
    seq = 0

    def flush(created: int) -> None:
        nonlocal seq, pending
        if not pending:
            return
        seq += 1
        late = bool(late_every) and seq % late_every == 0
        if late:
            out.late_readings += len(pending)
        body = encode(edge_run.make_batch(GATEWAY, seq, pending, [], created))
        wh.land_batch(wire_decode(body), body_checksum=hashlib.sha256(body).hexdigest(),
                      received_ms=created + 500 + (LATE_MS if late else 0))
        pending = []

    def heartbeat(now_ms: int) -> None:
        out.edge_too_late = out.messages // 1000  # a made-up cumulative edge counter: the report must show it
        body = {"gateway": GATEWAY, "sent_at_ms": now_ms, "interval_s": 30,
                "quarantined_by_reason": dict(out.quarantined), "evicted": {},
                "late": {"too_late": out.edge_too_late}}
        wh.land_heartbeat(GATEWAY, sent_ms=now_ms, received_ms=now_ms + 200, heartbeat_json=json.dumps(body))

    last = START_MS
    for m in sim.messages(n):
        out.messages += 1
        last = max(last, m.ts_ms)
        r = decode(Message(m.topic, m.payload, m.ts_ms), profiles, now_ms=m.ts_ms, pseudonymizer=pz)
        if m.fault:
            out.faults[m.fault] += 1
        if heartbeat_every and out.messages % heartbeat_every == 0:
            heartbeat(m.ts_ms)
        if r.quarantine is not None:
            out.quarantined[str(r.quarantine.reason)] += 1
            out.malformed_quarantined += m.fault == "malformed"
            continue
        if stop_at and out.messages > stop_at * n and r.readings and r.readings[0].device == reg["devices"][0]["id"]:
            out.stopped = r.readings[0].device
            out.stopped_ts_ms = out.stopped_ts_ms or m.ts_ms
            continue
        out.readings += len(r.readings)
        if m.fault:
            out.fault_readings[m.fault] += len(r.readings)
        pending.extend(r.readings)
        if len(pending) >= 400:
            flush(m.ts_ms)
    flush(last)
    if heartbeat_every:
        heartbeat(last)
    out.gap_missing = sum(int(f.detail.split()[2]) for f in sim.ledger if f.kind == "gaps")
    wh.run_transforms()
    return out

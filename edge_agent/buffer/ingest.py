"""Turn a burst of DecodeResults into row tuples (hot path) and write them with ``executemany``.

Building rows interns series ids in memory; the write inserts new series first, then every table with
one ``executemany`` each, all inside the caller's single transaction.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from edge_agent.buffer.core import Core, SeriesCache
from edge_agent.buffer.records import EVENT_AGG, AggregateRow, SeriesKey, State
from edge_agent.model import DecodeResult, Priority, ProfileRef

# Rough on-disk bytes per row including index entries; used only to decide whether to evict first.
READING_BYTES = 48
EVENT_BYTES = 72
QUARANTINE_BYTES = 96
WAVEFORM_BYTES = 64
SERIES_BYTES = 128

INSERT_READINGS = (
    "INSERT INTO readings(series, ts_ms, value, quality, priority, state, version) VALUES (?,?,?,?,?,?,?)"
)
INSERT_EVENTS = "INSERT INTO events(series, ts_ms, attrs, quality, priority, state) VALUES (?,?,?,?,?,?)"
INSERT_WAVEFORMS = "INSERT INTO waveforms(series, ts_ms, rate_hz, n, samples) VALUES (?,?,?,?,?)"
INSERT_QUARANTINE = (
    "INSERT INTO quarantine(received_ms, topic, payload, payload_len, profile, device, reason, detail) "
    "VALUES (?,?,?,?,?,?,?,?)"
)
INSERT_SERIES = "INSERT INTO series(id, device, metric, unit, profile, agg, window_s) VALUES (?,?,?,?,?,?,?)"

Row = tuple[object, ...]


@dataclass(slots=True)
class BurstRows:
    readings: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    waveforms: list[Row] = field(default_factory=list)
    quarantine: list[Row] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    aggregates: int = 0
    local: int = 0  # readings stored as State.LOCAL
    extra_bytes: int = 0  # variable-size payloads (attrs, samples, quarantine payloads)

    def estimate_bytes(self, new_series: int) -> int:
        return (
            len(self.readings) * READING_BYTES
            + len(self.events) * EVENT_BYTES
            + len(self.quarantine) * QUARANTINE_BYTES
            + len(self.waveforms) * WAVEFORM_BYTES
            + new_series * SERIES_BYTES
            + self.extra_bytes
        )


def build_rows(
    results: Sequence[DecodeResult],
    aggregates: Sequence[AggregateRow],
    series: SeriesCache,
    payload_cap: int,
    local_profiles: Container[ProfileRef] | None,
) -> BurstRows:
    """Pure apart from interning series ids (pending until the transaction commits)."""
    out = BurstRows(messages=len(results))
    readings = out.readings
    add = readings.append
    rid = series.raw_id
    new, local, raw = int(State.NEW), int(State.LOCAL), int(Priority.RAW)
    check_local = local_profiles is not None
    quarantined: dict[str, int] = {}
    for res in results:
        for r in res.readings:
            pri = int(r.priority)
            state = new
            if local_profiles is not None and pri == raw and r.profile in local_profiles:
                state = local
            add((rid(r.device, r.metric, r.unit, r.profile), r.ts_ms, r.value, int(r.quality), pri, state, 0))
        for e in res.events:
            sid = series.intern(SeriesKey(e.device, e.kind, "", str(e.profile), EVENT_AGG, 0))
            attrs = orjson.dumps(dict(e.attrs))
            out.extra_bytes += len(attrs)
            out.events.append((sid, e.ts_ms, attrs, int(e.quality), int(e.priority), new))
        for w in res.waveforms:
            samples = np.asarray(w.samples, dtype="<f4").tobytes()
            out.extra_bytes += len(samples)
            sid = rid(w.device, w.metric, w.unit, w.profile)
            out.waveforms.append((sid, w.ts_ms, float(w.sample_rate_hz), len(w.samples), samples))
        q = res.quarantine
        if q is not None:
            m = res.message
            payload = bytes(m.payload[:payload_cap])
            out.extra_bytes += len(payload) + len(m.topic) + len(q.detail)
            profile = str(res.profile) if res.profile is not None else None
            out.quarantine.append(
                (m.received_ms, m.topic, payload, len(m.payload), profile, res.device, str(q.reason),
                 q.detail)
            )
            quarantined[str(q.reason)] = quarantined.get(str(q.reason), 0) + 1
    for a in aggregates:
        sid = series.intern(SeriesKey(a.device, a.metric, a.unit, str(a.profile), a.agg, int(a.window_s)))
        add((sid, a.ts_ms, a.value, int(a.quality), int(a.priority), new, int(a.version)))
    out.aggregates = len(aggregates)
    out.local = sum(1 for r in readings if r[5] == local) if check_local else 0
    out.counters = {
        "committed.messages": out.messages,
        "committed.readings": len(readings) - out.aggregates,
        "committed.aggregates": out.aggregates,
        "committed.events": len(out.events),
        "committed.waveforms": len(out.waveforms),
        **{f"quarantined.{k}": v for k, v in quarantined.items()},
    }
    return out


async def write_rows(core: Core, rows: BurstRows) -> int:
    """Insert everything inside the caller's transaction; return the number of new series."""
    db = core.db
    new_series = core.series.pending_rows()
    if new_series:
        await db.executemany(INSERT_SERIES, new_series)
    if rows.readings:
        await db.executemany(INSERT_READINGS, rows.readings)
    if rows.events:
        await db.executemany(INSERT_EVENTS, rows.events)
    if rows.waveforms:
        await db.executemany(INSERT_WAVEFORMS, rows.waveforms)
    if rows.quarantine:
        await db.executemany(INSERT_QUARANTINE, rows.quarantine)
    await core.add_counters(rows.counters)
    return len(new_series)


def count_rows(core: Core, rows: BurstRows) -> None:
    """Adjust in-memory row counts after the transaction committed."""
    c = core.counts
    c.add("readings", State.NEW, len(rows.readings) - rows.local)
    c.add("readings", State.LOCAL, rows.local)
    c.add("events", State.NEW, len(rows.events))
    c.add("waveforms", 0, len(rows.waveforms))
    c.add("quarantine", 0, len(rows.quarantine))

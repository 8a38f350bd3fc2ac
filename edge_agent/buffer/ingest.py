"""Turn a burst of DecodeResults into row tuples (hot path) and write them with ``executemany``.

Building rows interns series ids in memory; the write inserts new series first, then every table with
one ``executemany`` each, all inside the caller's single transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from edge_agent.buffer.core import Core, SeriesCache
from edge_agent.buffer.records import EVENT_AGG, AggregateRow, SeriesKey, State
from edge_agent.model import DecodeResult, Priority, ProfileRef, Reason

_LOGGER = logging.getLogger(__name__)
I64 = 2**63 - 1

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


def _quarantine_row(res: DecodeResult, reason: str, detail: str, cap: int, now_ms: int) -> Row:
    """The quarantine row of a message, coercing defensively (this path must not fail)."""
    m = res.message
    raw = m.payload if isinstance(m.payload, bytes | bytearray | memoryview) else str(m.payload).encode()
    try:
        received = int(m.received_ms)
    except (TypeError, ValueError):
        received = now_ms
    profile = str(res.profile) if res.profile is not None else None
    device = str(res.device) if res.device is not None else None
    return (received, str(m.topic), bytes(raw[:cap]), len(raw), profile, device, str(reason), str(detail))


def _ts(v: int) -> int:
    t = int(v)
    if not -I64 <= t <= I64:
        raise OverflowError(f"timestamp {v!r} does not fit 64 bits")
    return t


def build_rows(
    results: Sequence[DecodeResult],
    aggregates: Sequence[AggregateRow],
    series: SeriesCache,
    payload_cap: int,
    local_profiles: Container[ProfileRef] | None,
    now_ms: int,
) -> BurstRows:
    """Pure apart from interning series ids (pending until the transaction commits).

    A record that cannot be stored (a value that is not a number, a timestamp beyond 64 bits, …) must
    not block the whole burst forever (it would be redelivered and fail again): its message is stored
    as a quarantine record with reason ``decoder_bug`` instead, and the error is logged.
    """
    out = BurstRows(messages=len(results))
    readings, events, waveforms = out.readings, out.events, out.waveforms
    add = readings.append
    rid = series.raw_id
    new, local, raw = int(State.NEW), int(State.LOCAL), int(Priority.RAW)
    quarantined: dict[str, int] = {}
    for res in results:
        marks = (len(readings), len(events), len(waveforms), out.extra_bytes, out.local)
        try:
            for r in res.readings:
                pri = int(r.priority)
                state = new
                if local_profiles is not None and pri == raw and r.profile in local_profiles:
                    state = local
                    out.local += 1
                add((rid(r.device, r.metric, r.unit, r.profile), _ts(r.ts_ms), float(r.value), int(r.quality),
                     pri, state, 0))
            for e in res.events:
                sid = series.intern(SeriesKey(str(e.device), str(e.kind), "", str(e.profile), EVENT_AGG, 0))
                attrs = orjson.dumps(dict(e.attrs))
                out.extra_bytes += len(attrs)
                events.append((sid, _ts(e.ts_ms), attrs, int(e.quality), int(e.priority), new))
            for w in res.waveforms:
                samples = np.asarray(w.samples, dtype="<f4").tobytes()
                out.extra_bytes += len(samples)
                sid = rid(w.device, w.metric, w.unit, w.profile)
                waveforms.append((sid, _ts(w.ts_ms), float(w.sample_rate_hz), len(samples) // 4, samples))
            q = res.quarantine
            if q is not None:
                row = _quarantine_row(res, q.reason, q.detail, payload_cap, now_ms)
                out.quarantine.append(row)
                out.extra_bytes += len(row[2]) + len(str(row[1])) + len(str(row[7]))  # type: ignore[arg-type]
                quarantined[str(q.reason)] = quarantined.get(str(q.reason), 0) + 1
        except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError) as exc:
            del readings[marks[0]:], events[marks[1]:], waveforms[marks[2]:]
            out.extra_bytes, out.local = marks[3], marks[4]
            _LOGGER.error("cannot store a decoded message from %s: %s", res.message.topic, exc,
                          extra={"device_id": res.device})
            out.quarantine.append(_quarantine_row(
                res, Reason.DECODER_BUG, f"decoded record cannot be stored: {exc}", payload_cap, now_ms))
            quarantined[Reason.DECODER_BUG] = quarantined.get(Reason.DECODER_BUG, 0) + 1
    for a in aggregates:
        sid = series.intern(SeriesKey(a.device, a.metric, a.unit, str(a.profile), a.agg, int(a.window_s)))
        add((sid, _ts(a.ts_ms), float(a.value), int(a.quality), int(a.priority), new, int(a.version)))
    out.aggregates = len(aggregates)
    out.counters = {
        "committed.messages": out.messages,
        "committed.readings": len(readings) - out.aggregates,
        "committed.aggregates": out.aggregates,
        "committed.events": len(events),
        "committed.waveforms": len(waveforms),
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

"""Builders shared by the buffer tests (real SQLite files in tmp_path; no mocks), plus their own checks.

Reading identity: burst ``k``, message ``i``, reading ``j`` has ``ts_ms = BASE + k*1_000_000 + i*10 + j``
and ``value = k*10_000 + i*10 + j``, so any row tells which burst it belongs to.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.model import (
    DecodeResult,
    Event,
    Message,
    Priority,
    ProfileRef,
    Quarantine,
    Reading,
    Reason,
    Waveform,
)

P = ProfileRef("test.sensor", 1)
BASE = 1_700_000_000_000
BURST_SPAN = 1_000_000


def ts_of(k: int, i: int, j: int) -> int:
    return BASE + k * BURST_SPAN + i * 10 + j


def reading_result(k: int, i: int, n: int = 5, priority: int = Priority.RAW,
                   profile: ProfileRef = P) -> DecodeResult:
    dev = f"dev{i % 7}"
    rs = tuple(
        Reading(dev, f"m{j}", ts_of(k, i, j), float(k * 10_000 + i * 10 + j), "u", profile, priority=priority)
        for j in range(n)
    )
    return DecodeResult(Message(f"campus/{dev}", b'{"v": 1}', ts_of(k, i, 0), mid=i + 1), profile, dev,
                        readings=rs)


def burst(k: int, n_msgs: int = 100, n: int = 5, priority: int = Priority.RAW) -> list[DecodeResult]:
    return [reading_result(k, i, n, priority) for i in range(n_msgs)]


def event_result(k: int, i: int, kind: str = "door_open", priority: int = Priority.EVENT) -> DecodeResult:
    ev = Event(f"door{i % 3}", kind, ts_of(k, i, 0), P, attrs=(("card", f"h{i}"), ("ok", True)),
               priority=priority)
    return DecodeResult(Message("campus/door", b"{}", ts_of(k, i, 0)), P, ev.device, events=(ev,))


def event_burst(k: int, n_msgs: int = 50, priority: int = Priority.EVENT) -> list[DecodeResult]:
    return [event_result(k, i, priority=priority) for i in range(n_msgs)]


def quarantine_result(i: int, payload: bytes = b"not json", reason: str = Reason.MALFORMED,
                      received_ms: int = BASE) -> DecodeResult:
    m = Message(f"campus/bad/{i}", payload, received_ms + i)
    return DecodeResult(m, None, None, quarantine=Quarantine(reason, f"payload: cannot parse message {i}"))


def waveform_result(k: int, n: int = 256) -> DecodeResult:
    w = Waveform("pump1", "vibration_accel", ts_of(k, 0, 0), 1000.0, tuple(float(x) / 7 for x in range(n)),
                 "m/s2", P)
    return DecodeResult(Message("campus/pump1", b"...", ts_of(k, 0, 0)), P, "pump1", waveforms=(w,))


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read through a separate stdlib connection (WAL lets it run next to the buffer's)."""
    con = sqlite3.connect(str(path))
    try:
        return [tuple(r) for r in con.execute(sql, params).fetchall()]
    finally:
        con.close()


def scalar(path: Path, sql: str, params: tuple[object, ...] = ()) -> int:
    return int(str(rows(path, sql, params)[0][0]))


def bursts_present(path: Path) -> dict[int, int]:
    """Readings per burst id ``k`` (raw readings only)."""
    got = rows(path, f"SELECT (ts_ms - {BASE}) / {BURST_SPAN}, count(*) FROM readings GROUP BY 1")
    return {int(str(k)): int(str(n)) for k, n in got}


def test_identity_of_a_reading_is_recoverable() -> None:
    r = reading_result(3, 42).readings[4]
    assert (r.ts_ms - BASE) // BURST_SPAN == 3
    assert r.value == 3 * 10_000 + 42 * 10 + 4

"""Drive a simulator into a sink (an MQTT publisher or a JSONL file) with pacing, progress and a ledger.

Pacing follows simulated time: a message stamped ``ts`` is sent when ``(ts - start) / time_scale``
real seconds have passed, so with ``time_scale`` 1 device timestamps match the wall clock (the edge's
clock-skew check passes) and the burst structure of the campus (lesson changes) is kept. Because the
devices' intervals were derived from the requested rate, the average rate is the requested one.
When the sink is slower, the runner sends as fast as it can and reports the lag.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import orjson

from gateway.simulator.ledger import Ledger
from gateway.simulator.simulator import Simulator

PROGRESS_EVERY_S = 2.0


class Sink(Protocol):
    def publish(self, topic: str, payload: bytes) -> None: ...


class FileSink:
    """Writes ``{"seq", "topic", "payload"}`` lines (``payload_b64`` when the bytes are not UTF-8)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sent = 0

    def publish(self, topic: str, payload: bytes) -> None:
        line: dict[str, object] = {"seq": self.sent, "topic": topic}
        try:
            line["payload"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            line["payload_b64"] = base64.b64encode(payload).decode()
        self._fh.write(orjson.dumps(line) + b"\n")
        self.sent += 1


@dataclass(slots=True)
class Progress:
    """A progress report (also the final one)."""

    sent: int
    elapsed_s: float
    rate: float  # messages per second since the start
    lag_s: float  # how far behind the simulated schedule the sink is now
    max_lag_s: float  # ... and at worst
    sim_ms: int  # simulated time reached


def run(
    sim: Simulator,
    sink: Sink,
    *,
    until_ms: int | None,
    count: int | None = None,
    pace: bool = True,
    ledger: Ledger | None = None,
    progress: Callable[[Progress], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """Send every message the simulator yields before ``until_ms`` (and at most ``count``)."""
    t0 = monotonic()
    last_report = t0
    sent = 0
    lag = max_lag = 0.0
    seen_records = len(sim.ledger)
    scale = 1.0 if sim.wall_stamps else sim.time_scale  # wall stamps are already real send times
    for msg in sim.messages(n=count, until_ms=until_ms):
        if pace:
            due = t0 + (msg.ts_ms - sim.start_ms) / 1000.0 / scale
            now = monotonic()
            lag = max(0.0, now - due)
            max_lag = max(max_lag, lag)
            if due > now:
                sleep(due - now)
        sink.publish(msg.topic, msg.payload)
        sent += 1
        if ledger is not None:
            ledger.message(msg)
            if len(sim.ledger) > seen_records:
                for rec in sim.ledger[seen_records:]:
                    if rec.seq is None:  # gaps and rollovers; message faults are in the message lines
                        ledger.record(rec)
                seen_records = len(sim.ledger)
        if progress is not None:
            now = monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                progress(Progress(sent, now - t0, sent / max(now - t0, 1e-9), lag, max_lag, sim.now_ms))
    if ledger is not None:
        for rec in sim.ledger[seen_records:]:
            if rec.seq is None:
                ledger.record(rec)
    elapsed = monotonic() - t0
    return Progress(sent, elapsed, sent / max(elapsed, 1e-9), lag, max_lag, sim.now_ms)


def open_output(path: str) -> IO[bytes]:
    """``-`` is standard output."""
    import sys

    return sys.stdout.buffer if path == "-" else Path(path).open("wb")

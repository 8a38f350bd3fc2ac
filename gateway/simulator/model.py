"""Value types of the simulator: what each simulated message should decode to, and the message itself.

``Truth`` values are in the canonical unit of ``device_profiles/metrics.yaml`` and are exactly what the
payload encodes (after the format's own rounding), so a decoder using the shipped profiles must
reproduce them. ``ts_ms`` is the time the decoder should assign: the device's timestamp at the
format's resolution, or the simulated send time for formats without a timestamp (the decoder uses
the receive time, which a test sets to the send time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class Truth:
    """One reading the message carries."""

    device: str
    metric: str  # canonical metric name
    ts_ms: int
    value: float  # canonical unit


@dataclass(slots=True, frozen=True)
class EventTruth:
    """One event the message carries (card swipe); ``attrs`` are the raw, unprotected attributes."""

    device: str
    kind: str
    ts_ms: int
    attrs: tuple[tuple[str, Any], ...] = ()


@dataclass(slots=True, frozen=True)
class WaveTruth:
    """A block of waveform samples (canonical unit) the message carries."""

    device: str
    metric: str
    ts_ms: int
    sample_rate_hz: float
    samples: tuple[float, ...]
    dominant_hz: float  # the machine's rotation frequency (what the features should find)


Expected = Truth | EventTruth | WaveTruth


@dataclass(slots=True, frozen=True)
class SimMessage:
    """One message to publish, with what it should decode to.

    ``fault`` is None for a good message, else the fault kind (see :mod:`.faults`); ``detail`` says
    more (which metric was spiked, the clock offset, the malformed variant). ``expected`` is empty
    for malformed messages (they should be quarantined). Iterating gives
    ``(topic, payload, expected-or-fault-tag)``.
    """

    seq: int
    topic: str
    payload: bytes
    expected: tuple[Expected, ...]
    device: str
    device_type: str
    ecosystem: str
    profile: str  # id of the shipped profile the message is meant for
    ts_ms: int  # when the message is sent: simulated time, or real time with wall stamps (= receive time)
    fault: str | None = None
    detail: str = ""

    def __iter__(self) -> Iterator[Any]:
        yield self.topic
        yield self.payload
        yield self.fault if self.fault is not None else self.expected

    def ledger_record(self) -> dict[str, Any]:
        """A JSON-able description for the ledger file (readings as [metric, ts_ms, value])."""
        readings, events, waves = [], [], []
        for e in self.expected:
            if isinstance(e, Truth):
                readings.append([e.metric, e.ts_ms, e.value])
            elif isinstance(e, EventTruth):
                events.append({"kind": e.kind, "ts_ms": e.ts_ms, "attrs": dict(e.attrs)})
            else:
                waves.append({"metric": e.metric, "ts_ms": e.ts_ms, "n": len(e.samples),
                              "sample_rate_hz": e.sample_rate_hz, "dominant_hz": e.dominant_hz})
        out: dict[str, Any] = {
            "seq": self.seq, "topic": self.topic, "device": self.device, "type": self.device_type,
            "profile": self.profile, "ts_ms": self.ts_ms, "bytes": len(self.payload),
        }
        if self.fault is not None:
            out["fault"] = self.fault
            out["detail"] = self.detail
        if readings:
            out["readings"] = readings
        if events:
            out["events"] = events
        if waves:
            out["waveforms"] = waves
        return out


@dataclass(slots=True, frozen=True)
class Rendered:
    """A renderer's output: topic, payload bytes and what they encode."""

    topic: str
    payload: bytes
    expected: tuple[Expected, ...]
    json_like: bool = True  # a JSON document (wrong-type faults and truncation apply)
    has_clock: bool = True  # the payload carries the device's time (a skew fault can show)

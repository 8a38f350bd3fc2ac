"""Helpers shared by the format renderers: the truth collector, time strings, JSON encoding.

A renderer writes each value into the payload through :meth:`Out.v`, which records the reading the
decoder should produce (the encoded number converted to the canonical unit) and returns what to put
in the payload: the encoded number, or, for a ``wrong_type`` malformed fault on that metric, the bad
value (which then is not expected as a reading).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from gateway.simulator.model import EventTruth, Expected, Truth, WaveTruth

_UTC = UTC


@dataclass(slots=True)
class Ctx:
    """What a renderer needs besides the device and its values."""

    ts_ms: int  # simulated time of the measurement (= send time)
    clock_ms: int  # the device's clock reading (ts_ms, or hours off for a skew fault)
    tz_offset_s: int  # campus local time offset (devices that report local time)
    bad: Mapping[str, Any] = field(default_factory=dict)  # metric -> wrong-typed value to write instead
    count: int = 0  # messages this device has sent before (LoRaWAN fCnt, uptime)


class Out:
    """Collects the expected readings of one message while its payload is built."""

    __slots__ = ("bad", "device", "expected", "ts")

    def __init__(self, device: str, ts_ms: int, bad: Mapping[str, Any]) -> None:
        self.device = device
        self.ts = ts_ms
        self.bad = bad
        self.expected: list[Expected] = []

    def v(self, metric: str, encoded: Any, canonical: float | None = None) -> Any:
        """Record ``metric`` (canonical value, default ``encoded``) and return the payload value."""
        if metric in self.bad:
            return self.bad[metric]
        value = float(encoded) if canonical is None else float(canonical)
        self.expected.append(Truth(self.device, metric, self.ts, value))
        return encoded

    def event(self, kind: str, attrs: tuple[tuple[str, Any], ...]) -> None:
        self.expected.append(EventTruth(self.device, kind, self.ts, attrs))

    def wave(self, metric: str, rate_hz: float, samples: tuple[float, ...], dominant_hz: float) -> None:
        self.expected.append(WaveTruth(self.device, metric, self.ts, rate_hz, samples, dominant_hz))

    def result(self) -> tuple[Expected, ...]:
        return tuple(self.expected)


def dumps(obj: Any, sort_keys: bool = False) -> bytes:
    """Compact JSON as the devices send it (Zigbee2MQTT sorts keys)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else 0)


def to_seconds(ms: int) -> int:
    return ms // 1000 * 1000


def iso_utc_ms(ms: int) -> str:
    """``2024-01-01T18:10:43.123Z`` (JavaScript ``toISOString``)."""
    dt = datetime.fromtimestamp(ms // 1000, _UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def iso_nanos(ms: int, extra_ns: int, suffix: str) -> str:
    """RFC 3339 with nanoseconds: ``2022-07-18T09:34:15.775023242+00:00`` (ChirpStack) or ``…Z`` (TTS)."""
    dt = datetime.fromtimestamp(ms // 1000, _UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}{extra_ns % 1_000_000:06d}{suffix}"


def iso_local(ms: int, tz_offset_s: int, with_offset: bool) -> str:
    """Local time to the second: ``2024-01-01T19:10:43`` (Tasmota) or with ``+08:00`` (Zigbee2MQTT)."""
    tz = timezone(timedelta(seconds=tz_offset_s))
    dt = datetime.fromtimestamp(ms // 1000, tz)
    text = f"{dt:%Y-%m-%dT%H:%M:%S}"
    if with_offset:
        sign = "+" if tz_offset_s >= 0 else "-"
        off = abs(tz_offset_s)
        text += f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
    return text


__all__ = ["Ctx", "EventTruth", "Out", "Truth", "WaveTruth", "dumps", "iso_local", "iso_nanos", "iso_utc_ms",
           "to_seconds"]

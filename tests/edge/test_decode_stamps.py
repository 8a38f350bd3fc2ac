"""Receive-time stamps stay unique per series (edge_agent.decode.stamps): DWD de-duplicates on them."""

from __future__ import annotations

from edge_agent.decode import ReceiveStamps
from edge_agent.model import DecodeResult, Message, ProfileRef, Quality, Reading

P = ProfileRef("p", 1)
T = 1_764_000_000_000


def result(device: str, ts: int, quality: int, metrics: tuple[str, ...] = ("t",)) -> DecodeResult:
    readings = tuple(Reading(device, m, ts, 1.0, "u", P, quality) for m in metrics)
    return DecodeResult(Message("x", b"", ts), P, device, readings)


def test_a_burst_of_receive_stamped_readings_spreads_over_milliseconds() -> None:
    stamps = ReceiveStamps()
    burst = [stamps.apply(result("d1", T, Quality.CLOCK_SKEW)) for _ in range(5)]
    assert [r.readings[0].ts_ms for r in burst] == [T, T + 1, T + 2, T + 3, T + 4]
    other = stamps.apply(result("d2", T, Quality.RECEIVE_TIME))  # another device: its own series
    assert other.readings[0].ts_ms == T
    later = stamps.apply(result("d1", T + 100, Quality.RECEIVE_TIME))
    assert later.readings[0].ts_ms == T + 100  # already after the last stamp: unchanged
    assert stamps.moved == 4


def test_device_timestamps_are_never_moved_and_metrics_are_separate_series() -> None:
    stamps = ReceiveStamps()
    first = stamps.apply(result("d1", T, 0))
    assert first.readings[0].ts_ms == T
    assert stamps.apply(result("d1", T, 0)) == first  # same device time twice: a duplicate, left for DWD
    two = stamps.apply(result("d1", T, Quality.RECEIVE_TIME | Quality.GENERIC, ("t", "h")))
    assert [r.ts_ms for r in two.readings] == [T, T]


def test_a_clock_stepped_back_is_followed() -> None:
    stamps = ReceiveStamps()
    stamps.apply(result("d1", T + 3_600_000, Quality.CLOCK_SKEW))  # stamped while the clock was an hour ahead
    back = stamps.apply(result("d1", T, Quality.CLOCK_SKEW))
    assert back.readings[0].ts_ms == T  # not held an hour in the future


def test_memory_is_bounded() -> None:
    stamps = ReceiveStamps(max_series=3)
    for d in range(10):
        stamps.apply(result(f"d{d}", T, Quality.RECEIVE_TIME))
    assert len(stamps._last) == 3

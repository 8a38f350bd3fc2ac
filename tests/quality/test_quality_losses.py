"""Daily increases of the edge's cumulative heartbeat counters (quarantine, eviction), restarts included."""

from __future__ import annotations

import json

from cloud_ingest.warehouse.transforms.quality_losses import day_increases, is_loss


def _hb(quarantined: dict[str, int], evicted: dict[str, int] | None = None) -> str:
    return json.dumps({"quarantined_by_reason": quarantined, "evicted": evicted or {}})


def test_increases_from_the_last_heartbeat_before_the_day() -> None:
    before = _hb({"bad_json": 5})
    day = [_hb({"bad_json": 7}), _hb({"bad_json": 7, "unknown_device": 1}), _hb({"bad_json": 10})]
    # unknown_device is missing from the last heartbeat: its count is kept, not taken as a restart
    assert day_increases(day, before) == {("quarantine", "bad_json"): 5, ("quarantine", "unknown_device"): 1}


def test_a_counter_restart_counts_the_new_value() -> None:
    day = [_hb({}, {"raw_unsent.readings": 40}), _hb({}, {"raw_unsent.readings": 3}),
           _hb({}, {"raw_unsent.readings": 8})]
    assert day_increases(day, _hb({}, {"raw_unsent.readings": 30})) == {("evict", "raw_unsent.readings"): 18}


def test_first_heartbeat_ever_counts_from_zero_and_bad_bodies_are_ignored() -> None:
    assert day_increases(["{not json", _hb({"bad_json": 2}), json.dumps([1, 2])], None) == {
        ("quarantine", "bad_json"): 2}
    assert day_increases([_hb({"bad_json": -1, "x": True})], None) == {}  # type: ignore[dict-item]


def test_late_data_counters_are_a_cause_but_not_a_loss() -> None:
    day = [json.dumps({"late": {"too_late": 4, "forced_early": 1}}), json.dumps({"late": {"too_late": 9}})]
    assert day_increases(day, None) == {("late", "too_late"): 9, ("late", "forced_early"): 1}
    assert not is_loss("late", "too_late")


def test_only_unsent_evictions_and_quarantines_are_losses() -> None:
    assert is_loss("quarantine", "bad_json")
    assert is_loss("evict", "raw_unsent.readings")
    assert not is_loss("evict", "uploaded.readings")
    assert not is_loss("evict", "priority.raw")

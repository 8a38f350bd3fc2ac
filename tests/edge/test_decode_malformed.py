"""The malformed corpus: every bad message is quarantined with the right reason and a useful detail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.decode import decode
from edge_agent.model import Message, Reason
from edge_agent.profiles import ProfileSet

CORPUS = Path(__file__).resolve().parents[1] / "data" / "malformed" / "messages.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
NOW = 1_714_550_460_000  # 2024-05-01T08:01:00Z


def _payload(row: dict[str, Any]) -> bytes:
    data = bytes.fromhex(row["payload_hex"]) if "payload_hex" in row else row["payload"].encode("utf-8")
    return data * row.get("repeat", 1)


@pytest.fixture(scope="module")
def profiles(profiles_dir: Path) -> ProfileSet:
    return ProfileSet.load(profiles_dir)


@pytest.mark.parametrize("row", ROWS, ids=[r["note"] for r in ROWS])
def test_malformed_message_is_quarantined_with_reason(row: dict[str, Any], profiles: ProfileSet) -> None:
    result = decode(Message(row["topic"], _payload(row), NOW), profiles, now_ms=NOW)
    assert result.quarantine is not None, result
    assert result.quarantine.reason == row["reason"], result.quarantine
    assert Reason(result.quarantine.reason)  # a registered code
    assert result.quarantine.detail
    assert len(result.quarantine.detail) <= 600
    assert not result.readings
    assert not result.events
    assert not result.waveforms


def test_corpus_covers_every_reason_a_message_can_cause() -> None:
    reasons = {r["reason"] for r in ROWS}
    expected = set(Reason) - {Reason.AMBIGUOUS_PROFILE, Reason.DECODER_BUG}  # see test_profiles / fuzz tests
    assert expected <= reasons


def test_details_name_the_field(profiles: ProfileSet) -> None:
    cases = {
        '{"temperature":"warm","humidity":40}': ["temperature_air", "'temperature'", "'warm'"],
        '{"temperature":21,"humidity":40,"last_seen":"2024-13-45T99:00:00Z"}': ["last_seen"],
    }
    for payload, words in cases.items():
        r = decode(Message("zigbee2mqtt/lab-1", payload.encode(), NOW), profiles, now_ms=NOW)
        assert r.quarantine is not None
        for w in words:
            assert w in r.quarantine.detail, (w, r.quarantine.detail)


def test_no_profile_is_counted_per_topic_group(profile_dir_copy: ProfileSet) -> None:
    ps = profile_dir_copy
    for topic in ("homie/5/a/b/c", "homie/5/x/y/z", "zigbee2mqtt/bridge/state"):
        decode(Message(topic, b"1", NOW), ps, now_ms=NOW)
    assert ps.stats.no_profile["homie/+/+/+/#"] == 2
    assert ps.stats.no_profile["zigbee2mqtt/+/+"] == 1


@pytest.fixture
def profile_dir_copy(profiles_dir: Path) -> ProfileSet:
    return ProfileSet.load(profiles_dir)

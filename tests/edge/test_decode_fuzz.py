"""Property tests: decode() never raises, whatever the topic and payload, and its result is consistent."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.decode import decode
from edge_agent.model import DecodeResult, Message, Reason
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet

PROFILES = ProfileSet.load(Path(__file__).resolve().parents[2] / "device_profiles")
PSEUDO = Pseudonymizer({"p1": bytes(32)}, "p1")
NOW = 1_714_550_400_000

TOPICS = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "zigbee2mqtt/lab-1",
            "tele/pow1/SENSOR",
            "shellyplus1pm-a8/events/rpc",
            "shellyplus1pm-a8/status/switch:0",
            "application/a/device/24e1/event/up",
            "v3/app@ttn/devices/d1/up",
            "senml/x",
            "telegraf/h/m",
            "/rfid/send",
            "campus/vibration/p1",
            "campus/noise/r1/level",
            "campus/logger/l1/csv",
            "zigbee2mqtt/bridge/state",
        ]
    ),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "temperature",
                    "humidity",
                    "co2",
                    "ENERGY",
                    "Total",
                    "Power",
                    "params",
                    "switch:0",
                    "apower",
                    "object",
                    "data",
                    "fPort",
                    "time",
                    "uid",
                    "hostname",
                    "type",
                    "n",
                    "v",
                    "u",
                    "bn",
                    "bt",
                    "samples",
                    "fs",
                    "ts",
                    "uplink_message",
                    "decoded_payload",
                    "deviceInfo",
                    "devEui",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


def _check(result: DecodeResult) -> None:
    assert isinstance(result, DecodeResult)
    if result.quarantine is not None:
        assert Reason(result.quarantine.reason)
        assert result.quarantine.reason != Reason.DECODER_BUG, result.quarantine.detail
        assert not result.readings
        assert not result.events
        assert not result.waveforms
    else:
        assert result.readings or result.events or result.waveforms
        for r in result.readings:
            assert r.value == r.value  # not NaN
            assert isinstance(r.ts_ms, int)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=TOPICS, payload=st.binary(max_size=300))
def test_random_bytes_never_raise(topic: str, payload: bytes) -> None:
    _check(decode(Message(topic, payload, NOW), PROFILES, now_ms=NOW, pseudonymizer=PSEUDO))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=TOPICS, value=JSON_VALUES)
def test_random_json_never_raises(topic: str, value: object) -> None:
    payload = json.dumps(value).encode()
    _check(decode(Message(topic, payload, NOW), PROFILES, now_ms=NOW, pseudonymizer=PSEUDO))


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.text(alphabet=' ,="\\tfu0123456789.ei-abc\n', max_size=40), max_size=4))
def test_random_line_protocol_never_raises(lines: list[str]) -> None:
    payload = "\n".join(lines).encode()
    _check(decode(Message("telegraf/h/m", payload, NOW), PROFILES, now_ms=NOW))

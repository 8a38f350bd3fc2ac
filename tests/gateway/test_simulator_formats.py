"""Simulated payloads have the shape of the real messages in tests/data/samples (keys, nesting, time formats)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from edge_agent.decode import parse_influx, parse_senml
from gateway.simulator import SimMessage, Simulator
from gateway.simulator.catalog import TYPES

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
START = 1_725_235_200_000


def _samples(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def _sample(name: str, topic_part: str) -> Any:
    return json.loads(next(s["payload"] for s in _samples(name) if topic_part in (s["topic"] or "")))


@pytest.fixture(scope="module")
def messages() -> dict[str, list[SimMessage]]:
    sim = Simulator.build(300, seed=8, start_ms=START, rate=200, time_scale=600)
    out: dict[str, list[SimMessage]] = {t.name: [] for t in TYPES}
    for m in sim.messages(5000):
        out[m.device_type].append(m)
    assert all(out.values()), [k for k, v in out.items() if not v]
    return out


def _json(m: SimMessage) -> Any:
    return json.loads(m.payload)


def test_zigbee2mqtt_payloads_have_the_real_keys(messages: dict[str, list[SimMessage]]) -> None:
    air = _sample("zigbee2mqtt.jsonl", "0x0c4314fffe84e0a4")
    th = _sample("zigbee2mqtt.jsonl", "Temperature_Lyne")
    plug = _sample("zigbee2mqtt.jsonl", "Stopcontact")
    for m in messages["z2m_air"]:
        assert set(_json(m)) - {"last_seen"} == set(air)
        assert m.payload == json.dumps(_json(m), sort_keys=True, separators=(",", ":")).encode()  # sorted, compact
    for m in messages["z2m_th"]:
        assert set(_json(m)) <= set(th)
    for m in messages["z2m_plug"]:
        assert set(plug) <= set(_json(m))
    for m in messages["z2m_th"] + messages["z2m_air"]:
        assert m.topic.startswith("zigbee2mqtt/")
        seen = _json(m).get("last_seen")
        assert seen is None or isinstance(seen, int) or re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}Z|[+-]\d\d:\d\d)", seen)


def test_tasmota_energy_has_the_real_keys_and_local_time(messages: dict[str, list[SimMessage]]) -> None:
    real = _sample("tasmota.jsonl", "tele/pow1/SENSOR")
    for m in messages["tasmota_plug"]:
        doc = _json(m)
        assert list(doc) == ["Time", "ENERGY"]
        assert list(doc["ENERGY"]) == list(real["ENERGY"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", doc["Time"])
        assert re.fullmatch(r"tele/tasmota_[0-9A-F]{6}/SENSOR", m.topic)
    scd = _sample("tasmota.jsonl", "tele/tasmota/SENSOR")
    for m in messages["tasmota_scd40"]:
        assert set(_json(m)) == set(scd)
        assert set(_json(m)["SCD40"]) == set(scd["SCD40"])


def test_shelly_rpc_and_status_have_the_real_shape(messages: dict[str, list[SimMessage]]) -> None:
    rpc = _sample("shelly.jsonl", "shellyplus1pm-a8032abe2f18/events/rpc")
    status = _sample("shelly.jsonl", "status/switch:0")
    full = _sample("shelly.jsonl", "shellyplusht")
    kinds = set()
    for m in messages["shelly_plug"] + messages["shelly_1pm"]:
        doc = _json(m)
        if m.topic.endswith("/events/rpc"):
            kinds.add("rpc")
            assert set(doc) == set(rpc)
            assert doc["method"] == "NotifyStatus"
            assert doc["src"] == m.topic.split("/")[0]
            assert isinstance(doc["params"]["ts"], float)
            assert set(rpc["params"]["switch:0"]["aenergy"]) == set(doc["params"]["switch:0"]["aenergy"])
        else:
            kinds.add("status")
            assert m.topic.endswith("/status/switch:0")
            assert set(status) <= set(doc)
    assert kinds == {"rpc", "status"}
    for m in messages["shelly_ht"]:
        doc = _json(m)
        assert doc["method"] == "NotifyFullStatus"
        assert set(doc["params"]) == set(full["params"])


def test_chirpstack_uplinks_have_the_v4_envelope(messages: dict[str, list[SimMessage]]) -> None:
    real = _samples("chirpstack.jsonl")
    no_codec, codec = (json.loads(s["payload"]) for s in real)
    for name in ("cs_am307", "cs_am307_raw", "cs_am319_raw", "cs_vs133", "cs_vs133_raw"):
        for m in messages[name]:
            doc = _json(m)
            assert set(no_codec) <= set(doc)
            assert set(no_codec["deviceInfo"]) <= set(doc["deviceInfo"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00", doc["time"])
            dev = doc["deviceInfo"]["devEui"]
            assert m.topic == f"application/{doc['deviceInfo']['applicationId']}/device/{dev}/event/up"
            assert re.fullmatch(r"[0-9a-f]{16}", dev)
            assert ("object" in doc) == (not name.endswith("_raw"))
            if "object" in doc:  # protobuf Struct: numbers are floats, like the real sample's 'tamper': 1.0
                assert all(not isinstance(v, int) for v in doc["object"].values())
    assert isinstance(codec["object"]["tamper"], float)


def test_milesight_tlv_encodes_the_documented_example() -> None:
    # Milesight AM307 README: 0367EE00 04687C 050001 06CB02 077DA803 087D2500 09736627 decodes to
    # temperature 23.8, humidity 62, pir trigger, light_level 2, co2 936, tvoc 0.37, pressure 1008.6
    from gateway.simulator.devices import Device
    from gateway.simulator.lorawan import _am_values
    from gateway.simulator.render import Out

    decoded = json.loads(_samples("milesight_decoded.jsonl")[0]["payload"])
    values = {"temperature_air": 23.8, "humidity_rel": 62.0, "occupancy": 1.0, "light_level": 2.0, "co2": 936.0,
              "tvoc_index": 0.37, "pressure_air": 1008.6, "battery_level": 90.0}
    room = Simulator.build(10, seed=1, start_ms=START).campus.rooms[0]
    data, obj = _am_values(Device("d", "cs_am307", room, 1), values, Out("d", 0, {}), am319=False)
    assert data.hex().upper() == "01755A" + "0367EE0004687C05000106CB02077DA803087D250009736627"
    assert {k: v for k, v in obj.items() if k != "battery"} == decoded


def test_tts_uplinks_have_the_v3_shape(messages: dict[str, list[SimMessage]]) -> None:
    real = json.loads(_samples("ttn_tts_v3.jsonl")[1]["payload"])
    for m in messages["tts_am307"] + messages["tts_am307_raw"]:
        doc = _json(m)
        assert set(real) == set(doc)
        assert set(real["uplink_message"]) - {"confirmed"} <= set(doc["uplink_message"]) | {"decoded_payload"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", doc["received_at"])
        assert re.fullmatch(r"[0-9A-F]{16}", doc["end_device_ids"]["dev_eui"])
        app, dev = doc["end_device_ids"]["application_ids"]["application_id"], doc["end_device_ids"]["device_id"]
        assert m.topic == f"v3/{app}@campus/devices/{dev}/up"
        base64.b64decode(doc["uplink_message"]["frm_payload"], validate=True)


def test_senml_influx_csv_raw_and_rfid_parse(messages: dict[str, list[SimMessage]]) -> None:
    for m in messages["senml_env"]:
        records = parse_senml(m.payload)
        assert records[0]["device"] == m.device
        assert all(r["u"] for r in records)
    for m in messages["influx_home"]:
        (line,) = parse_influx(m.payload)
        assert line["measurement"] == "home"
        assert line["tags"]["room"] == m.device
        assert isinstance(line["fields"]["co"], int)
        assert line["time"] < 10**11
    for m in messages["influx_env"]:
        (line,) = parse_influx(m.payload)
        assert line["tags"]["device"] == m.device
        assert line["time"] > 10**18
    for m in messages["csv_logger"]:
        assert re.fullmatch(rb"\d{10},-?\d+\.\d,\d+\.\d,\d+", m.payload)
    for m in messages["noise_raw"]:
        float(m.payload)
    swipes = 0
    for m in messages["card_reader"]:
        doc = _json(m)
        if doc["type"] == "access":
            swipes += 1
            assert list(doc) == ["type", "time", "isKnown", "access", "username", "uid", "hostname"]
            assert re.fullmatch(r"[0-9a-f]{8}", doc["uid"])
        else:
            assert list(doc) == ["type", "time", "uptime", "ip", "hostname"]
    assert swipes > 0

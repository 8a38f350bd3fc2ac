"""Format parsers, timestamps, value coercion and the decoder's per-message rules."""

from __future__ import annotations

import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import msgpack
import pytest

from edge_agent.decode import (
    decode,
    decode_layout,
    parse_csv,
    parse_influx,
    parse_iso,
    parse_senml,
    to_epoch_ms,
)
from edge_agent.errors import DecodeError
from edge_agent.model import Message, Priority, Quality, Reason
from edge_agent.profiles import ProfileSet

NOW = 1_714_550_400_000  # 2024-05-01T08:00:00Z


@pytest.fixture(scope="module")
def shipped(profiles_dir: Path) -> ProfileSet:
    return ProfileSet.load(profiles_dir)


# --- SenML ----------------------------------------------------------------------------------------------


def test_senml_base_fields_persist_and_change_mid_pack() -> None:
    recs = parse_senml(
        b'[{"bn":"urn:dev:ow:1:","bt":1000,"bu":"Cel","bv":10,"n":"t","v":1},{"n":"t","t":5,"v":2},'
        b'{"bn":"urn:dev:ow:2/","n":"h","u":"%RH","v":50},{"n":"on","vb":true},{"n":"e","s":3},{"bn":"x"}]'
    )
    assert [(r["device"], r["key"], r.get("v"), r["u"], r["t"]) for r in recs[:3]] == [
        ("urn:dev:ow:1", "t", 11.0, "Cel", 1000.0),
        ("urn:dev:ow:1", "t", 12.0, "Cel", 1005.0),
        ("urn:dev:ow:2", "h", 60.0, "%RH", 1000.0),
    ]
    assert recs[3]["vb"] is True
    assert recs[4]["s"] == 3.0
    assert len(recs) == 5  # the base-only record yields nothing


def test_senml_without_base_name_uses_the_urn_as_device() -> None:
    (rec,) = parse_senml(b'[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]')
    assert rec["device"] == "urn:dev:ow:10e2073a01080063"
    assert rec["key"] == ""
    assert rec["t"] is None
    (rec,) = parse_senml(b'[{"n":"temperature","u":"Cel","v":23.1}]')
    assert rec["device"] is None
    assert rec["key"] == "temperature"


def test_senml_relative_times_use_receive_time(shipped: ProfileSet) -> None:
    body = b'[{"bn":"urn:dev:x:","n":"v","u":"V","v":230,"t":-10},{"n":"v","u":"V","v":231}]'
    r = decode(Message("senml/x", body, NOW), shipped, now_ms=NOW)
    assert [x.ts_ms for x in r.readings] == [NOW - 10_000, NOW]
    assert all(x.quality == Quality.GENERIC | Quality.RECEIVE_TIME for x in r.readings)


# --- InfluxDB line protocol -----------------------------------------------------------------------------


def test_influx_escapes_types_and_lines() -> None:
    text = (
        "weather,location\\ place=us\\,midwest,s\\=x=1 "
        'temperature=82,ok=t,n=-3i,u=7u,s="a \\"b\\", c" 1465839830100400200\n'
        "# a comment\n"
        "\n"
        "cpu\\ load,host=h1 value=0.5\r\n"
    )
    recs = parse_influx(text.encode())
    assert recs[0] == {
        "measurement": "weather",
        "tags": {"location place": "us,midwest", "s=x": "1"},
        "fields": {"temperature": 82.0, "ok": True, "n": -3, "u": 7, "s": 'a "b", c'},
        "time": 1465839830100400200,
    }
    assert recs[1] == {
        "measurement": "cpu load",
        "tags": {"host": "h1"},
        "fields": {"value": 0.5},
        "time": None,
    }


@pytest.mark.parametrize("line", ["m", "m f=", "m f=1 x y", "m f=nan", "m f=-1u", "m,t f=1", 'm s="x'])
def test_influx_rejects(line: str) -> None:
    with pytest.raises(DecodeError) as exc:
        parse_influx(line.encode())
    assert exc.value.reason == Reason.MALFORMED


def test_influx_timestamp_precision_auto(shipped: ProfileSet) -> None:
    for stamp in ("1714550400", "1714550400000", "1714550400000000", "1714550400000000000"):
        r = decode(
            Message("telegraf/h1/sensors", f"env temperature=20 {stamp}".encode(), NOW), shipped, now_ms=NOW
        )
        assert r.readings[0].ts_ms == NOW, stamp
        assert r.readings[0].quality == Quality.GENERIC, stamp


# --- CSV, raw, binary -----------------------------------------------------------------------------------


def test_csv_with_header_and_quotes() -> None:
    rows = parse_csv(b'ts;"room name";t\n1;"Lab; 2";20.5\n', ";", (), True)
    assert rows == [{"ts": "1", "room name": "Lab; 2", "t": "20.5"}]


def test_struct_layout_and_tlv_multi_field(shipped: ProfileSet) -> None:
    vs133 = shipped.get("chirpstack.milesight_vs133")
    assert vs133 is not None
    assert vs133.embedded is not None
    got = decode_layout(bytes.fromhex("0FE302100709 05CC02000100".replace(" ", "")), vs133.embedded.layout)
    assert got == {
        "region_1_count": 2,
        "region_2_count": 16,
        "region_3_count": 7,
        "region_4_count": 9,
        "line_1_period_in": 2,
        "line_1_period_out": 1,
    }


def test_negative_tlv_temperature(shipped: ProfileSet) -> None:
    am = shipped.get("chirpstack.milesight_am300")
    assert am is not None
    assert am.embedded is not None
    assert decode_layout(bytes.fromhex("0367F6FF"), am.embedded.layout) == {"temperature": -1.0}


def _root_with(tmp_path: Path, profiles_dir: Path, name: str, text: str) -> ProfileSet:
    shutil.copy(profiles_dir / "metrics.yaml", tmp_path / "metrics.yaml")
    (tmp_path / name).write_text(text, encoding="utf-8")
    return ProfileSet.load(tmp_path)


def test_binary_format_with_struct_layout(tmp_path: Path, profiles_dir: Path) -> None:
    ps = _root_with(
        tmp_path,
        profiles_dir,
        "meter.yaml",
        """
id: t.meter
version: 1
vendor: T
model: M
ecosystem: test
domain: management
source:
  topic: "meters/{device}/raw"
  format: binary
  layout:
    kind: struct
    fields:
      - {name: energy_wh, format: u32be}
      - {name: power_w, format: s16le, offset: 4}
      - {name: serial, format: hex, length: 2, offset: 6}
metrics:
  - {name: energy_active_total, path: energy_wh, unit: Wh}
  - {name: power_active, path: power_w, unit: W}
""",
    )
    r = decode(Message("meters/m1/raw", bytes.fromhex("0012D68738FFBEEF"), NOW), ps, now_ms=NOW)
    assert [(x.metric, x.value) for x in r.readings] == [
        ("energy_active_total", 1234.567),
        ("power_active", -200.0),
    ]
    short = decode(Message("meters/m1/raw", b"\x00\x01", NOW), ps, now_ms=NOW)
    assert short.quarantine is not None
    assert short.quarantine.reason == Reason.MALFORMED


def test_msgpack_payloads(tmp_path: Path, profiles_dir: Path) -> None:
    ps = _root_with(
        tmp_path,
        profiles_dir,
        "mp.yaml",
        """
id: t.mp
version: 1
vendor: T
model: M
ecosystem: test
domain: public
source:
  topic: "mp/{device}"
  format: msgpack
  timestamp: {path: ts, unit: ms}
metrics:
  - {name: co2, path: "values[0]"}
""",
    )
    r = decode(Message("mp/d1", msgpack.packb({"ts": NOW - 1000, "values": [612, 1]}), NOW), ps, now_ms=NOW)
    assert r.readings[0].value == 612.0
    assert r.readings[0].ts_ms == NOW - 1000
    bad = decode(Message("mp/d1", b"\xc1\xc1", NOW), ps, now_ms=NOW)
    assert bad.quarantine is not None
    assert bad.quarantine.reason == Reason.MALFORMED


# --- timestamps -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "ms"),
    [
        (1714550400, "s", NOW),
        (1714550400.5, "auto", NOW + 500),
        (1632666420.17, "s", 1632666420170),
        (NOW, "auto", NOW),
        (NOW * 1000, "auto", NOW),
        (NOW * 1_000_000, "auto", NOW),
        (NOW * 1_000_000, "ns", NOW),
        ("1714550400000", "auto", NOW),
        ("2024-05-01T08:00:00Z", "auto", NOW),
        ("2024-05-01T10:00:00+02:00", "iso8601", NOW),
        ("2024-05-01T10:00:00+0200", "iso8601", NOW),
        ("2024-05-01 08:00:00.123456789+00:00", "iso8601", NOW + 123),
        ("2024-05-01T08:00:00.999Z", "iso8601", NOW + 999),
    ],
)
def test_timestamps(value: object, unit: str, ms: int) -> None:
    assert to_epoch_ms(value, unit, None) == ms


def test_iso_without_zone_uses_the_zone() -> None:
    assert parse_iso("2024-05-01T16:00:00", ZoneInfo("Asia/Shanghai")) == NOW
    assert parse_iso("2024-05-01T08:00:00", None) == NOW


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (True, "auto"),
        ("noon", "auto"),
        ("12", "iso8601"),
        (12, "iso8601"),
        ("2024-02-30T00:00:00Z", "iso8601"),
        ({"a": 1}, "s"),
        (float("nan"), "s"),
    ],
)
def test_bad_timestamps(value: object, unit: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked by the malformed corpus
        to_epoch_ms(value, unit, None)


# --- values and flags -----------------------------------------------------------------------------------


def test_string_numbers_and_strings_with_units(shipped: ProfileSet) -> None:
    body = (
        b'{"end_device_ids":{"device_id":"d1"},"uplink_message":{"decoded_payload":'
        b'{"Temperature":"30.11 \xc2\xb0C","Battery Voltage":"3.384 V","humidity":"55.5"}}}'
    )
    r = decode(Message("v3/app@ttn/devices/d1/up", body, NOW), shipped, now_ms=NOW)
    got = {x.metric: x.value for x in r.readings}
    assert got["temperature_air"] == 30.11
    assert got["voltage_battery"] == 3.384
    assert got["humidity_rel"] == 55.5


def test_fahrenheit_unit_sibling(shipped: ProfileSet) -> None:
    body = b'{"Time":"2024-05-01T08:00:00","SHT3X":{"Temperature":68.0,"Humidity":40},"TempUnit":"F"}'
    r = decode(Message("tele/t1/SENSOR", body, NOW), shipped, now_ms=NOW)
    assert r.readings[0].metric == "temperature_air"
    assert r.readings[0].value == pytest.approx(20.0)


def test_out_of_range_is_flagged_and_kept(shipped: ProfileSet) -> None:
    body = b'{"co2":1,"voc":3,"formaldehyd":2,"temperature":21,"humidity":40}'
    r = decode(Message("zigbee2mqtt/aq", body, NOW), shipped, now_ms=NOW)
    co2 = next(x for x in r.readings if x.metric == "co2")
    assert co2.value == 1.0
    assert co2.quality & Quality.OUT_OF_RANGE
    assert not next(x for x in r.readings if x.metric == "temperature_air").quality & Quality.OUT_OF_RANGE


def test_nulls_are_skipped_not_errors(shipped: ProfileSet) -> None:
    r = decode(
        Message("zigbee2mqtt/x", b'{"temperature":21.5,"humidity":null,"action":null}', NOW),
        shipped,
        now_ms=NOW,
    )
    assert [x.metric for x in r.readings] == ["temperature_air"]


def test_ints_serialised_as_floats_and_enums(shipped: ProfileSet) -> None:
    body = (
        b'{"deviceInfo":{"devEui":"24e1"},"fPort":85.0,"object":{"pir":"idle","co2":612.0,"light_level":1.0}}'
    )
    r = decode(Message("application/a/device/24e1/event/up", body, NOW), shipped, now_ms=NOW)
    assert r.profile is not None
    assert r.profile.id == "chirpstack.milesight_am300"
    got = {x.metric: x.value for x in r.readings}
    assert got == {"occupancy": 0.0, "co2": 612.0, "light_level": 1.0}


def test_readings_carry_profile_ref_and_priority(shipped: ProfileSet) -> None:
    r = decode(Message("zigbee2mqtt/pir", b'{"occupancy":true,"illuminance":30}', NOW), shipped, now_ms=NOW)
    assert r.profile is not None
    assert r.profile.id == "zigbee2mqtt.aqara_rtcgq11lm"
    assert all(x.profile == r.profile and x.priority == Priority.EVENT for x in r.readings)


def test_embedded_object_wins_over_raw_bytes(shipped: ProfileSet) -> None:
    body = (
        b'{"deviceInfo":{"devEui":"24e1"},"fPort":85,"data":"/w==","object":{"co2":500}}'  # data is garbage
    )
    r = decode(Message("application/a/device/24e1/event/up", body, NOW), shipped, now_ms=NOW)
    assert r.quarantine is None
    assert r.readings[0].value == 500.0


def test_unexpected_exceptions_become_decoder_bug(
    shipped: ProfileSet, caplog: pytest.LogCaptureFixture
) -> None:
    class Boom(bytes):
        def __len__(self) -> int:
            raise RuntimeError("boom")

    r = decode(Message("zigbee2mqtt/x", Boom(b"{}"), NOW), shipped, now_ms=NOW)
    assert r.quarantine is not None
    assert r.quarantine.reason == Reason.DECODER_BUG
    assert "RuntimeError: boom" in r.quarantine.detail
    assert "decoder bug" in caplog.text


def test_line_protocol_timestamps_default_to_nanoseconds(tmp_path: Path, profiles_dir: Path) -> None:
    ps = _root_with(
        tmp_path,
        profiles_dir,
        "lp.yaml",
        """
id: t.lp
version: 1
vendor: T
model: M
ecosystem: test
domain: public
source:
  topic: "lp/{device}"
  format: influx
metrics:
  - {name: co2, path: fields.co2}
""",
    )
    r = decode(
        Message("lp/d1", f"air co2=600i {NOW * 1_000_000}\nair co2=610i".encode(), NOW + 5), ps, now_ms=NOW
    )
    assert [(x.value, x.ts_ms, x.quality) for x in r.readings] == [
        (600.0, NOW, 0),
        (610.0, NOW + 5, Quality.RECEIVE_TIME),
    ]

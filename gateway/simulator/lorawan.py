"""LoRaWAN uplinks: Milesight channel/type TLV payloads inside ChirpStack v4 and The Things Stack v3 envelopes.

Milesight AM300 series (fPort 85), little-endian, ``<channel><type><data>``:

=======  =====  ==================  ===================================
channel  type   data                value
=======  =====  ==================  ===================================
0x01     0x75   uint8               battery %
0x03     0x67   int16               temperature °C × 10
0x04     0x68   uint8               humidity %RH × 2
0x05     0x00   uint8               PIR 0 idle / 1 trigger
0x06     0xCB   uint8               light level 0–5
0x07     0x7D   uint16              CO2 ppm
0x08     0x7D   uint16              TVOC IAQ index × 100
0x09     0x73   uint16              pressure hPa × 10
0x0A     0x7D   uint16              HCHO mg/m³ × 100 (AM319)
0x0B     0x7D   uint16              PM2.5 µg/m³ (AM319)
0x0C     0x7D   uint16              PM10 µg/m³ (AM319)
=======  =====  ==================  ===================================

Milesight VS133 people counter: 0x03 0xD2 uint32 line-1 total in, 0x04 0xD2 uint32 total out,
0x05 0xCC uint16+uint16 period in/out, 0x0F 0xE3 4 × uint8 region counts.

ChirpStack ``object`` is the vendor codec's output after ChirpStack's JS → protobuf Struct conversion,
so every number is a float; TTS ``decoded_payload`` keeps JavaScript numbers as they are. The raw
variants carry only base64 ``data`` / ``frm_payload``, which the edge decodes with the shipped layouts.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from gateway.simulator.devices import Device
from gateway.simulator.model import Rendered
from gateway.simulator.render import Ctx, Out, dumps, iso_nanos


def _am_values(d: Device, v: dict[str, Any], o: Out, am319: bool) -> tuple[bytes, dict[str, Any]]:
    """TLV bytes and the official decoder's object for one AM307/AM319 reading (quantised alike)."""
    t10 = round(v["temperature_air"] * 10)
    h2 = round(v["humidity_rel"] * 2)
    pir = 1 if v["occupancy"] >= 0.5 else 0
    level = int(v["light_level"])
    co2 = round(v["co2"])
    tvoc100 = round(v["tvoc_index"] * 100)
    p10 = round(v["pressure_air"] * 10)
    batt = round(v["battery_level"])
    data = bytearray()
    data += struct.pack("<BBB", 0x01, 0x75, batt)
    data += struct.pack("<BBh", 0x03, 0x67, t10)
    data += struct.pack("<BBB", 0x04, 0x68, h2)
    data += struct.pack("<BBB", 0x05, 0x00, pir)
    data += struct.pack("<BBB", 0x06, 0xCB, level)
    data += struct.pack("<BBH", 0x07, 0x7D, co2)
    data += struct.pack("<BBH", 0x08, 0x7D, tvoc100)
    data += struct.pack("<BBH", 0x09, 0x73, p10)
    obj: dict[str, Any] = {
        "battery": o.v("battery_level", batt),
        "temperature": o.v("temperature_air", t10 / 10, t10 * 0.1),
        "humidity": o.v("humidity_rel", h2 / 2, h2 * 0.5),
        "pir": o.v("occupancy", "trigger" if pir else "idle", float(pir)),
        "light_level": o.v("light_level", level),
        "co2": o.v("co2", co2),
        "tvoc": o.v("tvoc_index", tvoc100 / 100, tvoc100 * 0.01),
        "pressure": o.v("pressure_air", p10 / 10, p10 * 0.1),
    }
    if am319:
        hcho100 = round(v["hcho"] / 10)  # µg/m³ -> mg/m³ × 100
        pm25, pm10 = round(v["pm2_5"]), round(v["pm10"])
        data += struct.pack("<BBH", 0x0A, 0x7D, hcho100)
        data += struct.pack("<BBH", 0x0B, 0x7D, pm25)
        data += struct.pack("<BBH", 0x0C, 0x7D, pm10)
        obj["hcho"] = o.v("hcho", hcho100 / 100, hcho100 * 0.01 * 1000)
        obj["pm2_5"] = o.v("pm2_5", pm25)
        obj["pm10"] = o.v("pm10", pm10)
    return bytes(data), obj


def _vs133_values(d: Device, v: dict[str, Any], o: Out) -> tuple[bytes, dict[str, Any]]:
    tin, tout = int(v["people_in_total"]), int(v["people_out_total"])
    pin, pout = int(v["people_in"]), int(v["people_out"])
    region = int(v["people_count"])
    data = struct.pack("<BBI", 0x03, 0xD2, tin) + struct.pack("<BBI", 0x04, 0xD2, tout)
    data += struct.pack("<BBHH", 0x05, 0xCC, pin, pout)
    data += struct.pack("<BBBBBB", 0x0F, 0xE3, region, 0, 0, 0)
    obj = {
        "line_1_total_in": o.v("people_in_total", tin),
        "line_1_total_out": o.v("people_out_total", tout),
        "line_1_period_in": o.v("people_in", pin),
        "line_1_period_out": o.v("people_out", pout),
        "region_1_count": o.v("people_count", region),
        "region_2_count": 0, "region_3_count": 0, "region_4_count": 0,
    }
    return data, obj


def _floats(obj: dict[str, Any]) -> dict[str, Any]:
    """ChirpStack's protobuf Struct conversion: every number becomes a float."""
    return {k: float(x) if isinstance(x, int) and not isinstance(x, bool) else x for k, x in obj.items()}


def _payload(d: Device, v: dict[str, Any], o: Out) -> tuple[bytes, dict[str, Any]]:
    kind = d.names["model"]
    if kind == "VS133":
        return _vs133_values(d, v, o)
    return _am_values(d, v, o, am319=kind == "AM319")


def chirpstack_up(d: Device, v: dict[str, Any], c: Ctx) -> Rendered:
    """ChirpStack v4 ``event/up``; ``names['codec']`` says whether ``object`` (decoded) is present."""
    o = Out(d.id, c.ts_ms, c.bad)
    data, obj = _payload(d, v, o)
    n = d.names
    ns = d.rng.randrange(1_000_000)
    body: dict[str, Any] = {
        "deduplicationId": _uuid(d, c.count),
        "time": iso_nanos(c.clock_ms, ns, "+00:00"),
        "deviceInfo": {
            "tenantId": n["tenant_id"], "tenantName": "ChirpStack", "applicationId": n["app_id"],
            "applicationName": n["app_name"], "deviceProfileId": n["profile_id"],
            "deviceProfileName": n["profile_name"], "deviceName": n["device_name"], "devEui": n["dev_eui"],
            "deviceClassEnabled": "CLASS_A", "tags": {"building": d.room.building, "room": d.room.id},
        },
        "devAddr": n["dev_addr"], "adr": True, "dr": 5, "fCnt": c.count, "fPort": 85, "confirmed": False,
        "data": base64.b64encode(data).decode(),
    }
    if n.get("codec") == "yes":
        body["object"] = _floats(obj)
    elif c.bad:  # no codec: the only place a wrong type can go is the data field itself
        body["data"] = next(iter(c.bad.values()))
    rssi = -70 - round(30 * d.cal("rssi", 1.0) ** 2)
    body["rxInfo"] = [{
        "gatewayId": n["gateway"], "uplinkId": d.rng.randrange(1 << 32),
        "nsTime": iso_nanos(c.clock_ms + 40, ns, "+00:00"), "rssi": rssi, "snr": round(7.5 + d.cal("snr", 3.0), 1),
        "channel": c.count % 8, "location": {}, "context": base64.b64encode(d.rng.randbytes(4)).decode(),
        "metadata": {"region_common_name": "CN470", "region_config_id": "cn470_10"}, "crcStatus": "CRC_OK",
    }]
    body["txInfo"] = {"frequency": 486_300_000 + 200_000 * (c.count % 8),
                      "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}}
    body["regionConfigId"] = "cn470_10"
    topic = f"application/{n['app_id']}/device/{n['dev_eui']}/event/up"
    return Rendered(topic, dumps(body), o.result())


def tts_up(d: Device, v: dict[str, Any], c: Ctx) -> Rendered:
    """The Things Stack v3 uplink; ``names['codec']`` says whether ``decoded_payload`` is present."""
    o = Out(d.id, c.ts_ms, c.bad)
    data, obj = _payload(d, v, o)
    n = d.names
    ns = d.rng.randrange(1_000_000)
    received = iso_nanos(c.clock_ms, ns, "Z")
    gw_time = iso_nanos(c.clock_ms - 120, ns, "Z")
    up: dict[str, Any] = {
        "session_key_id": n["session_key_id"], "f_port": 85, "f_cnt": c.count,
        "frm_payload": base64.b64encode(data).decode(),
    }
    if n.get("codec") == "yes":
        up["decoded_payload"] = obj
    elif c.bad:
        up["frm_payload"] = next(iter(c.bad.values()))
    rssi = -75 - round(25 * d.cal("rssi", 1.0) ** 2)
    up["rx_metadata"] = [{
        "gateway_ids": {"gateway_id": n["gateway"], "eui": n["gateway_eui"]}, "time": gw_time,
        "timestamp": d.rng.randrange(1 << 32), "rssi": rssi, "channel_rssi": rssi,
        "snr": round(8.25 + d.cal("snr", 3.0), 2), "uplink_token": base64.b64encode(d.rng.randbytes(24)).decode(),
        "received_at": iso_nanos(c.clock_ms - 100, ns, "Z"),
    }]
    up["settings"] = {
        "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7, "coding_rate": "4/5"}},
        "frequency": str(486_300_000 + 200_000 * (c.count % 8)), "timestamp": d.rng.randrange(1 << 32),
        "time": gw_time,
    }
    up["received_at"] = received
    up["consumed_airtime"] = "0.071936s"
    up["version_ids"] = {"brand_id": "milesight-iot", "model_id": n["model"].lower(), "hardware_version": "1.0",
                         "firmware_version": "1.2", "band_id": "CN_470_510"}
    up["network_ids"] = {"net_id": "000013", "ns_id": "EC656E0000000181", "tenant_id": n["tenant"],
                         "cluster_id": "campus1", "cluster_address": "lns.campus.example"}
    body = {
        "end_device_ids": {"device_id": n["device_id"], "application_ids": {"application_id": n["app"]},
                           "dev_eui": n["dev_eui"].upper(), "join_eui": n["join_eui"], "dev_addr": n["dev_addr"]},
        "correlation_ids": [f"as:up:{_ulid(d, c.count)}"],
        "received_at": received,
        "uplink_message": up,
    }
    return Rendered(f"v3/{n['app']}@{n['tenant']}/devices/{n['device_id']}/up", dumps(body), o.result())


def _uuid(d: Device, count: int) -> str:
    h = f"{d.rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(d: Device, count: int) -> str:
    return "01" + "".join(d.rng.choice(_CROCKFORD) for _ in range(24))

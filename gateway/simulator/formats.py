"""Render a device's values into its ecosystem's real MQTT topic and payload.

Each renderer follows the ecosystem's public documentation and the samples in ``shared/samples``
(key names, nesting, number formats, timestamp conventions), and the topic pattern and field paths
of the shipped profile in ``device_profiles/`` that the message is meant for:

==========================  ================================================  =================================
renderer                    topic                                             profile
==========================  ================================================  =================================
``z2m_th``                  ``zigbee2mqtt/<friendly name>``                   zigbee2mqtt.aqara_wsdcgq11lm
``z2m_th01``                ``zigbee2mqtt/<friendly name>``                   zigbee2mqtt.xiaomi_wsdcgq01lm
``z2m_air``                 ``zigbee2mqtt/<friendly name>``                   zigbee2mqtt.tuya_ts0601_air_quality
``z2m_pir``                 ``zigbee2mqtt/<friendly name>``                   zigbee2mqtt.aqara_rtcgq11lm
``z2m_plug``                ``zigbee2mqtt/<friendly name>``                   zigbee2mqtt.generic
``tasmota_plug``            ``tele/<topic>/SENSOR`` (ENERGY)                  tasmota.energy_plug
``tasmota_water``           ``tele/<topic>/SENSOR`` (COUNTER.C1)              tasmota.water_meter_pulse
``tasmota_scd40``           ``tele/<topic>/SENSOR`` (SCD40)                   tasmota.generic
``shelly_plug``             ``<id>/events/rpc``, ``<id>/status/switch:0``     shelly.plus_pm_switch
``shelly_ht``               ``<id>/events/rpc`` (NotifyFullStatus)            shelly.generic_rpc
``senml_env``               ``senml/<name>``                                  senml.generic
``senml_meter``             ``senml/<name>`` (energy as sum ``s``)            senml.generic
``influx_home``             ``telegraf/<host>/home`` (precision s)            influx.room_climate
``influx_env``              ``telegraf/<host>/sensors`` (precision ns)        influx.generic
``csv_logger``              ``campus/logger/<id>/csv``                        campus.climate_logger_csv
``noise_raw``               ``campus/noise/<id>/level``                       campus.noise_meter_raw
``vibration``               ``campus/vibration/<id>``                         campus.vibration_node
``card_reader``             ``esp-rfid/send``                                 esp_rfid.reader
==========================  ================================================  =================================

LoRaWAN envelopes (ChirpStack v4, The Things Stack v3) are in :mod:`.lorawan`.
"""

from __future__ import annotations

import math
from typing import Any

from gateway.simulator.devices import Device
from gateway.simulator.model import Rendered
from gateway.simulator.render import Ctx, Out, dumps, iso_local, iso_utc_ms, to_seconds

G = 9.80665  # m/s² per g


def _r(x: float, nd: int) -> float:
    return round(x, nd)


# ---------------------------------------------------------------------------------- Zigbee2MQTT
def _z2m(d: Device, c: Ctx, o: Out, body: dict[str, Any]) -> Rendered:
    mode = d.names.get("last_seen", "")
    if mode == "ISO_8601":
        body["last_seen"] = iso_utc_ms(c.clock_ms)
    elif mode == "ISO_8601_local":
        body["last_seen"] = iso_local(c.clock_ms, c.tz_offset_s, with_offset=True)
    elif mode == "epoch":
        body["last_seen"] = c.clock_ms
    return Rendered(f"zigbee2mqtt/{d.names['friendly']}", dumps(body, sort_keys=True), o.result(), has_clock=bool(mode))


def _z2m_ts(d: Device, c: Ctx) -> int:
    return to_seconds(c.ts_ms) if d.names.get("last_seen") == "ISO_8601_local" else c.ts_ms


def z2m_th(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Aqara WSDCGQ11LM: temperature, humidity, pressure, battery %, battery mV, link quality."""
    o = Out(d.id, _z2m_ts(d, c), c.bad)
    mv = round(v["voltage_battery"] * 1000)
    body = {
        "battery": o.v("battery_level", round(v["battery_level"])),
        "humidity": o.v("humidity_rel", _r(v["humidity_rel"], 2)),
        "linkquality": o.v("link_quality", round(v["link_quality"])),
        "power_outage_count": d.state.setdefault("outages", int(d.cal("outages", 40) + 40)),
        "pressure": o.v("pressure_air", _r(v["pressure_air"], 1)),
        "temperature": o.v("temperature_air", _r(v["temperature_air"], 2)),
        "voltage": o.v("voltage_battery", mv, mv / 1000),
    }
    return _z2m(d, c, o, body)


def z2m_th01(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Xiaomi WSDCGQ01LM: temperature, humidity, battery, voltage (mV), link quality."""
    o = Out(d.id, _z2m_ts(d, c), c.bad)
    mv = round(v["voltage_battery"] * 1000)
    body = {
        "battery": o.v("battery_level", round(v["battery_level"])),
        "humidity": o.v("humidity_rel", _r(v["humidity_rel"], 2)),
        "linkquality": o.v("link_quality", round(v["link_quality"])),
        "temperature": o.v("temperature_air", _r(v["temperature_air"], 2)),
        "voltage": o.v("voltage_battery", mv, mv / 1000),
    }
    return _z2m(d, c, o, body)


def z2m_air(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """TuYa TS0601 air quality box: co2 ppm, voc ppb, formaldehyd µg/m³ (sic), temperature, humidity."""
    o = Out(d.id, _z2m_ts(d, c), c.bad)
    body = {
        "co2": o.v("co2", round(v["co2"])),
        "formaldehyd": o.v("hcho", round(v["hcho"])),
        "humidity": o.v("humidity_rel", _r(v["humidity_rel"], 1)),
        "linkquality": o.v("link_quality", round(v["link_quality"])),
        "temperature": o.v("temperature_air", _r(v["temperature_air"], 1)),
        "voc": o.v("tvoc_vol", round(v["tvoc_vol"])),
    }
    return _z2m(d, c, o, body)


def z2m_pir(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Aqara RTCGQ11LM: occupancy (bool), illuminance (lx, Zigbee2MQTT 2.x), device temperature, battery."""
    o = Out(d.id, _z2m_ts(d, c), c.bad)
    mv = round(v["voltage_battery"] * 1000)
    body = {
        "battery": o.v("battery_level", round(v["battery_level"])),
        "device_temperature": o.v("temperature_device", round(v["temperature_device"])),
        "illuminance": o.v("illuminance", round(v["illuminance"])),
        "linkquality": o.v("link_quality", round(v["link_quality"])),
        "occupancy": o.v("occupancy", v["occupancy"] >= 0.5),
        "power_outage_count": d.state.setdefault("outages", int(d.cal("outages", 20) + 20)),
        "voltage": o.v("voltage_battery", mv, mv / 1000),
    }
    return _z2m(d, c, o, body)


def z2m_plug(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """TuYa TS011F smart plug (no model profile: decoded by zigbee2mqtt.generic; 'voltage' unmapped there)."""
    o = Out(d.id, _z2m_ts(d, c), c.bad)
    body = {
        "current": o.v("current", _r(v["current"], 2)),
        "energy": o.v("energy_active_total", _r(v["energy_active_total"], 2)),
        "linkquality": o.v("link_quality", round(v["link_quality"])),
        "power": o.v("power_active", round(v["power_active"])),
        "power_outage_memory": "restore",
        "state": o.v("switch_state", "ON", 1.0),
        "voltage": round(v["voltage"]),
    }
    return _z2m(d, c, o, body)


# -------------------------------------------------------------------------------------- Tasmota
def _tasmota(d: Device, c: Ctx, o: Out, sensors: dict[str, Any]) -> Rendered:
    body = {"Time": iso_local(c.clock_ms, c.tz_offset_s, with_offset=False), **sensors}
    return Rendered(f"tele/{d.names['topic']}/SENSOR", dumps(body), o.result())


def tasmota_plug(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Sonoff POW R2 style ENERGY telemetry (Total/Today/Yesterday kWh, Power W, Voltage V, Current A)."""
    o = Out(d.id, to_seconds(c.ts_ms), c.bad)
    total = _r(v["energy_active_total"], 3)
    day = (c.ts_ms // 1000 + c.tz_offset_s) // 86400
    if d.state.get("day") != day:
        d.state["yesterday"] = total - d.state.get("day_start", total)
        d.state.update(day=day, day_start=total)
    period_wh = round(max(0.0, total - d.state.get("last_total", total)) * 1000)
    d.state["last_total"] = total
    energy = {
        "TotalStartTime": d.names["start_time"],
        "Total": o.v("energy_active_total", total),
        "Yesterday": _r(max(0.0, d.state["yesterday"]), 3),
        "Today": _r(max(0.0, total - d.state["day_start"]), 3),
        "Period": period_wh,
        "Power": o.v("power_active", round(v["power_active"])),
        "ApparentPower": o.v("power_apparent", round(v["power_apparent"])),
        "ReactivePower": o.v("power_reactive", round(v["power_reactive"])),
        "Factor": o.v("power_factor", _r(v["power_factor"], 2)),
        "Voltage": o.v("voltage", round(v["voltage"])),
        "Current": o.v("current", _r(v["current"], 3)),
    }
    return _tasmota(d, c, o, {"ENERGY": energy})


def tasmota_water(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Reed-contact water meter on Tasmota Counter1: COUNTER.C1 pulses, 1 L each."""
    o = Out(d.id, to_seconds(c.ts_ms), c.bad)
    litres = round(v["water_volume_total"] * 1000)
    return _tasmota(d, c, o, {"COUNTER": {"C1": o.v("water_volume_total", litres, litres / 1000)}})


def tasmota_scd40(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Sensirion SCD40 on Tasmota (decoded by tasmota.generic): CO2, temperature, humidity, dew point."""
    o = Out(d.id, to_seconds(c.ts_ms), c.bad)
    t, rh = _r(v["temperature_air"], 1), _r(v["humidity_rel"], 1)
    gamma = math.log(max(rh, 1.0) / 100) + 17.62 * t / (243.12 + t)
    dew = _r(243.12 * gamma / (17.62 - gamma), 1)
    scd = {
        "CarbonDioxide": o.v("co2", round(v["co2"])),
        "eCO2": round(v["co2"]) + 5,
        "Temperature": o.v("temperature_air", t),
        "Humidity": o.v("humidity_rel", rh),
        "DewPoint": o.v("temperature_dew", dew),
    }
    return _tasmota(d, c, o, {"SCD40": scd, "TempUnit": "C"})


# --------------------------------------------------------------------------------------- Shelly
def _aenergy(d: Device, v: dict[str, float], c: Ctx, o: Out) -> dict[str, Any]:
    total_wh = _r(v["energy_active_total"] * 1000, 3)
    per_min = _r(v["power_active"] * 1000 / 60, 3)  # mWh in the last minute
    return {
        "total": o.v("energy_active_total", total_wh, total_wh / 1000),
        "by_minute": [per_min, per_min, per_min],
        "minute_ts": c.clock_ms // 60_000 * 60,
    }


def shelly_plug(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Shelly Plus 1PM / Plus Plug S: NotifyStatus on events/rpc, every 4th message the status topic."""
    dev = d.names["id"]
    tc = _r(v["temperature_device"], 1)
    if c.count % 4 == 3:  # "generic status update over MQTT": full component, no timestamp
        o = Out(d.id, c.ts_ms, c.bad)
        status = {
            "id": 0, "source": "timer", "output": o.v("switch_state", True, 1.0),
            "apower": o.v("power_active", _r(v["power_active"], 1)),
            "voltage": o.v("voltage", _r(v["voltage"], 1)),
            "freq": o.v("frequency", _r(v["frequency"], 2)),
            "current": o.v("current", _r(v["current"], 3)),
            "pf": o.v("power_factor", _r(v["power_factor"], 2)),
            "aenergy": _aenergy(d, v, c, o),
            "temperature": {"tC": o.v("temperature_device", tc), "tF": _r(tc * 9 / 5 + 32, 1)},
        }
        return Rendered(f"{dev}/status/switch:0", dumps(status), o.result(), has_clock=False)
    ts = round(c.clock_ms / 10) / 100  # epoch seconds, 2 decimals
    o = Out(d.id, c.ts_ms // 10 * 10, c.bad)
    sw: dict[str, Any] = {
        "id": 0,
        "apower": o.v("power_active", _r(v["power_active"], 1)),
        "current": o.v("current", _r(v["current"], 3)),
        "voltage": o.v("voltage", _r(v["voltage"], 1)),
        "aenergy": _aenergy(d, v, c, o),
    }
    if c.count % 4 == 0:  # the relay temperature changes slowly: only in some deltas
        sw["temperature"] = {"tC": o.v("temperature_device", tc), "tF": _r(tc * 9 / 5 + 32, 1)}
    body = {"src": dev, "dst": f"{dev}/events", "method": "NotifyStatus", "params": {"ts": ts, "switch:0": sw}}
    return Rendered(f"{dev}/events/rpc", dumps(body), o.result())


def shelly_ht(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Shelly Plus H&T: one NotifyFullStatus per wake-up (decoded by shelly.generic_rpc)."""
    dev = d.names["id"]
    o = Out(d.id, c.ts_ms // 10 * 10, c.bad)
    t = _r(v["temperature_air"], 1)
    pct = round(v["battery_level"])
    volts = _r(3.6 + 0.024 * pct, 2)
    params = {
        "ts": round(c.clock_ms / 10) / 100,
        "ble": {},
        "cloud": {"connected": False},
        "devicepower:0": {"id": 0,
                          "battery": {"V": o.v("voltage_battery", volts), "percent": o.v("battery_level", pct)},
                          "external": {"present": False}},
        "ht_ui": {},
        "humidity:0": {"id": 0, "rh": o.v("humidity_rel", _r(v["humidity_rel"], 1))},
        "mqtt": {"connected": True},
        "sys": {"mac": d.names["mac"], "restart_required": False, "time": None, "unixtime": None, "uptime": 0,
                "ram_size": 235712, "ram_free": 166028, "fs_size": 458752, "fs_free": 167936, "cfg_rev": 14,
                "kvs_rev": 0, "webhook_rev": 0, "available_updates": {},
                "wakeup_reason": {"boot": "deepsleep_wake", "cause": "status_update"}, "wakeup_period": 600},
        "temperature:0": {"id": 0, "tC": o.v("temperature_air", t), "tF": _r(t * 9 / 5 + 32, 1)},
        "wifi": {"sta_ip": d.names["ip"], "status": "got ip", "ssid": "Campus-IoT",
                 "rssi": o.v("signal_rssi", round(v["signal_rssi"]))},
        "ws": {"connected": False},
    }
    body = {"src": dev, "dst": f"{dev}/events", "method": "NotifyFullStatus", "params": params}
    return Rendered(f"{dev}/events/rpc", dumps(body), o.result())


# ---------------------------------------------------------------------------------------- SenML
def senml_env(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """A SenML pack: base name = the device URN, base time in epoch seconds, one record per quantity."""
    o = Out(d.id, c.ts_ms, c.bad)
    pack = [
        {"bn": d.names["bn"], "bt": c.clock_ms / 1000, "n": "temperature", "u": "Cel",
         "v": o.v("temperature_air", _r(v["temperature_air"], 2))},
        {"n": "humidity", "u": "%RH", "v": o.v("humidity_rel", _r(v["humidity_rel"], 1))},
        {"n": "pressure", "u": "hPa", "v": o.v("pressure_air", _r(v["pressure_air"], 1))},
        {"n": "illuminance", "u": "lx", "v": o.v("illuminance", round(v["illuminance"]))},
        {"n": "co2", "u": "ppm", "v": o.v("co2", round(v["co2"]))},
        {"n": "battery", "u": "%EL", "v": o.v("battery_level", round(v["battery_level"]))},
    ]
    return Rendered(f"senml/{d.names['topic']}", dumps(pack), o.result())


def senml_meter(d: Device, v: dict[str, Any], c: Ctx) -> Rendered:
    """A building's three-phase main electricity meter as SenML: energy register as a sum ``s`` in kWh."""
    o = Out(d.id, c.ts_ms, c.bad)
    pack = [
        {"bn": d.names["bn"], "bt": c.clock_ms / 1000, "n": "energy", "u": "kWh",
         "s": o.v("energy_active_total", _r(v["energy_active_total"], 3))},
        {"n": "power", "u": "W", "v": o.v("power_active", round(v["power_active"]))},
        {"n": "voltage", "u": "V", "v": o.v("voltage", _r(v["voltage"], 1))},
        {"n": "current", "u": "A", "v": o.v("current", _r(v["current"], 2))},
    ]
    return Rendered(f"senml/{d.names['topic']}", dumps(pack), o.result())


# --------------------------------------------------------------------------------- line protocol
def _escape_tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field(value: Any) -> str:
    """A line-protocol field value; a wrong-type fault value becomes a quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def influx_home(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """InfluxDB 'home' schema: ``home,room=<room> temp=..,hum=..,co=<int>i <epoch s>``."""
    o = Out(d.id, to_seconds(c.ts_ms), c.bad)
    fields = {
        "temp": o.v("temperature_air", _r(v["temperature_air"], 1)),
        "hum": o.v("humidity_rel", _r(v["humidity_rel"], 1)),
        "co": o.v("co", round(v["co"])),
    }
    line = f"home,room={_escape_tag(d.names['room_tag'])} " + ",".join(f"{k}={_field(x)}" for k, x in fields.items())
    line += f" {c.clock_ms // 1000}"
    return Rendered(f"telegraf/{d.names['host']}/home", line.encode(), o.result(), json_like=False)


def influx_env(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Telegraf-style line with host and device tags and a nanosecond timestamp (influx.generic)."""
    o = Out(d.id, c.ts_ms, c.bad)
    fields = {
        "temperature": o.v("temperature_air", _r(v["temperature_air"], 2)),
        "humidity": o.v("humidity_rel", _r(v["humidity_rel"], 2)),
        "co2": o.v("co2", round(v["co2"])),
        "pressure": o.v("pressure_air", _r(v["pressure_air"], 1)),
    }
    tags = f"device={_escape_tag(d.id)},host={_escape_tag(d.names['host'])},room={_escape_tag(d.room.id)}"
    line = f"sensors,{tags} " + ",".join(f"{k}={_field(x)}" for k, x in fields.items())
    line += f" {c.clock_ms * 1_000_000 + d.rng.randrange(1_000_000)}"
    return Rendered(f"telegraf/{d.names['host']}/sensors", line.encode(), o.result(), json_like=False)


# -------------------------------------------------------------------------------- campus devices
def csv_logger(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Legacy logger: ``<epoch s>,<temperature>,<humidity>,<co2>`` (no header)."""
    o = Out(d.id, to_seconds(c.ts_ms), c.bad)
    cols = [
        str(c.clock_ms // 1000),
        str(o.v("temperature_air", _r(v["temperature_air"], 1))),
        str(o.v("humidity_rel", _r(v["humidity_rel"], 1))),
        str(o.v("co2", round(v["co2"]))),
    ]
    return Rendered(f"campus/logger/{d.id}/csv", ",".join(cols).encode(), o.result(), json_like=False)


def noise_raw(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Sound level meter: one bare dB(A) number, no timestamp."""
    o = Out(d.id, c.ts_ms, c.bad)
    level = o.v("noise_level", _r(v["noise_level"], 1))
    return Rendered(f"campus/noise/{d.id}/level", str(level).encode(), o.result(), json_like=False, has_clock=False)


def vibration(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """Vibration node: a burst of z-axis acceleration samples in g, its sample rate and the node's RMS."""
    o = Out(d.id, c.ts_ms, c.bad)
    samples_g = [round(x / G, 4) for x in v["_samples"]]  # type: ignore[attr-defined]
    rms_g = round(math.sqrt(sum(x * x for x in samples_g) / len(samples_g)), 3)
    rate = v["_rate"]
    body: dict[str, Any] = {"ts": c.clock_ms, "fs": int(rate), "unit": "g", "axis": "z",
                            "rms": o.v("vibration_rms", rms_g, rms_g * G)}
    if "vibration_accel" in c.bad:
        body["samples"] = c.bad["vibration_accel"]
    else:
        body["samples"] = samples_g
        o.wave("vibration_accel", rate, tuple(x * G for x in samples_g), v["_dominant_hz"])
    return Rendered(f"campus/vibration/{d.id}", dumps(body), o.result())


def card_reader(d: Device, v: dict[str, float], c: Ctx) -> Rendered:
    """esp-rfid: an ``access`` message per card swipe, a ``heartbeat`` with uptime otherwise."""
    o = Out(d.id, to_seconds(c.ts_ms), c.bad)
    host = d.names["hostname"]
    if v.get("_swipe"):
        card = d.state["card"]
        known = card["known"]
        attrs = (("card", card["uid"]), ("user", card["user"]), ("result", card["access"]),
                 ("known", "true" if known else "false"))
        body: dict[str, Any] = {
            "type": "access", "time": c.clock_ms // 1000, "isKnown": "true" if known else "false",
            "access": card["access"], "username": card["user"], "uid": card["uid"], "hostname": host,
        }
        o.event("card_swipe", attrs)
    else:
        body = {"type": "heartbeat", "time": c.clock_ms // 1000,
                "uptime": o.v("uptime", round(v["uptime"])), "ip": d.names["ip"], "hostname": host}
    return Rendered(d.names["topic"], dumps(body), o.result())

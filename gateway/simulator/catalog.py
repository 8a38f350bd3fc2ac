"""The device types the simulator knows: ecosystem, shipped profile, where they hang, how they report.

Each :class:`DeviceType` ties a renderer (:mod:`.formats`, :mod:`.lorawan`) to the profile it is
meant for, the rooms it is installed in, its share of the fleet, its nominal reporting interval and
the faults that can apply to it (``clock``: the payload carries device time, so skew applies;
``counters``: cumulative registers, so resets apply; ``spikes``/``out_of_range``: gauge metrics with
the limits of their encoding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.simulator import formats, lorawan
from gateway.simulator.campus import Room, RoomType, unit_noise
from gateway.simulator.devices import Device
from gateway.simulator.model import Rendered
from gateway.simulator.render import Ctx

Renderer = Callable[[Device, dict[str, Any], Ctx], Rendered]
Namer = Callable[[int, Room, int], tuple[str, dict[str, str]]]

R = RoomType
TEACHING = (R.CLASSROOM, R.LAB, R.LIBRARY, R.OFFICE)
AIR = (R.CLASSROOM, R.LAB, R.LIBRARY, R.CANTEEN, R.GYM)
PLUGS = (R.CLASSROOM, R.LAB, R.OFFICE, R.CANTEEN, R.PLANT)

# Encoding limits of values a fault may write: (min, max) the payload format can carry.
ANY = (-1e9, 1e9)
U8_HALF = (0.0, 127.5)
U16 = (0.0, 65535.0)
S16_TENTH = (-3276.8, 3276.7)


@dataclass(slots=True, frozen=True)
class DeviceType:
    """One kind of simulated device and the profile it is meant for."""

    name: str
    ecosystem: str
    profile: str
    render: Renderer
    sensing: str  # 'env' | 'plug' | 'water' | 'people' | 'vibration' | 'card'
    rooms: tuple[RoomType, ...]
    share: float  # share of the fleet
    nominal_s: float  # nominal reporting interval; relative frequencies follow these
    namer: Namer
    clock: bool = False  # the payload carries a device timestamp
    resolution_ms: int = 1  # timestamp resolution of the format
    counters: tuple[str, ...] = ()
    spikes: tuple[str, ...] = ()
    out_of_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    event_driven: bool = False


# --------------------------------------------------------------------------------------- naming
def _hex(seed: int, idx: int, salt: str, n: int) -> str:
    return f"{int(unit_noise(seed, idx, salt) * 16**n):0{n}x}"


def _z2m_name(label: str) -> Namer:
    def namer(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
        if unit_noise(seed, idx, "renamed") < 0.25:  # never renamed: the IEEE address is the name
            friendly = "0x00158d" + _hex(seed, idx, "ieee", 10)
        else:
            friendly = f"{room.id}/{label}-{idx:04d}"
        modes = ("", "ISO_8601", "ISO_8601_local", "epoch")  # Zigbee2MQTT advanced.last_seen, per bridge
        mode = modes[int(unit_noise(seed, room.building, "last_seen") * len(modes))]
        return friendly, {"friendly": friendly, "last_seen": mode}
    return namer


def _tasmota_name(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
    topic = f"tasmota_{_hex(seed, idx, 'mac', 6).upper()}"
    return topic, {"topic": topic, "start_time": "2024-09-01T08:00:00"}


def _shelly_name(model: str) -> Namer:
    def namer(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
        mac = _hex(seed, idx, "mac", 12)
        dev = f"{model}-{mac}"
        return dev, {"id": dev, "mac": mac.upper(), "ip": f"10.{20 + idx // 250 % 200}.{idx % 250}.{10 + idx % 200}"}
    return namer


def _lorawan_name(model: str, codec: bool, stack: str) -> Namer:
    def namer(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
        eui = "24e124" + _hex(seed, idx, "eui", 10)
        app_uuid = _uuid(seed, "app" if model != "VS133" else "app-people")
        names = {
            "model": model, "codec": "yes" if codec else "no", "dev_eui": eui,
            "dev_addr": _hex(seed, idx, "addr", 8), "gateway": "ac1f09fffe0" + _hex(seed, 0, "gw", 5),
            "gateway_eui": ("AC1F09FFFE0" + _hex(seed, 0, "gw", 5)).upper(),
            "tenant_id": _uuid(seed, "tenant"), "app_id": app_uuid,
            "app_name": "campus-people" if model == "VS133" else "campus-air",
            "profile_id": _uuid(seed, "profile" + model), "profile_name": f"Milesight {model}",
            "device_name": f"{room.id} {model}", "session_key_id": "AZ" + _hex(seed, idx, "sk", 20),
            "join_eui": "24E124C0002A0001", "app": "campus-air", "tenant": "campus",
            "device_id": f"{model.lower()}-{room.id.lower()}-{idx:04d}",
        }
        device = names["device_id"] if stack == "tts" else eui
        return device, names
    return namer


def _uuid(seed: int, salt: str) -> str:
    h = f"{int(unit_noise(seed, salt, 'u1') * 2**64):016x}{int(unit_noise(seed, salt, 'u2') * 2**64):016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _senml_name(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
    mac = _hex(seed, idx, "mac", 16)
    return f"urn:dev:mac:{mac}", {"bn": f"urn:dev:mac:{mac}:", "topic": f"{room.id}/env-{idx:04d}"}


def _senml_meter_name(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
    mac = _hex(seed, idx, "mac", 16)
    topic = f"building-{room.building}/main-meter-{idx:04d}"
    return f"urn:dev:mac:{mac}", {"bn": f"urn:dev:mac:{mac}:", "topic": topic}


def _influx_home_name(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
    tag = f"{room.id} climate {idx:04d}"  # a tag value with spaces: escaped in line protocol
    return tag, {"room_tag": tag, "host": f"rpi-{room.id.lower()}"}


def _influx_env_name(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
    dev = f"{room.id}-scd41-{idx:04d}"
    return dev, {"host": f"telegraf-{room.building.lower()}"}


def _plain(prefix: str) -> Namer:
    def namer(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
        return f"{prefix}-{room.id.lower()}-{idx:04d}", {}
    return namer


def _rfid_name(idx: int, room: Room, seed: int) -> tuple[str, dict[str, str]]:
    host = f"esp-rfid-{room.id.lower()}-{idx:04d}"
    topic = "esp-rfid/send" if unit_noise(seed, room.building, "rfid") < 0.5 else "/rfid/send"
    return host, {"hostname": host, "topic": topic, "ip": f"10.30.{idx // 250 % 250}.{idx % 250 + 2}"}


# ---------------------------------------------------------------------------------------- types
_ENV_SPIKES = ("temperature_air", "humidity_rel", "co2")
TYPES: tuple[DeviceType, ...] = (
    DeviceType("z2m_th", "zigbee2mqtt", "zigbee2mqtt.aqara_wsdcgq11lm", formats.z2m_th, "env", TEACHING, 0.07,
               60, _z2m_name("th"), clock=True, spikes=("temperature_air", "humidity_rel"),
               out_of_range={"temperature_air": ANY, "humidity_rel": ANY}),
    DeviceType("z2m_th01", "zigbee2mqtt", "zigbee2mqtt.xiaomi_wsdcgq01lm", formats.z2m_th01, "env", TEACHING, 0.04,
               60, _z2m_name("th"), clock=True, spikes=("temperature_air", "humidity_rel"),
               out_of_range={"temperature_air": ANY, "humidity_rel": ANY}),
    DeviceType("z2m_air", "zigbee2mqtt", "zigbee2mqtt.tuya_ts0601_air_quality", formats.z2m_air, "env", AIR, 0.09,
               60, _z2m_name("air"), clock=True, spikes=_ENV_SPIKES,
               out_of_range={"co2": ANY, "temperature_air": ANY}),
    DeviceType("z2m_pir", "zigbee2mqtt", "zigbee2mqtt.aqara_rtcgq11lm", formats.z2m_pir, "env",
               (R.CLASSROOM, R.OFFICE, R.LIBRARY, R.GYM, R.LAB), 0.05, 60, _z2m_name("pir"), clock=True,
               spikes=("illuminance",), out_of_range={"illuminance": ANY}),
    DeviceType("z2m_plug", "zigbee2mqtt", "zigbee2mqtt.generic", formats.z2m_plug, "plug", PLUGS, 0.04, 60,
               _z2m_name("plug"), clock=True, counters=("energy_active_total",), spikes=("power_active",)),
    DeviceType("tasmota_plug", "tasmota", "tasmota.energy_plug", formats.tasmota_plug, "plug", PLUGS, 0.06, 60,
               _tasmota_name, clock=True, resolution_ms=1000, counters=("energy_active_total",),
               spikes=("power_active",), out_of_range={"power_active": ANY, "voltage": ANY}),
    DeviceType("tasmota_water", "tasmota", "tasmota.water_meter_pulse", formats.tasmota_water, "water",
               (R.ENTRANCE, R.CANTEEN, R.GYM, R.PLANT), 0.03, 60, _tasmota_name, clock=True, resolution_ms=1000,
               counters=("water_volume_total",)),
    DeviceType("tasmota_scd40", "tasmota", "tasmota.generic", formats.tasmota_scd40, "env", (R.CLASSROOM, R.LAB),
               0.03, 60, _tasmota_name, clock=True, resolution_ms=1000, spikes=_ENV_SPIKES),
    DeviceType("shelly_plug", "shelly", "shelly.plus_pm_switch", formats.shelly_plug, "plug", PLUGS, 0.06, 60,
               _shelly_name("shellyplusplugs"), clock=True, resolution_ms=10, counters=("energy_active_total",),
               spikes=("power_active",), out_of_range={"power_active": ANY, "current": ANY}),
    DeviceType("shelly_1pm", "shelly", "shelly.plus_pm_switch", formats.shelly_plug, "plug", PLUGS, 0.03, 60,
               _shelly_name("shellyplus1pm"), clock=True, resolution_ms=10, counters=("energy_active_total",),
               spikes=("power_active",), out_of_range={"power_active": ANY}),
    DeviceType("shelly_ht", "shelly", "shelly.generic_rpc", formats.shelly_ht, "env", TEACHING, 0.03, 120,
               _shelly_name("shellyplusht"), clock=True, resolution_ms=10, spikes=("temperature_air",)),
    DeviceType("cs_am307", "chirpstack", "chirpstack.milesight_am300", lorawan.chirpstack_up, "env", AIR, 0.05,
               300, _lorawan_name("AM307", True, "cs"), clock=True, spikes=_ENV_SPIKES,
               out_of_range={"co2": U16, "temperature_air": S16_TENTH}),
    DeviceType("cs_am307_raw", "chirpstack", "chirpstack.milesight_am300", lorawan.chirpstack_up, "env", AIR, 0.04,
               300, _lorawan_name("AM307", False, "cs"), clock=True, spikes=_ENV_SPIKES,
               out_of_range={"co2": U16, "temperature_air": S16_TENTH, "humidity_rel": U8_HALF}),
    DeviceType("cs_am319_raw", "chirpstack", "chirpstack.milesight_am300", lorawan.chirpstack_up, "env", AIR, 0.02,
               300, _lorawan_name("AM319", False, "cs"), clock=True, spikes=("co2", "pm2_5"),
               out_of_range={"co2": U16, "temperature_air": S16_TENTH}),
    DeviceType("cs_vs133", "chirpstack", "chirpstack.milesight_vs133", lorawan.chirpstack_up, "people",
               (R.ENTRANCE, R.LIBRARY, R.CANTEEN), 0.02, 300, _lorawan_name("VS133", True, "cs"), clock=True,
               counters=("people_in_total", "people_out_total")),
    DeviceType("cs_vs133_raw", "chirpstack", "chirpstack.milesight_vs133", lorawan.chirpstack_up, "people",
               (R.ENTRANCE, R.LIBRARY, R.CANTEEN), 0.02, 300, _lorawan_name("VS133", False, "cs"), clock=True,
               counters=("people_in_total", "people_out_total")),
    DeviceType("tts_am307", "tts", "tts.milesight_am300", lorawan.tts_up, "env", AIR, 0.03, 300,
               _lorawan_name("AM307", True, "tts"), clock=True, spikes=_ENV_SPIKES,
               out_of_range={"co2": ANY, "temperature_air": ANY}),
    DeviceType("tts_am307_raw", "tts", "tts.milesight_am300", lorawan.tts_up, "env", AIR, 0.02, 300,
               _lorawan_name("AM307", False, "tts"), clock=True, spikes=_ENV_SPIKES,
               out_of_range={"co2": U16, "temperature_air": S16_TENTH}),
    DeviceType("senml_env", "senml", "senml.generic", formats.senml_env, "env", TEACHING, 0.04, 60, _senml_name,
               clock=True, spikes=_ENV_SPIKES, out_of_range={}),
    DeviceType("senml_meter", "senml", "senml.generic", formats.senml_meter, "building_meter", (R.PLANT,), 0.02,
               60, _senml_meter_name, clock=True, counters=("energy_active_total",), spikes=("power_active",)),
    DeviceType("influx_home", "influx", "influx.room_climate", formats.influx_home, "env",
               (R.OFFICE, R.CANTEEN, R.LIBRARY), 0.03, 60, _influx_home_name, clock=True, resolution_ms=1000,
               spikes=("temperature_air",), out_of_range={"co": ANY}),
    DeviceType("influx_env", "influx", "influx.generic", formats.influx_env, "env", TEACHING, 0.03, 60,
               _influx_env_name, clock=True, spikes=_ENV_SPIKES),
    DeviceType("csv_logger", "campus", "campus.climate_logger_csv", formats.csv_logger, "env", (R.CLASSROOM,),
               0.03, 60, _plain("logger"), clock=True, resolution_ms=1000, spikes=_ENV_SPIKES),
    DeviceType("noise_raw", "campus", "campus.noise_meter_raw", formats.noise_raw, "env",
               (R.CLASSROOM, R.LIBRARY, R.CANTEEN, R.GYM), 0.05, 20, _plain("noise"), spikes=("noise_level",),
               out_of_range={"noise_level": ANY}),
    DeviceType("vibration", "campus", "campus.vibration_node", formats.vibration, "vibration", (R.PLANT,), 0.03,
               300, _plain("vib"), clock=True),
    DeviceType("card_reader", "esp-rfid", "esp_rfid.reader", formats.card_reader, "card",
               (R.ENTRANCE, R.LAB, R.LIBRARY), 0.03, 30, _rfid_name, clock=True, resolution_ms=1000,
               counters=("uptime",), event_driven=True),
)
BY_NAME = {t.name: t for t in TYPES}
ECOSYSTEMS = tuple(sorted({t.ecosystem for t in TYPES}))
MIX_ALIASES = {"z2m": "zigbee2mqtt", "cs": "chirpstack", "lora": "lorawan", "rfid": "esp-rfid"}


def select(mix: str) -> tuple[DeviceType, ...]:
    """Device types for a ``--mix``: ``all``, or comma-separated ecosystems / type names / ``lorawan``."""
    mix = mix.strip()
    if mix in ("", "all"):
        return TYPES
    chosen: list[DeviceType] = []
    for item in (x.strip() for x in mix.split(",")):
        key = MIX_ALIASES.get(item, item)
        if key == "lorawan":
            hits = [t for t in TYPES if t.ecosystem in ("chirpstack", "tts")]
        else:
            hits = [t for t in TYPES if t.ecosystem == key or t.name == key]
        if not hits:
            known = ", ".join((*ECOSYSTEMS, "lorawan", *BY_NAME))
            raise ValueError(f"mix: unknown ecosystem or device type {item!r} (known: {known})")
        chosen += [t for t in hits if t not in chosen]
    return tuple(chosen)

"""The data dictionary the warehouse conforms to: canonical metrics, event kinds and unit conversions.

Source of truth is ``device_profiles/metrics.yaml`` (the same file the edge validates profiles against);
when it cannot be found (e.g. an installed package without the repository) a built-in copy of the core
metrics is used. Each metric's business domain maps to the DWD business process (``process_code``):
environment → env, energy and water → energy, occupancy → occ, access → acs, anything else → iot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cloud_ingest.warehouse.errors import RegistryError

_LOGGER = logging.getLogger(__name__)

DEFAULT_METRICS_FILE = Path(__file__).resolve().parents[2] / "device_profiles" / "metrics.yaml"
DOMAIN_TO_PROCESS = {"environment": "env", "energy": "energy", "water": "energy", "occupancy": "occ",
                     "access": "acs"}


@dataclass(slots=True, frozen=True)
class MetricDef:
    """One row of ``dim_iot_metric``: a canonical metric or an event kind."""

    code: str
    name_zh: str
    unit: str
    process: str  # env | energy | occ | acs | iot
    type: str  # gauge | counter | state | event | waveform
    range_min: float | None = None
    range_max: float | None = None


@dataclass(slots=True, frozen=True)
class UnitDef:
    """One row of ``dim_pub_unit``: value_in_base = value * factor + offset; same base → convertible."""

    code: str
    base: str
    factor: float
    offset: float


@dataclass(slots=True, frozen=True)
class Dictionary:
    metrics: tuple[MetricDef, ...]
    units: tuple[UnitDef, ...]
    source: str


# Event kinds of the access-control business process (the profiles' ``events:`` kinds).
ACS_EVENT_KINDS = (
    MetricDef("card_swipe", "刷卡", "", "acs", "event"),
    MetricDef("access_granted", "准许通行", "", "acs", "event"),
    MetricDef("access_denied", "拒绝通行", "", "acs", "event"),
    MetricDef("door_open", "开门", "", "acs", "event"),
    MetricDef("door_close", "关门", "", "acs", "event"),
    MetricDef("door_forced", "强行开门", "", "acs", "event"),
    MetricDef("door_held", "门长时间未关", "", "acs", "event"),
)

_BUILTIN_METRICS = (
    MetricDef("temperature_air", "空气温度", "Cel", "env", "gauge", -40, 85),
    MetricDef("humidity_rel", "相对湿度", "%RH", "env", "gauge", 0, 100),
    MetricDef("co2", "二氧化碳浓度", "ppm", "env", "gauge", 0, 40000),
    MetricDef("pm2_5", "PM2.5浓度", "ug/m3", "env", "gauge", 0, 2000),
    MetricDef("tvoc", "总挥发性有机物质量浓度", "ug/m3", "env", "gauge", 0, 60000),
    MetricDef("noise_level", "噪声等级", "dB", "env", "gauge", 0, 140),
    MetricDef("illuminance", "照度", "lx", "env", "gauge", 0, 200000),
    MetricDef("occupancy", "占用状态", "state", "occ", "state", 0, 1),
    MetricDef("people_count", "人数", "count", "occ", "gauge", 0, 10000),
    MetricDef("power_active", "有功功率", "W", "energy", "gauge", -1e6, 1e6),
    MetricDef("energy_active_total", "累计有功电能", "kWh", "energy", "counter", 0, 1e9),
    MetricDef("water_volume_total", "累计用水量", "m3", "energy", "counter", 0, 1e8),
    MetricDef("battery_level", "电池电量", "%", "iot", "gauge", 0, 100),
)
_BUILTIN_UNITS = (
    UnitDef("Cel", "temperature", 1, 0), UnitDef("degF", "temperature", 5 / 9, -160 / 9),
    UnitDef("K", "temperature", 1, -273.15), UnitDef("%", "ratio", 1, 0), UnitDef("%RH", "ratio", 1, 0),
    UnitDef("ppm", "mixing_ratio", 1, 0), UnitDef("ppb", "mixing_ratio", 0.001, 0),
    UnitDef("ug/m3", "mass_concentration", 1, 0), UnitDef("mg/m3", "mass_concentration", 1000, 0),
    UnitDef("dB", "level_db", 1, 0), UnitDef("lx", "illuminance", 1, 0), UnitDef("state", "state", 1, 0),
    UnitDef("count", "count", 1, 0), UnitDef("W", "power", 1, 0), UnitDef("kW", "power", 1000, 0),
    UnitDef("kWh", "energy", 1, 0), UnitDef("Wh", "energy", 0.001, 0), UnitDef("m3", "volume", 1, 0),
    UnitDef("L", "volume", 0.001, 0),
)


def builtin_dictionary() -> Dictionary:
    return Dictionary((*_BUILTIN_METRICS, *ACS_EVENT_KINDS), _BUILTIN_UNITS, "built-in")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_dictionary(raw: Any, file: str) -> Dictionary:
    """Read the ``units:`` and ``metrics:`` maps of a metrics.yaml document."""
    if not isinstance(raw, dict) or not isinstance(raw.get("metrics"), dict):
        raise RegistryError(file, "metrics", "missing or not a mapping")
    units: dict[str, UnitDef] = {}
    for code, u in (raw.get("units") or {}).items():
        if not isinstance(u, dict) or "dimension" not in u:
            raise RegistryError(file, f"units.{code}", "needs a dimension")
        unit = UnitDef(str(code), str(u["dimension"]), float(u.get("factor", 1)), float(u.get("offset", 0)))
        units[unit.code] = unit
        for alias in u.get("aliases") or ():
            units.setdefault(str(alias), UnitDef(str(alias), unit.base, unit.factor, unit.offset))
    metrics = []
    for code, m in raw["metrics"].items():
        if not isinstance(m, dict) or "unit" not in m:
            raise RegistryError(file, f"metrics.{code}", "needs a unit")
        rng = m.get("range") or [None, None]
        metrics.append(MetricDef(str(code), str(m.get("name_zh", code)), str(m["unit"]),
                                 DOMAIN_TO_PROCESS.get(str(m.get("domain", "")), "iot"),
                                 str(m.get("type", "gauge")), _num(rng[0]), _num(rng[1])))
    known = {m.code for m in metrics}
    metrics.extend(k for k in ACS_EVENT_KINDS if k.code not in known)
    return Dictionary(tuple(metrics), tuple(units.values()), file)


def load_dictionary(path: Path | None = None) -> Dictionary:
    """The dictionary from ``path`` (default: the repository's device_profiles/metrics.yaml) or built-in."""
    path = path or DEFAULT_METRICS_FILE
    if not path.exists():
        _LOGGER.info("%s not found: using the built-in metric dictionary", path)
        return builtin_dictionary()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RegistryError(str(path), "", f"not valid YAML: {exc}") from exc
    return parse_dictionary(raw, str(path))

"""The canonical metric registry and unit dictionary, read from ``device_profiles/metrics.yaml``.

Profiles may only name registered canonical metrics and registered units (or their aliases); the
loader converts every source unit to the metric's canonical unit with a linear map computed here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.errors import ProfileError
from edge_agent.profiles.yamlio import YamlSyntaxError, load_yaml

METRIC_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
METRIC_TYPES = ("gauge", "counter", "state", "event", "waveform")
MetricType = Literal["gauge", "counter", "state", "event", "waveform"]


@dataclass(slots=True, frozen=True)
class Unit:
    """One registered unit: ``base = value * factor + offset`` in its dimension's base unit."""

    code: str
    dimension: str
    factor: float
    offset: float
    symbol: str
    name_zh: str
    aliases: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class MetricDef:
    """One canonical metric: its unit, names, business domain, default type and valid range."""

    name: str
    unit: str
    name_zh: str
    name_en: str
    domain: str
    type: str
    range: tuple[float, float] | None
    description: str = ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _UnitModel(_Strict):
    dimension: str = Field(min_length=1)
    factor: float = Field(gt=0)
    offset: float = 0.0
    symbol: str = ""
    name_zh: str = ""
    aliases: list[str] = []


class _MetricModel(_Strict):
    unit: str
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    domain: Literal["environment", "energy", "water", "occupancy", "access", "device", "equipment"]
    type: MetricType = "gauge"
    range: tuple[float, float] | None = None
    description: str = ""


class _RegistryModel(_Strict):
    version: int = Field(ge=1)
    units: dict[str, _UnitModel]
    metrics: dict[str, _MetricModel]


class MetricRegistry:
    """Canonical metrics and units. Build with :meth:`load` (or :meth:`from_mapping` in tests)."""

    def __init__(
        self, units: dict[str, Unit], metrics: dict[str, MetricDef], source: str = "<memory>"
    ) -> None:
        self.source = source
        self.units = units
        self.metrics = metrics
        self._lookup: dict[str, str] = {}
        for unit in units.values():
            for name in (unit.code, *unit.aliases):
                self._lookup.setdefault(name, unit.code)
        for unit in units.values():  # case-insensitive fallback, never overriding an exact name
            for name in (unit.code, *unit.aliases):
                self._lookup.setdefault(name.casefold(), unit.code)
        self._conversions: dict[tuple[str, str], tuple[float, float]] = {}

    @classmethod
    def load(cls, path: str | Path) -> MetricRegistry:
        """Read and validate ``metrics.yaml``. Raises :class:`ProfileError` naming the field."""
        file = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(file, "", f"cannot read the metric registry: {exc.strerror or exc}") from exc
        try:
            doc = load_yaml(text)
        except YamlSyntaxError as exc:
            raise ProfileError(file, "", str(exc)) from exc
        return cls.from_mapping(doc.data, source=file, line_of=doc.line_of)

    @classmethod
    def from_mapping(cls, data: object, *, source: str = "<memory>", line_of=None) -> MetricRegistry:  # type: ignore[no-untyped-def]
        """Validate an already parsed registry mapping."""
        try:
            model = _RegistryModel.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = tuple(err["loc"])
            where = f" (line {line_of(loc)})" if line_of and line_of(loc) else ""
            raise ProfileError(source, _loc_text(loc), err["msg"] + where) from exc
        units = {
            code: Unit(code, u.dimension, u.factor, u.offset, u.symbol, u.name_zh, tuple(u.aliases))
            for code, u in model.units.items()
        }
        metrics: dict[str, MetricDef] = {}
        for name, m in model.metrics.items():
            if not METRIC_NAME_RE.match(name):
                raise ProfileError(source, f"metrics.{name}", "canonical names are snake_case word roots")
            if m.unit not in units:
                raise ProfileError(source, f"metrics.{name}.unit", f"unknown unit {m.unit!r}")
            if m.range is not None and not m.range[0] < m.range[1]:
                raise ProfileError(
                    source, f"metrics.{name}.range", "range must be [low, high] with low < high"
                )
            metrics[name] = MetricDef(
                name, m.unit, m.name_zh, m.name_en, m.domain, m.type, m.range, m.description
            )
        return cls(units, metrics, source)

    def resolve_unit(self, name: str) -> str | None:
        """The registered unit code for a code or alias (exact first, then case-insensitive), or None."""
        code = self._lookup.get(name)
        if code is None:
            stripped = name.strip()
            code = self._lookup.get(stripped) or self._lookup.get(stripped.casefold())
        return code

    def conversion(self, from_code: str, to_code: str) -> tuple[float, float] | None:
        """``(a, b)`` with ``to = from * a + b``, or None when the dimensions differ."""
        key = (from_code, to_code)
        conv = self._conversions.get(key)
        if conv is None:
            src, dst = self.units[from_code], self.units[to_code]
            if src.dimension != dst.dimension:
                return None
            conv = (src.factor / dst.factor, (src.offset - dst.offset) / dst.factor)
            if from_code == to_code:
                conv = (1.0, 0.0)
            self._conversions[key] = conv
        return conv

    def metric(self, name: str) -> MetricDef | None:
        return self.metrics.get(name)


def _loc_text(loc: tuple[str | int, ...]) -> str:
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out

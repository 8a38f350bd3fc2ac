"""Turning one payload value into a float in the metric's canonical unit.

Accepted: numbers (ints serialised as floats too), booleans for state/event metrics (or when the metric
has an enum map), strings that are numbers (``"100.00"``, ``" -72 "``), strings with a unit
(``"3.384 V"``, ``"30.11 °C"``: the unit must be registered and convertible), and enum strings through
the metric's ``map`` (exact, then case-insensitive). Anything else is :attr:`Reason.WRONG_TYPE`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from edge_agent.errors import DecodeError
from edge_agent.model import Reason
from edge_agent.profiles.paths import MISSING, get_first
from edge_agent.profiles.registry import MetricRegistry
from edge_agent.profiles.spec import MetricSpec

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_NUMBER_UNIT = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s.+-].{0,30}?)\s*$", re.DOTALL
)
_STATE_TYPES = frozenset(("state", "event"))


def show(value: Any, limit: int = 40) -> str:
    """A short repr for error details (payload values can be long)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wrong(metric: MetricSpec, problem: str, where: int = -1) -> DecodeError:
    """WRONG_TYPE naming the metric and the path the value came from (``where`` indexes ``paths``)."""
    path = metric.path_texts[where] if 0 <= where < len(metric.path_texts) else metric.path_text
    return DecodeError(Reason.WRONG_TYPE, f"{metric.name} at '{path}': {problem}")


def _convert(registry: MetricRegistry, metric: MetricSpec, value: float, unit_text: str) -> float:
    code = registry.resolve_unit(unit_text)
    if code is None:
        raise _Wrong(f"unknown unit {unit_text!r}")
    conv = registry.conversion(code, metric.unit)
    if conv is None:
        raise _Wrong(f"unit {unit_text!r} cannot be converted to {metric.unit!r}")
    return value * conv[0] + conv[1]


def canonical_value(
    metric: MetricSpec, raw: Any, record: Any, registry: MetricRegistry, where: int = -1
) -> float:
    """The canonical-unit value of ``raw`` for ``metric``. Raises :class:`DecodeError` (WRONG_TYPE).

    ``where`` is the index of the path ``raw`` was found at (for the error detail).
    """
    try:
        return _canonical(metric, raw, record, registry)
    except _Wrong as exc:
        raise wrong(metric, str(exc), where) from None


class _Wrong(Exception):
    pass


def _canonical(metric: MetricSpec, raw: Any, record: Any, registry: MetricRegistry) -> float:
    cls = raw.__class__
    unit_text: str | None = None
    if cls is float or cls is int:
        if cls is int and not -(10**300) < raw < 10**300:  # float() of a huge int raises
            raise _Wrong("integer out of range")
        value = float(raw)
    elif cls is bool:
        if metric.type not in _STATE_TYPES and metric.enum is None:
            raise _Wrong(f"{raw!r} is a boolean, but {metric.name} is a {metric.type}")
        return 1.0 if raw else 0.0
    elif cls is str:
        if metric.enum is not None:
            hit = metric.enum.get(raw)
            if hit is None and metric.enum_folded is not None:
                hit = metric.enum_folded.get(raw.strip().casefold())
            if hit is not None:
                return hit
        m = _NUMBER.match(raw)
        if m is not None:
            value = float(m.group(1))
        else:
            m = _NUMBER_UNIT.match(raw)
            if m is None:
                if metric.enum is not None:
                    raise _Wrong(f"{show(raw)} is not one of {sorted(metric.enum)}")
                raise _Wrong(f"{show(raw)} is not a number")
            value = float(m.group(1))
            unit_text = m.group(2)
    else:
        raise _Wrong(f"expected a number, got {'an object' if cls is dict else type(raw).__name__}")
    if not math.isfinite(value):
        raise _Wrong(f"{show(raw)} is not a finite number")
    if metric.scale != 1.0 or metric.scale_div != 1.0:
        value = value * metric.scale / metric.scale_div
    if metric.offset:
        value += metric.offset
    if unit_text is None and metric.unit_paths:
        found, _ = get_first(record, metric.unit_paths)
        if found is not MISSING:
            if not isinstance(found, str):
                raise _Wrong(f"unit field holds {show(found)}, not a unit name")
            unit_text = found
    if unit_text is not None:
        return _convert(registry, metric, value, unit_text)
    if metric.a_div != 1.0:
        return value / metric.a_div + metric.b
    return value * metric.a + metric.b if metric.a != 1.0 or metric.b else value


def samples_of(metric: MetricSpec, raw: Any, record: Any, registry: MetricRegistry) -> tuple[float, ...]:
    """A waveform's samples converted to the canonical unit (all must be numbers)."""
    if not isinstance(raw, list):
        raise wrong(metric, f"a waveform must be an array of numbers, got {type(raw).__name__}")
    a, b = metric.a / metric.a_div, metric.b
    if metric.unit_paths:
        found, _ = get_first(record, metric.unit_paths)
        if isinstance(found, str):
            code = registry.resolve_unit(found)
            conv = registry.conversion(code, metric.unit) if code else None
            if conv is None:
                raise wrong(metric, f"unit {found!r} cannot be converted to {metric.unit!r}")
            a, b = conv
    scale = metric.scale / metric.scale_div
    out = []
    for i, v in enumerate(raw):
        if v.__class__ is not float and v.__class__ is not int:
            raise wrong(metric, f"sample [{i}] is {show(v)}, not a number")
        f = float(v)
        if not math.isfinite(f):
            raise wrong(metric, f"sample [{i}] is not finite")
        out.append((f * scale + metric.offset) * a + b)
    return tuple(out)


def sample_rate(metric: MetricSpec, record: Any) -> float:
    if metric.sample_rate_path is not None:
        found, _ = get_first(record, (metric.sample_rate_path,))
        if found.__class__ in (int, float) and found > 0 and math.isfinite(found):
            return float(found)
        if found is not MISSING and metric.sample_rate_hz is None:
            raise wrong(metric, f"sample rate {show(found)} is not a positive number")
    if metric.sample_rate_hz is None:
        raise DecodeError(Reason.MISSING_FIELD, f"{metric.name}: sample rate not found in the payload")
    return metric.sample_rate_hz

"""Quality configuration as a typed value: dimension weights and thresholds, gap/spike/stuck/room limits.

Loaded from the packaged ``quality.yaml`` or a file given by the caller; errors name the file and the key.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DIMENSIONS = ("completeness", "timeliness", "uniqueness", "accuracy", "consistency", "validity")
SCOPES = ("device", "room", "building", "gateway", "campus")
CONFIG_FILE = "quality.yaml"


class QualityConfigError(ValueError):
    """The quality configuration is invalid; the message names the file and the key."""


@dataclass(slots=True, frozen=True)
class QualityConfig:
    """Weights and thresholds per dimension, and the limits the quality transforms apply."""

    weights: dict[str, float]
    thresholds: dict[str, float]
    finding_scopes: tuple[str, ...]
    gap_factor: float
    timely_target_s: float
    stuck_samples: int
    stuck_metrics: tuple[str, ...]
    max_rate_per_min: dict[str, float]
    room_tolerance: dict[str, float]
    submeter_tolerance: float = 0.1  # |sum of sub-meter kWh - main meter kWh| allowed, as a share of the main's
    silent_min_share: float = 0.5  # silent devices count when at least this share of the campus's devices reported


def _num_map(raw: Any, where: str, keys: tuple[str, ...] | None = None) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise QualityConfigError(f"{where}: must be a mapping")
    out: dict[str, float] = {}
    for k, v in raw.items():
        if keys is not None and k not in keys:
            raise QualityConfigError(f"{where}.{k}: not one of {', '.join(keys)}")
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise QualityConfigError(f"{where}.{k}: {v!r} is not a non-negative number")
        out[str(k)] = float(v)
    return out


def parse_config(raw: Any, source: str) -> QualityConfig:
    """Validate a parsed YAML mapping; missing keys take the packaged defaults."""
    if not isinstance(raw, dict):
        raise QualityConfigError(f"{source}: must be a mapping")
    weights = _num_map(raw.get("weights", {}), f"{source}: weights", DIMENSIONS)
    if sorted(weights) != sorted(DIMENSIONS) or sum(weights.values()) <= 0:
        raise QualityConfigError(f"{source}: weights: give every dimension ({', '.join(DIMENSIONS)}), sum > 0")
    thresholds = _num_map(raw.get("thresholds", {}), f"{source}: thresholds", DIMENSIONS)
    scopes = tuple(raw.get("finding_scopes", SCOPES))
    for s in scopes:
        if s not in SCOPES:
            raise QualityConfigError(f"{source}: finding_scopes: {s!r} is not one of {', '.join(SCOPES)}")
    acc = raw.get("accuracy", {}) or {}
    stuck = acc.get("stuck_samples", 30)
    if not isinstance(stuck, int) or stuck < 2:
        raise QualityConfigError(f"{source}: accuracy.stuck_samples: {stuck!r} is not an integer >= 2")
    return QualityConfig(
        weights=weights, thresholds=thresholds, finding_scopes=scopes,
        gap_factor=_num_map(raw.get("completeness", {}) or {}, f"{source}: completeness").get("gap_factor", 1.5),
        silent_min_share=_num_map(raw.get("completeness", {}) or {}, f"{source}: completeness").get(
            "silent_min_share", 0.5),
        timely_target_s=_num_map(raw.get("timeliness", {}) or {}, f"{source}: timeliness").get("target_s", 300.0),
        stuck_samples=stuck, stuck_metrics=tuple(str(m) for m in acc.get("stuck_metrics", []) or []),
        max_rate_per_min=_num_map(acc.get("max_rate_per_min", {}) or {}, f"{source}: accuracy.max_rate_per_min"),
        room_tolerance=_num_map((raw.get("consistency", {}) or {}).get("room_tolerance", {}) or {},
                                f"{source}: consistency.room_tolerance"),
        submeter_tolerance=_num_map({k: v for k, v in (raw.get("consistency", {}) or {}).items()
                                     if k == "submeter_tolerance"}, f"{source}: consistency").get(
                                         "submeter_tolerance", 0.1),
    )


@functools.cache
def default_config() -> QualityConfig:
    """The packaged ``quality.yaml`` (cached: the file is part of the code)."""
    text = resources.files("cloud_ingest.quality").joinpath(CONFIG_FILE).read_text(encoding="utf-8")
    return parse_config(yaml.safe_load(text), CONFIG_FILE)


def load_config(path: str | Path | None) -> QualityConfig:
    """``path``'s configuration, or the packaged default when ``path`` is None."""
    if path is None:
        return default_config()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise QualityConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(raw, str(path))

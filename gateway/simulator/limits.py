"""Valid ranges of each (profile, metric), read from the shipped profiles, to aim spike and out-of-range faults.

A spike must stay inside the valid range (only a plausibility check can catch it); an out-of-range
value must be outside it and still representable by the payload's encoding (an int16/10 temperature
cannot carry 5000 °C). Ranges come from the profile, else from the metric registry's default.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

# How far a spike jumps (canonical units); multiplicative for quantities that span decades.
SPIKE_ADD = {"temperature_air": 15.0, "humidity_rel": 30.0, "co2": 2500.0, "noise_level": 30.0}
SPIKE_MUL = {"pm2_5": 8.0, "illuminance": 6.0, "power_active": 4.0}


@dataclass(slots=True)
class Limits:
    """(profile id, metric) -> (low, high) in canonical units."""

    ranges: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> Limits:
        """Ranges from the profiles under ``root``; empty (faults then skip range-based kinds) if unreadable."""
        try:
            from edge_agent.profiles import load_directory
        except ImportError:  # pragma: no cover - the simulator ships with the edge agent
            return cls()
        if not (root / "metrics.yaml").is_file():
            _LOGGER.warning("no device profiles at %s: out-of-range faults disabled", root)
            return cls()
        report = load_directory(root)
        for err in report.errors:
            _LOGGER.warning("profile not loaded: %s", err)
        ranges = {}
        for p in report.profiles:
            for m in p.metrics:
                if m.lo is not None and m.hi is not None:
                    ranges[(p.id, m.name)] = (m.lo, m.hi)
        return cls(ranges)

    def get(self, profile: str, metric: str) -> tuple[float, float] | None:
        return self.ranges.get((profile, metric))

    def spike(self, profile: str, metric: str, value: float, rng: random.Random) -> float | None:
        """A large jump from ``value`` that stays inside the valid range (None if there is no room)."""
        lo, hi = self.get(profile, metric) or (float("-inf"), float("inf"))
        if metric in SPIKE_MUL:
            ups = [value * SPIKE_MUL[metric] + 50.0]
            if hi != float("inf") and 0.95 * hi > 1.5 * value + 1.0:
                ups.append(0.95 * hi)  # no room for the full jump: jump to near the top of the range
        else:
            ups = [value + SPIKE_ADD.get(metric, 10.0), value - SPIKE_ADD.get(metric, 10.0)]
            if rng.random() < 0.5:
                ups.reverse()
        for cand in ups:
            if lo <= cand <= hi:
                return cand
        return None

    def outside(self, profile: str, metric: str, encodable: tuple[float, float]) -> float | None:
        """A value beyond the valid range that the payload can still encode (None if impossible)."""
        rng = self.get(profile, metric)
        if rng is None:
            return None
        lo, hi = rng
        margin = max(1.0, 0.3 * (hi - lo))
        above, below = hi + margin, lo - margin
        if above <= encodable[1]:
            return above
        if below >= encodable[0]:
            return below
        return None

"""Fault injection: which message gets which fault, and the ledger that records every one.

Rates are probabilities **per scheduled message** (a message the device would have sent). At most
one fault applies to a message. Kinds:

- ``gaps``: the device falls silent: this message and the next few (3–12) of the same device are
  not sent. One ledger record per gap, with the number of messages suppressed.
- ``spikes``: one gauge value jumps by a large but in-range amount (a glitch a plausibility check
  should catch, not a range check).
- ``out_of_range``: one value is outside the metric's valid range (e.g. 120 °C, 110 %RH).
- ``duplicates``: the message is sent twice; the second copy is the fault.
- ``skew``: the device's timestamp is hours off (only for formats that carry a device time).
- ``malformed``: truncated JSON or line, garbage bytes, or a wrong JSON type for a value.
- ``resets``: a counter (energy, water, people) restarts from zero, as after a power loss
  (only for counter devices). The message itself is valid; the checker needs to know.

When a kind is drawn for a message it cannot apply to (``skew`` for a device without a clock,
``resets`` for a sensor), it is carried over to the next message it can apply to, so the realised
rate over a mixed fleet still matches the requested one.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

FAULT_KINDS = ("gaps", "spikes", "out_of_range", "duplicates", "skew", "malformed", "resets")
GAP_LENGTH = (3, 12)  # messages suppressed per gap (inclusive range)
SKEW_HOURS = (1.0, 12.0)  # |clock offset| of a skewed device timestamp
MAX_RATE = 0.5  # sum of all rates: above this the stream is mostly faults, not a simulation

MALFORMED_VARIANTS = ("truncated", "garbage", "wrong_type")


class FaultSpecError(ValueError):
    """A ``--faults`` specification is invalid; the message names the key and the problem."""


@dataclass(slots=True, frozen=True)
class FaultRates:
    """Per-message probability of each fault kind (all 0 by default)."""

    gaps: float = 0.0
    spikes: float = 0.0
    out_of_range: float = 0.0
    duplicates: float = 0.0
    skew: float = 0.0
    malformed: float = 0.0
    resets: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not 0.0 <= v <= 1.0:
                raise FaultSpecError(f"faults: {f.name}={v!r} is not a probability in [0, 1]")
        if self.total() > MAX_RATE:
            raise FaultSpecError(f"faults: the rates add up to {self.total():g}, more than {MAX_RATE}")

    def total(self) -> float:
        return float(sum(getattr(self, k) for k in FAULT_KINDS))

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in FAULT_KINDS}

    @classmethod
    def parse(cls, spec: str) -> FaultRates:
        """Parse ``"gaps=0.01,spikes=0.005"`` (empty or ``none`` means no faults)."""
        spec = spec.strip()
        if not spec or spec == "none":
            return cls()
        values: dict[str, float] = {}
        for item in spec.split(","):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep:
                raise FaultSpecError(f"faults: {item!r} is not KIND=RATE")
            if key not in FAULT_KINDS:
                raise FaultSpecError(f"faults: unknown kind {key!r} (known: {', '.join(FAULT_KINDS)})")
            try:
                values[key] = float(raw)
            except ValueError:
                raise FaultSpecError(f"faults: {key} has value {raw!r}, not a number") from None
        return cls(**values)

    @classmethod
    def from_mapping(cls, rates: Mapping[str, float]) -> FaultRates:
        unknown = set(rates) - set(FAULT_KINDS)
        if unknown:
            raise FaultSpecError(f"faults: unknown kind(s) {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in rates.items()})


@dataclass(slots=True, frozen=True)
class FaultRecord:
    """One injected fault as written to the ledger."""

    kind: str
    device: str
    ts_ms: int  # simulated time of the affected message (the first one for a gap)
    seq: int | None  # sequence number of the affected message (None for a gap: nothing was sent)
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"fault": self.kind, "device": self.device, "ts_ms": self.ts_ms, "seq": self.seq,
                "detail": self.detail}


@dataclass(slots=True)
class FaultInjector:
    """Draws faults for messages, deterministically from a seed."""

    rates: FaultRates
    seed: int = 0
    rng: random.Random = field(init=False)
    _owed: dict[str, int] = field(init=False, default_factory=dict)
    _gap_left: dict[str, int] = field(init=False, default_factory=dict)
    _cum: list[tuple[float, str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"faults:{self.seed}")
        acc = 0.0
        for kind in FAULT_KINDS:
            rate = getattr(self.rates, kind)
            if rate > 0:
                acc += rate
                self._cum.append((acc, kind))

    @property
    def enabled(self) -> bool:
        return bool(self._cum)

    def in_gap(self, device: str) -> bool:
        """True (and counts the message as suppressed) while ``device`` is in a gap."""
        left = self._gap_left.get(device, 0)
        if left <= 0:
            return False
        self._gap_left[device] = left - 1
        return True

    def start_gap(self, device: str) -> int:
        """Start a gap for ``device``; returns how many messages (this one included) it suppresses."""
        length = self.rng.randint(*GAP_LENGTH)
        self._gap_left[device] = length - 1
        return length

    def choose(self, applicable: Iterable[str]) -> str | None:
        """The fault kind for the next message (or None), given the kinds that can apply to it."""
        if not self._cum:
            return None
        can = set(applicable)
        u = self.rng.random()
        drawn = next((kind for acc, kind in self._cum if u < acc), None)
        if drawn is not None and drawn not in can:
            self._owed[drawn] = self._owed.get(drawn, 0) + 1
            drawn = None
        if drawn is None:
            for kind, owed in self._owed.items():
                if owed and kind in can:
                    self._owed[kind] = owed - 1
                    return kind
        return drawn

    def owe(self, kind: str) -> None:
        """``kind`` was drawn but could not be applied after all: apply it to a later message."""
        self._owed[kind] = self._owed.get(kind, 0) + 1

    def skew_ms(self) -> int:
        hours = self.rng.uniform(*SKEW_HOURS)
        return round(hours * 3_600_000) * (1 if self.rng.random() < 0.5 else -1)

    def malformed_variant(self, json_like: bool) -> str:
        variants = MALFORMED_VARIANTS if json_like else MALFORMED_VARIANTS[:2]
        return self.rng.choice(variants)

    def truncate(self, payload: bytes) -> bytes:
        """A proper prefix of ``payload`` (never valid JSON: an object or array needs its closing bracket)."""
        if len(payload) <= 1:
            return b""
        return payload[: self.rng.randint(1, len(payload) - 1)]

    def garbage(self, n: int) -> bytes:
        """Random bytes that are neither valid UTF-8 JSON nor line protocol (starts with 0xFF)."""
        return b"\xff" + bytes(self.rng.getrandbits(8) for _ in range(max(4, min(n, 256)) - 1))

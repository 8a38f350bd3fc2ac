"""Which devices were heard from, and which are silent beyond their profile's expected interval."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge_agent.model import DecodeResult
from edge_agent.profiles import ProfileSet

DEFAULT_INTERVAL_S = 300.0  # expected interval for profiles that declare none
MAX_DEVICES = 100_000  # tracked devices; beyond this the least recently seen is forgotten (counted)


@dataclass(slots=True)
class _Seen:
    last_ms: int
    interval_s: float
    profile: str


class DeviceTracker:
    def __init__(self, silent_factor: float = 3.0) -> None:
        self._seen: dict[str, _Seen] = {}
        self.silent_factor = silent_factor
        self.forgotten = 0

    def update(self, results: Iterable[DecodeResult], profiles: ProfileSet) -> None:
        for r in results:
            if r.device is None or r.profile is None or r.quarantine is not None:
                continue
            seen = self._seen.get(r.device)
            if seen is None:
                prof = profiles.get(r.profile.id)
                intervals = [m.interval_s for m in prof.metrics if m.interval_s] if prof else []
                if len(self._seen) >= MAX_DEVICES:
                    oldest = min(self._seen, key=lambda d: self._seen[d].last_ms)
                    del self._seen[oldest]
                    self.forgotten += 1
                interval = min(intervals, default=DEFAULT_INTERVAL_S)
                self._seen[r.device] = _Seen(r.message.received_ms, interval, str(r.profile))
            else:
                seen.last_ms = max(seen.last_ms, r.message.received_ms)

    def silent(self, now_ms: int) -> list[dict[str, object]]:
        """Devices not heard from for ``silent_factor`` × their expected interval, most silent first."""
        out = []
        for dev, s in self._seen.items():
            age = (now_ms - s.last_ms) / 1000
            if age > self.silent_factor * s.interval_s:
                out.append({"device": dev, "profile": s.profile, "silent_s": round(age, 1),
                            "expected_interval_s": s.interval_s})
        return sorted(out, key=lambda d: -float(d["silent_s"]))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._seen)

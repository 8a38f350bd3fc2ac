"""Retry timing for uploads: exponential backoff with jitter, and ``Retry-After`` parsing.

Pure values and a small mutable counter; no clocks, no sleeping. The caller sleeps (or schedules) for the
returned number of seconds, so tests need no time to pass.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

# A Retry-After longer than this is treated as this: a misconfigured server must not park a gateway
# for days; an hour still honours any sensible maintenance window.
MAX_RETRY_AFTER = 3600.0


@dataclass(slots=True, frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt ``n`` (0-based) waits up to ``min(cap, base * factor**n)``.

    ``jitter`` is the random fraction of that ceiling: 1.0 is "full jitter" (uniform in [0, ceiling],
    which spreads a fleet's retries best after a shared outage), 0.0 is a fixed schedule. Seconds.
    """

    base: float = 0.5
    cap: float = 60.0
    factor: float = 2.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and self.base > 0):
            raise ValueError(f"Backoff.base has value {self.base!r}, must be a finite number > 0")
        if not (math.isfinite(self.cap) and self.cap >= self.base):
            raise ValueError(f"Backoff.cap has value {self.cap!r}, must be finite and >= base ({self.base})")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"Backoff.factor has value {self.factor!r}, must be >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"Backoff.jitter has value {self.jitter!r}, must be in [0, 1]")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after ``attempt`` consecutive failures (never overflows)."""
        if attempt <= 0:
            return self.base
        if self.factor == 1 or attempt * math.log(self.factor) < math.log(self.cap / self.base):
            return min(self.cap, self.base * self.factor**attempt)
        return self.cap

    def delay(self, attempt: int, u: float) -> float:
        """The wait after ``attempt`` failures for a uniform random ``u`` in [0, 1)."""
        d = self.ceiling(attempt)
        return d * (1.0 - self.jitter) + d * self.jitter * u


@dataclass(slots=True)
class BackoffState:
    """Consecutive failures towards one endpoint, and the random source for jitter.

    ``failure()`` returns how long to wait and counts the failure; ``success()`` resets. One event loop
    owns it (no locking). Pass a seeded ``random.Random`` for reproducible tests.
    """

    policy: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def failure(self) -> float:
        wait = self.policy.delay(self.failures, self.rng.random())
        self.failures += 1
        return wait

    def success(self) -> None:
        self.failures = 0

    def peek(self) -> float:
        """The ceiling of the next wait, for status reports."""
        return self.policy.ceiling(self.failures)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or None if absent or invalid.

    Accepts delay-seconds (``"120"``) or an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), which is
    compared with ``now`` (epoch seconds, the gateway's wall clock). A date in the past means 0. The
    result is capped at :data:`MAX_RETRY_AFTER`.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(int(text[:12])), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # the asctime form carries no zone: HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)

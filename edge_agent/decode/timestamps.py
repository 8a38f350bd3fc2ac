"""Device timestamps to epoch milliseconds: epoch s/ms/us/ns, ISO 8601, or auto-detected.

``auto`` picks the epoch unit by magnitude (below 1e11 seconds — until year 5138 —, below 1e14
milliseconds, below 1e17 microseconds, else nanoseconds) and parses strings that are not numbers as
ISO 8601. ISO 8601 accepts a ``T`` or a space, 0-9 fractional digits (truncated to milliseconds) and
an offset ``Z``, ``±HH``, ``±HHMM`` or ``±HH:MM``; without an offset the profile's (or the gateway's)
time zone applies.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

_ISO = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_NUMERIC = re.compile(r"^\s*[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?\s*$")
_FACTORS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 0.000001}
_UTC = UTC


def auto_unit(value: float) -> str:
    a = abs(value)
    if a < 1e11:
        return "s"
    if a < 1e14:
        return "ms"
    if a < 1e17:
        return "us"
    return "ns"


def epoch_to_ms(value: int | float, unit: str) -> int:
    if unit == "ns" and isinstance(value, int):
        return value // 1_000_000
    if unit == "us" and isinstance(value, int):
        return value // 1000
    if isinstance(value, int) and unit == "s":
        return value * 1000
    if isinstance(value, int) and unit == "ms":
        return value
    ms = value * _FACTORS[unit]
    if not math.isfinite(ms) or abs(ms) > 1e18:
        raise ValueError(f"{value!r} is out of range")
    return round(ms)  # float seconds such as 1632666420.17 are 1632666420169.9998 ms in binary


def parse_iso(text: str, zone: ZoneInfo | None) -> int:
    m = _ISO.match(text)
    if m is None:
        raise ValueError(f"{text[:64]!r} is not an ISO 8601 date-time")
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if off is None:
        tz: Any = zone or _UTC
    elif off in ("Z", "z"):
        tz = _UTC
    else:
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
        if minutes >= 24 * 60:
            raise ValueError(f"offset {off!r} is out of range")
        tz = timezone(timedelta(minutes=sign * minutes))
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), micro, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"{text[:64]!r}: {exc}") from None
    # whole seconds are exact in float; adding the milliseconds as integers avoids 774.9999 -> 774
    return int(dt.replace(microsecond=0).timestamp()) * 1000 + micro // 1000


def to_epoch_ms(value: Any, unit: str, zone: ZoneInfo | None) -> int:
    """Convert a payload timestamp. Raises ValueError with a one-line reason."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a time")
    if hasattr(value, "to_unix_nano"):  # msgpack Timestamp extension
        return int(value.to_unix_nano()) // 1_000_000
    if isinstance(value, str):
        if unit == "iso8601":
            return parse_iso(value, zone)
        if _NUMERIC.match(value):
            s = value.strip()
            value = int(s) if re.fullmatch(r"[-+]?\d+", s) else float(s)
        elif unit == "auto":
            return parse_iso(value, zone)
        else:
            raise ValueError(f"{value[:64]!r} is not a number of {unit}")
    if isinstance(value, int | float):
        if unit == "iso8601":
            raise ValueError(f"{value!r} is a number, the profile expects an ISO 8601 string")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return epoch_to_ms(value, auto_unit(value) if unit == "auto" else unit)
    raise ValueError(f"expected a number or a string, got {type(value).__name__}")

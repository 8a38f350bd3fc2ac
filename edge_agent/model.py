"""Value types that cross the edge agent's boundaries: MQTT → decoder → buffer → reducer → outbox.

Timestamps are integer **epoch milliseconds, UTC** everywhere (``ts_ms``). Values are float64 in the
metric's canonical unit. All records are frozen slotted dataclasses; dicts stay inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag, StrEnum
from typing import Any


class Quality(IntFlag):
    """Per-reading quality flags (a bitmask carried to the warehouse)."""

    OK = 0
    OUT_OF_RANGE = 1  # outside the profile's valid range (kept because the profile says flag)
    CLOCK_SKEW = 2  # device time too far from gateway time: ts replaced by receive time
    GENERIC = 4  # decoded by an ecosystem's generic profile, not a model-specific one
    RECEIVE_TIME = 8  # the message had no timestamp: ts is the gateway's receive time
    LATE = 16  # arrived after its window closed (within allowed lateness: window re-versioned)
    COUNTER_RESET = 32  # counter went backwards: reset or rollover detected
    ESTIMATED = 64  # value derived (e.g. rate from a counter) rather than measured


class Reason(StrEnum):
    """Reason codes for quarantined messages (stable: they are counted and shown to people)."""

    NO_PROFILE = "no_profile"  # no profile matches topic + payload
    AMBIGUOUS_PROFILE = "ambiguous_profile"  # more than one profile matches equally well
    EMPTY_PAYLOAD = "empty_payload"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED = "malformed"  # not parseable in the profile's format (bad JSON, bad line protocol…)
    WRONG_TYPE = "wrong_type"  # a field has a type that cannot be a value of its metric
    MISSING_FIELD = "missing_field"  # a required field / the device id is missing
    BAD_TIMESTAMP = "bad_timestamp"
    OUT_OF_RANGE = "out_of_range"  # and the profile says quarantine rather than flag
    NO_READINGS = "no_readings"  # decoded fine but nothing in it maps to a metric or event
    BAD_TOPIC = "bad_topic"  # topic does not have the shape the profile declares
    DECODER_BUG = "decoder_bug"  # an unexpected exception in decoding (logged with traceback)


class Priority(IntEnum):
    """Upload and eviction priority: higher goes first and is evicted last."""

    RAW = 0
    AGGREGATE = 1
    EVENT = 2
    ALARM = 3


@dataclass(slots=True, frozen=True)
class ProfileRef:
    """Which profile definition produced a record."""

    id: str
    version: int

    def __str__(self) -> str:
        return f"{self.id}@{self.version}"

    @classmethod
    def parse(cls, text: str) -> ProfileRef:
        """The inverse of ``str()``: ``"id@version"``; raises ``ValueError`` naming the text otherwise."""
        pid, at, version = text.rpartition("@")
        if not at or not pid or not version.isascii() or not version.isdigit() or len(version) > 18:
            raise ValueError(f"{text!r} is not 'id@version'")
        return cls(pid, int(version))


@dataclass(slots=True, frozen=True)
class Message:
    """One MQTT message as received, converted from paho's type on the first line of ``on_message``."""

    topic: str
    payload: bytes
    received_ms: int  # gateway clock, epoch ms
    mid: int = 0  # broker message id, used to acknowledge (0 when not from MQTT)
    qos: int = 0
    retain: bool = False


@dataclass(slots=True, frozen=True)
class Reading:
    """One numeric sample of one metric of one device, in the metric's canonical unit."""

    device: str
    metric: str  # canonical metric name (word roots, see device_profiles/metrics.yaml)
    ts_ms: int
    value: float
    unit: str  # canonical unit code
    profile: ProfileRef
    quality: int = 0  # Quality bitmask
    priority: int = Priority.RAW


@dataclass(slots=True, frozen=True)
class Event:
    """A discrete occurrence (card swipe, door open, alarm) with attributes.

    Personal attributes are already protected (pseudonymised or dropped) when an Event exists.
    """

    device: str
    kind: str
    ts_ms: int
    profile: ProfileRef
    attrs: tuple[tuple[str, str | int | float | bool | None], ...] = ()
    quality: int = 0
    priority: int = Priority.EVENT

    def attr_dict(self) -> dict[str, Any]:
        return dict(self.attrs)


@dataclass(slots=True, frozen=True)
class Quarantine:
    """Why a message was not turned into readings; stored with the capped raw payload."""

    reason: str  # a Reason code
    detail: str  # human-readable: names the field and the problem


@dataclass(slots=True, frozen=True)
class DecodeResult:
    """Everything one message turned into. Exactly one of (readings/events) or quarantine is meaningful."""

    message: Message
    profile: ProfileRef | None
    device: str | None
    readings: tuple[Reading, ...] = ()
    events: tuple[Event, ...] = ()
    quarantine: Quarantine | None = None
    waveforms: tuple[Waveform, ...] = field(default=())


@dataclass(slots=True, frozen=True)
class Waveform:
    """A block of evenly spaced samples (vibration, sound) to be reduced to features on the edge."""

    device: str
    metric: str
    ts_ms: int  # time of the first sample
    sample_rate_hz: float
    samples: tuple[float, ...]
    unit: str
    profile: ProfileRef

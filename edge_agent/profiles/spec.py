"""Compiled, immutable runtime form of a device profile: what the decoder's hot path reads.

Everything that can be decided at load time is: paths are step tuples, unit conversions are ``(a, b)``
pairs, enum maps are dicts, topic patterns are regexes, binary layouts are lookup tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent.model import Priority, ProfileRef
from edge_agent.profiles.paths import Steps
from edge_agent.profiles.topics import TopicPattern

PRIORITIES = {
    "raw": Priority.RAW,
    "aggregate": Priority.AGGREGATE,
    "event": Priority.EVENT,
    "alarm": Priority.ALARM,
}
LEVELS = {"public": 1, "internal": 2, "sensitive": 3, "restricted": 4}  # classification 分级 L1..L4

Norm = tuple[str, Any]


def norm_value(value: Any) -> Norm:
    """Comparable form of a scalar: JSON ``85`` equals YAML ``85.0``, but ``true`` never equals ``1``."""
    if value is None:
        return ("z", None)
    if value is True or value is False:
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    return ("o", repr(value)[:200])


@dataclass(slots=True, frozen=True)
class FieldSpec:
    """One field of a binary layout."""

    name: str
    code: str  # struct format ('<h'), 'u24le'/'u24be', or 'hex'
    size: int
    scale: float
    offset: int = 0  # byte offset (struct layouts)
    div: float = 1.0  # value = raw * scale / div; "uint16/10" is stored as div=10 so 10086 -> 1008.6 exactly


@dataclass(slots=True, frozen=True)
class Layout:
    """A binary layout: Milesight-style channel/type TLV, or a fixed struct."""

    id: str
    kind: str  # 'channel_type' | 'struct'
    channels: dict[
        tuple[int, int], tuple[FieldSpec, ...] | int
    ]  # (channel, type) -> fields, or bytes to skip
    fields: tuple[FieldSpec, ...]  # struct layouts
    on_unknown: str  # 'error' | 'stop'


@dataclass(slots=True, frozen=True)
class Embedded:
    """A binary blob inside the document, decoded by ``layout`` into ``into`` unless ``unless`` exists."""

    path: Steps
    path_text: str
    encoding: str
    layout: Layout
    into: Steps
    unless: Steps | None


@dataclass(slots=True, frozen=True)
class TopicSpec:
    pattern: TopicPattern
    records: Steps | None


@dataclass(slots=True, frozen=True)
class Condition:
    """A payload condition: ``key`` (present, not null), ``eq`` (value in set), ``glob`` (regex)."""

    kind: str
    path: Steps
    path_text: str
    values: frozenset[Norm] = frozenset()
    regex: re.Pattern[str] | None = None


@dataclass(slots=True, frozen=True)
class Reduction:
    """How the reducer treats a metric (resolved: profile defaults overlaid with the metric's override)."""

    mode: str = "raw"
    window_s: int = 300
    aggregates: tuple[str, ...] = ("mean", "min", "max", "last", "count")
    deadband_abs: float | None = None
    deadband_rel: float | None = None
    max_silence_s: float | None = None
    counter: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    bands_hz: tuple[tuple[float, float], ...] = ()
    priority: int = Priority.RAW


@dataclass(slots=True, frozen=True)
class MetricSpec:
    """One metric: where its value is, how to coerce and convert it, and its limits."""

    name: str
    paths: tuple[Steps, ...]
    path_text: str
    path_texts: tuple[str, ...]  # one per alternative path, for error details
    unit: str  # canonical unit code
    source_unit: str  # registered unit code the payload uses
    a: float  # canonical = (raw * scale / scale_div + offset) * a / a_div + b
    b: float
    scale: float
    offset: float
    a_div: float  # dividing by 1000 is exact where multiplying by 0.001 is not (1234 Wh -> 1.234 kWh)
    scale_div: float
    type: str
    lo: float | None
    hi: float | None
    quarantine_out_of_range: bool
    precision: float | None
    interval_s: float | None
    enum: dict[str, float] | None
    enum_folded: dict[str, float] | None
    where: tuple[tuple[Steps, frozenset[Norm]], ...]
    unit_paths: tuple[Steps, ...]
    sample_rate_hz: float | None
    sample_rate_path: Steps | None
    reduction: Reduction
    priority: int
    classification: str


@dataclass(slots=True, frozen=True)
class AttributeSpec:
    name: str
    paths: tuple[Steps, ...]
    protect: str  # none | hash | drop | truncate
    keep: int
    classification: str


@dataclass(slots=True, frozen=True)
class EventSpec:
    kind: str
    trigger: Steps
    trigger_text: str
    equals: frozenset[Norm] | None
    not_equals: frozenset[Norm]
    attributes: tuple[AttributeSpec, ...]
    priority: int


@dataclass(slots=True, frozen=True, eq=False)
class Profile:
    """A validated, compiled device profile. Build with :func:`edge_agent.profiles.load_profiles`."""

    id: str
    version: int
    ref: ProfileRef
    file: str
    vendor: str
    model: str
    description: str
    ecosystem: str
    domain: str
    generic: bool
    topics: tuple[TopicSpec, ...]
    excludes: tuple[TopicPattern, ...]
    format: str
    parse_key: tuple[Any, ...]  # candidates with the same key share one parse of the payload
    csv: tuple[str, tuple[str, ...], bool] | None  # (delimiter, columns, header)
    layout: Layout | None  # format 'binary'
    records: Steps | None
    device_sources: tuple[tuple[str, Any], ...]  # ('topic', name) | ('path', steps)
    match: tuple[Condition, ...]
    match_device: tuple[re.Pattern[str], ...]
    specificity: frozenset[Any]  # identity of the match conditions, for "more specific than"
    ts_paths: tuple[Steps, ...]
    ts_unit: str
    ts_zone: ZoneInfo | None
    ts_relative_below: float | None
    max_payload_bytes: int
    embedded: Embedded | None
    metrics: tuple[MetricSpec, ...]
    events: tuple[EventSpec, ...]
    reduction: Reduction
    retention_days: int
    classification: str
    field_classification: dict[str, str] = field(default_factory=dict)
    references: tuple[str, ...] = ()
    personal: bool = False  # some event attribute is personal data (protected by hash, drop or truncate)

    def __repr__(self) -> str:
        return f"<Profile {self.ref} {self.file}>"

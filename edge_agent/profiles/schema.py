"""The device profile file format, as pydantic v2 models (every model forbids unknown fields).

This module only checks shape and types. Cross-references (canonical names, units, paths, topic
patterns, time zones, layouts) are checked when a profile is compiled (:mod:`.compile`), with errors
naming the same dotted field paths. The reference is docs/device-profiles.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

Scalar = StrictStr | StrictBool | StrictInt | StrictFloat | None
ScalarOrList = Scalar | list[Scalar]
Level = Literal["public", "internal", "sensitive", "restricted"]
Priority = Literal["raw", "aggregate", "event", "alarm"]
Aggregate = Literal["count", "mean", "min", "max", "first", "last", "sum", "std", "p50", "p90", "p95", "p99"]
Feature = Literal["rms", "peak", "crest_factor", "band_energy", "dominant_freq"]
Format = Literal["json", "msgpack", "senml", "influx", "csv", "raw", "binary"]
TsUnit = Literal["s", "ms", "us", "ns", "iso8601", "auto", "receive"]
FieldFormat = Literal[
    "u8",
    "s8",
    "u16le",
    "s16le",
    "u16be",
    "s16be",
    "u24le",
    "u24be",
    "u32le",
    "s32le",
    "u32be",
    "s32be",
    "f32le",
    "f32be",
    "hex",
]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
PathText = Annotated[str, Field(max_length=512)]
Paths = PathText | Annotated[list[PathText], Field(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- source ------------------------------------------------------------------------------------------


class MatchModel(Strict):
    """Payload conditions that select this profile among those whose topic matches."""

    keys: list[PathText] = []  # these paths must be present and not null
    equals: dict[PathText, ScalarOrList] = {}  # path equals the value (or one of the list)
    glob: dict[PathText, StrictStr] = {}  # string at path matches a shell-style pattern
    device: list[StrictStr] = []  # the device id matches one of these shell-style patterns


class TopicEntry(Strict):
    pattern: StrictStr
    records: PathText | None = None  # records live at this path for messages on this topic


class TimestampModel(Strict):
    path: Paths | None = None
    unit: TsUnit = "auto"
    timezone: StrictStr | None = None  # IANA name for ISO 8601 without offset (default: gateway's)
    relative_below: float | None = Field(default=None, gt=0)  # values below are seconds relative to receive


class LayoutField(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    format: FieldFormat
    scale: float = 1.0
    offset: int | None = Field(default=None, ge=0)  # struct layouts only: byte offset
    length: int | None = Field(default=None, ge=1, le=256)  # 'hex' fields only


class LayoutChannel(Strict):
    channel: int = Field(ge=0, le=255)
    type: int = Field(ge=0, le=255)
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None  # single-field shorthand
    format: FieldFormat | None = None
    scale: float = 1.0
    fields: list[LayoutField] = []
    skip: int | None = Field(default=None, ge=0, le=255)  # known channel without readings: skip N bytes


class LayoutModel(Strict):
    id: Id | None = None
    description: str = ""
    kind: Literal["channel_type", "struct"]
    channels: list[LayoutChannel] = []
    fields: list[LayoutField] = []
    on_unknown: Literal["error", "stop"] = "error"
    references: list[StrictStr] = []


class EmbeddedModel(Strict):
    """A binary payload inside a JSON field (LoRaWAN ``data`` / ``frm_payload``), decoded by a layout."""

    path: PathText
    encoding: Literal["base64", "hex"] = "base64"
    layout: StrictStr | LayoutModel
    into: PathText  # where the decoded fields are placed in the document
    unless: PathText | None = (
        None  # skip when this path is present (e.g. the network server's decoded object)
    )


class CsvModel(Strict):
    columns: list[StrictStr] = []
    header: bool = False
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","


class SourceModel(Strict):
    topic: StrictStr | TopicEntry | Annotated[list[StrictStr | TopicEntry], Field(min_length=1)]
    exclude: list[StrictStr] = []
    format: Format
    device_id: Annotated[list[StrictStr], Field(min_length=1)] = ["topic:device"]
    match: MatchModel = MatchModel()
    timestamp: TimestampModel = TimestampModel(unit="receive")
    max_payload_bytes: int = Field(default=65536, ge=1, le=16 * 1024 * 1024)
    records: PathText | None = None
    embedded: EmbeddedModel | None = None
    csv: CsvModel | None = None
    layout: StrictStr | LayoutModel | None = None


# --- metrics, events ---------------------------------------------------------------------------------


class DeadbandModel(Strict):
    abs: float | None = Field(default=None, ge=0)
    rel: float | None = Field(default=None, ge=0, le=1)
    max_silence_s: float | None = Field(default=None, gt=0)


class ReductionModel(Strict):
    mode: Literal["raw", "aggregate", "both"] = "raw"
    window_s: int = Field(default=300, ge=1, le=86400)
    aggregates: list[Aggregate] = ["mean", "min", "max", "last", "count"]
    deadband: DeadbandModel | None = None
    counter: list[Literal["delta", "rate"]] = []
    features: list[Feature] = []
    bands_hz: list[tuple[float, float]] = []
    priority: Priority = "raw"


class MetricReductionModel(Strict):
    """Per-metric override of the profile's reduction; unset fields inherit."""

    mode: Literal["raw", "aggregate", "both"] | None = None
    window_s: int | None = Field(default=None, ge=1, le=86400)
    aggregates: list[Aggregate] | None = None
    deadband: DeadbandModel | None = None
    counter: list[Literal["delta", "rate"]] | None = None
    features: list[Feature] | None = None
    bands_hz: list[tuple[float, float]] | None = None
    priority: Priority | None = None


class MetricModel(Strict):
    name: StrictStr
    path: Paths
    unit: StrictStr | None = None  # source unit; default: the canonical unit
    unit_path: Paths | None = None  # a payload field naming the unit (Tasmota TempUnit, SenML u)
    type: Literal["gauge", "counter", "state", "event", "waveform"] | None = None
    range: tuple[float, float] | None = None
    on_out_of_range: Literal["flag", "quarantine"] = "flag"
    precision: float | None = Field(default=None, gt=0)
    interval_s: float | None = Field(default=None, gt=0)
    map: dict[StrictStr, float] | None = None
    scale: float = 1.0
    offset: float = 0.0
    where: dict[PathText, ScalarOrList] = {}
    sample_rate_hz: float | None = Field(default=None, gt=0)
    sample_rate_path: PathText | None = None
    reduction: MetricReductionModel | None = None
    classification: Level | None = None
    description: str = ""

    @field_validator("map", mode="before")
    @classmethod
    def _string_keys(cls, value: object) -> object:
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ValueError(f"map key {key!r} is not a string: quote it in YAML ('{key}': ...)")
        return value


class TriggerModel(Strict):
    path: PathText
    equals: ScalarOrList = None  # None: the path is present and not null
    not_equals: list[Scalar] = []


class AttributeModel(Strict):
    name: Name
    path: Paths
    protect: Literal["none", "hash", "drop", "truncate"] = "none"
    keep: int = Field(default=4, ge=1, le=64)  # characters kept by 'truncate'
    classification: Level | None = None


class EventModel(Strict):
    kind: Name
    trigger: TriggerModel
    attributes: list[AttributeModel] = []
    priority: Literal["event", "alarm"] = "event"
    description: str = ""


class GovernanceModel(Strict):
    retention_days: int = Field(default=30, ge=1, le=3650)
    classification: Level = "internal"
    fields: dict[StrictStr, Level] = {}


class ProfileModel(Strict):
    id: Id
    version: int = Field(ge=1)
    vendor: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    description: str = ""
    ecosystem: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    domain: Literal["public", "teaching", "research", "service", "management"]
    generic: bool = False
    extends: Id | None = None
    references: list[StrictStr] = []
    source: SourceModel
    metrics: list[MetricModel] = []
    events: list[EventModel] = []
    reduction: ReductionModel = ReductionModel()
    governance: GovernanceModel = GovernanceModel()

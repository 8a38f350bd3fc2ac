"""Value types at the buffer's boundary: configuration, what goes in besides DecodeResults, what comes out.

Timestamps are epoch milliseconds (UTC). Sizes are bytes. Arrays are numpy and always owned by the
caller (never views of buffer memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.model import Priority, ProfileRef

MIB = 1024 * 1024


class State(IntEnum):
    """Life cycle of a reading or event row (the ``state`` column)."""

    NEW = 0  # committed, not yet in a batch
    BATCHED = 1  # in a stored, unsent batch
    UPLOADED = 2  # its batch got a 2xx (or was dead-lettered: the body is kept in dead_letter)
    LOCAL = 3  # raw kept only for local reduction; never uploaded as raw


@dataclass(slots=True, frozen=True)
class BufferConfig:
    """Tunables of the buffer; every limit says what happens when it is reached.

    Raises ``ValueError`` naming the field when a value is out of range.
    """

    budget_bytes: int = 512 * MIB  # disk budget for the DB + WAL; over it: evict, then back-pressure
    low_water: float = 0.9  # eviction frees down to this share of the budget (hysteresis: fewer evictions)
    quarantine_payload_cap: int = 4096  # raw payload bytes kept per quarantined message (length recorded)
    uploaded_retention_s: float = 6 * 3600.0  # keep uploaded rows this long for local recompute; 0: delete
    quarantine_retention_s: float = 7 * 86400.0  # quarantine records older than this are deleted
    fresh_window_ms: int = 60_000  # a batch younger than this is "fresh" for the outbox fairness rule
    fresh_every: int = 4  # fresh batches get 1 slot in every `fresh_every` while a backlog drains
    evict_events: bool = False  # False: unsent events/alarms are never evicted (back-pressure instead)
    eviction_chunk: int = 5000  # rows deleted per eviction step (bounds transaction size and memory)
    quick_check: bool = True  # run PRAGMA quick_check on open (O(file size); seconds for a 1 GB buffer)
    cache_kib: int = 8192  # SQLite page cache; memory stays flat whatever the backlog
    lock_timeout_s: float = 5.0  # wait this long for another process's lock (e.g. a backup) on open

    def __post_init__(self) -> None:
        checks = {
            "budget_bytes": self.budget_bytes >= 64 * 1024,
            "low_water": 0.1 <= self.low_water < 1.0,
            "quarantine_payload_cap": self.quarantine_payload_cap >= 0,
            "uploaded_retention_s": self.uploaded_retention_s >= 0,
            "quarantine_retention_s": self.quarantine_retention_s >= 0,
            "fresh_window_ms": self.fresh_window_ms >= 0,
            "fresh_every": self.fresh_every >= 2,
            "eviction_chunk": self.eviction_chunk >= 1,
            "cache_kib": self.cache_kib >= 256,
            "lock_timeout_s": self.lock_timeout_s >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"BufferConfig.{name} has value {getattr(self, name)!r}, out of range")


@dataclass(slots=True, frozen=True)
class SeriesKey:
    """What one integer series id stands for. Events use ``metric`` for the event kind and agg "event"."""

    device: str
    metric: str
    unit: str
    profile: str  # "id@version"
    agg: str = "raw"
    window_s: int = 0


EVENT_AGG = "event"


@dataclass(slots=True, frozen=True)
class AggregateRow:
    """One window result of the reducer, stored like a reading with its own series (agg, window)."""

    device: str
    metric: str
    unit: str
    profile: ProfileRef
    agg: str  # "mean", "min", "max", "count", …
    window_s: int
    ts_ms: int  # window start
    value: float
    quality: int = 0
    version: int = 0  # late data re-emits the window with version + 1
    priority: int = Priority.AGGREGATE


@dataclass(slots=True, frozen=True)
class CommitStats:
    """What one ``commit_burst`` wrote (in one transaction)."""

    messages: int
    readings: int
    events: int
    waveforms: int
    aggregates: int
    quarantined: int
    new_series: int
    evicted: int  # rows evicted to make room before this burst


Int64s = npt.NDArray[np.int64]


@dataclass(slots=True, frozen=True, eq=False)
class Pending:
    """Unbatched rows, ordered by priority (descending) then arrival; the outbox encodes them.

    ``r_id``/``e_id`` go back to :meth:`Buffer.store_batch`. ``series`` maps every series id used here.
    """

    r_id: Int64s
    r_series: npt.NDArray[np.uint32]
    r_ts_ms: Int64s
    r_value: npt.NDArray[np.float64]  # NaN where the stored value was NULL
    r_quality: npt.NDArray[np.uint16]
    r_priority: npt.NDArray[np.uint8]
    r_version: npt.NDArray[np.uint16]
    e_id: Int64s
    e_series: npt.NDArray[np.uint32]
    e_ts_ms: Int64s
    e_quality: npt.NDArray[np.uint16]
    e_priority: npt.NDArray[np.uint8]
    e_attrs: tuple[dict[str, Any], ...]
    series: dict[int, SeriesKey]

    @property
    def n_readings(self) -> int:
        return int(self.r_id.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.e_id.shape[0])

    @property
    def priority(self) -> int:
        """The highest priority present (the batch's priority), RAW when empty."""
        top = [int(a.max()) for a in (self.r_priority, self.e_priority) if a.shape[0]]
        return max(top, default=int(Priority.RAW))


@dataclass(slots=True, frozen=True)
class ReadingChunk:
    """Readings in arrival order from :meth:`Buffer.scan_readings` (cursor: pass ``last_id`` back)."""

    r_id: Int64s
    r_series: npt.NDArray[np.uint32]
    r_ts_ms: Int64s
    r_value: npt.NDArray[np.float64]
    r_quality: npt.NDArray[np.uint16]
    series: dict[int, SeriesKey]

    @property
    def last_id(self) -> int:
        return int(self.r_id[-1]) if self.r_id.shape[0] else 0


@dataclass(slots=True, frozen=True, eq=False)
class StoredWaveform:
    """A waveform block as stored (samples as float32)."""

    id: int
    series: SeriesKey
    ts_ms: int
    sample_rate_hz: float
    samples: npt.NDArray[np.float32]


@dataclass(slots=True, frozen=True)
class BatchPart:
    """One piece of a re-cut batch for :meth:`Buffer.replace_batch` (``seq`` from ``next_seq``)."""

    seq: int
    body: bytes
    n_readings: int
    n_events: int


@dataclass(slots=True, frozen=True)
class StoredBatch:
    """An encoded, unsent batch as the uploader gets it."""

    seq: int
    priority: int
    created_ms: int
    body: bytes
    n_readings: int
    n_events: int


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """A batch the server refused as malformed: kept forever for people to look at."""

    seq: int
    priority: int
    created_ms: int
    n_readings: int
    n_events: int
    size: int
    status: int
    reason: str
    dead_ms: int


@dataclass(slots=True, frozen=True)
class QuarantineRecord:
    """A stored quarantined message (payload capped; ``payload_len`` is the original length)."""

    id: int
    received_ms: int
    topic: str
    payload: bytes
    payload_len: int
    profile: str | None
    device: str | None
    reason: str
    detail: str


@dataclass(slots=True, frozen=True)
class BudgetStatus:
    """Disk use against the budget, measured cheaply (pages in use + WAL file)."""

    used_bytes: int
    db_bytes: int  # (page_count - freelist_count) * page_size
    wal_bytes: int
    budget_bytes: int
    back_pressure: bool


@dataclass(slots=True, frozen=True)
class BacklogStats:
    """For /status and heartbeats."""

    readings_by_state: dict[str, int]
    events_by_state: dict[str, int]
    waveforms: int
    quarantine: int
    unsent_readings: int  # new + batched
    unsent_events: int
    batches: int
    batch_bytes: int
    dead_letters: int
    oldest_unsent_ms: int | None  # ts of the oldest unsent reading/event (by arrival)
    oldest_unsent_age_s: float | None
    budget: BudgetStatus


@dataclass(slots=True, frozen=True)
class RecoveryReport:
    """What ``recover=True`` salvaged from a damaged file and what it could not read.

    ``lost`` counts rows known to be lost; ``lost_id_ranges`` lists id ranges that could not be read
    (an upper bound on further loss: ids in them may already have been deleted before the damage).
    """

    damaged_path: str  # where the damaged file was moved
    found: str
    salvaged: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    lost_id_ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    tables_unreadable: tuple[str, ...] = ()

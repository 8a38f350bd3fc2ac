"""Durable SQLite buffer of the edge agent: bursts in (one transaction each), batches out.

Public surface (see docs/buffer.md for the schema, eviction and fairness policies)::

    buf = await Buffer.open(path, BufferConfig(budget_bytes=...), recover=False)
    await buf.commit_burst(results)            # → CommitStats, after COMMIT; may raise BackPressure
    pending = await buf.take_unbatched(10_000, 1_000)
    seq = await buf.next_seq()
    await buf.store_batch(seq, pending.priority, body, n_r, n_e, pending.r_id, pending.e_id)
    for b in await buf.next_batches(8): ...; await buf.mark_sent(b.seq)
"""

from edge_agent.buffer.errors import BufferCorrupt, BufferNotWal
from edge_agent.buffer.records import (
    AggregateRow,
    BacklogStats,
    BatchPart,
    BudgetStatus,
    BufferConfig,
    CommitStats,
    DeadLetter,
    Pending,
    QuarantineRecord,
    ReadingChunk,
    RecoveryReport,
    SeriesKey,
    State,
    StoredBatch,
    StoredWaveform,
)
from edge_agent.buffer.store import Buffer
from edge_agent.errors import BackPressure, BufferError_

__all__ = [
    "AggregateRow",
    "BackPressure",
    "BacklogStats",
    "BatchPart",
    "BudgetStatus",
    "Buffer",
    "BufferConfig",
    "BufferCorrupt",
    "BufferError_",
    "BufferNotWal",
    "CommitStats",
    "DeadLetter",
    "Pending",
    "QuarantineRecord",
    "ReadingChunk",
    "RecoveryReport",
    "SeriesKey",
    "State",
    "StoredBatch",
    "StoredWaveform",
]

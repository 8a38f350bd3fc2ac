"""What a transform is: a named step with declared inputs, outputs and dependencies, run over a change range.

A transform gets a :class:`Context` with the change range ``(lo, hi]`` of ``load_id`` (its own watermark
and the run's snapshot) and returns rows written per output table. The runner calls it inside one
transaction together with the watermark update, so a transform's effect and its watermark commit together:
running twice processes nothing the second time, and a failed transform is retried from the same place.
Transforms must also be idempotent for a *repeated* range (delete-and-recompute or insert-if-absent), so
that resetting a watermark never duplicates rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cloud_ingest.warehouse.adapter import Session


@dataclass(slots=True, frozen=True)
class Context:
    """One transform's view of a run."""

    session: Session
    lo: int  # exclusive: the transform's watermark before the run
    hi: int  # inclusive: every change id <= hi is committed (see adapter's watermark protocol)
    run_id: str
    now_ms: int
    dict_ver: str | None = None  # data-dictionary version stamped on the DWD rows this run writes


TransformFn = Callable[[Context], dict[str, int]]


@dataclass(slots=True, frozen=True)
class Transform:
    """A node of the transform DAG. ``inputs``/``outputs`` are tables (lineage); ``after`` are transforms."""

    name: str
    fn: TransformFn
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    after: tuple[str, ...] = field(default=())
    doc: str = ""

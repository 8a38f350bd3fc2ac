"""Row-id sets stored compactly as runs of consecutive ids (pure functions).

A batch's rows are mostly consecutive ids (arrival order within a priority), so a batch of 10,000
readings usually needs a handful of ``(first, last)`` pairs: 16 bytes each, little-endian int64.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


def to_runs(ids: Iterable[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return an (n, 2) array of inclusive ``(first, last)`` runs covering the distinct ``ids``."""
    a = np.unique(np.asarray(ids, dtype=np.int64))  # sorted, distinct
    if a.shape[0] == 0:
        return np.empty((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(a) != 1)
    starts = np.concatenate(([a[0]], a[breaks + 1]))
    ends = np.concatenate((a[breaks], [a[-1]]))
    return np.stack((starts, ends), axis=1)


def encode_runs(runs: npt.NDArray[np.int64]) -> bytes:
    return np.ascontiguousarray(runs, dtype="<i8").tobytes()


def decode_runs(blob: bytes | None) -> list[tuple[int, int]]:
    """Inverse of :func:`encode_runs`; ``ValueError`` if the blob is not whole pairs of int64."""
    if not blob:
        return []
    if len(blob) % 16:
        raise ValueError(f"runs blob of {len(blob)} bytes is not a whole number of (first, last) pairs")
    pairs = np.frombuffer(blob, dtype="<i8").reshape(-1, 2)
    return [(int(a), int(b)) for a, b in pairs]


def count_ids(runs: list[tuple[int, int]]) -> int:
    return sum(b - a + 1 for a, b in runs)

"""Small SQL helpers shared by the registry loader and the transforms (engine-neutral)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cloud_ingest.warehouse.adapter import Session

INSERT_CHUNK = 500  # rows per multi-row INSERT: fewer round trips, statements stay small


def insert_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert small row sets (dimensions, day lists) with multi-row ``VALUES``; returns rows inserted."""
    rows = list(rows)
    one = "(" + ", ".join("?" for _ in columns) + ")"
    for i in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[i:i + INSERT_CHUNK]
        params = [v for row in chunk for v in row]
        session.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * len(chunk))}",
                        params)
    return len(rows)

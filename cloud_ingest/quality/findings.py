"""Quality findings: list them, and move one to acknowledged or fixed (the repair loop's bookkeeping)."""

from __future__ import annotations

import time
from typing import Any

from cloud_ingest.warehouse import Warehouse

STATUSES = ("open", "acknowledged", "fixed")


class FindingError(ValueError):
    """No finding with that id, or an unknown status."""


def list_findings(wh: Warehouse, status: str | None = None) -> list[tuple[Any, ...]]:
    sql = ("SELECT finding_id, status_code, scope_code, scope_id, dimension_code, value, threshold_val "
           "FROM meta_qlt_finding_cur")
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status_code = ?"
        params = (status,)
    return wh.query(sql + " ORDER BY dt, scope_code, scope_id, dimension_code", params)[1]


def set_status(wh: Warehouse, finding_id: str, status: str, note: str = "", now_ms: int | None = None) -> None:
    """Set a finding's status; raises :class:`FindingError` for an unknown id or status."""
    if status not in STATUSES:
        raise FindingError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    now = int(now_ms if now_ms is not None else time.time() * 1000)
    with wh.maintenance() as s, s.transaction():
        n = s.execute_count("UPDATE meta_qlt_finding_cur SET status_code = ?, updated_ms = ?, note_text = ? "
                            "WHERE finding_id = ?", (status, now, note or None, finding_id))
    if n == 0:
        raise FindingError(f"no finding {finding_id!r}")

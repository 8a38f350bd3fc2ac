"""Quality findings: list them, and move one to acknowledged or fixed (the repair loop's bookkeeping)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from cloud_ingest.warehouse.adapter import Session

STATUSES = ("open", "acknowledged", "fixed")
FINDING_COLUMNS = ("finding_id", "campus_id", "scope_code", "scope_id", "dt", "dimension_code", "value",
                   "threshold_val", "status_code", "opened_ms", "updated_ms", "note_text")


class FindingError(ValueError):
    """No finding with that id, or an unknown status."""


class Queryable(Protocol):
    """What reading findings and evidence needs of a warehouse: read-only queries (``Warehouse.query``)."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]: ...


@runtime_checkable
class Maintainable(Protocol):
    """What a status change needs: the transform session (``Warehouse.maintenance``)."""

    def maintenance(self) -> contextlib.AbstractContextManager[Session]: ...


def list_findings(wh: Queryable, status: str | None = None) -> list[tuple[Any, ...]]:
    sql = ("SELECT finding_id, status_code, scope_code, scope_id, dimension_code, value, threshold_val "
           "FROM meta_qlt_finding_cur")
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status_code = ?"
        params = (status,)
    return wh.query(sql + " ORDER BY dt, scope_code, scope_id, dimension_code", params)[1]


def finding_rows(wh: Queryable, *, status: str | None = None, campus_id: str | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None, finding_id: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Findings as mappings of FINDING_COLUMNS (``dt`` as ISO text), filtered by bound parameters."""
    conds, params = [], []
    for cond, value in (("status_code = ?", status), ("campus_id = ?", campus_id), ("dt >= ?", date_from),
                        ("dt <= ?", date_to), ("finding_id = ?", finding_id)):
        if value is not None:
            conds.append(cond)
            params.append(value)
    sql = (f"SELECT {', '.join(FINDING_COLUMNS)} FROM meta_qlt_finding_cur"
           + (" WHERE " + " AND ".join(conds) if conds else "")
           + " ORDER BY dt, scope_code, scope_id, dimension_code"
           + (f" LIMIT {int(limit)}" if limit is not None else ""))
    cols, rows = wh.query(sql, tuple(params))
    return [{c: (v.isoformat() if isinstance(v, dt.date) else v) for c, v in zip(cols, r, strict=True)}
            for r in rows]


def set_status(wh: Maintainable, finding_id: str, status: str, note: str = "", now_ms: int | None = None) -> None:
    """Set a finding's status; raises :class:`FindingError` for an unknown id or status."""
    if status not in STATUSES:
        raise FindingError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    now = int(now_ms if now_ms is not None else time.time() * 1000)
    with wh.maintenance() as s, s.transaction():
        n = s.execute_count("UPDATE meta_qlt_finding_cur SET status_code = ?, updated_ms = ?, note_text = ? "
                            "WHERE finding_id = ?", (status, now, note or None, finding_id))
    if n == 0:
        raise FindingError(f"no finding {finding_id!r}")

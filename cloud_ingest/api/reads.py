"""What the read routes (ADS indicators, quality) share: their query parameters, and warehouse calls off the
event loop with a failure answered 503.

Parameters are checked strictly: a day is ``YYYY-MM-DD`` text (a date type would also take a number, as a
Unix time), and a parameter given twice is refused rather than one of its values silently picked.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import Query, Request

from cloud_ingest.api.context import context
from cloud_ingest.api.errors import Problem
from cloud_ingest.warehouse.errors import WarehouseError

T = TypeVar("T")
_LOGGER = logging.getLogger(__name__)
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"  # printable text: no control characters
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

CampusParam = Annotated[str | None, Query(min_length=1, max_length=128, pattern=NO_CONTROL,
                                          description="Only this campus")]
FromParam = Annotated[str | None, Query(alias="from", pattern=_DATE, description="First local day (YYYY-MM-DD)",
                                        json_schema_extra={"format": "date"})]
ToParam = Annotated[str | None, Query(alias="to", pattern=_DATE, description="Last local day (YYYY-MM-DD)",
                                      json_schema_extra={"format": "date"})]


def day(text: str | None, name: str) -> datetime.date | None:
    """The calendar day of a ``from``/``to`` parameter; 400 naming the parameter when there is no such day."""
    if text is None:
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as exc:
        raise Problem(400, "bad_request", f"{text[:20]!r} is not a calendar day", field=f"query.{name}") from exc


def refuse_repeated(request: Request) -> None:
    """400 when a query parameter is given more than once: it is not one value, so none is picked."""
    for name in request.query_params:
        if len(request.query_params.getlist(name)) > 1:
            raise Problem(400, "bad_request", f"query parameter {name[:40]!r} is given more than once",
                          field=f"query.{name[:40]}")


async def in_warehouse(request: Request, fn: Callable[[], T]) -> T:
    """Run ``fn`` (warehouse work) in a thread; a warehouse failure is a 503 with Retry-After, not a 500."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except WarehouseError as exc:
        _LOGGER.warning("%s: warehouse failed: %s", request.url.path, exc)
        raise Problem(503, "warehouse_unavailable", f"the warehouse failed: {type(exc).__name__}; retry",
                      headers={"Retry-After": str(context(request).settings.retry_after_s)}) from exc

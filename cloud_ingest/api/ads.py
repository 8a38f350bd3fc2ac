"""Read API for ADS indicators, with access control by role and classification level, and a read audit.

Readers are named in the tokens file's ``[readers]`` table with a role (public_viewer, analyst,
data_steward, security_admin). A reader gets only the columns its role may read
(:func:`cloud_ingest.governance.columns_visible`); the response lists the withheld columns. Every read is
appended to ``meta_pub_audit_log`` (who, role, table, filters, rows, when) before the rows are returned,
so data going out is always traceable (数据去向).

Table names are taken only from the schema's ADS tables; filters are bound parameters, never SQL text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request

from cloud_ingest.api.auth import Principal
from cloud_ingest.api.context import authenticate, context
from cloud_ingest.api.errors import Problem
from cloud_ingest.api.models import ERROR_RESPONSES
from cloud_ingest.api.reads import CampusParam, FromParam, ToParam, day, in_warehouse, refuse_repeated
from cloud_ingest.governance import columns_hidden, columns_visible
from cloud_ingest.governance.classification import table_level
from cloud_ingest.warehouse.schema import Schema, load_schema

T = TypeVar("T")

router = APIRouter(tags=["indicators"])
MAX_ROWS = 10_000  # per request; page with from/to
_LOGGER = logging.getLogger(__name__)
_LIST_ERRORS: dict[int | str, dict[str, Any]] = {status: ERROR_RESPONSES[status] for status in (401, 403, 503)}
_READ_ERRORS: dict[int | str, dict[str, Any]] = {status: ERROR_RESPONSES[status]
                                                 for status in (400, 401, 403, 404, 503)}


def require_reader(request: Request) -> Principal:
    """The calling reader (a ``[readers]`` token with a role); 401 without a valid token, 403 for another kind."""
    who = authenticate(request)
    if who.role != "reader" or who.access_role is None:
        raise Problem(403, "not_a_reader", "this token may not read indicators: add it to [readers] with a role",
                      field="Authorization")
    return who


def _ads_tables(schema: Schema) -> dict[str, Any]:
    return {t.name: t for t in schema.by_tier("ads")}


@router.get("/v1/ads", summary="ADS indicator tables this reader may read", responses=_LIST_ERRORS)
async def list_ads(request: Request) -> dict[str, Any]:
    who = require_reader(request)
    schema = load_schema()
    out = []
    for name, t in _ads_tables(schema).items():
        visible = columns_visible(who.access_role or "", name, schema=schema)
        if visible:
            out.append({"table": name, "zh": t.zh, "definition": t.definition, "level": table_level(t),
                        "columns": list(visible),
                        "hidden_columns": list(columns_hidden(who.access_role or "", name, schema=schema))})
    return {"reader": who.name, "role": who.access_role, "tables": out}


@router.get("/v1/ads/{table}", summary="Rows of one ADS indicator table (columns filtered by role)",
            responses=_READ_ERRORS)
async def read_ads(request: Request, table: str, campus_id: CampusParam = None, date_from: FromParam = None,
                   date_to: ToParam = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000) -> dict[str, Any]:
    who = require_reader(request)
    refuse_repeated(request)
    day_from, day_to = day(date_from, "from"), day(date_to, "to")
    role = who.access_role or ""
    schema = load_schema()
    tables = _ads_tables(schema)
    if table not in tables:
        raise Problem(404, "unknown_table", f"no ADS table {table[:80]!r}; GET /v1/ads lists them", field="table")
    visible = columns_visible(role, table, schema=schema)
    if not visible:
        raise Problem(403, "level_too_high", f"role {role} may read no column of {table}", field="table")
    names = {c.name for c in tables[table].columns}
    where: list[str] = []
    params: list[Any] = []
    if campus_id is not None and "campus_id" in names:
        where.append("campus_id = ?")
        params.append(campus_id)
    if day_from is not None and "dt" in names:
        where.append("dt >= ?")
        params.append(day_from)
    if day_to is not None and "dt" in names:
        where.append("dt <= ?")
        params.append(day_to)
    order = ", ".join(c for c in ("campus_id", "dt") if c in names) or visible[0]
    sql = (f"SELECT {', '.join(visible)} FROM {table}"  # names come from the schema, never from the request
           + (f" WHERE {' AND '.join(where)}" if where else "") + f" ORDER BY {order} LIMIT {int(limit)}")
    ctx = context(request)
    columns, rows = await in_warehouse(request, lambda: ctx.warehouse.query(sql, tuple(params)))
    filters = json.dumps({"campus_id": campus_id, "from": date_from, "to": date_to, "limit": limit,
                          "columns": list(visible)})
    await in_warehouse(request, lambda: ctx.warehouse.record_access(
        consumer=who.name, role=role, table=table, filters=filters, rows=len(rows)))
    return {"table": table, "role": role, "columns": columns,
            "hidden_columns": list(columns_hidden(role, table, schema=schema)),
            "rows": [[v.isoformat() if isinstance(v, dt.date) else v for v in r] for r in rows]}

"""Read API for data quality (docs/quality.md): the report, the findings, their evidence, and status changes.

    GET  /v1/quality/report?period=day[&campus_id=&from=&to=]   what ``build_report`` returns (= quality.json)
    GET  /v1/quality/findings[?status=&campus_id=&from=&to=&limit=]
    GET  /v1/quality/findings/{finding_id}/evidence[?limit=]     the rows behind a finding, with provenance
    POST /v1/quality/findings/{finding_id}   {"status": "acknowledged" | "fixed", "note": "..."}

Access: readers of the tokens file's ``[readers]`` table (the ADS read API's authentication). Reading needs a
role that may read ``READ_LEVEL`` data: the quality tables and the evidence carry device and gateway ids and
batch provenance (L2), so analyst, data_steward and security_admin read, public_viewer does not. Changing a
finding's status is the repair loop of the data governance office, the owner of domain ``qlt``: only
``data_steward``. Every read is appended to ``meta_pub_audit_log`` before the data goes out, like
``/v1/ads`` (table: ``ads_qlt_campus_score_1d`` for the report, ``meta_qlt_finding_cur`` for findings and
evidence; the filters name the route, the finding and the tables the evidence came from).

Finding ids contain ``/`` when a device id does: the path parameter takes the rest of the path, and links
(``evidence`` in the report and findings) percent-encode the id.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from cloud_ingest.api.ads import require_reader
from cloud_ingest.api.auth import Principal
from cloud_ingest.api.context import context, read_json_model
from cloud_ingest.api.errors import Problem
from cloud_ingest.api.models import ERROR_RESPONSES
from cloud_ingest.api.reads import CampusParam, FromParam, ToParam, day, in_warehouse, refuse_repeated
from cloud_ingest.governance.classification import can_read
from cloud_ingest.quality.evidence import COLUMNS, DEFAULT_LIMIT, MAX_LIMIT, evidence_for, finding_ref
from cloud_ingest.quality.findings import FINDING_COLUMNS, FindingError, Maintainable, finding_rows, set_status
from cloud_ingest.quality.report import build_report, evidence_path, report_json, report_schema
from cloud_ingest.warehouse.transforms.dwd import PROCESS_TABLES

_LOGGER = logging.getLogger(__name__)
router = APIRouter(tags=["quality"])

READ_LEVEL = "L2"  # highest classification level of what these routes return (tests check the schema agrees)
STEWARD_ROLE = "data_steward"  # may acknowledge / fix findings
MAX_FINDINGS = 10_000
MAX_STATUS_BODY_BYTES = 8192
MAX_NOTE_CHARS = 2000
MAX_ID_CHARS = 512
REPORT_TABLE, FINDING_TABLE = "ads_qlt_campus_score_1d", "meta_qlt_finding_cur"  # named in the audit log
# tables read by these routes (READ_LEVEL must cover every column of them)
READ_TABLES = (REPORT_TABLE, "dws_qlt_scope_1d", "dws_qlt_scope_1h", "dws_qlt_device_1h", "dws_qlt_device_1d",
               FINDING_TABLE, *PROCESS_TABLES.values(), "ods_iot_reading_di", "ods_iot_batch_di", "dim_iot_metric")

Scope = Literal["device", "room", "building", "gateway", "campus"]
Dimension = Literal["completeness", "timeliness", "uniqueness", "accuracy", "consistency", "validity"]
Status = Literal["open", "acknowledged", "fixed"]
Cell = str | int | float | bool | None
T = TypeVar("T")

_GET_ERRORS: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 503)}
_POST_ERRORS: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k]
                                                 for k in (400, 401, 403, 404, 408, 413, 415, 503)}


class FindingOut(BaseModel):
    finding_id: str = Field(description="<dt>:<scope_code>:<scope_id>:<dimension_code>")
    campus_id: str
    scope_code: Scope
    scope_id: str
    dt: str = Field(description="Local day of the campus (ISO 8601)")
    dimension_code: Dimension
    value: float | None = Field(description="The rate that fell below the threshold (0..1)")
    threshold_val: float
    status_code: Status
    opened_ms: int | None = Field(description="When the finding was first raised, ms since epoch")
    updated_ms: int | None = Field(description="When the status last changed, ms since epoch")
    note_text: str | None
    evidence: str = Field(description="Path of the finding's evidence (id percent-encoded)")


class FindingsOut(BaseModel):
    count: int = Field(description="Findings returned (at most limit)")
    findings: list[FindingOut]


class EvidenceOut(BaseModel):
    finding_id: str
    campus_id: str
    scope_code: Scope
    scope_id: str
    dt: str
    dimension_code: Dimension
    total: int = Field(description="Evidence rows in all (rows holds at most limit of them)")
    limit: int
    counted: dict[str, int] = Field(description="Per kind, what the dimension's rate counted (missing readings "
                                                "for gaps, copies beyond the first for duplicates, readings, "
                                                "quarantined messages); equals the scope-day's counters")
    columns: list[str]
    rows: list[dict[str, Cell]] = Field(description="Evidence rows: kind, the reading's key and values, and the "
                                                    "ODS batch it came in (gateway_id, batch_seq, load_id)")


class FindingStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["acknowledged", "fixed"]
    note: str = Field("", max_length=MAX_NOTE_CHARS, pattern=r"^[^\x00]*$",
                      description="Why: the cause found, or what was fixed")


def _openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``report.schema.json`` as an OpenAPI 3.1 schema object: ``$defs`` inlined, ``$schema``/``$id`` dropped."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return {**walk(defs[ref.removeprefix("#/$defs/")]),
                        **{k: walk(v) for k, v in node.items() if k != "$ref"}}
            return {k: walk(v) for k, v in node.items() if k not in ("$defs", "$schema", "$id")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


@functools.cache
def _report_responses() -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "The quality report (the JSON Schema cloud_ingest/quality/report.schema.json)",
                  "content": {"application/json": {"schema": _openapi_schema(report_schema())}}}, **_GET_ERRORS}


def _quality_reader(request: Request) -> Principal:
    who = require_reader(request)
    if not can_read(who.access_role or "", READ_LEVEL):
        raise Problem(403, "level_too_high", f"role {who.access_role} may not read quality data ({READ_LEVEL}: "
                      "analyst, data_steward or security_admin)", field="Authorization")
    refuse_repeated(request)
    return who


def _check_id(finding_id: str) -> None:
    if not finding_id or len(finding_id) > MAX_ID_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in finding_id):
        raise Problem(400, "bad_finding_id", f"a finding id is 1 to {MAX_ID_CHARS} printable characters",
                      field="finding_id")


async def _audit(request: Request, who: Principal, table: str, filters: dict[str, Any], rows: int) -> None:
    wh = context(request).warehouse
    text = json.dumps(filters, default=str)
    await in_warehouse(request, lambda: wh.record_access(consumer=who.name, role=who.access_role or "", table=table,
                                                       filters=text, rows=rows))


def _finding_out(row: dict[str, Any]) -> FindingOut:
    return FindingOut(**row, evidence=evidence_path(str(row["finding_id"])))


@router.get("/v1/quality/report", summary="The data-quality report (the same JSON as quality.json)",
            response_class=Response, responses=_report_responses())
async def get_report(request: Request, period: Literal["day"] = "day", campus_id: CampusParam = None,
                     date_from: FromParam = None, date_to: ToParam = None) -> Response:
    """What ``campus-cloud quality report`` writes to quality.json, narrowed to a campus and days if asked."""
    who = _quality_reader(request)
    wh = context(request).warehouse
    day_from, day_to = day(date_from, "from"), day(date_to, "to")
    report = await in_warehouse(request, lambda: build_report(wh, period, campus_id=campus_id, date_from=day_from,
                                                            date_to=day_to))
    rows = sum(len(v) for k, v in report.items() if isinstance(v, list) and k != "dimensions")
    await _audit(request, who, REPORT_TABLE, {"route": "/v1/quality/report", "campus_id": campus_id,
                                              "from": date_from, "to": date_to, "limit": None, "period": period,
                                              "columns": list(report)}, rows)
    return Response(report_json(report), media_type="application/json")


@router.get("/v1/quality/findings", summary="Quality findings, oldest day first", response_model=FindingsOut,
            responses=_GET_ERRORS)
async def get_findings(request: Request, status: Status | None = None, campus_id: CampusParam = None,
                       date_from: FromParam = None, date_to: ToParam = None,
                       limit: Annotated[int, Query(ge=1, le=MAX_FINDINGS)] = 1000) -> FindingsOut:
    """Findings (one per scope-day-dimension below its threshold) with their status and evidence link."""
    who = _quality_reader(request)
    wh = context(request).warehouse
    day_from, day_to = day(date_from, "from"), day(date_to, "to")
    rows = await in_warehouse(request, lambda: finding_rows(wh, status=status, campus_id=campus_id,
                                                          date_from=day_from, date_to=day_to, limit=limit))
    await _audit(request, who, FINDING_TABLE, {"route": "/v1/quality/findings", "campus_id": campus_id,
                                               "from": date_from, "to": date_to, "limit": limit, "status": status,
                                               "columns": list(FINDING_COLUMNS)}, len(rows))
    return FindingsOut(count=len(rows), findings=[_finding_out(r) for r in rows])


@router.get("/v1/quality/findings/{finding_id:path}/evidence", response_model=EvidenceOut,
            summary="The rows behind a finding, each with the ODS batch it came in", responses=_GET_ERRORS)
async def get_evidence(request: Request, finding_id: str,
                       limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> EvidenceOut:
    """Gaps, late readings, duplicate copies, flagged readings… of the finding's scope-day (docs/quality.md)."""
    who = _quality_reader(request)
    _check_id(finding_id)
    wh = context(request).warehouse
    try:
        ref = await in_warehouse(request, lambda: finding_ref(wh, finding_id))
    except FindingError as exc:
        raise Problem(404, "unknown_finding", str(exc)[:200], field="finding_id") from exc
    ev = await in_warehouse(request, lambda: evidence_for(wh, ref, limit=limit))
    sources = [*PROCESS_TABLES.values(), *{"timeliness": ["ods_iot_batch_di"],
                                           "uniqueness": ["ods_iot_reading_di"]}.get(ref.dimension_code, [])]
    await _audit(request, who, FINDING_TABLE, {"route": "/v1/quality/findings/{id}/evidence",
                                               "finding_id": finding_id, "campus_id": ref.campus_id,
                                               "from": ref.dt, "to": ref.dt, "limit": limit,
                                               "columns": list(COLUMNS[ref.dimension_code]), "sources": sources},
                 len(ev.rows))
    return EvidenceOut.model_validate(ev.as_dict())


@router.post("/v1/quality/findings/{finding_id:path}", response_model=FindingOut, responses=_POST_ERRORS,
             summary="Acknowledge a finding or mark it fixed (data_steward)", openapi_extra={
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": FindingStatusIn.model_json_schema()}}}})
async def post_finding_status(request: Request, finding_id: str) -> FindingOut:
    """Move a finding to acknowledged (cause known) or fixed; the note is stored with the status."""
    who = require_reader(request)
    if who.access_role != STEWARD_ROLE:
        raise Problem(403, "steward_only", f"changing a finding's status needs role {STEWARD_ROLE}, not "
                      f"{who.access_role}", field="Authorization")
    _check_id(finding_id)
    change, _ = await read_json_model(request, FindingStatusIn, MAX_STATUS_BODY_BYTES, "invalid_body")
    ctx = context(request)
    wh = ctx.warehouse
    if not isinstance(wh, Maintainable):
        raise Problem(503, "read_only_warehouse", "this API's warehouse cannot change findings",
                      headers={"Retry-After": str(ctx.settings.retry_after_s)})
    try:
        await in_warehouse(request, lambda: set_status(wh, finding_id, change.status, change.note,
                                                     now_ms=ctx.clock_ms()))
    except FindingError as exc:
        raise Problem(404, "unknown_finding", str(exc)[:200], field="finding_id") from exc
    _LOGGER.info("finding %s set to %s by %s", finding_id[:200], change.status, who.name,
                 extra={"reader": who.name, "status": change.status})
    rows = await in_warehouse(request, lambda: finding_rows(wh, finding_id=finding_id))
    if not rows:  # deleted between the update and the read (a transform refreshed it): say so
        raise Problem(404, "unknown_finding", f"no finding {finding_id[:200]!r}", field="finding_id")
    return _finding_out(rows[0])


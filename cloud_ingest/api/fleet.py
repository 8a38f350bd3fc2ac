"""Fleet status: each gateway online / late / offline by missed heartbeats, and the routes that show it.

A gateway declares its heartbeat interval in every heartbeat. With ``elapsed`` the time since the server
last received one: ``online`` while ``elapsed <= late_after_intervals * interval`` (1.5 by default),
``late`` up to ``offline_after_intervals * interval`` (3), ``offline`` beyond, and ``offline`` when no
heartbeat was ever received. Every gateway in the tokens file is listed, heard from or not.

Access: ``GET /v1/fleet`` needs an operator token; ``GET /v1/fleet/{gateway}`` an operator token or that
gateway's own token.
"""

from __future__ import annotations

import functools
import logging
from typing import Literal

import anyio
from fastapi import APIRouter, Request

from cloud_ingest.api.context import (
    ApiContext,
    authenticate,
    context,
    read_json_model,
    require_gateway,
)
from cloud_ingest.api.errors import Problem
from cloud_ingest.api.heartbeats import GatewayRecord, HeartbeatIn
from cloud_ingest.api.models import ERROR_RESPONSES, FleetOut, GatewayStatusOut, HeartbeatAck

_LOGGER = logging.getLogger(__name__)

State = Literal["online", "late", "offline"]
STATES: tuple[State, ...] = ("online", "late", "offline")

router = APIRouter(tags=["fleet"])


def classify(received_ms: int | None, interval_s: float | None, now_ms: int, *, late_after: float,
             offline_after: float) -> State:
    """State of a gateway whose last heartbeat arrived at ``received_ms`` (server clock) declaring
    ``interval_s``; None (never heard from) is offline."""
    if received_ms is None or interval_s is None:
        return "offline"
    elapsed_s = (now_ms - received_ms) / 1000.0
    if elapsed_s <= late_after * interval_s:
        return "online"
    if elapsed_s <= offline_after * interval_s:
        return "late"
    return "offline"


def status_of(record: GatewayRecord, ctx: ApiContext, now_ms: int) -> GatewayStatusOut:
    s = ctx.settings
    state = classify(record.received_ms, record.interval_s, now_ms, late_after=s.late_after_intervals,
                     offline_after=s.offline_after_intervals)
    return GatewayStatusOut(
        gateway=record.gateway, state=state,
        last_heartbeat_ms=record.received_ms,
        heartbeat_age_s=None if record.received_ms is None else (now_ms - record.received_ms) / 1000.0,
        interval_s=record.interval_s, clock_offset_ms=record.clock_offset_ms,
        backlog_batches=record.backlog_batches, backlog_readings=record.backlog_readings,
        oldest_unsent_age_s=record.oldest_unsent_age_s,
        last_upload_ms=record.last_upload_ms, last_seq=record.last_seq,
        reported_last_upload_ms=record.reported_last_upload_ms,
        devices_online=record.devices_online, devices_silent=record.devices_silent,
        agent_version=record.agent_version,
    )


def fleet_records(ctx: ApiContext) -> list[GatewayRecord]:
    """Every gateway with a token or a stored record, sorted by id."""
    known = {r.gateway: r for r in ctx.fleet.all()}
    for gw in ctx.tokens.gateways:
        known.setdefault(gw, GatewayRecord(gw))
    return [known[g] for g in sorted(known)]


def fleet_counts(ctx: ApiContext) -> dict[str, int]:
    """Gateways per state now (for ``/metrics``)."""
    s, now = ctx.settings, ctx.clock_ms()
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    for r in fleet_records(ctx):
        counts[classify(r.received_ms, r.interval_s, now, late_after=s.late_after_intervals,
                        offline_after=s.offline_after_intervals)] += 1
    return counts


@router.post("/v1/heartbeats", response_model=HeartbeatAck, responses=ERROR_RESPONSES, openapi_extra={
    "requestBody": {"required": True,
                    "content": {"application/json": {"schema": HeartbeatIn.model_json_schema()}}}})
async def post_heartbeat(request: Request) -> HeartbeatAck:
    """Record a gateway's status. The reply carries the server time, so a gateway can see its offset."""
    ctx = context(request)
    principal = authenticate(request)
    hb, body = await read_json_model(request, HeartbeatIn, ctx.settings.max_heartbeat_bytes, "invalid_heartbeat",
                               default_field=None)
    require_gateway(principal, hb.gateway, "this heartbeat")
    received_ms = ctx.clock_ms()
    record = await anyio.to_thread.run_sync(ctx.fleet.record_heartbeat, hb, received_ms)
    try:  # history: its quarantine / eviction counters feed the quality tables
        await anyio.to_thread.run_sync(functools.partial(
            ctx.warehouse.land_heartbeat, hb.gateway, sent_ms=hb.sent_at_ms, received_ms=received_ms,
            heartbeat_json=body.decode("utf-8", "replace")))
    except Exception as exc:
        _LOGGER.exception("heartbeat of %s not stored in the warehouse", hb.gateway)
        raise Problem(503, "heartbeat_not_stored", "the warehouse could not store the heartbeat now; the next "
                      "one carries the same cumulative counters", field="body") from exc
    ctx.metrics.heartbeats.inc()
    return HeartbeatAck(status="ok", gateway=hb.gateway, received_ms=received_ms,
                        clock_offset_ms=record.clock_offset_ms or 0)


@router.get("/v1/fleet", response_model=FleetOut, responses=ERROR_RESPONSES)
async def get_fleet(request: Request) -> FleetOut:
    """Every gateway's state (operators only)."""
    ctx = context(request)
    principal = authenticate(request)
    if principal.role != "operator":
        raise Problem(403, "operator_only", "the fleet listing needs an operator token",
                      field="Authorization")
    now = ctx.clock_ms()
    gateways = [status_of(r, ctx, now) for r in fleet_records(ctx)]
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    for g in gateways:
        counts[g.state] += 1
    return FleetOut(now_ms=now, counts=counts, gateways=gateways)


@router.get("/v1/fleet/{gateway}", response_model=GatewayStatusOut, responses=ERROR_RESPONSES)
async def get_gateway(gateway: str, request: Request) -> GatewayStatusOut:
    """One gateway's state (an operator, or the gateway itself)."""
    ctx = context(request)
    principal = authenticate(request)
    if principal.role != "operator":
        require_gateway(principal, gateway, "this status")
    record = ctx.fleet.get(gateway)
    if record is None:
        if gateway not in ctx.tokens.gateways:
            raise Problem(404, "unknown_gateway", f"no gateway {gateway[:128]!r}", field="gateway")
        record = GatewayRecord(gateway)
    return status_of(record, ctx, ctx.clock_ms())

"""Response bodies of the API as pydantic models: they are the OpenAPI schema at ``/openapi.json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable reason, stable (see docs/api.md)")
    field: str | None = Field(None, description="The offending part of the request, when there is one")
    detail: str = Field(description="Human-readable explanation")


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (400, "Malformed request (error.field says which part)"),
        (401, "Missing or invalid bearer token"),
        (403, "Valid token, but not allowed for this gateway or resource"),
        (404, "Unknown resource"),
        (408, "The body did not arrive in time"),
        (409, "Same (gateway, seq) already stored with other content"),
        (413, "Body or decompressed payload too large"),
        (415, "Unknown content type or unsupported wire format version"),
        (429, "Writer saturated: retry after Retry-After seconds"),
        (503, "Landing failed or warehouse unavailable: retry after Retry-After seconds"),
    )
}


class BatchAccepted(BaseModel):
    status: Literal["stored", "duplicate"] = Field(
        description="stored: written now (201); duplicate: already stored, nothing written (200)")
    gateway: str
    seq: int
    readings: int = Field(description="Readings written now (0 for a duplicate)")
    events: int = Field(description="Events written now (0 for a duplicate)")


class HeartbeatAck(BaseModel):
    status: Literal["ok"]
    gateway: str
    received_ms: int = Field(description="Server clock at receipt, epoch ms")
    clock_offset_ms: int = Field(description="sent_at_ms - received_ms: positive when the gateway is ahead")


class GatewayStatusOut(BaseModel):
    gateway: str
    state: Literal["online", "late", "offline"]
    last_heartbeat_ms: int | None = Field(description="Server clock at the last heartbeat")
    heartbeat_age_s: float | None
    interval_s: float | None = Field(description="Heartbeat interval the gateway declared")
    clock_offset_ms: int | None = Field(description="Gateway clock minus server clock at the last heartbeat")
    backlog_batches: int
    backlog_readings: int
    oldest_unsent_age_s: float | None
    last_upload_ms: int | None = Field(description="Server clock at the last batch received")
    last_seq: int | None = Field(description="Highest batch sequence number received")
    reported_last_upload_ms: int | None = Field(description="The gateway's own last successful upload")
    devices_online: int
    devices_silent: int
    agent_version: str | None


class FleetOut(BaseModel):
    now_ms: int
    counts: dict[str, int] = Field(description="Gateways per state")
    gateways: list[GatewayStatusOut]

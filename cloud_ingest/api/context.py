"""What every route needs, built once by ``create_app`` and kept on ``app.state`` (no module globals).

Also the request-side helpers the routes share: who is calling (401/403), what media type was sent (415),
and reading a body under the size cap and the deadline (413/408).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from cloud_ingest.api.auth import Principal, TokenStore
from cloud_ingest.api.errors import Problem
from cloud_ingest.api.heartbeats import FleetStore
from cloud_ingest.api.limits import BodyTimeout, BodyTooLarge, Gate, drain, read_capped
from cloud_ingest.api.metrics import ApiMetrics
from cloud_ingest.api.settings import ApiSettings
from cloud_ingest.warehouse import LandResult
from edge_agent.wire import Batch


class WarehouseLike(Protocol):
    """The part of :class:`cloud_ingest.warehouse.Warehouse` the API uses."""

    def land_batch(self, batch: Batch, *, body_checksum: str, received_ms: int) -> LandResult: ...

    def land_heartbeat(self, gateway: str, *, sent_ms: int, received_ms: int, heartbeat_json: str) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    def record_access(self, *, consumer: str, role: str, table: str, filters: str, rows: int) -> None: ...


# The rest of a refused body is not read: closing the connection stops the client sending it.
_CLOSE = {"Connection": "close"}
# A refused body up to this size is read and discarded before the 413 (the client then sees the answer,
# not a reset); a larger one is refused unread and the connection closed.
DRAIN_MAX_BYTES = 1024 * 1024


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ApiContext:
    settings: ApiSettings
    warehouse: WarehouseLike
    tokens: TokenStore
    metrics: ApiMetrics
    admission: Gate  # batch requests admitted (receiving, waiting, decoding, landing)
    landing: Gate  # decodes + landings running
    fleet: FleetStore
    clock_ms: Callable[[], int]
    on_landed: Callable[[], None] | None = None  # called after each batch stored (the transform schedule)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def authenticate(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a header or with an unknown token."""
    header = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": 'Bearer realm="campus-ingest"'}
    if not header:
        raise Problem(401, "missing_token", "send Authorization: Bearer <token>", field="Authorization",
                      headers=challenge)
    principal = context(request).tokens.principal_for(header)
    if principal is None:
        raise Problem(401, "invalid_token", "the bearer token is not valid", field="Authorization",
                      headers=challenge)
    return principal


def require_gateway(principal: Principal, gateway: str, what: str, *, field: str = "gateway") -> None:
    """403 unless ``principal`` is the gateway ``gateway`` (a gateway cannot act as another)."""
    if principal.role != "gateway" or principal.name != gateway:
        raise Problem(403, "gateway_mismatch",
                      f"{what} is for gateway {gateway[:128]!r}; this token belongs to {principal.role} "
                      f"{principal.name!r}", field=field)


def require_media_type(request: Request, expected: str) -> None:
    """415 unless the Content-Type (parameters ignored) is ``expected``."""
    raw = request.headers.get("content-type", "")
    if raw.split(";", 1)[0].strip().lower() != expected:
        raise Problem(415, "unsupported_media_type", f"Content-Type {raw[:100]!r} is not {expected!r}",
                      field="Content-Type")


def check_length(request: Request, limit: int) -> None:
    """413 when the declared Content-Length is over ``limit`` (before reading anything); 400 if unparsable."""
    raw = request.headers.get("content-length")
    if raw is None:
        return  # chunked: counted while streaming
    try:
        declared = int(raw)
    except ValueError as exc:
        raise Problem(400, "bad_content_length", f"Content-Length {raw[:40]!r} is not an integer",
                      field="Content-Length") from exc
    if declared > limit:
        raise Problem(413, "body_too_large", f"Content-Length {declared} exceeds the limit of {limit} bytes",
                      field="Content-Length", headers=_CLOSE)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, streamed with a hard cap of ``limit`` bytes and the body deadline (413/408).

    An over-limit body of at most ``DRAIN_MAX_BYTES`` is drained before the 413 is sent.
    """
    timeout_s = context(request).settings.body_timeout_s
    chunks = request.stream()  # one iterator: Starlette refuses a second stream() call
    try:
        check_length(request, limit)
    except Problem as exc:
        if exc.status == 413 and int(request.headers["content-length"]) <= DRAIN_MAX_BYTES:
            await drain(chunks, DRAIN_MAX_BYTES, timeout_s)
        raise
    try:
        return await read_capped(chunks, limit, timeout_s)
    except BodyTooLarge as exc:
        if exc.seen <= DRAIN_MAX_BYTES:
            await drain(chunks, DRAIN_MAX_BYTES - exc.seen, timeout_s)
        raise Problem(413, "body_too_large", f"body exceeds the limit of {limit} bytes",
                      field="body", headers=_CLOSE) from exc
    except BodyTimeout as exc:
        raise Problem(408, "body_timeout", str(exc), field="body", headers=_CLOSE) from exc


M = TypeVar("M", bound=BaseModel)


async def read_json_model(request: Request, model: type[M], limit: int, code: str, *,
                          default_field: str | None = "body") -> tuple[M, bytes]:
    """A JSON object body (Content-Type application/json, at most ``limit`` bytes) validated as ``model``,
    and the body as received (the model may ignore fields worth keeping).

    Every refusal is a 400 ``code`` naming the field (415/413/408 from the media type and body checks).
    """
    require_media_type(request, "application/json")
    body = await read_body(request, limit)
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, code, f"not JSON: {exc}"[:200], field="body") from exc
    if not isinstance(raw, dict):
        raise Problem(400, code, "must be a JSON object", field="body")
    try:
        return model.model_validate(raw), body
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or default_field
        raise Problem(400, code, str(err.get("msg", "invalid"))[:200], field=field) from exc

"""``POST /v1/batches``: authenticate, bound, decode and land one wire-format batch, idempotently.

Order of checks, cheapest first, so a refused request costs little: token (401) → Content-Type (415) →
``X-Gateway-Id`` if sent (403) → declared Content-Length (413) → admission (429) → the body, streamed
under a byte cap and a deadline (413/408) → the uncompressed header: magic/version (415), gateway equals
the token's (403), agrees with ``X-Gateway-Id``/``X-Batch-Seq`` (400), declared sizes within the caps
(413) → a landing slot (429) → full decode in a worker thread (400/413) → ``land_batch`` in a worker
thread. The
reply (201 stored, 200 duplicate, 409 conflict) is sent only after ``land_batch`` returned, i.e. after the
batch is durably committed. A failure inside landing is 503 with Retry-After: the edge keeps the batch and
retries; bad input is never a 5xx.
"""

from __future__ import annotations

import logging
import time

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cloud_ingest.api.auth import Principal
from cloud_ingest.api.context import (
    ApiContext,
    authenticate,
    check_length,
    context,
    read_body,
    require_gateway,
    require_media_type,
)
from cloud_ingest.api.errors import Problem
from cloud_ingest.api.limits import Saturated
from cloud_ingest.api.models import ERROR_RESPONSES, BatchAccepted
from cloud_ingest.warehouse import LandResult
from edge_agent.errors import WireError
from edge_agent.wire import (
    CONTENT_TYPE,
    Batch,
    Header,
    PayloadTooLarge,
    UnsupportedFormat,
    decode,
    read_header,
)

_LOGGER = logging.getLogger(__name__)

router = APIRouter(tags=["ingest"])
_OUTCOMES_COUNTED = frozenset({"sequence_conflict", "landing_failed"})  # counted as conflict / failed

_BODY_SCHEMA = {"requestBody": {
    "required": True, "description": "A wire-format batch (docs/wire-format.md)",
    "content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}}}


def wire_problem(exc: WireError) -> Problem:
    """Translate a decoder refusal into its HTTP answer (415 / 413 / 400) with the field it names."""
    if isinstance(exc, UnsupportedFormat):
        code = "unsupported_version" if exc.field == "version" else "unsupported_format"
        return Problem(415, code, exc.problem, field=exc.field)
    if isinstance(exc, PayloadTooLarge):
        return Problem(413, "payload_too_large", exc.problem, field=exc.field)
    return Problem(400, "malformed_batch", exc.problem[:300], field=exc.field)


def _decode(body: bytes, max_decompressed: int, max_records: int) -> Batch:
    try:
        return decode(body, max_decompressed=max_decompressed, max_records=max_records)
    except WireError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # the decoder promises WireError only; anything else is its bug, not a 5xx
        _LOGGER.exception("decoder failed on a %d-byte body", len(body))
        raise WireError("payload", f"cannot be decoded ({type(exc).__name__})") from exc


def _land(ctx: ApiContext, batch: Batch, checksum: str, received_ms: int) -> tuple[LandResult, float]:
    t0 = time.perf_counter()
    result = ctx.warehouse.land_batch(batch, body_checksum=checksum, received_ms=received_ms)
    return result, time.perf_counter() - t0


@router.post("/v1/batches", status_code=201, response_model=BatchAccepted, openapi_extra=_BODY_SCHEMA,
             responses={200: {"model": BatchAccepted, "description": "Duplicate: already stored"},
                        **ERROR_RESPONSES})
async def post_batch(request: Request) -> JSONResponse:
    """Land one batch. Idempotent on (gateway, seq): a repeat answers 200 ``duplicate`` and writes nothing."""
    ctx = context(request)
    try:
        return await _post_batch(ctx, request)
    except Problem as exc:
        if exc.code not in _OUTCOMES_COUNTED:
            ctx.metrics.batches.labels("rejected").inc()
        raise


def _claims(request: Request, principal: Principal) -> tuple[str | None, int | None]:
    """``X-Gateway-Id`` / ``X-Batch-Seq`` (optional, docs/wire-format.md §1): a foreign gateway id is
    refused (403) before the body is read; both must later agree with the body's header."""
    gw = request.headers.get("x-gateway-id")
    if gw is not None:
        require_gateway(principal, gw, "X-Gateway-Id", field="X-Gateway-Id")
    raw_seq = request.headers.get("x-batch-seq")
    if raw_seq is None:
        return gw, None
    try:
        return gw, int(raw_seq)
    except ValueError as exc:
        raise Problem(400, "bad_header", f"X-Batch-Seq {raw_seq[:40]!r} is not an integer",
                      field="X-Batch-Seq") from exc


def _check_header(ctx: ApiContext, principal: Principal, header: Header, claimed_gw: str | None,
                  claimed_seq: int | None) -> None:
    require_gateway(principal, header.gateway, f"batch {header.seq}")
    if claimed_gw is not None and claimed_gw != header.gateway:
        raise Problem(400, "header_mismatch", "X-Gateway-Id differs from the batch header's gw",
                      field="X-Gateway-Id")
    if claimed_seq is not None and claimed_seq != header.seq:
        raise Problem(400, "header_mismatch", f"X-Batch-Seq {claimed_seq} differs from the batch header's "
                      f"seq {header.seq}", field="X-Batch-Seq")
    s = ctx.settings
    if header.payload_len > s.max_decompressed_bytes:  # refused before waiting for a landing slot
        raise Problem(413, "payload_too_large", f"payload of {header.payload_len} bytes exceeds the limit "
                      f"of {s.max_decompressed_bytes}", field="plen")
    if header.readings + header.events > s.max_records:
        raise Problem(413, "payload_too_large", f"{header.readings + header.events} records exceed the "
                      f"limit of {s.max_records}", field="counts")


async def _post_batch(ctx: ApiContext, request: Request) -> JSONResponse:
    s = ctx.settings
    principal = authenticate(request)
    require_media_type(request, CONTENT_TYPE)
    if principal.role != "gateway":
        raise Problem(403, "gateway_mismatch", "only gateway tokens may upload batches",
                      field="Authorization")
    claimed_gw, claimed_seq = _claims(request, principal)
    check_length(request, s.max_body_bytes)
    retry = {"Retry-After": str(s.retry_after_s)}
    try:
        async with ctx.admission.slot():
            body = await read_body(request, s.max_body_bytes)
            received_ms = ctx.clock_ms()
            try:
                header = read_header(body)
            except WireError as exc:
                raise wire_problem(exc) from exc
            _check_header(ctx, principal, header, claimed_gw, claimed_seq)
            async with ctx.landing.slot():
                try:
                    batch = await anyio.to_thread.run_sync(_decode, body, s.max_decompressed_bytes,
                                                           s.max_records)
                except WireError as exc:
                    raise wire_problem(exc) from exc
                except MemoryError as exc:
                    raise Problem(503, "server_busy", "not enough memory to decode now",
                                  headers=retry) from exc
                ctx.metrics.body_bytes.inc(len(body))
                del body
                # the wire checksum (BLAKE2b-128 of the payload) identifies the content: equal content is a
                # duplicate even if re-encoded, other content under the same (gateway, seq) a conflict
                try:
                    result, seconds = await anyio.to_thread.run_sync(_land, ctx, batch, header.checksum.hex(),
                                                                     received_ms)
                except Exception as exc:
                    _LOGGER.exception("landing batch %s/%s failed", batch.gateway, batch.seq,
                                      extra={"gateway": batch.gateway, "batch_seq": batch.seq})
                    ctx.metrics.batches.labels("failed").inc()
                    raise Problem(503, "landing_failed", "the warehouse could not store the batch now; retry",
                                  headers=retry) from exc
    except Saturated as exc:
        raise Problem(429, "saturated", f"the writer is busy ({exc}); retry later", headers=retry) from exc
    return await _answer(ctx, batch, result, seconds, received_ms)


async def _answer(ctx: ApiContext, batch: Batch, result: LandResult, seconds: float,
                  received_ms: int) -> JSONResponse:
    ctx.metrics.landing.observe(seconds)
    gw, seq = batch.gateway, int(batch.seq)
    ctx.metrics.batches.labels(result.status).inc()
    if result.status == "conflict":
        _LOGGER.warning("batch %s/%s conflicts with the stored one", gw, seq,
                        extra={"gateway": gw, "batch_seq": seq})
        raise Problem(409, "sequence_conflict", f"batch {seq} of {gw!r} is already stored with other "
                      "content", field="seq")
    await anyio.to_thread.run_sync(ctx.fleet.record_upload, gw, seq, received_ms)
    if result.status == "duplicate":
        ctx.metrics.duplicates.inc()
        status_code = 200
    else:
        ctx.metrics.readings.inc(result.readings)
        ctx.metrics.events.inc(result.events)
        if ctx.on_landed is not None:
            ctx.on_landed()
        status_code = 201
    if _LOGGER.isEnabledFor(logging.DEBUG):
        _LOGGER.debug("batch %s/%s %s (%d readings) in %.1f ms", gw, seq, result.status, result.readings,
                      seconds * 1000, extra={"gateway": gw, "batch_seq": seq})
    out = BatchAccepted(status=result.status, gateway=gw, seq=seq, readings=result.readings,
                        events=result.events)
    return JSONResponse(out.model_dump(), status_code=status_code)

"""``create_app(settings, warehouse)``: the ingest API as a FastAPI app, with no module-level state.

Everything an app needs (tokens, metrics registry, gates, fleet store, clock) is built here and
kept on ``app.state.ctx``; two apps in one process share nothing. OpenAPI is served at ``/openapi.json``
and ``/docs``. Every refusal has the body ``{"error": {"code", "field", "detail"}}`` (docs/api.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud_ingest.api import ads, batches, fleet, quality
from cloud_ingest.api.auth import TokenStore
from cloud_ingest.api.context import ApiContext, WarehouseLike, context, wall_clock_ms
from cloud_ingest.api.errors import Problem, SettingsError
from cloud_ingest.api.heartbeats import FleetStore, HeartbeatIn, InMemoryFleetStore
from cloud_ingest.api.limits import Gate
from cloud_ingest.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from cloud_ingest.api.metrics import ApiMetrics
from cloud_ingest.api.settings import ApiSettings

_LOGGER = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0  # /readyz gives up on a warehouse that does not answer SELECT 1 in this time
_LAST_UPLOADS_SQL = ("SELECT gateway_id, MAX(received_ms), MAX(batch_seq) FROM ods_iot_batch_di "
                     "GROUP BY gateway_id")
_LAST_HEARTBEATS_SQL = ("SELECT h.gateway_id, h.received_ms, h.heartbeat_json FROM ods_iot_heartbeat_di h "
                        "JOIN (SELECT gateway_id, MAX(load_id) AS load_id FROM ods_iot_heartbeat_di "
                        "GROUP BY gateway_id) x ON x.gateway_id = h.gateway_id AND x.load_id = h.load_id")
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 413: "body_too_large",
                 415: "unsupported_media_type", 422: "bad_request"}


def _problem_response(ctx: ApiContext, request: Request, problem: Problem) -> JSONResponse:
    ctx.metrics.rejections.labels(problem.code).inc()
    # auth refusals are security events; the rest is routine (and counted) but still traceable
    level = logging.WARNING if problem.status in (401, 403) else logging.INFO
    if _LOGGER.isEnabledFor(level):
        client = request.client.host if request.client else "-"
        _LOGGER.log(level, "refused %s %s from %s: %s %s (%s)", request.method, request.url.path, client,
                    problem.status, problem.code, problem.detail[:200],
                    extra={"code": problem.code, "client": client})
    return JSONResponse(problem.body(), status_code=problem.status, headers=problem.headers)


def _seed_fleet(warehouse: WarehouseLike, store: InMemoryFleetStore) -> None:
    """Last heartbeat and last upload per gateway from the landing tier, so a restart does not forget them."""
    for gw, received_ms, body in warehouse.query(_LAST_HEARTBEATS_SQL)[1]:
        try:
            store.record_heartbeat(HeartbeatIn.model_validate_json(body), int(received_ms))
        except ValidationError:
            _LOGGER.warning("stored last heartbeat of %s no longer validates; skipped", gw)
    for gw, ms, seq in warehouse.query(_LAST_UPLOADS_SQL)[1]:
        store.record_upload(str(gw), int(seq), int(ms))


def create_app(settings: ApiSettings, warehouse: WarehouseLike, *, tokens: TokenStore | None = None,
               fleet_store: FleetStore | None = None, clock_ms: Callable[[], int] = wall_clock_ms,
               on_landed: Callable[[], None] | None = None) -> FastAPI:
    """Build the API around an open ``warehouse`` (the caller opens and closes it).

    ``tokens`` defaults to ``TokenStore.from_file(settings.tokens_file)``; ``fleet_store`` to an in-memory
    store seeded with each gateway's last upload from the warehouse at startup; ``clock_ms`` returns epoch
    milliseconds (tests inject one); ``on_landed`` is called (on the event loop, so it must be quick) after
    each batch newly stored in ODS, e.g. ``TransformSchedule.landed`` to move it on to DWD soon.
    Raises ``SettingsError`` / ``TokenFileError`` before serving anything.
    """
    if tokens is None:
        if settings.tokens_file is None:
            raise SettingsError("CAMPUS_API_TOKENS_FILE", "is required (or pass tokens=)")
        tokens = TokenStore.from_file(settings.tokens_file)
    seed_fleet = fleet_store is None
    metrics = ApiMetrics()
    admission = Gate("request", settings.max_requests, 0.0)
    landing = Gate("landing", settings.max_in_flight, settings.queue_wait_s)
    ctx = ApiContext(settings=settings, warehouse=warehouse, tokens=tokens, metrics=metrics,
                     admission=admission, landing=landing, fleet=fleet_store or InMemoryFleetStore(),
                     clock_ms=clock_ms, on_landed=on_landed)
    metrics.admitted.set_function(lambda: admission.holders)
    metrics.in_flight.set_function(lambda: landing.holders)
    metrics.waiting.set_function(lambda: landing.waiting)
    metrics.watch_fleet(lambda: fleet.fleet_counts(ctx))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if seed_fleet and isinstance(ctx.fleet, InMemoryFleetStore):
            try:
                await anyio.to_thread.run_sync(_seed_fleet, warehouse, ctx.fleet)
            except Exception:
                _LOGGER.exception("cannot read last heartbeats and uploads from the warehouse; fleet starts empty")
        yield

    app = FastAPI(title="Campus ingest API", version="1", lifespan=lifespan, redirect_slashes=False,
                  description="Batches and heartbeats from campus gateways; fleet status. See docs/api.md.")
    app.state.ctx = ctx

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return _problem_response(ctx, request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        problem = Problem(exc.status_code, code, str(exc.detail)[:200], headers=exc.headers)
        return _problem_response(ctx, request, problem)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in err.get("loc", ())) or None
        problem = Problem(400, "bad_request", str(err.get("msg", "invalid"))[:200], field=field)
        return _problem_response(ctx, request, problem)

    app.include_router(batches.router)
    app.include_router(fleet.router)
    app.include_router(ads.router)
    app.include_router(quality.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is alive and serving (no dependency is checked)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "Warehouse unreachable"}})
    async def readyz(request: Request) -> JSONResponse:
        """The warehouse answers a query within READY_TIMEOUT_S."""
        wh = context(request).warehouse
        try:
            with anyio.fail_after(READY_TIMEOUT_S):
                await anyio.to_thread.run_sync(wh.query, "SELECT 1", abandon_on_cancel=True)
        except Exception as exc:
            _LOGGER.warning("not ready: warehouse check failed: %s", exc)
            problem = Problem(503, "warehouse_unavailable", f"warehouse check failed: {type(exc).__name__}",
                              headers={"Retry-After": str(settings.retry_after_s)})
            return JSONResponse(problem.body(), status_code=503, headers=problem.headers)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def get_metrics(request: Request) -> Response:
        """Prometheus text format."""
        body = await anyio.to_thread.run_sync(context(request).metrics.render)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description,
                              routes=app.routes)
            app.openapi_schema = _validation_errors_are_400(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _validation_errors_are_400(doc: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 with its own body on every route with parameters; this API answers a request
    that fails validation with 400 and the error body (``on_validation``). Say so in the schema."""
    bad_request = {"description": "Malformed request (error.field says which part)",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", bad_request)
    schemas = doc.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in json.dumps(doc.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return doc

"""/healthz, /readyz, /metrics and the OpenAPI document, on a real server; and no secret in any log."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cloud_ingest.api import ApiSettings, create_app
from cloud_ingest.warehouse import Warehouse
from edge_agent.wire import CONTENT_TYPE
from tests.cloud.api_fixtures import (
    GATEWAYS,
    OPERATOR_TOKEN,
    ApiServer,
    api_on_warehouse,
    auth,
    batch_headers,
    body_of,
    open_test_warehouse,
    token_store,
)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_healthz_and_readyz(api: ApiServer) -> None:
    with api.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_readyz_is_503_when_the_warehouse_is_gone(tmp_path: Path) -> None:
    wh = open_test_warehouse(tmp_path)
    with api_on_warehouse(wh) as api, api.client() as c:
        wh.close()
        ready = c.get("/readyz")
        alive = c.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "warehouse_unavailable"
    assert "retry-after" in ready.headers
    assert alive.status_code == 200


def test_metrics_count_outcomes_rejections_and_landing(api: ApiServer) -> None:
    with api.client() as c:
        c.post("/v1/batches", content=body_of(1, events=2), headers=batch_headers())
        c.post("/v1/batches", content=body_of(1, events=2), headers=batch_headers())  # duplicate
        c.post("/v1/batches", content=body_of(1, offset=5), headers=batch_headers())  # conflict
        c.post("/v1/batches", content=b"CBAT\x01junk", headers=batch_headers())  # malformed
        c.post("/v1/batches", content=body_of(2), headers={"Content-Type": CONTENT_TYPE})  # no token
        c.post("/v1/heartbeats", headers=auth(), json={"gateway": "gw-a", "sent_at_ms": 1, "interval_s": 30})
        resp = c.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    m = _samples(resp.text)
    assert m[("campus_ingest_batches_total", (("status", "stored"),))] == 1
    assert m[("campus_ingest_batches_total", (("status", "duplicate"),))] == 1
    assert m[("campus_ingest_batches_total", (("status", "conflict"),))] == 1
    assert m[("campus_ingest_batches_total", (("status", "rejected"),))] == 2
    assert m[("campus_ingest_readings_landed_total", ())] == 10
    assert m[("campus_ingest_events_landed_total", ())] == 2
    assert m[("campus_ingest_duplicates_total", ())] == 1
    assert m[("campus_ingest_rejections_total", (("code", "malformed_batch"),))] == 1
    assert m[("campus_ingest_rejections_total", (("code", "missing_token"),))] == 1
    assert m[("campus_ingest_rejections_total", (("code", "sequence_conflict"),))] == 1
    assert m[("campus_ingest_landing_seconds_count", ())] == 3
    assert m[("campus_ingest_in_flight", ())] == 0
    assert m[("campus_ingest_heartbeats_total", ())] == 1
    assert m[("campus_ingest_fleet_gateways", (("state", "online"),))] == 1
    assert m[("campus_ingest_fleet_gateways", (("state", "offline"),))] == 1


def test_two_apps_share_no_metrics(wh: Warehouse) -> None:
    a = create_app(ApiSettings(), wh, tokens=token_store())
    b = create_app(ApiSettings(), wh, tokens=token_store())
    a.state.ctx.metrics.duplicates.inc(5)
    assert b.state.ctx.metrics.duplicates._value.get() == 0
    assert a.state.ctx.metrics.registry is not b.state.ctx.metrics.registry


def test_openapi_and_docs_are_served(api: ApiServer) -> None:
    with api.client() as c:
        spec = c.get("/openapi.json").json()
        docs = c.get("/docs")
    assert {"/v1/batches", "/v1/heartbeats", "/v1/fleet", "/v1/fleet/{gateway}", "/healthz", "/readyz",
            "/metrics"} <= set(spec["paths"])
    post = spec["paths"]["/v1/batches"]["post"]
    assert CONTENT_TYPE in post["requestBody"]["content"]
    assert {"200", "201", "400", "401", "403", "409", "413", "415", "429", "503"} <= set(post["responses"])
    assert "sent_at_ms" in str(spec["paths"]["/v1/heartbeats"]["post"]["requestBody"])
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_unknown_route_and_method_use_the_error_body(api: ApiServer) -> None:
    with api.client() as c:
        missing = c.get("/v1/nothing")
        method = c.get("/v1/batches")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (method.status_code, method.json()["error"]["code"]) == (405, "method_not_allowed")


def test_no_token_ever_reaches_a_log(api: ApiServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with api.client() as c:
        c.post("/v1/batches", content=body_of(1), headers=batch_headers())
        c.post("/v1/batches", content=body_of(1, "gw-b"), headers=batch_headers("gw-a"))
        c.post("/v1/batches", content=body_of(1),
               headers={**batch_headers(), "Authorization": "Bearer wrong"})
        c.get("/v1/fleet", headers=auth("operator"))
        body = c.post("/v1/batches", content=body_of(1, "gw-b"), headers=batch_headers("gw-a")).text
    secrets = [*GATEWAYS.values(), OPERATOR_TOKEN]
    server_log = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records
                           if not r.name.startswith(("httpx", "httpcore")))  # the client's own log aside
    assert "gateway_mismatch" in server_log  # the refusal is logged (by names, never by token)
    assert not any(s in server_log for s in secrets)
    assert not any(s in body for s in secrets)
    assert not re.search(r"Bearer (?!realm)\S", server_log)

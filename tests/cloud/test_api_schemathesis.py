"""Issue 7: schemathesis against the ingest API's own OpenAPI schema, over real HTTP on 127.0.0.1.

The API (``create_app`` on a DuckDB warehouse filled with campus-sim traffic and its faults, so the quality
and indicator endpoints answer with real rows) is served by a real uvicorn. Its ``/openapi.json`` is
loaded with ``schemathesis.openapi.from_url``; every operation gets generated requests, valid and invalid
(schemathesis 4 runs both modes), sent with a token the operation accepts; two valid requests in three name
a gateway, table, finding or batch that exists, so success answers are checked too. Checked for every response:
no 5xx, a documented status code, the documented content type and a body that matches the documented
schema, and invalid input refused with a 4xx. Bounded (examples per operation, no shrinking) to stay
well under a minute.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from cloud_ingest.api import TokenStore, hash_token
from cloud_ingest.warehouse import open_warehouse
from edge_agent.wire import CONTENT_TYPE
from tests.cloud.api_fixtures import GATEWAYS, OPERATOR_TOKEN, ApiServer, api_on_warehouse, body_of
from tests.quality import sim_run

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))  # per operation and generation mode
STEWARD_TOKEN = "token-steward-0123456789abcdef"
# Batches are opaque bytes to schemathesis (``type: string, format: binary``): send them as they are generated.
schemathesis.serializer.alias(CONTENT_TYPE, "application/octet-stream")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


def tokens() -> TokenStore:
    gateways = {gw: hash_token(t) for gw, t in GATEWAYS.items()}
    gateways[sim_run.GATEWAY] = hash_token("token-qlt-0123456789abcdef")
    return TokenStore.from_hashes(gateways, {"noc": hash_token(OPERATOR_TOKEN)},
                                  readers={"steward": {"role": "data_steward", "token": hash_token(STEWARD_TOKEN)}})


def token_for(method: str, path: str) -> str | None:
    """A token the operation accepts: gateways post, operators read the fleet, readers read data."""
    if path in ("/healthz", "/readyz", "/metrics"):
        return None
    if path.startswith(("/v1/ads", "/v1/quality")):
        return STEWARD_TOKEN
    if path == "/v1/fleet":
        return OPERATOR_TOKEN
    return GATEWAYS["gw-a"]  # POST /v1/batches, POST /v1/heartbeats, GET /v1/fleet/{gateway}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    db = tmp_path_factory.mktemp("schemathesis") / "wh.duckdb"
    wh = open_warehouse(f"duckdb:///{db}")
    try:
        sim_run.run(wh, "gaps=0.03,duplicates=0.03,out_of_range=0.02,skew=0.03,malformed=0.05", devices=12,
                    n=1500, mix="all", late_every=4)
        wh.run_transforms()
        with api_on_warehouse(wh, tokens=tokens()) as api:
            yield api
    finally:
        wh.close()


@dataclass
class Known:
    """Names that exist on the served API, read from the API itself."""

    tables: list[str]
    findings: list[str]
    seqs: Iterator[int] = field(default_factory=lambda: itertools.count(1))


def known_names(served: ApiServer) -> Known:
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {STEWARD_TOKEN}"}, timeout=30) as c:
        tables = [t["table"] for t in c.get("/v1/ads").raise_for_status().json()["tables"]]
        findings = [f["finding_id"] for f in c.get("/v1/quality/findings").raise_for_status().json()["findings"]]
    assert tables
    assert findings
    return Known(tables, findings)


def steer(case: Any, n: int, known: Known) -> list[Any]:
    """Two valid requests in three name things that exist (generated names are all unknown: 403/404), so
    the success paths and their documented bodies are checked too, not only the refusals. Returns the
    checks to run."""
    if n % 3 == 0:
        return CHECKS
    label = f"{case.method.upper()} {case.operation.path}"
    if label == "POST /v1/batches":
        case.body = body_of(next(known.seqs), "gw-a", n=1 + n % 50)
        # schemathesis re-validates a replaced body as JSON and takes bytes for a schema violation
        return [c for c in CHECKS if c is not negative_data_rejection]
    if label == "POST /v1/heartbeats" and isinstance(case.body, dict):
        case.body["gateway"] = "gw-a"
    elif label == "GET /v1/fleet/{gateway}":
        case.path_parameters["gateway"] = "gw-a"
    elif label == "GET /v1/ads/{table}":
        case.path_parameters["table"] = known.tables[n % len(known.tables)]
    elif label.startswith(("GET /v1/quality/findings/", "POST /v1/quality/findings/")):
        case.path_parameters["finding_id"] = known.findings[n % len(known.findings)]
    return CHECKS


def fuzz(op: Any, mode: GenerationMode, headers: dict[str, str], statuses: Counter[int], known: Known) -> Any:
    """A Hypothesis test sending ``op``'s generated requests (``mode``) with ``headers`` and checking answers."""
    n = itertools.count()

    @hypothesis.given(case=op.as_strategy(generation_mode=mode))
    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking
                         suppress_health_check=list(hypothesis.HealthCheck))
    def run(case: Any) -> None:
        checks = steer(case, next(n), known) if mode is GenerationMode.POSITIVE else CHECKS
        response = case.call_and_validate(headers=headers, checks=checks, timeout=10)
        statuses[response.status_code] += 1

    return run


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_matches_its_openapi_schema(served: ApiServer, mode: GenerationMode) -> None:
    # One test per generation mode, looping over the operations (schemathesis' lazy pytest loader,
    # ``schemathesis.pytest.from_fixture``, sets ``Node._nodeid``, which pytest 9 no longer has).
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json", timeout=10)
    known = known_names(served)
    failures: dict[str, str] = {}
    answered: dict[str, Counter[int]] = {}
    tried = 0
    for result in schema.get_all_operations():
        op = result.ok()  # a part of the schema schemathesis cannot read is a failure too
        token = token_for(op.method.upper(), op.path)
        statuses = answered[op.label] = Counter()
        run = fuzz(op, mode, {"Authorization": f"Bearer {token}"} if token else {}, statuses, known)
        try:
            run()
        except hypothesis.errors.Unsatisfiable:  # nothing to negate (no parameters, or only free-form strings)
            assert mode is GenerationMode.NEGATIVE, op.label
            continue
        except FailureGroup as group:  # the checks that failed, each with a curl line to reproduce
            failures[op.label] = "\n".join(str(f)[:1500] for f in group.exceptions)
        except Exception as exc:  # the request itself failed (connection, timeout)
            failures[op.label] = f"{type(exc).__name__}: {exc}"[:1500]
        tried += 1
    assert tried >= (10 if mode is GenerationMode.POSITIVE else 4)
    assert not failures, "\n\n".join(f"{label} ({mode}):\n{text}" for label, text in failures.items())
    print(f"\nschemathesis {mode}: " + "; ".join(f"{label} {dict(sorted(c.items()))}" for label, c in answered.items()))
    if mode is GenerationMode.POSITIVE:  # the tokens worked: not only refusals were checked
        ok = {label for label, c in answered.items() if any(200 <= s < 300 for s in c)}
        assert {label for label in answered if label != "GET /readyz"} <= ok, answered


def test_schema_documents_what_the_api_answers(served: ApiServer) -> None:
    """What schemathesis found: validation errors are 400 with the error body (FastAPI documented 422 with
    its own body on every route with parameters), and the ADS routes documented none of their refusals."""
    spec = httpx.get(f"{served.url}/openapi.json", timeout=10).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert {"400", "401", "403", "404", "503"} <= set(spec["paths"]["/v1/ads/{table}"]["get"]["responses"])
    assert {"401", "403"} <= set(spec["paths"]["/v1/ads"]["get"]["responses"])
    bad = httpx.get(f"{served.url}/v1/ads/x", params={"limit": "many"}, timeout=10,
                    headers={"Authorization": f"Bearer {STEWARD_TOKEN}"})
    assert (bad.status_code, bad.json()["error"]["code"], bad.json()["error"]["field"]) == (400, "bad_request",
                                                                                            "query.limit")

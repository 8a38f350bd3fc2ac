"""The quality API over real HTTP (uvicorn on 127.0.0.1): the report is build_report's JSON, findings and their
evidence are readable by readers whose role may read L2, statuses change only by a data steward, every read is
audited, and every response matches the OpenAPI schema the app publishes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cloud_ingest.api import TokenStore, hash_token
from cloud_ingest.api.quality import READ_LEVEL, READ_TABLES
from cloud_ingest.governance.classification import level_rank
from cloud_ingest.quality.findings import finding_rows
from cloud_ingest.quality.report import build_report, report_json
from cloud_ingest.warehouse.schema import load_schema
from tests.cloud.api_fixtures import GATEWAYS, OPERATOR_TOKEN, ApiServer, api_on_warehouse
from tests.quality.conftest import Faulty

READERS = {"dash": ("analyst", "tok-qdash-0123456789abcd"), "kiosk": ("public_viewer", "tok-qkiosk-0123456789ab"),
           "steward": ("data_steward", "tok-qsteward-0123456789"), "sec": ("security_admin", "tok-qsec-0123456789abcd")}
ROUTES = ("/v1/quality/report", "/v1/quality/findings", "/v1/quality/findings/x/evidence")


def _tokens() -> TokenStore:
    return TokenStore.from_hashes({gw: hash_token(t) for gw, t in GATEWAYS.items()},
                                  {"noc": hash_token(OPERATOR_TOKEN)},
                                  readers={n: {"role": r, "token": hash_token(t)} for n, (r, t) in READERS.items()})


def auth(reader: str) -> dict[str, str]:
    token = GATEWAYS[reader] if reader in GATEWAYS else READERS[reader][1]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api(faulty: Faulty) -> Iterator[ApiServer]:
    with api_on_warehouse(faulty.wh, tokens=_tokens()) as server:
        yield server


@pytest.fixture(scope="module")
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client(timeout=120.0) as c:
        yield c


@pytest.fixture(scope="module")
def spec(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/openapi.json").json()
    return body


def _conforms(spec: dict[str, Any], path: str, method: str, resp: httpx.Response) -> None:
    """``resp``'s JSON validates against the schema the OpenAPI document declares for its status."""
    declared = spec["paths"][path][method]["responses"][str(resp.status_code)]["content"]["application/json"]
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(spec, DRAFT202012))
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in
                       ("paths", path, method, "responses", str(resp.status_code), "content", "application/json",
                        "schema"))
    assert "schema" in declared
    validator = jsonschema.Draft202012Validator({"$ref": f"urn:openapi#/{pointer}"}, registry=registry)
    errors = [e.message for e in validator.iter_errors(resp.json())]
    assert not errors, (path, resp.status_code, errors[:3])


def _error(resp: httpx.Response, status: int, code: str | None = None, field: str | None = None) -> None:
    assert resp.status_code == status, resp.text[:300]
    err = resp.json()["error"]
    assert err["code"]
    assert err["detail"]
    assert err["field"]
    if code:
        assert err["code"] == code
    if field:
        assert err["field"] == field


def _audit(faulty: Faulty) -> list[tuple[Any, ...]]:
    return faulty.wh.query("SELECT consumer_name, role_code, table_name, filter_text, row_cnt FROM meta_pub_audit_log "
                           "ORDER BY read_ms, row_cnt")[1]


def test_report_over_http_is_build_report(client: httpx.Client, faulty: Faulty, spec: dict[str, Any]) -> None:
    r = client.get("/v1/quality/report", headers=auth("dash"), params={"period": "day"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == json.loads(report_json(build_report(faulty.wh)))
    assert r.json()["findings"]
    assert r.json()["campus"]
    _conforms(spec, "/v1/quality/report", "get", r)
    day = r.json()["campus"][0]["dt"]
    same = client.get("/v1/quality/report", headers=auth("sec"), params={"campus_id": "cmp-q", "from": day, "to": day})
    assert same.json() == r.json()
    for params in ({"campus_id": "elsewhere"}, {"from": "2030-01-01"}, {"to": "2000-01-01"}):
        empty = client.get("/v1/quality/report", headers=auth("dash"), params=params).json()
        assert all(empty[k] == [] for k in ("campus", "campus_hourly", "worst_devices", "worst_rooms", "gaps",
                                             "findings")), params
        assert empty["dimensions"]
        assert empty["period"] == "day"


def test_missing_or_wrong_credentials_are_refused(client: httpx.Client) -> None:
    for route in ROUTES:
        _error(client.get(route), 401, "missing_token", "Authorization")
        _error(client.get(route, headers={"Authorization": "Bearer not-a-token"}), 401, "invalid_token")
        _error(client.get(route, headers=auth("gw-a")), 403, "not_a_reader", "Authorization")
        _error(client.get(route, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}), 403, "not_a_reader")
        _error(client.get(route, headers=auth("kiosk")), 403, "level_too_high", "Authorization")
    post = "/v1/quality/findings/x"
    _error(client.post(post, json={"status": "fixed"}), 401, "missing_token")
    _error(client.post(post, json={"status": "fixed"}, headers=auth("gw-a")), 403, "not_a_reader")
    for reader in ("kiosk", "dash", "sec"):  # only the governance office changes findings
        _error(client.post(post, json={"status": "fixed"}, headers=auth(reader)), 403, "steward_only",
               "Authorization")


def test_bad_input_is_a_4xx_with_code_and_field(client: httpx.Client, faulty: Faulty) -> None:
    h = auth("dash")
    _error(client.get("/v1/quality/report", headers=h, params={"period": "week"}), 400, "bad_request", "query.period")
    _error(client.get("/v1/quality/report", headers=h, params={"from": "2024-13-01"}), 400, "bad_request",
           "query.from")
    _error(client.get("/v1/quality/findings", headers=h, params={"to": "1725235200"}), 400, "bad_request",
           "query.to")
    _error(client.get("/v1/quality/report", headers=h, params={"campus_id": "a\x01b"}), 400, "bad_request",
           "query.campus_id")
    _error(client.get("/v1/quality/findings", headers=h, params={"status": "closed"}), 400, "bad_request",
           "query.status")
    _error(client.get("/v1/quality/findings", headers=h, params={"limit": 0}), 400, "bad_request", "query.limit")
    _error(client.get("/v1/quality/report", headers=h, params=[("to", "2024-09-02"), ("to", "2024-09-03")]), 400,
           "bad_request", "query.to")
    _error(client.get("/v1/quality/findings/nope/evidence", headers=h), 404, "unknown_finding", "finding_id")
    _error(client.get("/v1/quality/findings/x/evidence", headers=h, params={"limit": 10_001}), 400, "bad_request",
           "query.limit")
    _error(client.get("/v1/quality/findings/a%00b/evidence", headers=h), 400, "bad_finding_id", "finding_id")
    fid = quote(finding_rows(faulty.wh, limit=1)[0]["finding_id"], safe=":")
    s = auth("steward")
    _error(client.post(f"/v1/quality/findings/{fid}", content=b"{", headers={**s, "Content-Type": "application/json"}),
           400, "invalid_body", "body")
    _error(client.post(f"/v1/quality/findings/{fid}", json=[1], headers=s), 400, "invalid_body", "body")
    _error(client.post(f"/v1/quality/findings/{fid}", json={"status": "open"}, headers=s), 400, "invalid_body",
           "status")
    _error(client.post(f"/v1/quality/findings/{fid}", json={"status": "fixed", "by": "me"}, headers=s), 400,
           "invalid_body", "by")
    _error(client.post(f"/v1/quality/findings/{fid}", json={"status": "fixed", "note": "x" * 2001}, headers=s), 400,
           "invalid_body", "note")
    _error(client.post(f"/v1/quality/findings/{fid}", content=b"status=fixed",
                       headers={**s, "Content-Type": "application/x-www-form-urlencoded"}), 415,
           "unsupported_media_type", "Content-Type")
    _error(client.post(f"/v1/quality/findings/{fid}", content=b"x" * 9000,
                       headers={**s, "Content-Type": "application/json"}), 413, "body_too_large")
    _error(client.post("/v1/quality/findings/nope", json={"status": "fixed"}, headers=s), 404, "unknown_finding",
           "finding_id")
    assert finding_rows(faulty.wh, finding_id=finding_rows(faulty.wh, limit=1)[0]["finding_id"])[0][
        "status_code"] == "open"  # nothing above changed anything


def test_findings_status_round_trip(client: httpx.Client, faulty: Faulty, spec: dict[str, Any]) -> None:
    listed = client.get("/v1/quality/findings", headers=auth("dash"), params={"status": "open"})
    assert listed.status_code == 200
    _conforms(spec, "/v1/quality/findings", "get", listed)
    body = listed.json()
    assert body["count"] == len(body["findings"]) == len(finding_rows(faulty.wh, status="open"))
    # a device id with '/' in it: the id is percent-encoded in the path
    target = next(f for f in body["findings"] if "/" in f["scope_id"] and f["scope_code"] == "device")
    fid = target["finding_id"]
    path = f"/v1/quality/findings/{quote(fid, safe=':')}"
    acked = client.post(path, json={"status": "acknowledged", "note": "sensor moved off the radiator"},
                        headers=auth("steward"))
    assert acked.status_code == 200, acked.text
    _conforms(spec, "/v1/quality/findings/{finding_id}", "post", acked)
    assert (acked.json()["finding_id"], acked.json()["status_code"], acked.json()["note_text"]) == (
        fid, "acknowledged", "sensor moved off the radiator")
    assert acked.json()["updated_ms"] >= target["updated_ms"]
    now = client.get("/v1/quality/findings", headers=auth("dash"), params={"status": "acknowledged"}).json()
    assert [f["finding_id"] for f in now["findings"]] == [fid]
    report = client.get("/v1/quality/report", headers=auth("dash")).json()
    assert {f["finding_id"]: f["status_code"] for f in report["findings"]}[fid] == "acknowledged"
    assert fid not in {f["finding_id"] for f in client.get("/v1/quality/findings", headers=auth("dash"),
                                                           params={"status": "open"}).json()["findings"]}
    fixed = client.post(path, json={"status": "fixed"}, headers=auth("steward"))
    assert (fixed.json()["status_code"], fixed.json()["note_text"]) == ("fixed", None)
    rows = finding_rows(faulty.wh, finding_id=fid)
    assert rows[0]["status_code"] == "fixed"
    # narrowing by campus and day
    one = client.get("/v1/quality/findings", headers=auth("dash"), params={"campus_id": "cmp-q", "limit": 2}).json()
    assert one["count"] == 2
    assert client.get("/v1/quality/findings", headers=auth("dash"),
                      params={"campus_id": "other"}).json() == {"count": 0, "findings": []}


def test_evidence_over_http(client: httpx.Client, faulty: Faulty, spec: dict[str, Any]) -> None:
    from cloud_ingest.quality.evidence import evidence

    findings = client.get("/v1/quality/findings", headers=auth("dash")).json()["findings"]
    dims = set()
    for f in findings:
        if f["dimension_code"] in dims:
            continue
        dims.add(f["dimension_code"])
        r = client.get(f["evidence"], headers=auth("dash"), params={"limit": 7})
        assert r.status_code == 200, r.text[:300]
        _conforms(spec, "/v1/quality/findings/{finding_id}/evidence", "get", r)
        want = evidence(faulty.wh, f["finding_id"], limit=7).as_dict()
        assert r.json() == json.loads(json.dumps(want))
        assert r.json()["finding_id"] == f["finding_id"]
        assert len(r.json()["rows"]) <= 7
        assert all({"gateway_id", "batch_seq", "load_id"} <= set(row) for row in r.json()["rows"])
    assert len(dims) == 6


def test_reads_are_audited(client: httpx.Client, faulty: Faulty) -> None:
    before = len(_audit(faulty))
    client.get("/v1/quality/report", headers=auth("dash"), params={"campus_id": "cmp-q"})
    listed = client.get("/v1/quality/findings", headers=auth("steward"), params={"limit": 5}).json()
    ev = client.get(listed["findings"][0]["evidence"], headers=auth("sec"), params={"limit": 4}).json()
    client.get("/v1/quality/report", headers=auth("kiosk"))  # refused: nothing went out, nothing logged
    rows = _audit(faulty)[before:]
    assert [(r[0], r[1], r[2]) for r in rows] == [("dash", "analyst", "ads_qlt_campus_score_1d"),
                                                  ("steward", "data_steward", "meta_qlt_finding_cur"),
                                                  ("sec", "security_admin", "meta_qlt_finding_cur")]
    assert json.loads(rows[0][3])["campus_id"] == "cmp-q"
    assert rows[1][4] == 5
    filters = json.loads(rows[2][3])
    assert filters["finding_id"] == ev["finding_id"]
    assert filters["limit"] == 4
    assert rows[2][4] == len(ev["rows"])
    assert filters["sources"]


def test_openapi_declares_the_quality_routes(spec: dict[str, Any]) -> None:
    from cloud_ingest.quality.report import report_schema

    paths = spec["paths"]
    assert {"/v1/quality/report", "/v1/quality/findings", "/v1/quality/findings/{finding_id}/evidence",
            "/v1/quality/findings/{finding_id}"} <= set(paths)
    report = paths["/v1/quality/report"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(report["required"]) == set(report_schema()["required"])
    assert "$ref" not in json.dumps(report)  # self-contained: the $defs of report.schema.json are inlined
    for path, method in (("/v1/quality/report", "get"), ("/v1/quality/findings", "get"),
                         ("/v1/quality/findings/{finding_id}/evidence", "get"),
                         ("/v1/quality/findings/{finding_id}", "post")):
        assert {"400", "401", "403", "404"} <= set(paths[path][method]["responses"]), path
    assert "status" in json.dumps(paths["/v1/quality/findings/{finding_id}"]["post"]["requestBody"])


def test_read_level_covers_every_column_read() -> None:
    schema = load_schema()
    levels = {c.level for t in READ_TABLES for c in schema.table(t).columns}
    assert max(level_rank(x) for x in levels) == level_rank(READ_LEVEL)

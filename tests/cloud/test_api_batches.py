"""POST /v1/batches against a real uvicorn server and a real DuckDB warehouse file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_ingest.warehouse import Warehouse, open_warehouse
from edge_agent.wire import MAGIC, encode
from tests.cloud.api_fixtures import (
    ApiServer,
    api_on_warehouse,
    auth,
    batch_headers,
    body_of,
    make_batch,
    open_test_warehouse,
)


def _ods_counts(wh: Warehouse, gateway: str = "gw-a") -> tuple[int, int]:
    _, rows = wh.query("SELECT (SELECT COUNT(*) FROM ods_iot_batch_di WHERE gateway_id = ?), "
                       "(SELECT COUNT(*) FROM ods_iot_reading_di WHERE gateway_id = ?)", (gateway, gateway))
    return int(rows[0][0]), int(rows[0][1])


def _error(resp: object) -> dict[str, object]:
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "field", "detail"}
    return body["error"]  # type: ignore[no-any-return]


def test_stored_then_duplicate_writes_once(api: ApiServer, wh: Warehouse) -> None:
    body = body_of(1, events=2)
    with api.client() as c:
        first = c.post("/v1/batches", content=body, headers=batch_headers())
        again = c.post("/v1/batches", content=body, headers=batch_headers())
    assert first.status_code == 201, first.text
    assert first.json() == {"status": "stored", "gateway": "gw-a", "seq": 1, "readings": 10, "events": 2}
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["readings"] == 0
    assert _ods_counts(wh) == (1, 10)


def test_same_seq_other_content_is_409(api: ApiServer, wh: Warehouse) -> None:
    with api.client() as c:
        assert c.post("/v1/batches", content=body_of(7), headers=batch_headers()).status_code == 201
        resp = c.post("/v1/batches", content=body_of(7, offset=1.0), headers=batch_headers())
    assert resp.status_code == 409
    assert _error(resp)["code"] == "sequence_conflict"
    assert _error(resp)["field"] == "seq"
    assert _ods_counts(wh) == (1, 10)


def test_out_of_order_sequences_are_accepted(api: ApiServer, wh: Warehouse) -> None:
    with api.client() as c:
        statuses = [c.post("/v1/batches", content=body_of(seq), headers=batch_headers()).status_code
                    for seq in (5, 2, 9, 1, 3)]
    assert statuses == [201] * 5
    assert _ods_counts(wh) == (5, 50)


def test_same_seq_from_two_gateways_is_independent(api: ApiServer, wh: Warehouse) -> None:
    with api.client() as c:
        a = c.post("/v1/batches", content=body_of(1, "gw-a"), headers=batch_headers("gw-a"))
        b = c.post("/v1/batches", content=body_of(1, "gw-b"), headers=batch_headers("gw-b"))
    assert (a.status_code, b.status_code) == (201, 201)
    assert _ods_counts(wh, "gw-b") == (1, 10)


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_token"),
    ({"Authorization": "Bearer not-a-token"}, "invalid_token"),
    ({"Authorization": "Basic Z3c6dG9rZW4="}, "invalid_token"),
    ({"Authorization": "Bearer"}, "invalid_token"),
])
def test_401_without_a_valid_token(api: ApiServer, headers: dict[str, str], code: str) -> None:
    with api.client() as c:
        resp = c.post("/v1/batches", content=body_of(1),
                      headers={"Content-Type": "application/vnd.campus.batch", **headers})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert _error(resp)["code"] == code
    assert _error(resp)["field"] == "Authorization"


def test_403_a_gateway_cannot_write_as_another(api: ApiServer, wh: Warehouse) -> None:
    with api.client() as c:
        resp = c.post("/v1/batches", content=body_of(1, "gw-b"), headers=batch_headers("gw-a"))
        op = c.post("/v1/batches", content=body_of(1, "gw-a"), headers=batch_headers("operator"))
    assert resp.status_code == 403
    assert _error(resp) == {**_error(resp), "code": "gateway_mismatch", "field": "gateway"}
    assert op.status_code == 403
    assert _ods_counts(wh, "gw-b") == (0, 0)


@pytest.mark.parametrize("ctype", ["application/json", "application/octet-stream", ""])
def test_415_unknown_content_type(api: ApiServer, ctype: str) -> None:
    with api.client() as c:
        resp = c.post("/v1/batches", content=body_of(1), headers={**auth(), "Content-Type": ctype})
    assert resp.status_code == 415
    assert _error(resp)["code"] == "unsupported_media_type"
    assert _error(resp)["field"] == "Content-Type"


def test_content_type_parameters_are_ignored(api: ApiServer) -> None:
    with api.client() as c:
        resp = c.post("/v1/batches", content=body_of(1),
                      headers={**auth(), "Content-Type": "application/vnd.campus.batch; charset=binary"})
    assert resp.status_code == 201


def test_415_unsupported_format_version(api: ApiServer) -> None:
    body = body_of(1)
    v2 = body[:4] + bytes([2]) + body[5:]
    with api.client() as c:
        version = c.post("/v1/batches", content=v2, headers=batch_headers())
        magic = c.post("/v1/batches", content=b"PK\x03\x04" + body[4:], headers=batch_headers())
    assert version.status_code == 415
    assert _error(version)["code"] == "unsupported_version"
    assert _error(version)["field"] == "version"
    assert magic.status_code == 415
    assert _error(magic)["code"] == "unsupported_format"


def _flip_last_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0xFF])


@pytest.mark.parametrize(("mangle", "field"), [
    (lambda b: b[:3], "magic"),
    (lambda b: MAGIC + bytes([1]), "header"),
    (lambda b: b[:5] + b"\xc1" + b[6:], "header"),
    (lambda b: b[:40], None),
    (_flip_last_byte, None),
    (lambda b: b + b"\x00" * 8, None),
    (lambda b: b"", "magic"),
])
def test_400_malformed_names_the_field(api: ApiServer, wh: Warehouse, mangle: object,
                                       field: str | None) -> None:
    body = mangle(body_of(1))  # type: ignore[operator]
    with api.client() as c:
        resp = c.post("/v1/batches", content=body, headers=batch_headers())
    assert resp.status_code == 400, resp.text
    err = _error(resp)
    assert err["code"] == "malformed_batch"
    assert err["field"]
    if field is not None:
        assert err["field"] == field
    assert _ods_counts(wh) == (0, 0)


def test_a_rejected_body_does_not_block_the_sequence(api: ApiServer) -> None:
    with api.client() as c:
        bad = c.post("/v1/batches", content=_flip_last_byte(body_of(4)), headers=batch_headers())
        good = c.post("/v1/batches", content=body_of(4), headers=batch_headers())
    assert (bad.status_code, good.status_code) == (400, 201)


def test_x_gateway_headers_are_checked(api: ApiServer, wh: Warehouse) -> None:
    body = body_of(1)
    with api.client() as c:
        foreign = c.post("/v1/batches", content=body, headers={**batch_headers(), "X-Gateway-Id": "gw-b"})
        other = c.post("/v1/batches", content=body_of(1, "gw-b"),
                       headers={**batch_headers("gw-b"), "X-Gateway-Id": "gw-b", "X-Batch-Seq": "2"})
        bad_seq = c.post("/v1/batches", content=body, headers={**batch_headers(), "X-Batch-Seq": "one"})
        ok = c.post("/v1/batches", content=body,
                    headers={**batch_headers(), "X-Gateway-Id": "gw-a", "X-Batch-Seq": "1"})
    assert _error(foreign)["code"] == "gateway_mismatch"
    assert (foreign.status_code, _error(foreign)["field"]) == (403, "X-Gateway-Id")
    assert (other.status_code, _error(other)["code"], _error(other)["field"]) == (
        400, "header_mismatch", "X-Batch-Seq")
    assert (bad_seq.status_code, _error(bad_seq)["field"]) == (400, "X-Batch-Seq")
    assert ok.status_code == 201
    assert _ods_counts(wh, "gw-b") == (0, 0)


def test_reencoded_identical_content_is_a_duplicate(api: ApiServer) -> None:
    batch = make_batch(6)
    with api.client() as c:
        first = c.post("/v1/batches", content=encode(batch, level=1), headers=batch_headers())
        again = c.post("/v1/batches", content=encode(batch, level=19), headers=batch_headers())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["status"] == "duplicate"


def test_503_with_retry_after_when_landing_fails(tmp_path: Path) -> None:
    """A real fault: the warehouse is closed under the running API; the edge is told to retry."""
    wh = open_test_warehouse(tmp_path)
    with api_on_warehouse(wh) as server, server.client() as c:
        wh.close()
        resp = c.post("/v1/batches", content=body_of(1), headers=batch_headers())
        ready = c.get("/readyz")
    assert resp.status_code == 503
    assert int(resp.headers["retry-after"]) > 0
    assert _error(resp)["code"] == "landing_failed"
    assert ready.status_code == 503


def test_many_batches_with_events(api: ApiServer, wh: Warehouse) -> None:
    with api.client() as c:
        for seq in range(20):
            body = encode(make_batch(seq, n=200, events=3))
            assert c.post("/v1/batches", content=body, headers=batch_headers()).status_code == 201
    assert _ods_counts(wh) == (20, 4000)


def test_idempotency_on_each_engine(engine_url: str) -> None:
    """The same contract on DuckDB and on a real PostgreSQL server (``engine_url`` from conftest.py)."""
    with open_warehouse(engine_url) as wh, api_on_warehouse(wh) as api, api.client() as c:
        codes = [c.post("/v1/batches", content=body, headers=batch_headers()).status_code
                 for body in (body_of(2), body_of(1), body_of(2), body_of(2, offset=1.0))]
        assert codes == [201, 201, 200, 409]
        assert _ods_counts(wh) == (2, 20)

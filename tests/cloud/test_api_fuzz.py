"""Fuzzed bodies and headers against a real server: never a 5xx, every refusal explained.

Hypothesis drives a real uvicorn server over a real DuckDB file (one per module, so examples are fast);
any status outside the documented set, or a refusal without the error body, fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_ingest.api import ApiSettings
from edge_agent.wire import CONTENT_TYPE, FORMAT_VERSION, MAGIC
from tests.cloud.api_fixtures import api_on_warehouse, auth, body_of, open_test_warehouse

ALLOWED = {200, 201, 400, 401, 403, 404, 408, 409, 413, 415, 429}
VALID = body_of(1, n=50, events=2)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    wh = open_test_warehouse(tmp_path_factory.mktemp("fuzz"))
    try:
        with api_on_warehouse(wh, ApiSettings(max_body_bytes=256 * 1024, max_decompressed_bytes=1 << 20,
                                              max_requests=64)) as api, api.client() as c:
            yield c
    finally:
        wh.close()


def _check(resp: httpx.Response) -> None:
    assert resp.status_code in ALLOWED, (resp.status_code, resp.text[:500])
    if resp.status_code >= 400:
        err = resp.json()["error"]
        assert isinstance(err["code"], str)
        assert err["code"]
        assert isinstance(err["detail"], str)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = bytearray(VALID)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        at = draw(st.integers(0, max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del body[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif body:
            body[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0xC1, 0xDC, 0xDD, 0xDE, 0xDF]))
    return bytes(body)


bodies = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=2048).map(lambda b: MAGIC + bytes([FORMAT_VERSION]) + b),
    mutated(),
)


@FUZZ
@given(body=bodies)
def test_fuzzed_batch_bodies(client: httpx.Client, body: bytes) -> None:
    _check(client.post("/v1/batches", content=body, headers={**auth(), "Content-Type": CONTENT_TYPE}))


_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


@FUZZ
@given(ctype=_text, authorization=_text, body=st.sampled_from([VALID, b"", b"{}"]))
def test_fuzzed_headers(client: httpx.Client, ctype: str, authorization: str, body: bytes) -> None:
    headers = {"Content-Type": ctype.strip(), "Authorization": authorization.strip()}
    _check(client.post("/v1/batches", content=body, headers={k: v for k, v in headers.items() if v}))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=12)
_heartbeat = st.fixed_dictionaries({}, optional={
    "gateway": st.sampled_from(["gw-a", "gw-b", "", "x" * 300]) | _json,
    "sent_at_ms": st.integers(-2, 2**64) | _json,
    "interval_s": st.floats(allow_nan=True, allow_infinity=True) | _json,
    "backlog_batches": st.integers(-5, 2**70) | _json,
    "devices_online": _json,
    "oldest_unsent_age_s": st.floats() | _json,
})


@FUZZ
@given(payload=_heartbeat | _json)
def test_fuzzed_heartbeats(client: httpx.Client, payload: Any) -> None:
    body = json.dumps(payload, allow_nan=True).encode()
    resp = client.post("/v1/heartbeats", content=body, headers={**auth(), "Content-Type": "application/json"})
    _check(resp)


@FUZZ
@given(gateway=st.text(max_size=300))
def test_fuzzed_fleet_paths(client: httpx.Client, gateway: str) -> None:
    _check(client.get(f"/v1/fleet/{quote(gateway, safe='')}", headers=auth("operator")))

"""POST /v1/heartbeats and GET /v1/fleet: states by missed heartbeats, with an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cloud_ingest.api import ApiSettings
from cloud_ingest.api.fleet import classify
from cloud_ingest.warehouse import Warehouse
from tests.cloud.api_fixtures import (
    ApiServer,
    ManualClock,
    api_on_warehouse,
    auth,
    batch_headers,
    body_of,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def api(wh: Warehouse, clock: ManualClock) -> Iterator[ApiServer]:
    with api_on_warehouse(wh, clock_ms=clock) as server:
        yield server


def _hb(gateway: str = "gw-a", *, sent_at_ms: int, interval_s: float = 30.0, **extra: Any) -> dict[str, Any]:
    return {"gateway": gateway, "sent_at_ms": sent_at_ms, "interval_s": interval_s, **extra}


def _state(c: Any, gateway: str = "gw-a") -> dict[str, Any]:
    resp = c.get(f"/v1/fleet/{gateway}", headers=auth("operator"))
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_online_late_offline_by_missed_heartbeats(api: ApiServer, clock: ManualClock) -> None:
    with api.client() as c:
        resp = c.post("/v1/heartbeats", headers=auth(), json=_hb(
            sent_at_ms=clock.now_ms + 2_500, backlog_batches=3, backlog_readings=1200,
            oldest_unsent_age_s=42.5, last_upload_ms=clock.now_ms - 1000, devices_online=17, devices_silent=2,
            agent_version="0.1.0", some_future_field=True))
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": "ok", "gateway": "gw-a", "received_ms": clock.now_ms,
                               "clock_offset_ms": 2500}
        s = _state(c)
        assert s["state"] == "online"
        assert (s["backlog_batches"], s["backlog_readings"], s["oldest_unsent_age_s"]) == (3, 1200, 42.5)
        assert (s["devices_online"], s["devices_silent"]) == (17, 2)
        assert s["clock_offset_ms"] == 2500
        assert s["reported_last_upload_ms"] == clock.now_ms - 1000
        assert s["interval_s"] == 30.0
        seen = []
        for seconds in (45, 1, 44, 1):  # 45 s = 1.5 intervals (still online), 90 s = 3 (still late)
            clock.advance(seconds)
            seen.append(_state(c)["state"])
        assert seen == ["online", "late", "late", "offline"]
        assert _state(c)["heartbeat_age_s"] == pytest.approx(91.0)
        c.post("/v1/heartbeats", headers=auth(), json=_hb(sent_at_ms=clock.now_ms - 800))
        back = _state(c)
        assert back["state"] == "online"
        assert back["clock_offset_ms"] == -800


def test_the_interval_is_the_one_declared_in_the_last_heartbeat(api: ApiServer, clock: ManualClock) -> None:
    with api.client() as c:
        c.post("/v1/heartbeats", headers=auth(), json=_hb(sent_at_ms=clock.now_ms, interval_s=600))
        clock.advance(400)
        assert _state(c)["state"] == "online"
        c.post("/v1/heartbeats", headers=auth(), json=_hb(sent_at_ms=clock.now_ms, interval_s=10))
        clock.advance(20)
        assert _state(c)["state"] == "late"


def test_fleet_lists_every_gateway_with_a_token(api: ApiServer, clock: ManualClock) -> None:
    with api.client() as c:
        c.post("/v1/heartbeats", headers=auth("gw-a"), json=_hb("gw-a", sent_at_ms=clock.now_ms))
        assert c.post("/v1/batches", content=body_of(4), headers=batch_headers("gw-a")).status_code == 201
        fleet = c.get("/v1/fleet", headers=auth("operator"))
    assert fleet.status_code == 200
    body = fleet.json()
    assert body["now_ms"] == clock.now_ms
    assert body["counts"] == {"online": 1, "late": 0, "offline": 1}
    by_gw = {g["gateway"]: g for g in body["gateways"]}
    assert set(by_gw) == {"gw-a", "gw-b"}
    assert by_gw["gw-a"]["last_upload_ms"] == clock.now_ms
    assert by_gw["gw-a"]["last_seq"] == 4
    assert by_gw["gw-b"]["state"] == "offline"
    assert by_gw["gw-b"]["last_heartbeat_ms"] is None


def test_last_upload_survives_a_restart(wh: Warehouse, clock: ManualClock) -> None:
    with api_on_warehouse(wh, clock_ms=clock) as api, api.client() as c:
        for seq in (3, 9, 5):
            assert c.post("/v1/batches", content=body_of(seq), headers=batch_headers()).status_code == 201
    clock.advance(60)
    with api_on_warehouse(wh, clock_ms=clock) as api, api.client() as c:
        s = _state(c)
    assert s["last_seq"] == 9
    assert s["last_upload_ms"] == clock.now_ms - 60_000


def test_access_rules(api: ApiServer, clock: ManualClock) -> None:
    with api.client() as c:
        own = c.get("/v1/fleet/gw-a", headers=auth("gw-a"))
        other = c.get("/v1/fleet/gw-b", headers=auth("gw-a"))
        listing = c.get("/v1/fleet", headers=auth("gw-a"))
        anonymous = c.get("/v1/fleet")
        unknown = c.get("/v1/fleet/gw-zzz", headers=auth("operator"))
        as_other = c.post("/v1/heartbeats", headers=auth("gw-a"), json=_hb("gw-b", sent_at_ms=clock.now_ms))
    assert own.status_code == 200
    assert (other.status_code, other.json()["error"]["code"]) == (403, "gateway_mismatch")
    assert (listing.status_code, listing.json()["error"]["code"]) == (403, "operator_only")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "missing_token")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_gateway")
    assert (as_other.status_code, as_other.json()["error"]["code"]) == (403, "gateway_mismatch")


@pytest.mark.parametrize(("body", "field"), [
    ({"gateway": "gw-a", "interval_s": 30}, "sent_at_ms"),
    ({"gateway": "gw-a", "sent_at_ms": 1, "interval_s": 0}, "interval_s"),
    ({"gateway": "gw-a", "sent_at_ms": 1, "interval_s": 30, "backlog_batches": -1}, "backlog_batches"),
    ({"gateway": "gw-a", "sent_at_ms": "yesterday", "interval_s": 30}, "sent_at_ms"),
    ({"gateway": "", "sent_at_ms": 1, "interval_s": 30}, "gateway"),
    ([1, 2, 3], "body"),
])
def test_400_invalid_heartbeat_names_the_field(api: ApiServer, body: Any, field: str) -> None:
    with api.client() as c:
        resp = c.post("/v1/heartbeats", headers=auth(), json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_heartbeat"
    assert resp.json()["error"]["field"] == field


def test_heartbeat_refusals(api: ApiServer) -> None:
    with api.client() as c:
        not_json = c.post("/v1/heartbeats", headers={**auth(), "Content-Type": "application/json"},
                          content=b"{not json")
        wrong_type = c.post("/v1/heartbeats", headers={**auth(), "Content-Type": "text/plain"}, content=b"{}")
        too_big = c.post("/v1/heartbeats", headers={**auth(), "Content-Type": "application/json"},
                         content=b" " * (70 * 1024))
        no_token = c.post("/v1/heartbeats", json=_hb(sent_at_ms=1))
    assert (not_json.status_code, not_json.json()["error"]["field"]) == (400, "body")
    assert (wrong_type.status_code, wrong_type.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "body_too_large")
    assert no_token.status_code == 401


def test_thresholds_are_settings(wh: Warehouse, clock: ManualClock) -> None:
    settings = ApiSettings(late_after_intervals=2.0, offline_after_intervals=5.0)
    with api_on_warehouse(wh, settings, clock_ms=clock) as api, api.client() as c:
        c.post("/v1/heartbeats", headers=auth(), json=_hb(sent_at_ms=clock.now_ms, interval_s=10))
        clock.advance(19)
        first = _state(c)["state"]
        clock.advance(30)
        second = _state(c)["state"]
    assert (first, second) == ("online", "late")


@pytest.mark.parametrize(("elapsed_s", "state"), [
    (0, "online"), (15, "online"), (15.001, "late"), (30, "late"), (30.001, "offline"), (-5, "online")])
def test_classify(elapsed_s: float, state: str) -> None:
    got = classify(1_000_000, 10.0, 1_000_000 + int(elapsed_s * 1000), late_after=1.5, offline_after=3.0)
    assert got == state


def test_never_heard_from_is_offline() -> None:
    assert classify(None, None, 5, late_after=1.5, offline_after=3.0) == "offline"


def test_heartbeats_are_kept_and_a_restarted_service_knows_the_fleet(wh: Warehouse, clock: ManualClock) -> None:
    with api_on_warehouse(wh, clock_ms=clock) as api, api.client() as c:
        for i in range(3):
            resp = c.post("/v1/heartbeats", headers=auth(), json=_hb(
                sent_at_ms=clock.now_ms, backlog_readings=10 * i, quarantined_by_reason={"bad_json": i}))
            assert resp.status_code == 200, resp.text
            clock.advance(10)
    rows = wh.query("SELECT gateway_id, received_ms, heartbeat_json FROM ods_iot_heartbeat_di ORDER BY load_id")[1]
    assert [r[0] for r in rows] == ["gw-a"] * 3
    assert '"quarantined_by_reason":{"bad_json":2}' in rows[-1][2].replace(" ", "")
    with api_on_warehouse(wh, clock_ms=clock) as api, api.client() as c:  # a new process: empty memory
        s = _state(c)
    assert s["state"] == "online"  # 10 s after the last heartbeat (interval 30 s)
    assert s["last_heartbeat_ms"] == rows[-1][1]
    assert s["backlog_readings"] == 20

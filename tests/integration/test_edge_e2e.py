"""End to end with real parts: Mosquitto → ``campus-edge run`` (subprocess) → ingest API → DuckDB ODS.

Includes SIGKILL of the agent mid-stream: every message the publisher got a PUBACK for (the broker has
it) must reach the warehouse; duplicates may appear only through redelivery and are identifiable by
(device, metric, ts).
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.cloud.api_fixtures import GATEWAYS, api_on_warehouse, open_test_warehouse
from tests.integration.edge_harness import Publisher, edge_process, wait_until, write_gateway_config
from tests.support.procs import Broker


def landed(wh) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    _, rows = wh.query("SELECT count(*), count(DISTINCT (device_id, ts_ms)) FROM ods_iot_reading_di "
                       "WHERE metric_code = 'temperature_air'", ())
    return int(rows[0][0]), int(rows[0][1])


@pytest.fixture
def cloud(tmp_path: Path):  # type: ignore[no-untyped-def]
    wh = open_test_warehouse(tmp_path)
    with api_on_warehouse(wh) as api:
        yield api, wh
    wh.close()


def test_publish_to_warehouse_with_endpoints(broker: Broker, cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api, wh = cloud
    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
    with edge_process(cfg, tmp_path / "edge.log") as edge:
        assert wait_until(lambda: edge.status()["mqtt"]["connected"], 15), edge.log()
        pub = Publisher(broker.port)
        pub.publish(300)
        broker_garbage = [("zigbee2mqtt/room-x", b"{not json"), ("unknown/topic", b"1")]
        for topic, body in broker_garbage:
            pub.client.publish(topic, body, qos=1).wait_for_publish(10)
        pub.close()
        assert wait_until(lambda: landed(wh)[1] == 300, 30), (landed(wh), edge.log()[-3000:])
        st = edge.status()
        assert st["ingest"]["messages"] >= 301  # the unknown topic is outside the subscription
        assert st["quarantined_by_reason"].get("malformed") == 1
        assert st["mqtt"]["acked"] == st["ingest"]["messages"]
        assert httpx.get(edge.http + "/healthz").status_code == 200
        assert wait_until(lambda: httpx.get(edge.http + "/readyz").status_code == 200, 10)
        metrics = httpx.get(edge.http + "/metrics").text
        assert 'campus_edge_quarantined_total{reason="malformed"} 1.0' in metrics
        assert "campus_edge_ingest_messages_total" in metrics
        # heartbeats reached the cloud's fleet view
        fleet = httpx.get(api.url + "/v1/fleet/gw-a", headers={"Authorization": f"Bearer {GATEWAYS['gw-a']}"})
        assert wait_until(lambda: httpx.get(api.url + "/v1/fleet/gw-a", headers={
            "Authorization": f"Bearer {GATEWAYS['gw-a']}"}).json()["state"] == "online", 10), fleet.text
        assert edge.stop(signal.SIGTERM) == 0
    assert landed(wh) == (300, 300)  # no duplicates without a crash
    # the stored heartbeats carry the edge's cumulative counters the quality transforms count from
    hb = json.loads(wh.query("SELECT heartbeat_json FROM ods_iot_heartbeat_di ORDER BY received_ms DESC LIMIT 1",
                             ())[1][0][0])
    assert isinstance(hb["quarantined_by_reason"], dict)
    assert isinstance(hb["late"], dict)
    assert isinstance(hb["evicted"], dict)


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing(broker: Broker, cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api, wh = cloud
    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
    total = 3000
    with edge_process(cfg, tmp_path / "edge.log") as edge:
        pub = Publisher(broker.port)
        stop = threading.Event()
        t = threading.Thread(target=pub.publish, args=(total,), kwargs={"pace_s": 0.001, "stop": stop})
        t.start()
        kills = 0
        try:
            for fraction in (0.2, 0.45, 0.7):
                assert wait_until(lambda f=fraction: len(pub.sent) >= total * f, 60)
                edge.kill()
                kills += 1
                edge.start()
            t.join(120)
        finally:
            stop.set()
            t.join(10)
            pub.close()
        assert len(pub.sent) == total
        assert wait_until(lambda: landed(wh)[1] == total, 60), (landed(wh), edge.log()[-4000:])
        rows, distinct = landed(wh)
        assert distinct == total  # every acknowledged-by-broker message reached ODS
        assert rows >= distinct  # extra rows only from redelivery after a kill
        _, keys = wh.query("SELECT device_id, ts_ms FROM ods_iot_reading_di WHERE metric_code='temperature_air'", ())
        assert {(d, int(ts)) for d, ts in keys} == set(pub.sent)
    assert kills == 3


def test_broker_restart_mid_stream(broker: Broker, cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api, wh = cloud
    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
    with edge_process(cfg, tmp_path / "edge.log") as edge:
        assert wait_until(lambda: edge.status()["mqtt"]["connected"], 15)
        pub = Publisher(broker.port)
        pub.publish(300)
        pub.close()
        broker.restart()  # persistence on: the agent's session and its queue survive
        pub = Publisher(broker.port)
        pub.client.reconnect_delay_set(1, 2)
        pub.publish(300)  # published while the agent may still be reconnecting: queued for its session
        pub.close()
        assert wait_until(lambda: landed(wh)[1] == 600, 60), (landed(wh), edge.log()[-3000:])
        assert edge.status()["mqtt"]["connects"] >= 2

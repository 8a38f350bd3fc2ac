"""Issue 7, scenario 4: two ingest replicas on one real PostgreSQL, two gateways, one replica SIGKILLed.

Each gateway (its own broker, its own devices) uploads to its own ``campus-cloud serve`` replica; replica A
is killed mid-stream and restarted. Idempotency lives in the database, so nothing is lost or doubled.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from cloud_ingest.warehouse import open_warehouse
from tests.cloud.api_fixtures import GATEWAYS
from tests.integration.edge_harness import Publisher, edge_process, wait_until, write_gateway_config
from tests.integration.test_cloud_outage import cloud_service
from tests.support.procs import Broker, running_broker


@pytest.mark.slow
@pytest.mark.postgres
def test_two_replicas_one_killed(broker: Broker, pg_url: str, tmp_path: Path) -> None:
    open_warehouse(pg_url).close()  # create the schema once, before two replicas race to
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_broker(tmp_path / "mq-b") as broker_b, \
            cloud_service(tmp_path / "a", pg_url, "replica-a") as rep_a, \
            cloud_service(tmp_path / "b", pg_url, "replica-b") as rep_b:
        cfg_a = write_gateway_config(tmp_path / "a", broker_port=broker.port, api_url=rep_a.url,
                                     token=GATEWAYS["gw-a"], gateway="gw-a")
        cfg_b = write_gateway_config(tmp_path / "b", broker_port=broker_b.port, api_url=rep_b.url,
                                     token=GATEWAYS["gw-b"], gateway="gw-b")
        with edge_process(cfg_a, tmp_path / "a" / "edge.log") as edge_a, \
                edge_process(cfg_b, tmp_path / "b" / "edge.log") as edge_b:
            pubs = [Publisher(broker.port, prefix="a-room"), Publisher(broker_b.port, prefix="b-room")]
            stop = threading.Event()
            threads = [threading.Thread(target=p.publish, args=(100_000,), kwargs={"pace_s": 0.003, "stop": stop})
                       for p in pubs]
            for t in threads:
                t.start()
            try:
                time.sleep(2)
                rep_a.stop(signal.SIGKILL)
                time.sleep(2)
                rep_a.start()
                time.sleep(2)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
                for p in pubs:
                    p.close()
            for edge in (edge_a, edge_b):
                assert wait_until(lambda e=edge: e.status()["backlog"]["readings"] == 0, 60), edge.status()
    wh = open_warehouse(pg_url)
    try:
        for gw, pub in (("gw-a", pubs[0]), ("gw-b", pubs[1])):
            _, rows = wh.query("SELECT DISTINCT device_id, ts_ms FROM ods_iot_reading_di "
                               "WHERE gateway_id = ? AND metric_code = 'temperature_air'", (gw,))
            assert {(d, int(ts)) for d, ts in rows} == set(pub.sent), gw
        wh.run_transforms()
        _, rows = wh.query("SELECT count(*), count(DISTINCT (device_id, ts_ms)) FROM dwd_env_reading_di "
                           "WHERE metric_code = 'temperature_air' AND agg_code = 'raw'", ())
        total = len(pubs[0].sent) + len(pubs[1].sent)
        assert rows[0] == (total, total)
    finally:
        wh.close()

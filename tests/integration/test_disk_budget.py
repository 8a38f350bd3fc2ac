"""Issue 7, scenario 5: the gateway's disk budget runs out while the cloud is away.

The buffer evicts the lowest-priority data first and counts every row it drops; afterwards, what reached the
warehouse plus what the gateway reports as evicted accounts for every published reading — nothing vanishes
without a counter.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from cloud_ingest.warehouse import open_warehouse
from tests.cloud.api_fixtures import GATEWAYS
from tests.integration.edge_harness import Publisher, edge_process, wait_until, write_gateway_config
from tests.integration.test_cloud_outage import cloud_service
from tests.support.procs import Broker

READINGS_PER_MSG = 2  # the harness publisher's temperature + humidity (last_seen is the timestamp)


@pytest.mark.slow
def test_budget_exhausted_everything_accounted_for(broker: Broker, tmp_path: Path) -> None:
    with cloud_service(tmp_path) as cloud:
        cloud.stop(signal.SIGTERM)  # the cloud is away from the start
        cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=cloud.url, token=GATEWAYS["gw-a"])
        cfg.write_text(cfg.read_text().replace("[upload]", "[buffer]\ndisk_budget_mb = 1\n\n[upload]"))
        with edge_process(cfg, tmp_path / "edge.log") as edge:
            pub = Publisher(broker.port)
            pub.publish(12_000)
            pub.close()
            assert wait_until(lambda: edge.status()["ingest"]["messages"] >= 12_000, 60), edge.status()["ingest"]
            st = edge.status()
            evicted = {k: v for k, v in st["evicted"].items() if k.endswith(".readings")
                       and not k.startswith("priority")}
            assert sum(evicted.values()) > 0, st["evicted"]  # the budget forced evictions
            assert st["disk"]["used_bytes"] <= st["disk"]["budget_bytes"] * 1.5
            cloud.start()  # the cloud comes back: what is left drains
            assert wait_until(lambda: edge.status()["backlog"]["readings"] == 0, 60), edge.status()["backlog"]
            final = edge.status()
        cloud.stop(signal.SIGTERM)
    time.sleep(0.5)
    wh = open_warehouse(f"duckdb:///{cloud.db}")
    try:
        _, rows = wh.query("SELECT count(DISTINCT (device_id, metric_code, ts_ms)) FROM ods_iot_reading_di "
                           "WHERE metric_code IN ('temperature_air', 'humidity_rel') AND agg_code = 'raw'", ())
        landed = int(rows[0][0])
    finally:
        wh.close()
    evicted_raw = sum(v for k, v in final["evicted"].items() if k.endswith(".readings") and "raw" in k)
    assert landed + evicted_raw == READINGS_PER_MSG * len(pub.sent), (landed, evicted_raw, final["evicted"])

"""Issue 7, scenario 1 (suite version): ``kill -9`` of the edge daemon 20 times while a publisher streams.

Every message the broker acknowledged to the publisher must reach ODS; by (device, ts) exactly once after
de-duplication — extra ODS rows can only come from redelivery after a kill and never survive into DWD.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.cloud.api_fixtures import GATEWAYS, api_on_warehouse, open_test_warehouse
from tests.integration.edge_harness import Publisher, edge_process, wait_until, write_gateway_config
from tests.support.procs import Broker

KILLS = 20


@pytest.mark.slow
def test_twenty_sigkills_lose_nothing(broker: Broker, tmp_path: Path) -> None:
    wh = open_test_warehouse(tmp_path)
    try:
        with api_on_warehouse(wh) as api:
            cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
            with edge_process(cfg, tmp_path / "edge.log") as edge:
                pub = Publisher(broker.port)
                stop = threading.Event()
                t = threading.Thread(target=pub.publish, args=(100_000,), kwargs={"pace_s": 0.002, "stop": stop})
                t.start()
                try:
                    for _ in range(KILLS):
                        time.sleep(0.4)  # let some messages be received, committed, acked, uploaded
                        edge.kill()
                        edge.start()
                finally:
                    stop.set()
                    t.join(30)
                    pub.close()
                published = set(pub.sent)
                assert len(published) > 1000

                def keys() -> set[tuple[str, int]]:
                    _, rows = wh.query("SELECT DISTINCT device_id, ts_ms FROM ods_iot_reading_di "
                                       "WHERE metric_code = 'temperature_air'", ())
                    return {(d, int(ts)) for d, ts in rows}

                assert wait_until(lambda: keys() >= published, 90), (len(published - keys()), edge.log()[-3000:])
                assert keys() == published
            wh.run_transforms()
            _, rows = wh.query("SELECT count(*), count(DISTINCT (device_id, ts_ms)) FROM dwd_env_reading_di "
                               "WHERE metric_code = 'temperature_air' AND agg_code = 'raw'", ())
            assert rows[0] == (len(published), len(published))  # each reading once; redeliveries never twice
    finally:
        wh.close()

"""Issue 7, scenario 3: the cloud service is killed with SIGKILL mid-stream, then down for seconds.

Real ``campus-cloud serve`` subprocess on a DuckDB file, real daemon, real Mosquitto. The gateway buffers
while the cloud is away and drains afterwards; every published reading is in ODS and exactly once in DWD.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.warehouse import open_warehouse
from tests.cloud.api_fixtures import GATEWAYS, write_tokens_file
from tests.integration.edge_harness import Publisher, edge_process, wait_until, write_gateway_config
from tests.support.procs import Broker, free_port, wait_port


class Cloud:
    """``campus-cloud serve`` as a subprocess that can be killed and restarted on the same port."""

    def __init__(self, tmp: Path, warehouse_url: str | None = None, name: str = "serve") -> None:
        self.port = free_port()
        self.db = tmp / "warehouse.duckdb"
        self.warehouse_url = warehouse_url or f"duckdb:///{self.db}"
        self.tokens = write_tokens_file(tmp / "tokens.toml")
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloud_ingest.cli", "serve", "--warehouse", self.warehouse_url,
                 "--tokens", str(self.tokens), "--port", str(self.port), "--transform-every", "0"],
                stdout=fh, stderr=subprocess.STDOUT, env=dict(os.environ))
        wait_port(self.port, timeout=30)

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(30)


@contextlib.contextmanager
def cloud_service(tmp: Path, warehouse_url: str | None = None, name: str = "serve") -> Iterator[Cloud]:
    cloud = Cloud(tmp, warehouse_url, name)
    cloud.start()
    try:
        yield cloud
    finally:
        if cloud.proc and cloud.proc.poll() is None:
            cloud.stop(signal.SIGTERM)


@pytest.mark.slow
def test_cloud_killed_and_down_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    with cloud_service(tmp_path) as cloud:
        cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=cloud.url, token=GATEWAYS["gw-a"])
        with edge_process(cfg, tmp_path / "edge.log") as edge:
            pub = Publisher(broker.port)
            stop = threading.Event()
            t = threading.Thread(target=pub.publish, args=(100_000,), kwargs={"pace_s": 0.002, "stop": stop})
            t.start()
            try:
                time.sleep(2)
                cloud.stop(signal.SIGKILL)  # mid-request, probably: uploads run every 0.5 s
                time.sleep(1)
                cloud.start()
                time.sleep(2)
                cloud.stop(signal.SIGTERM)  # an outage of several seconds
                time.sleep(5)
                assert edge.status()["backlog"]["readings"] > 0  # buffered while the cloud is away
                cloud.start()
                time.sleep(2)
            finally:
                stop.set()
                t.join(30)
                pub.close()
            published = set(pub.sent)
            assert wait_until(lambda: edge.status()["backlog"]["readings"] == 0
                              and edge.status()["mqtt"]["pending"] == 0, 60), edge.status()["backlog"]
            assert edge.status()["upload"]["retries"] > 0
        cloud.stop(signal.SIGTERM)  # DuckDB has one writer: stop the service, then check the file
    wh = open_warehouse(f"duckdb:///{cloud.db}")
    try:
        _, rows = wh.query("SELECT DISTINCT device_id, ts_ms FROM ods_iot_reading_di "
                           "WHERE metric_code = 'temperature_air'", ())
        assert {(d, int(ts)) for d, ts in rows} == published
        wh.run_transforms()
        _, rows = wh.query("SELECT count(*), count(DISTINCT (device_id, ts_ms)) FROM dwd_env_reading_di "
                           "WHERE metric_code = 'temperature_air' AND agg_code = 'raw'", ())
        assert rows[0] == (len(published), len(published))
    finally:
        wh.close()

"""Issue 7: the cloud service is down for two minutes while devices keep publishing, then comes back.

Real Mosquitto, real ``campus-edge run``, real ``campus-cloud serve`` on a DuckDB file. Every message
carries a per-device id (``Publisher(ids=True)``); after the outage the backlog drains and every message
the broker acknowledged is in DWD exactly once, checked by (device, id). The gateway must resume
uploading promptly once the cloud is back: a successful heartbeat ends the upload backoff (it may
have grown to its 60 s cap during the outage). ``bench/soak.py --outage-s 600`` runs a longer outage.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.cloud.api_fixtures import GATEWAYS
from tests.integration.edge_harness import (
    dwd_ledger_rows,
    edge_process,
    streaming,
    wait_drained,
    wait_until,
    write_gateway_config,
)
from tests.integration.test_cloud_outage import cloud_service
from tests.support.procs import Broker

OUTAGE_S = 120.0
RESUME_WITHIN_S = 10.0  # from the cloud's return to the first batch acknowledged (heartbeat every 1 s)
DRAIN_WITHIN_S = 45.0  # from the cloud's return to an empty backlog


def dwd_ids(db: Path) -> tuple[set[tuple[str, int]], int, int]:
    """(device, id) pairs in DWD, their row count and the number of distinct pairs (run the transforms)."""
    pairs = [(d, int(v)) for d, v in dwd_ledger_rows(db)]
    return set(pairs), len(pairs), len(set(pairs))


@pytest.mark.slow
@pytest.mark.timeout(330)
def test_two_minute_cloud_outage_drains_exactly_once(broker: Broker, tmp_path: Path) -> None:
    with cloud_service(tmp_path) as cloud:
        cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=cloud.url, token=GATEWAYS["gw-a"])
        with edge_process(cfg, tmp_path / "edge.log") as edge:
            with streaming(broker.port, ids=True) as pub:
                time.sleep(3)
                cloud.stop(signal.SIGKILL)
                down_at = time.monotonic()
                time.sleep(OUTAGE_S / 2)
                mid = edge.status()
                assert mid["backlog"]["readings"] > 0
                assert mid["upload"]["retries"] > 0
                assert mid["heartbeat"]["failed"] > 0
                time.sleep(OUTAGE_S - (time.monotonic() - down_at))
                before = edge.status()
                assert before["backlog"]["readings"] > mid["backlog"]["readings"]  # still receiving and buffering
                assert before["mqtt"]["connected"]
                assert before["ingest"]["pipeline_healthy"]
                cloud.start()
                back_at = time.monotonic()
                sent0 = before["upload"]["sent"]
                assert wait_until(lambda: edge.status()["upload"]["sent"] > sent0, RESUME_WITHIN_S, 0.1), \
                    edge.status()["upload"]
                resumed_s = time.monotonic() - back_at
                time.sleep(3)  # traffic continues after the cloud's return
            final = wait_drained(edge, DRAIN_WITHIN_S)
            drained_s = time.monotonic() - back_at
        cloud.stop(signal.SIGTERM)  # DuckDB has one writer: stop the service, then check the file
    ledger = pub.ledger_ids()
    found, rows, distinct = dwd_ids(cloud.db)
    print(f"\nlong outage: {OUTAGE_S:.0f} s down, {len(ledger)} messages acknowledged "
          f"({before['backlog']['readings']} readings buffered at the cloud's return), "
          f"uploads resumed after {resumed_s:.1f} s, backlog drained after {drained_s:.1f} s, "
          f"{final['upload']['retries']} retries; DWD: {rows} rows, lost {len(ledger - found)}, "
          f"duplicated {rows - distinct}, unexpected {len(found - ledger)}")
    assert len(ledger) > 10_000
    assert found == ledger  # nothing lost, nothing invented
    assert rows == distinct == len(ledger)  # exactly once
    assert final["upload"]["dead_letters"] == 0
    assert final["backlog"]["dead_letters"] == 0
    assert final["heartbeat"]["upload_wakes"] >= 1  # the backoff was cut short by the first heartbeat back

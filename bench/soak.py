"""Soak: ``kill -9`` of the edge daemon N times while a publisher streams, or a long cloud outage; then check.

Kill mode (default): real Mosquitto, real ``campus-edge run``, real ingest API on DuckDB (in this process);
N SIGKILLs of the daemon (default 200). Prints the faults injected, readings published, found in ODS,
lost, and duplicates in ODS (redeliveries) vs DWD (must be 0). Results in ``bench/results/soak.json``.

Outage mode (``--outage-s S``): the cloud is a real ``campus-cloud serve`` subprocess on DuckDB; it is
SIGKILLed after ``--lead-s`` of traffic and stays down for S seconds while the publisher keeps streaming
messages with per-device ids, then comes back. ``--kills K`` (default 0 here) also SIGKILLs the daemon
K times, spread over the outage. Prints how long the gateway took to resume uploading and to drain its
backlog, and every acknowledged message checked by (device, id) in DWD: lost, duplicated. Results in
``bench/results/soak-outage.json``. The suite runs the 120 s version
(``tests/integration/test_long_outage.py``); this runs the long ones.

    .venv/bin/python bench/soak.py [--kills 200] [--interval 0.4]
    .venv/bin/python bench/soak.py --outage-s 600 [--kills 5] [--lead-s 5] [--tail-s 10]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud_ingest.warehouse import open_warehouse  # noqa: E402
from tests.cloud.api_fixtures import GATEWAYS, api_on_warehouse, open_test_warehouse  # noqa: E402
from tests.integration.edge_harness import Publisher, edge_process, wait_until, write_gateway_config  # noqa: E402
from tests.integration.test_cloud_outage import cloud_service  # noqa: E402
from tests.support.procs import running_broker  # noqa: E402


def kill_soak(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        wh = open_test_warehouse(tmp)
        with running_broker(tmp / "mq") as broker, api_on_warehouse(wh) as api:
            cfg = write_gateway_config(tmp, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
            with edge_process(cfg, tmp / "edge.log") as edge:
                pub = Publisher(broker.port)
                stop = threading.Event()
                t = threading.Thread(target=pub.publish, args=(10_000_000,), kwargs={"pace_s": 0.002, "stop": stop})
                t0 = time.monotonic()
                t.start()
                for k in range(args.kills):
                    time.sleep(args.interval)
                    edge.kill()
                    edge.start()
                    if (k + 1) % 20 == 0:
                        print(f"  {k + 1} kills, {len(pub.sent)} messages published", file=sys.stderr)
                stop.set()
                t.join(60)
                pub.close()
                published = set(pub.sent)

                def found() -> set[tuple[str, int]]:
                    _, rows = wh.query("SELECT DISTINCT device_id, ts_ms FROM ods_iot_reading_di "
                                       "WHERE metric_code = 'temperature_air'", ())
                    return {(d, int(ts)) for d, ts in rows}

                wait_until(lambda: found() >= published, 300, interval=1.0)
                seconds = time.monotonic() - t0
        _, ods = wh.query("SELECT count(*) FROM ods_iot_reading_di WHERE metric_code = 'temperature_air'", ())
        wh.run_transforms()
        _, dwd = wh.query("SELECT count(*), count(DISTINCT (device_id, ts_ms)) FROM dwd_env_reading_di "
                          "WHERE metric_code = 'temperature_air' AND agg_code = 'raw'", ())
        got = found()
        wh.close()
    return {"kills": args.kills, "seconds": round(seconds, 1), "published": len(published),
            "found_in_ods": len(got & published), "lost": len(published - got),
            "ods_duplicates_from_redelivery": int(ods[0][0]) - len(got),
            "dwd_rows": int(dwd[0][0]), "dwd_duplicates": int(dwd[0][0]) - int(dwd[0][1])}


def outage_soak(args: argparse.Namespace) -> dict[str, Any]:
    kills = args.kills or 0
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        with running_broker(tmp / "mq") as broker, cloud_service(tmp) as cloud:
            cfg = write_gateway_config(tmp, broker_port=broker.port, api_url=cloud.url, token=GATEWAYS["gw-a"])
            with edge_process(cfg, tmp / "edge.log") as edge:
                pub = Publisher(broker.port, ids=True)
                stop = threading.Event()
                t = threading.Thread(target=pub.publish, args=(100_000_000,), kwargs={"pace_s": 0.002, "stop": stop})
                t0 = time.monotonic()
                t.start()
                try:
                    time.sleep(args.lead_s)
                    cloud.stop(signal.SIGKILL)
                    down_at = time.monotonic()
                    print(f"  cloud down ({len(pub.sent)} messages published)", file=sys.stderr)
                    next_report = down_at + 60
                    kill_at = [down_at + args.outage_s * (k + 1) / (kills + 1) for k in range(kills)]
                    while (now := time.monotonic()) < down_at + args.outage_s:
                        if kill_at and now >= kill_at[0]:
                            kill_at.pop(0)
                            edge.kill()
                            edge.start()
                        if now >= next_report:
                            next_report += 60
                            s = edge.status()
                            print(f"  {now - down_at:.0f} s down: {len(pub.sent)} messages published, "
                                  f"backlog {s['backlog']['readings']} readings in {s['backlog']['batches']} "
                                  f"batches, {s['disk']['used_bytes'] >> 20} MiB", file=sys.stderr)
                        time.sleep(0.2)
                    at_return = edge.status()
                    sent0 = at_return["upload"]["sent"]
                    cloud.start()
                    back_at = time.monotonic()
                    wait_until(lambda: edge.status()["upload"]["sent"] > sent0, 120, 0.1)
                    resumed_s = time.monotonic() - back_at
                    time.sleep(args.tail_s)
                finally:
                    stop.set()
                    t.join(60)
                    pub.close()
                wait_until(lambda: (s := edge.status())["backlog"]["readings"] == 0
                           and s["backlog"]["batches"] == 0 and s["mqtt"]["pending"] == 0, 900, 0.5)
                drained_s = time.monotonic() - back_at
                seconds = time.monotonic() - t0
                final = edge.status()
            cloud.stop(signal.SIGTERM)  # one DuckDB writer: stop the service, then read the file
        wh = open_warehouse(f"duckdb:///{cloud.db}")
        try:
            _, ods = wh.query("SELECT DISTINCT device_id, value FROM ods_iot_reading_di "
                              "WHERE metric_code = 'illuminance'", ())
            wh.run_transforms()
            _, rows = wh.query("SELECT device_id, value FROM dwd_env_reading_di "
                               "WHERE metric_code = 'illuminance' AND agg_code = 'raw'", ())
        finally:
            wh.close()
        pairs = [(d, int(v)) for d, v in rows]
        found = set(pairs)
        ledger = pub.ledger_ids()
        in_ods = {(d, int(v)) for d, v in ods}
        if ledger - found:
            lost = sorted(i for i, (dev, _) in enumerate(pub.sent) if (dev, i // pub.devices) not in found)
            print(f"  LOST {len(lost)}: message indexes {lost[:5]}..{lost[-5:]}, published at "
                  f"{pub.sent_at[lost[0]] - pub.sent_at[0]:.1f}..{pub.sent_at[lost[-1]] - pub.sent_at[0]:.1f} s; "
                  f"{len((ledger - found) & in_ods)} of them in ODS", file=sys.stderr)
            if args.keep:
                keep = Path(tempfile.mkdtemp(prefix="soak-outage-"))
                for name in ("edge.log", "serve.log", "warehouse.duckdb", "state", "mq"):
                    if (tmp / name).exists():
                        (tmp / name).rename(keep / name)
                (keep / "ledger.json").write_text(json.dumps({"sent": pub.sent, "sent_at": pub.sent_at}))
                print(f"  kept in {keep}", file=sys.stderr)
    return {"outage_s": args.outage_s, "kills_during_outage": kills, "seconds": round(seconds, 1),
            "published": len(ledger), "backlog_readings_at_return": at_return["backlog"]["readings"],
            "backlog_batches_at_return": at_return["backlog"]["batches"],
            "resumed_after_s": round(resumed_s, 1), "drained_after_s": round(drained_s, 1),
            "upload_retries": final["upload"]["retries"], "heartbeats_failed": final["heartbeat"]["failed"],
            "found_in_dwd": len(found & ledger), "lost": len(ledger - found), "unexpected": len(found - ledger),
            "dwd_rows": len(pairs), "dwd_duplicates": len(pairs) - len(found)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=None,
                    help="SIGKILLs of the daemon (default 200; with --outage-s: 0, spread over the outage)")
    ap.add_argument("--interval", type=float, default=0.4, help="seconds between kills (default 0.4)")
    ap.add_argument("--outage-s", type=float, default=0.0, help="instead: the cloud is down this many seconds")
    ap.add_argument("--lead-s", type=float, default=5.0, help="outage mode: traffic before the outage (5 s)")
    ap.add_argument("--tail-s", type=float, default=10.0, help="outage mode: traffic after the return (10 s)")
    ap.add_argument("--keep", action="store_true", help="outage mode: keep logs, buffer, warehouse after a loss")
    args = ap.parse_args()
    if args.outage_s > 0:
        result = outage_soak(args)
        name = "soak-outage.json"
    else:
        args.kills = 200 if args.kills is None else args.kills
        result = kill_soak(args)
        name = "soak.json"
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["dwd_duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

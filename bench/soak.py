"""Soak: ``kill -9`` of the edge daemon N times (default 200) while a publisher streams; then check.

Real Mosquitto, real ``campus-edge run``, real ingest API on DuckDB (in this process). Prints the faults
injected, readings published, found in ODS, lost, and duplicates in ODS (redeliveries) vs DWD (must be 0).

    .venv/bin/python bench/soak.py [--kills 200] [--interval 0.4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cloud.api_fixtures import GATEWAYS, api_on_warehouse, open_test_warehouse  # noqa: E402
from tests.integration.edge_harness import Publisher, edge_process, wait_until, write_gateway_config  # noqa: E402
from tests.support.procs import running_broker  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.4, help="seconds between kills (default 0.4)")
    args = ap.parse_args()
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
    result = {"kills": args.kills, "seconds": round(seconds, 1), "published": len(published),
              "found_in_ods": len(got & published), "lost": len(published - got),
              "ods_duplicates_from_redelivery": int(ods[0][0]) - len(got),
              "dwd_rows": int(dwd[0][0]), "dwd_duplicates": int(dwd[0][0]) - int(dwd[0][1])}
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["dwd_duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

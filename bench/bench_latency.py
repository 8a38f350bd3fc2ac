"""End-to-end latency: sensor publish → row in ODS → row in DWD, against a bare subscriber in the same run.

Everything real, over loopback: Mosquitto; ``campus-edge run`` (a subprocess) configured for raw upload — a
copy of the shipped profiles with every ``reduction`` set to ``mode: raw``, so nothing waits for a window —
and ``upload.batch_max_age_s = 1`` (the default: the daemon cuts what is committed into a batch every second);
``campus-cloud serve`` (a subprocess) on a DuckDB file, with its own transform schedule. DWD is filled only
by that schedule: the service lands batches in ODS as they arrive, moves what landed on to DWD every
``--dwd-every`` seconds (default 2; only when a batch was stored since) and runs the whole transform DAG
(DWD, DIM date, DWS, ADS, quality) every ``--transform-every`` seconds (default 60), one run at a time. So
DWD latency is measured per schedule: ``default`` (no schedule options: what a deployment gets) and
``T/D`` (``--transform-every T --dwd-every D``; ``60/0`` is the service before the DWD step existed).

A publisher process sends Zigbee2MQTT messages (5 readings each) at QoS 1 at a fixed rate (default 200
msgs/s, the ``campus-sim`` default) round-robin over 100 devices. Each message carries its publish time
(wall clock, ms) in ``last_seen``, which the profile takes as the reading time: (device, ts_ms) identifies
the message in ODS and DWD. Times:

- ``bare`` (baseline): a paho subscriber on the same broker, same messages: receive time − publish time.
- ``ODS``: when the reading's batch was committed in ODS. The service's ``/metrics`` counter of landed
  readings (incremented after the commit) is polled every 50 ms; a batch with load id L is visible at the
  first poll whose count reaches the readings of every batch up to L (one gateway uploads one batch at a
  time, so landing order is load-id order). Resolution: the poll interval (an upper bound).
- ``DWD``: when the ``dwd_reading`` transform run that covered the reading's load id committed, from the
  warehouse's own run log (``meta_etl_run_log.finished_ms``, written in the transform's transaction just
  before its commit). The DuckDB file cannot be polled while the service runs (one process holds its lock;
  a read-only open from another process is refused) and the service has no read API for DWD, so the file is
  read after the service stopped.

Messages of the first ``--warmup`` seconds are excluded. p50/p95/p99/max per schedule; one run per schedule
(thousands of messages each). Target (issue 8): publish → DWD p99 < 5 s.

    .venv/bin/python bench/bench_latency.py [--rate 200] [--duration 60] [--schedules default,60/0] [--quick]

Prints a table and writes ``bench/results/latency.json``. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    Cloud,
    Daemon,
    machine,
    percentiles,
    proc_cpu_s,
    raw_profiles,
    spawn,
    table,
    write_daemon_config,
    write_result,
)
from cloud_ingest.commands.serve import DEFAULT_DWD_EVERY_S, DEFAULT_TRANSFORM_EVERY_S  # noqa: E402
from cloud_ingest.schedule import DWD_TRANSFORMS  # noqa: E402
from tests.support.procs import running_broker  # noqa: E402

TARGET_P99_S = 5.0
DEVICES = 100
READINGS_PER_MSG = 5  # temperature, humidity, pressure, battery, link quality
METRIC = "temperature_air"  # one reading per message identifies it
POLL_S = 0.05  # /metrics polling
DRAIN_TIMEOUT_S = 120.0  # after the last publish: everything in ODS within this
_DWD_LOG = re.compile(r"transform dwd_reading \((\d+), (\d+)\]")


# -- processes (spawned) -------------------------------------------------------------------------------

def paced_publisher(port: int, rate: float, duration_s: float, ready: Any, go: Any, out: Any) -> None:
    """Publish Zigbee2MQTT messages at ``rate`` msgs/s for ``duration_s``, each stamped with its publish time."""
    import orjson
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-lat-pub")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.set()
    go.wait(120)
    n_total = int(rate * duration_s)
    t0 = time.monotonic()
    w0 = time.time()
    max_lag = 0.0
    infos = []
    for i in range(n_total):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        ts = time.time_ns() // 1_000_000
        body = orjson.dumps({"battery": 90 - i % 7, "humidity": round(40 + (i % 50) / 10, 1),
                             "linkquality": 100 + i % 50, "pressure": 1001.5,
                             "temperature": round(20 + (i % 80) / 10, 1), "last_seen": ts})
        infos.append(c.publish(f"zigbee2mqtt/lat-{i % DEVICES:04d}", body, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    out.put({"published": sum(i.is_published() for i in infos), "t_start_ms": int(w0 * 1000),
             "t_end_ms": int(time.time() * 1000), "max_lag_s": round(max_lag, 4), "cpu_s": proc_cpu_s()})
    c.disconnect()
    c.loop_stop()


def bare_subscriber(port: int, ready: Any, stop: Any, out: Any) -> None:
    """Baseline: a paho QoS 1 subscriber; per message, receive time − the publish time in the payload (ms)."""
    import orjson
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[tuple[str, int, int]] = []
    subscribed = threading.Event()

    def on_message(_c: object, _u: object, m: Any) -> None:
        now = time.time_ns() // 1_000_000
        got.append((m.topic.rsplit("/", 1)[1], int(orjson.loads(m.payload)["last_seen"]), now))

    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-lat-bare")
    c.on_message = on_message
    c.on_connect = lambda cl, *_: cl.subscribe("zigbee2mqtt/#", qos=1)
    c.on_subscribe = lambda *_: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    subscribed.wait(30)
    ready.set()
    stop.wait(600)
    c.disconnect()
    c.loop_stop()
    out.put(got)


# -- one run ----------------------------------------------------------------------------------------------

class _LandedPoller:
    """Polls the service's landed-readings counter; ``timeline`` is [(wall ms, readings landed)]."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.timeline: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.time_ns() // 1_000_000
            with contextlib.suppress(OSError, ValueError):
                readings, _ = self.cloud.landed(timeout=2)
                self.timeline.append((t, readings))
            self._stop.wait(POLL_S)

    def __enter__(self) -> _LandedPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def parse_schedule(text: str) -> tuple[str, float | None, float | None]:
    """``default`` → the service's defaults (no options); ``T`` or ``T/D`` → --transform-every T [--dwd-every D]."""
    if text == "default":
        return text, None, None
    every, _, dwd = text.partition("/")
    return text, float(every), float(dwd) if dwd else None


def one_run(rate: float, duration_s: float, schedule: tuple[str, float | None, float | None],
            warmup_s: float) -> dict[str, Any]:
    ctx = spawn()
    label, every, dwd_every = schedule
    cadence_s = DEFAULT_TRANSFORM_EVERY_S if every is None else every
    dwd_s = DEFAULT_DWD_EVERY_S if dwd_every is None else dwd_every
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp_s, \
            running_broker(Path(tmp_s) / "mqtt") as broker, contextlib.ExitStack() as stack:
        tmp = Path(tmp_s)
        cloud = Cloud(tmp, transform_every_s=every, dwd_every_s=dwd_every)
        stack.callback(cloud.stop)
        cloud.start()
        cfg, http_port = write_daemon_config(tmp, broker_port=broker.port, api_url=cloud.url,
                                             topics=("zigbee2mqtt/#",), profiles_dir=raw_profiles(tmp / "profiles"),
                                             upload="batch_max_age_s = 1.0")
        daemon = Daemon(cfg, http_port, tmp / "daemon.log")
        stack.callback(daemon.stop)
        daemon.start()
        b_ready, b_stop, b_out = ctx.Event(), ctx.Event(), ctx.Queue()
        bare = ctx.Process(target=bare_subscriber, args=(broker.port, b_ready, b_stop, b_out), daemon=True)
        bare.start()
        stack.callback(_join, bare)
        stack.callback(b_stop.set)
        p_ready, p_go, p_out = ctx.Event(), ctx.Event(), ctx.Queue()
        pub = ctx.Process(target=paced_publisher, args=(broker.port, rate, duration_s, p_ready, p_go, p_out),
                          daemon=True)
        pub.start()
        stack.callback(_join, pub)
        if not (b_ready.wait(60) and p_ready.wait(60)):
            raise RuntimeError("publisher or bare subscriber did not connect")
        with _LandedPoller(cloud) as poller:
            cpu0 = {"daemon": proc_cpu_s(daemon.pid), "cloud": proc_cpu_s(cloud.pid)}
            p_go.set()
            pres = p_out.get(timeout=duration_s + 120)
            cpu1 = {"daemon": proc_cpu_s(daemon.pid), "cloud": proc_cpu_s(cloud.pid)}
            st = _wait_uploaded(daemon, pres["published"])
            _wait_dwd_covers(cloud, cadence_s if cadence_s > 0 else 3600.0)
        b_stop.set()
        bare_got = b_out.get(timeout=60)
        daemon.stop()
        cloud.stop()
        figures = _from_warehouse(cloud, poller.timeline)
        dag = _dag_runs(cloud)
    t_cut = pres["t_start_ms"] + int(warmup_s * 1000)
    bare_lat = [(r - ts) / 1000 for _, ts, r in bare_got if ts >= t_cut]
    ods_lat = [(t - ts) / 1000 for ts, t in figures["ods"] if ts >= t_cut]
    dwd_lat = [(t - ts) / 1000 for ts, t in figures["dwd"] if ts >= t_cut]
    measured = sum(1 for _, ts, _ in bare_got if ts >= t_cut)
    return {
        "schedule": label, "cadence_s": cadence_s, "dwd_every_s": dwd_s, "rate": rate, "duration_s": duration_s,
        "warmup_s": warmup_s,
        "published": pres["published"], "publisher_max_lag_s": pres["max_lag_s"], "measured_msgs": measured,
        "bare_received": len(bare_got), "in_ods": figures["n_ods"], "in_dwd": figures["n_dwd"],
        "daemon_messages": st["ingest"]["messages"], "daemon_quarantined": st["ingest"]["quarantined"],
        "bare_s": percentiles(bare_lat), "ods_s": percentiles(ods_lat), "dwd_s": percentiles(dwd_lat),
        "dwd_runs": dag,
        # CPU while the publisher ran, as a share of one core (fixed costs dominate at a low rate)
        "cpu_cores": {k: round((cpu1[k] - cpu0[k]) / ((pres["t_end_ms"] - pres["t_start_ms"]) / 1000), 3)
                      for k in cpu0},
    }


def _wait_uploaded(daemon: Daemon, published: int) -> dict[str, Any]:
    """Until the daemon has committed every published message and uploaded every reading it committed."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            st = daemon.status()
            if st["ingest"]["messages"] >= published and st["backlog"]["readings"] == 0 \
                    and st["upload"]["readings_sent"] >= st["ingest"]["readings"]:
                return st
        time.sleep(0.2)
    raise TimeoutError(f"daemon did not upload everything within {DRAIN_TIMEOUT_S} s: {st.get('backlog')}")


def _wait_dwd_covers(cloud: Cloud, cadence_s: float) -> None:
    """Until the service's log shows a dwd_reading run up to the last stored batch's load id.

    Batches and heartbeats draw their load ids from one sequence and nothing else lands in this run (no
    duplicates, one gateway uploading one batch at a time), so every id stored so far is at most
    stored batches + heartbeats, counted from ``/metrics`` once the daemon has uploaded everything. A
    heartbeat landing after the last batch can hold the bound up until the next whole-DAG run."""
    m = cloud.metrics()
    need = (int(m.get('campus_ingest_batches_total{status="stored"}', 0))
            + int(m.get("campus_ingest_heartbeats_total", 0)))
    deadline = time.monotonic() + 2 * cadence_s + 60
    while time.monotonic() < deadline:
        his = [int(mt.group(2)) for mt in _DWD_LOG.finditer(cloud.log())]
        if his and max(his) >= need:
            time.sleep(0.5)  # its commit and the scheduler's own log line
            return
        time.sleep(0.2)
    raise TimeoutError(f"no dwd_reading run covered load id {need}: {cloud.log()[-2000:]}")


def _from_warehouse(cloud: Cloud, timeline: list[tuple[int, int]]) -> dict[str, Any]:
    """Per message (one reading of METRIC each): (publish ms, visible ms) in ODS and in DWD."""
    con = cloud.connect_readonly()
    try:
        per_batch = con.execute("SELECT load_id, count(*) FROM ods_iot_reading_di GROUP BY 1 ORDER BY 1").fetchall()
        ods = con.execute("SELECT ts_ms, load_id FROM ods_iot_reading_di WHERE metric_code = ? AND agg_code = 'raw'",
                          [METRIC]).fetchall()
        dwd = con.execute("SELECT d.ts_ms, o.load_id FROM dwd_env_reading_di d JOIN ods_iot_reading_di o "
                          "ON o.device_id = d.device_id AND o.ts_ms = d.ts_ms AND o.metric_code = d.metric_code "
                          "AND o.agg_code = d.agg_code WHERE d.metric_code = ? AND d.agg_code = 'raw'",
                          [METRIC]).fetchall()
        runs = con.execute("SELECT hi_id, finished_ms FROM meta_etl_run_log WHERE transform_name = 'dwd_reading' "
                           "ORDER BY hi_id").fetchall()
    finally:
        con.close()
    # ODS: a batch is visible at the first poll whose landed count reaches the cumulative count up to it
    cum, visible = 0, {}
    counts = [c for _, c in timeline]
    for load_id, n in per_batch:
        cum += int(n)
        i = bisect.bisect_left(counts, cum)
        visible[int(load_id)] = timeline[i][0] if i < len(timeline) else None
    his = [int(h) for h, _ in runs]
    fin = [int(f) for _, f in runs]

    def dwd_time(load_id: int) -> int | None:
        i = bisect.bisect_left(his, load_id)
        return fin[i] if i < len(fin) else None

    ods_pairs = [(int(ts), visible[int(lid)]) for ts, lid in ods if visible.get(int(lid)) is not None]
    dwd_pairs = [(int(ts), t) for ts, lid in dwd if (t := dwd_time(int(lid))) is not None]
    return {"ods": ods_pairs, "dwd": dwd_pairs, "n_ods": len(ods), "n_dwd": len(dwd)}


def _dag_runs(cloud: Cloud) -> dict[str, Any]:
    """How often the service's transform runs reached DWD and how long they took (from its run log).

    A run (one run id) that wrote only DWD transforms is a DWD-step run, any other a whole-DAG run. ``runs``
    and ``interval_s``: every run that reached DWD; ``dag_s``: a whole-DAG run; ``dwd_step_s``: the
    ``dwd_reading`` transform in any run."""
    con = cloud.connect_readonly()
    try:
        rows = con.execute("SELECT run_id, min(started_ms), sum(finished_ms - started_ms), "
                           "max(CASE WHEN transform_name = 'dwd_reading' THEN finished_ms - started_ms END), "
                           "list(transform_name) "
                           "FROM meta_etl_run_log GROUP BY run_id ORDER BY 2").fetchall()
    finally:
        con.close()
    dwd_only = [r for r in rows if set(r[4]) <= set(DWD_TRANSFORMS)]
    dag = [r for r in rows if not set(r[4]) <= set(DWD_TRANSFORMS)]
    starts = [int(r[1]) for r in rows if r[3] is not None]
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(starts)]
    return {"runs": len(rows), "dag_runs": len(dag), "dwd_step_runs": len(dwd_only),
            "interval_s": percentiles(gaps, (50,)),
            "dag_s": percentiles([int(r[2]) / 1000 for r in dag], (50,)),
            "dwd_step_s": percentiles([int(r[3]) / 1000 for r in rows if r[3] is not None], (50,))}


def _label(r: dict[str, Any]) -> str:
    dwd = f"{r['dwd_every_s']:g} s" if r["dwd_every_s"] > 0 else "off"
    return f"{r['schedule']}: {r['cadence_s']:g} s / {dwd}"


def _join(p: Any) -> None:
    p.join(30)
    if p.is_alive():
        p.kill()
        p.join(5)


# -- main -------------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0, help="messages per second (default 200)")
    ap.add_argument("--duration", type=float, default=60.0,
                    help="seconds of publishing per schedule (default 60; at least 3 intervals of its shorter job)")
    ap.add_argument("--schedules", default="default",
                    help="the service schedules to run, comma-separated: 'default' (no schedule options) or "
                         "T[/D] for --transform-every T [--dwd-every D]; e.g. 'default,60/0,1/0' (default: default)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of messages excluded at the start (default 5)")
    ap.add_argument("--quick", action="store_true", help="one short run at the default schedule (smoke test)")
    args = ap.parse_args()
    schedules = [parse_schedule(x) for x in (["default"] if args.quick else args.schedules.split(",")) if x]
    rate = 100.0 if args.quick else args.rate
    warmup = 1.0 if args.quick else args.warmup
    info = machine()
    runs = []
    for sched in schedules:
        first = min(c for c in (sched[1] if sched[1] is not None else DEFAULT_TRANSFORM_EVERY_S,
                                sched[2] if sched[2] is not None else DEFAULT_DWD_EVERY_S, 3600.0) if c > 0)
        duration = 6.0 if args.quick else max(args.duration, 3 * first + warmup)
        r = one_run(rate, duration, sched, warmup)
        runs.append(r)
        print(f"  schedule {sched[0]}: {r['published']} published, {r['in_ods']} in ODS, {r['in_dwd']} in DWD; "
              f"DWD p99 {r['dwd_s']['p99']} s", flush=True)
    rows = []
    for r in runs:
        for name, key in (("bare subscriber (baseline)", "bare_s"), ("publish → ODS", "ods_s"),
                          ("publish → DWD", "dwd_s")):
            p = r[key]
            ratio = round(p["p99"] / r["bare_s"]["p99"], 1) if key != "bare_s" and p["p99"] and r["bare_s"]["p99"] \
                else None
            met = ("yes" if p["p99"] is not None and p["p99"] < TARGET_P99_S else "NO") if key == "dwd_s" else None
            rows.append([f"{name}", _label(r), p["p50"], p["p95"], p["p99"], p["max"], ratio, met])
    print(f"\nend-to-end latency, seconds; {rate:g} msgs/s x {READINGS_PER_MSG} readings, raw upload, batch age 1 s; "
          f"target publish → DWD p99 < {TARGET_P99_S:g} s")
    print(table(["path", "schedule (DAG / DWD every)", "p50", "p95", "p99", "max", "p99 / bare p99", "met?"], rows))
    for r in runs:
        d = r["dwd_runs"]
        print(f"{_label(r)}: {d['dag_runs']} DAG + {d['dwd_step_runs']} DWD-step runs, interval between runs reaching "
              f"DWD p50 {d['interval_s']['p50']} s, whole DAG p50 {d['dag_s']['p50']} s, DWD step p50 "
              f"{d['dwd_step_s']['p50']} s; "
              f"{r['measured_msgs']} messages measured; CPU while publishing (cores): daemon "
              f"{r['cpu_cores']['daemon']}, cloud {r['cpu_cores']['cloud']}")
    path = write_result("latency" + ("-quick" if args.quick else ""), {
        "benchmark": "latency", "quick": args.quick, "target_p99_s": TARGET_P99_S, "machine": info,
        "readings_per_msg": READINGS_PER_MSG, "runs": runs})
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

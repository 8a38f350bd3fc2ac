"""Backlog drain: an hour of campus traffic buffered during a cloud outage, then the cloud comes back.

Target (issue 8): the backlog drains at ≥ 20× the production rate, while fresh data keeps flowing.

Everything real, over loopback: Mosquitto, ``campus-edge run`` (a subprocess, production defaults: shipped
profiles with their reductions, batch age 1 s, a 4 GiB disk budget so nothing is evicted) and
``campus-cloud serve`` (a subprocess on a DuckDB file, its default transform schedule: the DWD step every 2 s
after landings, the whole DAG every 60 s — both run while it drains).

1. **The outage, pre-filled.** To save an hour of wall time, the hour of traffic is written into the
   daemon's buffer file before the daemon starts, by the daemon's own code on a simulated clock: the
   campus simulator's traffic for the hour (``campus-sim`` defaults: 300 devices, 200 msgs/s, every
   ecosystem) is decoded by ``Daemon._decode`` (its profiles, pseudonymiser, skew check), committed with
   ``Buffer.commit_burst`` once per simulated second, cut into batches by ``Daemon._cut`` every simulated
   second (batch age 1 s) and windowed by ``WindowJob.run_once`` every 5 simulated seconds — the same rows,
   batches and aggregates, created at the same (simulated) times, as a daemon running through the outage.
2. **The outage, live.** The daemon starts with the cloud still down; ``campus-sim`` publishes fresh traffic at
   the same rate (real time, to the end of the run); the daemon buffers it and its uploads fail and back off.
3. **The cloud comes back** (``campus-cloud serve`` starts). We poll the daemon's ``/status`` until its backlog
   is down to the fresh traffic, then let fresh traffic run a few more seconds, and stop everything.

Figures come from the warehouse afterwards (``ods_iot_batch_di``: each batch's edge creation time and its
cloud receipt time): the backlog is every batch created before the cloud came up; the drain ends when the
last of them was received. Drain rate = backlog readings / drain time, from the cloud coming up (includes
the daemon's retry back-off, which after a long outage can reach 60 s) and from the first batch received
(the upload itself). Production rate = the hour's readings / 3,600 s. Fresh data during the drain: batches
created after the cloud came up and received before the drain ended, and their readings' publish →
cloud-receipt lag.

    .venv/bin/python bench/bench_drain.py [--outage-s 3600] [--rate 200] [--devices 300] [--quick]

Prints a table and writes ``bench/results/drain.json``. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Cloud, Daemon, machine, percentiles, table, write_daemon_config, write_result  # noqa: E402
from tests.support.procs import running_broker  # noqa: E402

TARGET_MULTIPLE = 20.0
SEED = 42  # campus-sim's default: the same campus in the pre-filled hour and the live traffic
CUT_EVERY_MS = 1000  # the daemon's batch job (upload.batch_max_age_s)
WINDOW_EVERY_MS = 5000  # gateway.daemon.WINDOW_EVERY_S
DRAIN_TIMEOUT_S = 1800.0
POLL_S = 0.5


# -- 1. pre-fill --------------------------------------------------------------------------------------------

async def prefill(config: Path, start_ms: int, end_ms: int, devices: int, rate: float) -> dict[str, Any]:
    """Write ``[start_ms, end_ms)`` of simulated campus traffic into the daemon's buffer with the daemon's code."""
    from edge_agent.buffer import Buffer, BufferConfig
    from edge_agent.model import Message
    from edge_agent.windowing import WindowJob
    from gateway.config import load_config
    from gateway.daemon import Daemon as EdgeDaemon
    from gateway.simulator import Simulator

    cfg = load_config(config)
    now = [start_ms / 1000]
    d = EdgeDaemon(cfg, clock=lambda: now[0])
    d._load_profiles()
    cfg.buffer.path.parent.mkdir(parents=True, exist_ok=True)
    d.buffer = await Buffer.open(cfg.buffer.path, BufferConfig(  # as Daemon._open does
        budget_bytes=cfg.buffer.disk_budget_bytes, quarantine_payload_cap=cfg.buffer.quarantine_payload_cap,
        uploaded_retention_s=cfg.buffer.retention_hours * 3600))
    windows = WindowJob(d.buffer, lambda: d.profiles, allowed_lateness_ms=cfg.allowed_lateness_ms, clock=d.clock)
    sim = Simulator.build(devices, seed=SEED, start_ms=start_ms, rate=rate, time_scale=1.0)
    stats = {"messages": 0, "readings": 0, "events": 0, "quarantined": 0}
    burst: list[Any] = []
    next_cut, next_window = start_ms + CUT_EVERY_MS, start_ms + WINDOW_EVERY_MS

    async def tick(t_ms: int) -> None:
        nonlocal burst, next_window
        now[0] = t_ms / 1000
        if burst:
            await d.buffer.commit_burst(burst, local_profiles=d.local_profiles)
            burst = []
        if t_ms >= next_window:
            await windows.run_once()
            next_window += WINDOW_EVERY_MS
        await d._cut()

    for m in sim.messages(until_ms=end_ms):
        while m.ts_ms >= next_cut:
            await tick(next_cut)
            next_cut += CUT_EVERY_MS
        now[0] = m.ts_ms / 1000
        res = d._decode(Message(m.topic, m.payload, m.ts_ms))
        burst.append(res)
        stats["messages"] += 1
        stats["readings"] += len(res.readings)
        stats["events"] += len(res.events)
        stats["quarantined"] += res.quarantine is not None
    await tick(end_ms)
    backlog = await d.buffer.backlog()
    await d.buffer.close()
    stats.update({"unsent_readings": backlog.unsent_readings, "unsent_events": backlog.unsent_events,
                  "stored_batches": backlog.batches, "aggregate_windows": windows.windows_emitted,
                  "db_mb": round(cfg.buffer.path.stat().st_size / 2**20, 1)})
    return stats


# -- 2./3. outage live, then the cloud comes back ------------------------------------------------------------

def run(outage_s: float, devices: int, rate: float, live_outage_s: float, tail_s: float,
        transform_every_s: float | None, dwd_every_s: float | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp_s, \
            running_broker(Path(tmp_s) / "mqtt") as broker, contextlib.ExitStack() as stack:
        tmp = Path(tmp_s)
        # not started yet: the outage
        cloud = Cloud(tmp, transform_every_s=transform_every_s, dwd_every_s=dwd_every_s)
        stack.callback(cloud.stop)
        cfg, http_port = write_daemon_config(tmp, broker_port=broker.port, api_url=cloud.url,
                                             extra="[buffer]\ndisk_budget_mb = 4096\n")
        end_ms = int(time.time() * 1000)
        t0 = time.monotonic()
        pre = asyncio.run(prefill(cfg, end_ms - int(outage_s * 1000), end_ms, devices, rate))
        pre["seconds"] = round(time.monotonic() - t0, 1)
        print(f"  pre-filled {outage_s:g} s of traffic in {pre['seconds']} s: {pre['messages']:,} messages, "
              f"{pre['unsent_readings']:,} readings unsent in {pre['stored_batches']:,} batches, "
              f"buffer {pre['db_mb']} MB", flush=True)
        daemon = Daemon(cfg, http_port, tmp / "daemon.log")
        stack.callback(daemon.stop)
        daemon.start(timeout=300)
        sim_log = (tmp / "sim.log").open("wb")
        stack.callback(sim_log.close)
        sim = subprocess.Popen([sys.executable, "-m", "gateway.simulator.cli", "--broker", f"127.0.0.1:{broker.port}",
                                "--devices", str(devices), "--rate", f"{rate:g}", "--seed", str(SEED),
                                "--duration", str(int(DRAIN_TIMEOUT_S + 600)), "-q"],
                               stdout=sim_log, stderr=subprocess.STDOUT, cwd=ROOT)
        stack.callback(_stop, sim)
        st_a = daemon.status()
        ta = time.monotonic()
        time.sleep(live_outage_s)
        st_b = daemon.status()
        live_rate = (st_b["ingest"]["readings"] - st_a["ingest"]["readings"]) / (time.monotonic() - ta)
        at_up = st_b["backlog"]
        t_up_ms = int(time.time() * 1000)
        cloud.start()
        t_listening_ms = int(time.time() * 1000)
        timeline = _watch(daemon, cloud, live_rate)
        time.sleep(tail_s)  # fresh data after the drain
        _stop(sim)
        st_end = daemon.status()
        daemon.stop(timeout=60)
        cloud.stop()
        figures = _from_warehouse(cloud, t_up_ms)
    return {"outage_s": outage_s, "devices": devices, "rate_msgs_per_s": rate, "prefill": pre,
            "live_outage_s": live_outage_s, "live_readings_per_s": round(live_rate, 1),
            "backlog_at_cloud_up": at_up, "t_up_ms": t_up_ms, "cloud_start_s": (t_listening_ms - t_up_ms) / 1000,
            "transform_every_s": transform_every_s, "dwd_every_s": dwd_every_s, "timeline": timeline,
            "daemon_end": {"backlog": st_end["backlog"], "upload": st_end["upload"], "evicted": st_end["evicted"],
                           "ingest": st_end["ingest"]},
            **figures}


def _watch(daemon: Daemon, cloud: Cloud, live_rate: float) -> list[dict[str, Any]]:
    """Poll until the daemon's backlog is down to a few seconds of fresh traffic (twice in a row)."""
    fresh_level = max(1000.0, 5 * live_rate)
    timeline: list[dict[str, Any]] = []
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    calm = 0
    last_print = time.monotonic()
    while time.monotonic() < deadline and calm < 2:
        time.sleep(POLL_S)
        with contextlib.suppress(OSError, ValueError):
            st = daemon.status()
            landed, _ = cloud.landed()
            b = st["backlog"]
            timeline.append({"t_ms": int(time.time() * 1000), "backlog_readings": b["readings"],
                             "backlog_batches": b["batches"], "readings_sent": st["upload"]["readings_sent"],
                             "landed": landed})
            calm = calm + 1 if b["batches"] <= 3 and b["readings"] <= fresh_level else 0
            if time.monotonic() - last_print > 10:
                print(f"    backlog {b['readings']:,} readings in {b['batches']:,} batches; landed {landed:,}",
                      flush=True)
                last_print = time.monotonic()
    if calm < 2:
        raise TimeoutError(f"backlog not drained within {DRAIN_TIMEOUT_S} s: {timeline[-1:]}")
    return timeline


def _from_warehouse(cloud: Cloud, t_up_ms: int) -> dict[str, Any]:
    con = cloud.connect_readonly()
    try:
        batches = con.execute("SELECT created_ms, received_ms, reading_cnt, event_cnt FROM ods_iot_batch_di "
                              "ORDER BY received_ms").fetchall()
        backlog = [b for b in batches if b[0] < t_up_ms]
        t_first = min(int(b[1]) for b in batches)
        t_last = max(int(b[1]) for b in backlog)
        fresh = [b for b in batches if b[0] >= t_up_ms and b[1] <= t_last]
        lag = con.execute("SELECT o.received_ms - o.ts_ms FROM ods_iot_reading_di o JOIN ods_iot_batch_di b "
                          "USING (gateway_id, batch_seq) WHERE b.created_ms >= ? AND b.received_ms <= ? "
                          "AND o.agg_code = 'raw'", [t_up_ms, t_last]).fetchall()
        after = con.execute("SELECT count(*), coalesce(sum(reading_cnt), 0) FROM ods_iot_batch_di "
                            "WHERE received_ms > ?", [t_last]).fetchone()
        ods_readings = con.execute("SELECT count(*) FROM ods_iot_reading_di").fetchone()
    finally:
        con.close()
    n_backlog = sum(int(b[2]) for b in backlog)
    fresh_received = sorted(int(b[1]) for b in fresh)
    gaps = [(b - a) / 1000 for a, b in zip([t_first, *fresh_received], [*fresh_received, t_last], strict=True)]
    return {
        "backlog_batches": len(backlog), "backlog_readings": n_backlog,
        "backlog_events": sum(int(b[3]) for b in backlog),
        "first_received_ms": t_first, "last_backlog_received_ms": t_last,
        "drain_s_from_cloud_up": (t_last - t_up_ms) / 1000, "drain_s_from_first_upload": (t_last - t_first) / 1000,
        "retry_wait_s": (t_first - t_up_ms) / 1000,
        "fresh_during_drain": {"batches": len(fresh), "readings": sum(int(b[2]) for b in fresh),
                               "batch_wait_s": percentiles([(int(b[1]) - int(b[0])) / 1000 for b in fresh]),
                               "publish_to_cloud_s": percentiles([int(x[0]) / 1000 for x in lag]),
                               "longest_gap_s": round(max(gaps), 3) if gaps else None},
        "after_drain": {"batches": int(after[0]), "readings": int(after[1])},
        "ods_readings": int(ods_readings[0]),
    }


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# -- main ---------------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outage-s", type=float, default=3600.0, help="seconds of outage traffic (default 3600)")
    ap.add_argument("--rate", type=float, default=200.0, help="production rate, msgs/s (campus-sim default 200)")
    ap.add_argument("--devices", type=int, default=300, help="simulated devices (campus-sim default 300)")
    ap.add_argument("--live-outage-s", type=float, default=10.0,
                    help="seconds the daemon runs with the cloud down before it comes back (default 10)")
    ap.add_argument("--transform-every", type=float, default=None,
                    help="the cloud service's --transform-every during the drain (default: the service's, 60)")
    ap.add_argument("--dwd-every", type=float, default=None,
                    help="the cloud service's --dwd-every during the drain (default: the service's, 2)")
    ap.add_argument("--quick", action="store_true", help="two minutes of outage, short phases (smoke test)")
    args = ap.parse_args()
    outage = 120.0 if args.quick else args.outage_s
    live = 2.0 if args.quick else args.live_outage_s
    tail = 1.0 if args.quick else 5.0
    info = machine()
    r = run(outage, args.devices, args.rate, live, tail, args.transform_every, args.dwd_every)
    prod = r["prefill"]["readings"] / outage  # readings/s the campus produces
    drain_up = r["backlog_readings"] / r["drain_s_from_cloud_up"] if r["drain_s_from_cloud_up"] > 0 else 0.0
    drain_up1 = r["backlog_readings"] / r["drain_s_from_first_upload"] if r["drain_s_from_first_upload"] > 0 else 0.0
    r.update({"production_readings_per_s": round(prod, 1), "drain_readings_per_s": round(drain_up, 1),
              "drain_readings_per_s_uploading": round(drain_up1, 1), "multiple": round(drain_up / prod, 1),
              "multiple_uploading": round(drain_up1 / prod, 1), "target_multiple": TARGET_MULTIPLE,
              "method": "pre-filled: the outage hour written into the real buffer file by the daemon's own decode, "
                        "commit, window and batch-cut code on a simulated clock; the real daemon drains it"})
    f = r["fresh_during_drain"]
    print(f"\nbacklog drain: {outage:g} s of campus traffic ({args.devices} devices, {args.rate:g} msgs/s) buffered "
          f"during a cloud outage (pre-filled into the real buffer, then {live:g} s live); target >= "
          f"{TARGET_MULTIPLE:g}x production")
    print(table(["figure", "value"], [
        ["production rate, readings/s", r["production_readings_per_s"]],
        ["live production measured by the daemon, readings/s", r["live_readings_per_s"]],
        ["backlog when the cloud came up, readings (batches)",
         f"{r['backlog_readings']:,} ({r['backlog_batches']:,})"],
        ["cloud start → first batch received, s (retry back-off)", round(r["retry_wait_s"], 2)],
        ["drain time from the cloud coming up, s", round(r["drain_s_from_cloud_up"], 1)],
        ["drain rate, readings/s (multiple of production)", f"{drain_up:,.0f} ({r['multiple']}x)"],
        ["drain rate from the first upload, readings/s (multiple)", f"{drain_up1:,.0f} ({r['multiple_uploading']}x)"],
        ["fresh batches landed during the drain (readings)", f"{f['batches']:,} ({f['readings']:,})"],
        ["fresh data publish → cloud during the drain, p50 / p99 / max s",
         f"{f['publish_to_cloud_s']['p50']} / {f['publish_to_cloud_s']['p99']} / {f['publish_to_cloud_s']['max']}"],
        ["longest gap between fresh batches landing, s", f["longest_gap_s"]],
        [f"met (>= {TARGET_MULTIPLE:g}x, fresh data flowing)?",
         "yes" if r["multiple"] >= TARGET_MULTIPLE and f["batches"] > 0 else "NO"],
    ]))
    path = write_result("drain" + ("-quick" if args.quick else ""), {
        "benchmark": "drain", "quick": args.quick, "machine": info, **r})
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Edge memory: peak RSS of the daemon by number of devices, and RSS as the buffered backlog grows.

Target (DESIGN §9): resident memory at most 64 MB, and flat as the backlog grows. Three measurements, each
with its baseline taken in the same run:

1. ``floor``: a fresh interpreter that only imports what the daemon imports (``gateway.daemon``) — the part
   of the budget that is code, before any data.
2. ``devices``: the full daemon (``campus-edge run``, uploading to a dummy cloud that accepts everything) on a
   real Mosquitto, fed Zigbee2MQTT messages (5 readings each) from 10, 1,000 and 10,000 distinct devices
   (each device reports at least 3 times) by a publisher process. We read VmRSS once it has subscribed
   (idle), then VmHWM (peak) and VmRSS after every message is committed, uploaded, and a window job ran.
3. ``backlog``: RSS while a backlog of 100k, 500k and 1M readings sits in the buffer with the cloud
   unreachable (nothing drains):
   - ``direct``: a fresh process commits bursts through ``Buffer.commit_burst`` (2,000 messages × 5 readings
     from 1,000 devices, as the ingest loop does), cuts batches every 100k readings (``cut_batches``, as the
     daemon's batch job does), and reads ``backlog()`` and ``next_batches(8)`` (what the uploader sends);
   - ``daemon`` (``--daemon-backlog``, on by default, off with ``--quick``): the real daemon, its upload URL
     a closed port, fed SenML packs of 50 readings over MQTT.

RSS comes from ``/proc/<pid>/status``: VmRSS, VmHWM (peak), and RssAnon / RssFile (heap vs mapped files).

    .venv/bin/python bench/bench_edge_memory.py [--devices 10,1000,10000] [--backlog 100000,500000,1000000]
        [--no-daemon-backlog] [--quick]

Prints tables and writes ``bench/results/edge_memory.json``. Figures are printed, never asserted.
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

from bench.common import (  # noqa: E402
    Daemon,
    Msgs,
    Sink,
    machine,
    mib,
    proc_mem,
    publisher,
    senml_messages,
    spawn,
    table,
    write_daemon_config,
    write_result,
    zigbee_messages,
)
from tests.support.procs import free_port, running_broker  # noqa: E402

TARGET_MB = 64
MSGS_PER_DEVICE = 3  # each device reports this many times (at least MIN_MESSAGES in all)
MIN_MESSAGES = 20_000
SETTLE_S = 6.0  # after the last commit: one window job (every 5 s) and a batch cut/upload (1 s) run
WAIT_S = 300.0  # bound on waiting for the daemon to commit what was published
BURST_MSGS = 2000  # ingest's MAX_BURST
CUT_EVERY = 100_000  # readings between batch cuts in the direct backlog process


# -- 1. import floor -------------------------------------------------------------------------------------------

def import_floor() -> dict[str, int]:
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import gateway.daemon; "
            "from bench.common import proc_mem; print(json.dumps(proc_mem()))")
    res = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, check=True)
    return dict(__import__("json").loads(res.stdout))


# -- 2. daemon by device count -----------------------------------------------------------------------------------

def publish(port: int, msgs: Msgs) -> dict[str, Any]:
    ctx = spawn()
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    p = ctx.Process(target=publisher, args=(port, msgs, ready, go, out), daemon=True)
    p.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("publisher did not connect")
        go.set()
        return dict(out.get(timeout=WAIT_S))
    finally:
        p.join(30)
        if p.is_alive():
            p.kill()


def wait_committed(daemon: Daemon, n: int, *, uploaded: bool) -> dict[str, Any]:
    """Poll /status until ``n`` messages are committed (and, if ``uploaded``, the backlog is empty)."""
    deadline = time.monotonic() + WAIT_S
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            st = daemon.status()
            if st["ingest"]["messages"] >= n and (not uploaded or st["backlog"]["readings"] == 0):
                return st
        time.sleep(0.5)
    raise TimeoutError(f"daemon did not commit {n} messages within {WAIT_S} s: {st.get('ingest')}")


def daemon_devices(devices: int) -> dict[str, Any]:
    n = max(MIN_MESSAGES, MSGS_PER_DEVICE * devices)
    msgs = zigbee_messages(n, devices=devices, prefix="dev")
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp_s, running_broker(Path(tmp_s) / "mqtt") as broker, \
            Sink() as sink:
        tmp = Path(tmp_s)
        cfg, http_port = write_daemon_config(tmp, broker_port=broker.port, api_url=sink.url)
        daemon = Daemon(cfg, http_port, tmp / "daemon.log")
        try:
            daemon.start()
            time.sleep(1.0)
            idle = proc_mem(daemon.pid)
            publish(broker.port, msgs)
            wait_committed(daemon, n, uploaded=True)
            time.sleep(SETTLE_S)
            st = wait_committed(daemon, n, uploaded=True)
            after = proc_mem(daemon.pid)
        finally:
            daemon.stop()
    return {"devices": devices, "messages": n, "readings": st["ingest"]["readings"],
            "tracked_devices": st["devices"]["tracked"], "batches_uploaded": sink.batches,
            "idle_rss_mb": mib(idle["VmRSS"]), "peak_rss_mb": mib(after["VmHWM"]), "rss_mb": mib(after["VmRSS"]),
            "anon_mb": mib(after["RssAnon"]), "file_mb": mib(after["RssFile"])}


# -- 3. backlog ---------------------------------------------------------------------------------------------

def backlog_child(db: str, sizes: list[int], out: Any) -> None:
    """Process target: fill the buffer to each of ``sizes`` readings and report RSS at each (cloud away)."""
    from edge_agent.buffer import Buffer, BufferConfig
    from edge_agent.model import DecodeResult, Message, ProfileRef, Reading
    from edge_agent.outbox import cut_batches

    ref = ProfileRef("zigbee2mqtt.aqara_wsdcgq11lm", 1)
    metrics = (("temperature_air", "Cel"), ("humidity_rel", "%RH"), ("pressure_air", "hPa"),
               ("battery_level", "%"), ("link_quality", "index"))

    def burst(k: int, t0: int) -> list[DecodeResult]:
        res = []
        for i in range(k * BURST_MSGS, (k + 1) * BURST_MSGS):
            dev = f"room-{i % 1000:04d}"
            ts = t0 + i
            rs = tuple(Reading(dev, m, ts, 20.0 + (i % 97) / 10 + j, u, ref) for j, (m, u) in enumerate(metrics))
            res.append(DecodeResult(Message(f"zigbee2mqtt/{dev}", b"", ts, i % 65535 + 1, 1), ref, dev, rs))
        return res

    async def run() -> None:
        out.put({"stage": "imported", **proc_mem()})
        buf = await Buffer.open(db, BufferConfig(budget_bytes=8 << 30))
        out.put({"stage": "opened", **proc_mem()})
        t0, total, k, since_cut = int(time.time() * 1000) - 86_400_000, 0, 0, 0
        started = time.monotonic()
        for size in sizes:
            while total < size:
                await buf.commit_burst(burst(k, t0))
                k += 1
                total += BURST_MSGS * len(metrics)
                since_cut += BURST_MSGS * len(metrics)
                if since_cut >= CUT_EVERY:
                    await cut_batches(buf, "gw-bench", max_readings=20_000, max_batches=1000)
                    since_cut = 0
            await cut_batches(buf, "gw-bench", max_readings=20_000, max_batches=1000)
            since_cut = 0
            backlog = await buf.backlog()
            sending = await buf.next_batches(8)
            out.put({"stage": "backlog", "target": size, "unsent_readings": backlog.unsent_readings,
                     "batches": backlog.batches, "batch_bytes": backlog.batch_bytes,
                     "next_batches": len(sending), "db_mb": round(Path(db).stat().st_size / 2**20, 1),
                     "elapsed_s": round(time.monotonic() - started, 1), **proc_mem()})
        await buf.close()
        out.put({"stage": "done"})

    asyncio.run(run())


def backlog_direct(sizes: list[int]) -> dict[str, Any]:
    ctx = spawn()
    out = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        p = ctx.Process(target=backlog_child, args=(str(Path(tmp) / "buffer.sqlite"), sizes, out), daemon=True)
        p.start()
        rows = []
        try:
            while True:
                row = out.get(timeout=WAIT_S)
                if row["stage"] == "done":
                    break
                rows.append(row)
        finally:
            p.join(60)
            if p.is_alive():
                p.kill()
    return {"baseline": [_mem_row(r) for r in rows if r["stage"] != "backlog"],
            "points": [_mem_row(r) for r in rows if r["stage"] == "backlog"]}


def backlog_daemon(sizes: list[int]) -> dict[str, Any]:
    """The real daemon, cloud unreachable, fed SenML packs of 50 readings until each backlog size."""
    per_msg = 50
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp_s, running_broker(Path(tmp_s) / "mqtt") as broker:
        tmp = Path(tmp_s)
        dead_url = f"http://127.0.0.1:{free_port()}"  # nothing listens: every upload fails, nothing drains
        cfg, http_port = write_daemon_config(tmp, broker_port=broker.port, api_url=dead_url,
                                             extra="[buffer]\ndisk_budget_mb = 4096\n")
        daemon = Daemon(cfg, http_port, tmp / "daemon.log")
        points = []
        try:
            daemon.start()
            time.sleep(1.0)
            idle = proc_mem(daemon.pid)
            sent = 0
            started = time.monotonic()
            for size in sizes:
                n = max(0, -(-size // per_msg) - sent)
                publish(broker.port, senml_messages(n, records=per_msg, devices=500))
                sent += n
                wait_committed(daemon, sent, uploaded=False)
                time.sleep(2.0)  # the batch job (every 1 s) cuts what was committed
                st = daemon.status()
                points.append({"target": size, "unsent_readings": st["backlog"]["readings"],
                               "batches": st["backlog"]["batches"], "elapsed_s": round(time.monotonic() - started, 1),
                               **_mem_row(proc_mem(daemon.pid))})
        finally:
            daemon.stop(timeout=60)
    return {"idle": _mem_row(idle), "points": points}


def _mem_row(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in m.items() if k not in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")}
    out.update({"rss_mb": mib(m["VmRSS"]), "peak_rss_mb": mib(m["VmHWM"]), "anon_mb": mib(m["RssAnon"]),
                "file_mb": mib(m["RssFile"])})
    return out


# -- main ---------------------------------------------------------------------------------------------------

def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=_ints, default=None, help="distinct device counts (default 10,1000,10000)")
    ap.add_argument("--backlog", type=_ints, default=None, help="backlog sizes in readings (default 100k,500k,1M)")
    ap.add_argument("--no-daemon-backlog", action="store_true", help="skip the backlog through the real daemon")
    ap.add_argument("--quick", action="store_true", help="small sizes, no daemon backlog (smoke test)")
    args = ap.parse_args()
    global MIN_MESSAGES, SETTLE_S
    if args.quick:
        MIN_MESSAGES, SETTLE_S = 500, 1.5
    devices = args.devices or ([10, 300] if args.quick else [10, 1000, 10_000])
    sizes = args.backlog or ([20_000, 50_000, 100_000] if args.quick else [100_000, 500_000, 1_000_000])
    info = machine()

    floor = import_floor()
    print(f"import floor (python -c 'import gateway.daemon'): RSS {mib(floor['VmRSS'])} MB, "
          f"peak {mib(floor['VmHWM'])} MB", flush=True)

    dev_rows = []
    for d in devices:
        r = daemon_devices(d)
        dev_rows.append(r)
        print(f"  daemon, {d:>6} devices: peak {r['peak_rss_mb']} MB", flush=True)
    print(f"\ndaemon peak RSS by distinct devices (Zigbee2MQTT, 5 readings/message; target <= {TARGET_MB} MB)")
    print(table(["devices", "messages", "idle RSS MB", "peak RSS MB", "RSS after MB", "anon MB", "file MB",
                 f"<= {TARGET_MB} MB"],
                [[r["devices"], r["messages"], r["idle_rss_mb"], r["peak_rss_mb"], r["rss_mb"], r["anon_mb"],
                  r["file_mb"], "yes" if r["peak_rss_mb"] <= TARGET_MB else "no"] for r in dev_rows]))

    direct = backlog_direct(sizes)
    base = next((b for b in direct["baseline"] if b["stage"] == "opened"), direct["baseline"][-1])
    print(f"\nbacklog in the buffer, cloud unreachable — direct commit_burst process "
          f"(baseline after Buffer.open: RSS {base['rss_mb']} MB)")
    print(table(["backlog readings", "batches", "db MB", "RSS MB", "peak RSS MB", "anon MB", "file MB", "elapsed s"],
                [[p["unsent_readings"], p["batches"], p["db_mb"], p["rss_mb"], p["peak_rss_mb"], p["anon_mb"],
                  p["file_mb"], p["elapsed_s"]] for p in direct["points"]]))
    direct["growth_mb"] = round(direct["points"][-1]["rss_mb"] - direct["points"][0]["rss_mb"], 1)
    print(f"RSS growth from {sizes[0]:,} to {sizes[-1]:,} readings: {direct['growth_mb']:+} MB")

    via_daemon = None
    if not args.quick and not args.no_daemon_backlog:
        via_daemon = backlog_daemon(sizes)
        print(f"\nbacklog through the real daemon (SenML packs of 50 over MQTT, upload URL a closed port; "
              f"idle RSS {via_daemon['idle']['rss_mb']} MB)")
        print(table(["backlog readings", "batches", "RSS MB", "peak RSS MB", "anon MB", "file MB", "elapsed s"],
                    [[p["unsent_readings"], p["batches"], p["rss_mb"], p["peak_rss_mb"], p["anon_mb"], p["file_mb"],
                      p["elapsed_s"]] for p in via_daemon["points"]]))
        via_daemon["growth_mb"] = round(via_daemon["points"][-1]["rss_mb"] - via_daemon["points"][0]["rss_mb"], 1)
        print(f"RSS growth from {sizes[0]:,} to {sizes[-1]:,} readings: {via_daemon['growth_mb']:+} MB")

    path = write_result("edge_memory" + ("-quick" if args.quick else ""), {
        "benchmark": "edge_memory", "quick": args.quick, "target_mb": TARGET_MB, "machine": info,
        "import_floor": _mem_row(floor), "devices": dev_rows, "backlog_direct": direct, "backlog_daemon": via_daemon})
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

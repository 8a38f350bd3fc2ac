"""Edge ingest throughput and memory, each against a baseline measured in the same run.

1. Throughput (MQTT in → committed → acknowledged, QoS 1) of the edge pipeline (MqttSource + IngestLoop +
   decode + SQLite buffer with synchronous=FULL) versus a bare paho-mqtt subscriber that only counts, on
   the same real Mosquitto, the same traffic, one connection each. Method: each subscriber first creates
   its persistent session, goes away, N messages are published (the broker queues them), then the
   subscriber comes back and we time how long it takes to receive (and, for ours, commit and acknowledge)
   all N. Each side runs in its own process. Median of --runs.
2. Memory: peak RSS of the pipeline process after the throughput run, and RSS of a process holding a
   growing backlog of 100k / 500k / 1M readings in the buffer (cut into batches, nothing uploaded).

    .venv/bin/python bench/bench_edge.py [--messages 20000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import running_broker  # noqa: E402

READINGS_PER_MSG = 5  # temperature, humidity, pressure, battery, link quality (zigbee2mqtt.aqara_wsdcgq11lm)


def payloads(n: int) -> list[tuple[str, bytes]]:
    base = int(time.time() * 1000)
    return [(f"zigbee2mqtt/room-{i % 200:03d}",
             orjson.dumps({"battery": 90 - i % 7, "humidity": 40 + (i % 50) / 10, "linkquality": 100 + i % 50,
                           "pressure": 1001.5, "temperature": 20 + (i % 80) / 10, "last_seen": base + i}))
            for i in range(n)]


def publish(port: int, msgs: list[tuple[str, bytes]]) -> None:
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for i in infos:
        i.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def bare_subscriber(port: int, n: int, ready: mp.Event, go: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    got = [0]
    done = mp.Event()
    start = [0.0]

    def on_message(_c: object, _u: object, _m: object) -> None:
        if got[0] == 0:
            start[0] = time.perf_counter()
        got[0] += 1
        if got[0] >= n:
            done.set()

    def session(connect_only: bool) -> None:
        c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare",
                        clean_session=False)
        c.max_inflight_messages_set(0)
        c.on_message = on_message
        c.on_connect = lambda cl, *_: cl.subscribe("zigbee2mqtt/#", qos=1)
        t0 = time.perf_counter()
        c.connect("127.0.0.1", port)
        c.loop_start()
        if connect_only:
            time.sleep(0.5)
        else:
            done.wait(300)
        c.disconnect()
        c.loop_stop()
        if not connect_only:
            out.put({"msgs": got[0], "seconds": time.perf_counter() - t0, "cpu": time.process_time()})

    session(True)
    ready.set()
    go.wait(300)
    session(False)


def pipeline(port: int, n: int, db: str, ready: mp.Event, go: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from edge_agent.buffer import Buffer, BufferConfig
    from edge_agent.decode import decode
    from edge_agent.ingest import IngestLoop
    from edge_agent.mqtt import MqttSettings, MqttSource
    from edge_agent.profiles import ProfileSet

    profiles = ProfileSet.load(ROOT / "device_profiles")
    settings = MqttSettings(port=port, client_id="bench-edge", topics=("zigbee2mqtt/#",))

    async def run() -> None:
        buf = await Buffer.open(db, BufferConfig(budget_bytes=2 << 30, quick_check=False))
        src = MqttSource(settings)
        loop = IngestLoop(src, lambda m: decode(m, profiles, now_ms=int(time.time() * 1000)), buf)
        src.start(asyncio.get_running_loop(), loop.wake)
        src.wait_connected(10)
        await asyncio.sleep(0.5)
        src.stop()
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.05)
        src = MqttSource(settings)
        loop = IngestLoop(src, lambda m: decode(m, profiles, now_ms=int(time.time() * 1000)), buf)
        t0 = time.perf_counter()
        src.start(asyncio.get_running_loop(), loop.wake)
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop))
        deadline = time.monotonic() + 300
        while loop.stats.messages < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - t0
        stop.set()
        await task
        src.stop()
        await buf.close()
        out.put({"msgs": loop.stats.messages, "readings": loop.stats.readings, "acked": src.acked,
                 "seconds": seconds, "cpu": time.process_time(), "rss_peak_kib": _rss("VmHWM")})

    asyncio.run(run())


def _rss(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def one_run(target, n: int, msgs: list[tuple[str, bytes]], extra: tuple = ()) -> dict:  # type: ignore[no-untyped-def,type-arg]
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp) / "mq") as broker:
        ready, go, out = mp.Event(), mp.Event(), mp.Queue()
        args = (broker.port, n, *[str(Path(tmp) / e) for e in extra], ready, go, out)
        p = mp.Process(target=target, args=args)
        p.start()
        ready.wait(60)
        publish(broker.port, msgs)  # queued at the broker for the persistent session
        go.set()
        res = out.get(timeout=600)
        p.join(30)
        return res  # type: ignore[no-any-return]


def backlog_memory(sizes: list[int]) -> list[dict[str, int]]:
    """RSS of a process while the buffer holds a growing backlog (cut into batches, nothing uploaded)."""
    def child(q: mp.Queue, db: str) -> None:  # type: ignore[type-arg]
        from edge_agent.buffer import Buffer, BufferConfig
        from edge_agent.model import DecodeResult, Message, ProfileRef, Reading
        from edge_agent.outbox import cut_batches

        ref = ProfileRef("bench", 1)

        async def go() -> None:
            buf = await Buffer.open(db, BufferConfig(budget_bytes=4 << 30, quick_check=False))
            total, t = 0, 1_764_000_000_000
            for size in sizes:
                while total < size:
                    burst = [DecodeResult(Message("t", b"", t), ref, f"d{i % 1000}",
                                          tuple(Reading(f"d{i % 1000}", m, t + i, float(i % 97), "1", ref)
                                                for m in ("a", "b", "c", "d", "e")))
                             for i in range(total // 5, total // 5 + 2000)]
                    await buf.commit_burst(burst)
                    total += 10_000
                await cut_batches(buf, "gw", max_readings=20_000, max_batches=10_000)
                backlog = await buf.backlog()
                q.put({"backlog_readings": backlog.unsent_readings, "rss_kib": _rss(), "rss_peak_kib": _rss("VmHWM")})
            await buf.close()

        asyncio.run(go())

    with tempfile.TemporaryDirectory() as tmp:
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        p = mp.Process(target=child, args=(q, str(Path(tmp) / "b.sqlite")))
        p.start()
        rows = [q.get(timeout=900) for _ in sizes]
        p.join(60)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes, one run (smoke test)")
    args = ap.parse_args()
    n, runs = (2000, 1) if args.quick else (args.messages, args.runs)
    sizes = [20_000, 50_000] if args.quick else [100_000, 500_000, 1_000_000]
    msgs = payloads(n)
    bare, ours = [], []
    for _ in range(runs):
        bare.append(one_run(bare_subscriber, n, msgs))
        ours.append(one_run(pipeline, n, msgs, ("buffer.sqlite",)))
    b_rate = statistics.median(r["msgs"] / r["seconds"] for r in bare)
    o_rate = statistics.median(r["msgs"] / r["seconds"] for r in ours)
    o = ours[-1]
    mem = backlog_memory(sizes)
    result = {
        "messages": n, "runs": runs, "bare_msgs_per_s": round(b_rate), "edge_msgs_per_s": round(o_rate),
        "ratio": round(o_rate / b_rate, 3), "edge_readings_per_s": round(o_rate * READINGS_PER_MSG),
        "edge_acked": o["acked"], "edge_committed": o["msgs"],
        "cpu_s_per_1000_msgs": {"bare": round(bare[-1]["cpu"] / n * 1000, 4), "edge": round(o["cpu"] / n * 1000, 4)},
        "edge_rss_peak_mb": round(o["rss_peak_kib"] / 1024, 1),
        "backlog_memory": [{**m, "rss_mb": round(m["rss_kib"] / 1024, 1)} for m in mem],
    }
    print(f"edge ingest, QoS 1, {n} messages x {READINGS_PER_MSG} readings, median of {runs}")
    print(f"{'':28}{'msgs/s':>10}{'readings/s':>12}{'cpu s/1k msgs':>15}")
    print(f"{'bare paho subscriber':28}{b_rate:>10.0f}{b_rate * READINGS_PER_MSG:>12.0f}"
          f"{result['cpu_s_per_1000_msgs']['bare']:>15}")
    print(f"{'edge pipeline (commit+ack)':28}{o_rate:>10.0f}{o_rate * READINGS_PER_MSG:>12.0f}"
          f"{result['cpu_s_per_1000_msgs']['edge']:>15}")
    print(f"ratio edge/bare: {result['ratio']} (target >= 0.8); all acked after commit: {o['acked'] == n}")
    print(f"edge pipeline peak RSS: {result['edge_rss_peak_mb']} MB (target <= 64 MB)")
    print("backlog memory (buffer holding unsent batches):")
    for m in result["backlog_memory"]:
        print(f"  {m['backlog_readings']:>9} readings   RSS {m['rss_mb']:>6} MB")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "edge.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

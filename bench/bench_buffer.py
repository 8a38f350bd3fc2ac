"""Benchmark of the durable buffer: commit_burst throughput, and outbox drain throughput.

    .venv/bin/python bench/bench_buffer.py [--messages 100000] [--dir /var/tmp] [--quick]

Messages carry 5 readings each (the peer gateway's benchmark shape); bursts of 100, 500 and 2000
messages, each burst one transaction with synchronous=FULL (one fsync per burst). Results are
built before timing, so only the buffer is measured. Put ``--dir`` on the disk the gateway uses:
fsync cost dominates small bursts. Writes ``bench/results/buffer.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result
from edge_agent.buffer import Buffer, BufferConfig
from edge_agent.model import DecodeResult, Message, ProfileRef, Reading

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ProfileRef("zigbee2mqtt.air_sensor", 1)
METRICS = ("air_temp", "air_rh", "co2_conc", "pm25_conc", "tvoc_conc")


def make_burst(k: int, n_msgs: int, devices: int = 2000) -> list[DecodeResult]:
    out = []
    base = 1_700_000_000_000 + k * 10_000
    for i in range(n_msgs):
        dev = f"room-{(k * n_msgs + i) % devices:05d}"
        ts = base + i
        rs = tuple(Reading(dev, m, ts, 20.0 + (i % 100) / 10 + j, "u", PROFILE)
                   for j, m in enumerate(METRICS))
        out.append(DecodeResult(Message(f"zigbee2mqtt/{dev}", b"{}", ts, mid=i), PROFILE, dev, readings=rs))
    return out


async def bench_commit(directory: Path, burst_msgs: int, total_msgs: int) -> float:
    path = directory / f"bench-{burst_msgs}.db"
    n_bursts = max(1, total_msgs // burst_msgs)
    bursts = [make_burst(k, burst_msgs) for k in range(n_bursts)]
    async with await Buffer.open(path, BufferConfig(budget_bytes=4 << 30)) as buf:
        await buf.commit_burst(make_burst(10**6, burst_msgs))  # warm up: series interned
        t0 = time.perf_counter()
        for b in bursts:
            await buf.commit_burst(b)
        dt = time.perf_counter() - t0
    readings = n_bursts * burst_msgs * 5
    print(f"commit_burst  burst={burst_msgs:5d} msgs  {readings:8d} readings  {dt:6.2f} s  "
          f"{readings / dt:10,.0f} readings/s  {n_bursts * burst_msgs / dt:9,.0f} msgs/s")
    return readings / dt


async def bench_drain(directory: Path, batch_readings: int = 10_000) -> float:
    """take_unbatched → next_seq → store_batch → mark_sent, over the backlog left by the 500 bench."""
    path = directory / "bench-500.db"
    async with await Buffer.open(path) as buf:
        n = 0
        t0 = time.perf_counter()
        while True:
            p = await buf.take_unbatched(batch_readings, 0)
            if p.n_readings == 0:
                break
            seq = await buf.next_seq()
            await buf.store_batch(seq, p.priority, b"x" * p.n_readings, p.n_readings, 0, p.r_id)
            await buf.mark_sent(seq)
            n += p.n_readings
        dt = time.perf_counter() - t0
    print(f"outbox drain  batch={batch_readings} readings  {n:8d} readings  {dt:6.2f} s  "
          f"{n / dt:10,.0f} readings/s")
    return n / dt


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000,
                    help="messages per burst size (default 100000)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="directory for the buffer files (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="6,000 messages per burst size (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.messages = 6000
    commit = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for size in (100, 500, 2000):
            commit[str(size)] = round(await bench_commit(Path(d), size, args.messages))
        drain = round(await bench_drain(Path(d)))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS {rss_mb:.0f} MB (includes the pre-built bursts)")
    path = write_result("buffer" + ("-quick" if args.quick else ""), {
        "benchmark": "buffer", "quick": args.quick, "machine": machine(), "messages_per_size": args.messages,
        "commit_readings_per_s_by_burst_msgs": commit, "outbox_drain_readings_per_s": drain})
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())

"""Warehouse ingest benchmark: decode + ODS landing + DWD transform, readings per second.

Builds realistic campus batches (N devices × M metrics, raw samples every few seconds), encodes them with
the real wire format, then times, on a fresh DuckDB file:

  decode (wire → numpy columns) → ``Warehouse.land_batch`` (ODS, committed; from ``--threads`` worker
  threads like the API) → ``run_transforms`` limited to the DWD step (clean, unit-normalise, de-duplicate,
  conform)

and prints readings/s. The baseline is what a plain ``executemany`` of the same rows into the same ODS table
achieves (measured on a sample, since it is orders of magnitude slower), printed as a ratio.
``--postgres URL`` runs the same pipeline against PostgreSQL (COPY path) as well; ``--postgres auto`` starts a
throw-away local server for it (initdb in a temp directory, ``fsync=off`` as in the tests: PostgreSQL figures are
therefore an upper bound of a durable server's).

    .venv/bin/python bench/bench_warehouse.py                 # 2,000,000 readings
    .venv/bin/python bench/bench_warehouse.py --readings 500000 --postgres postgresql://…
    .venv/bin/python bench/bench_warehouse.py --postgres auto --quick

Writes ``bench/results/warehouse.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, write_result
from cloud_ingest.warehouse import Warehouse, open_warehouse
from edge_agent.wire import Batch, decode, encode

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_725_235_200_000  # 2024-09-02 00:00 UTC+8
METRICS = (("co2", "ppm", 1.0), ("temperature_air", "Cel", 0.01), ("humidity_rel", "%RH", 0.1),
           ("people_count", "count", 1.0), ("power_active", "W", 0.1))


def make_bodies(n_readings: int, batch_size: int, devices: int, gateways: int) -> list[bytes]:
    """Encoded batches: each gateway's devices report every metric every 10 s, cut into batches."""
    rng = np.random.default_rng(1)
    per_gw = devices // gateways
    series_per_gw = per_gw * len(METRICS)
    per_batch_steps = max(1, batch_size // series_per_gw)
    bodies: list[bytes] = []
    seq = {g: 0 for g in range(gateways)}
    produced, step = 0, 0
    while produced < n_readings:
        for g in range(gateways):
            if produced >= n_readings:
                break
            n_steps = per_batch_steps
            dev_names = tuple(f"dev-{g:03d}-{d:04d}" for d in range(per_gw))
            s_dev = np.repeat(np.arange(per_gw, dtype=np.uint32), len(METRICS))
            s_met = np.tile(np.arange(len(METRICS), dtype=np.uint32), per_gw)
            n_s = s_dev.shape[0]
            r_series = np.repeat(np.arange(n_s, dtype=np.uint32), n_steps)
            ts = T0 + (step + np.tile(np.arange(n_steps), n_s)) * 10_000 + (r_series % 7).astype(np.int64)
            base = np.array([450.0, 24.0, 55.0, 20.0, 300.0])[s_met[r_series]]
            scale = np.array([1.0, 0.01, 0.1, 1.0, 0.1])[s_met[r_series]]
            value = np.round((base + rng.normal(0, 5, r_series.shape[0])) / scale) * scale
            seq[g] += 1
            batch = Batch(
                gateway=f"gw-{g:03d}", seq=seq[g], created_ms=int(ts.max()) + 1, devices=dev_names,
                metrics=tuple(m for m, _, _ in METRICS), units=tuple(u for _, u, _ in METRICS),
                profiles=("bench_sensor@1",), aggs=("raw",), s_device=s_dev, s_metric=s_met,
                s_unit=s_met.copy(),
                s_profile=np.zeros(n_s, np.uint32), s_agg=np.zeros(n_s, np.uint32),
                s_window_s=np.zeros(n_s, np.uint32), s_precision=np.array([p for _, _, p in METRICS])[s_met],
                r_series=r_series, r_ts_ms=ts.astype(np.int64), r_value=value,
                r_quality=np.zeros(r_series.shape[0], np.uint16),
                r_version=np.zeros(r_series.shape[0], np.uint16),
                e_device=np.zeros(0, np.uint32), e_profile=np.zeros(0, np.uint32),
                e_ts_ms=np.zeros(0, np.int64),
                e_quality=np.zeros(0, np.uint16))
            bodies.append(encode(batch))
            produced += batch.n_readings
        step += per_batch_steps
    return bodies


def run_pipeline(url: str, bodies: list[bytes], threads: int, rounds: int = 1) -> tuple[int, dict[str, float]]:
    """Decode + land every body from ``threads`` worker threads (as the API does), then run DWD.

    Times: "decode" and "ods" are the summed per-batch times scaled to the wall clock of the decode+land
    phase (their shares of it); "dwd" is the DWD step. With ``rounds`` > 1 the bodies are landed and
    transformed in that many consecutive parts, so later DWD runs merge into a DWD table already holding
    the earlier parts (the steady state of a service), and the times are summed.
    """
    wh = open_warehouse(url)
    try:
        t = {"decode": 0.0, "ods": 0.0, "dwd": 0.0, "cpu_land": 0.0, "cpu_dwd": 0.0}
        total = 0
        per = -(-len(bodies) // max(1, rounds))
        for part in (bodies[i:i + per] for i in range(0, len(bodies), per)):
            n, tp = _land_and_transform(wh, part, threads)
            total += n
            for k in t:
                t[k] += tp[k]
        return total, t
    finally:
        wh.close()


def _land_and_transform(wh: Warehouse, bodies: list[bytes], threads: int) -> tuple[int, dict[str, float]]:
    """One part: decode + land from ``threads`` threads, then the DWD step over what landed."""
    t = {"decode": 0.0, "ods": 0.0, "dwd": 0.0, "cpu_land": 0.0, "cpu_dwd": 0.0}
    lock = threading.Lock()

    def one(body: bytes) -> int:
        t0 = time.perf_counter()
        batch = decode(body)
        t1 = time.perf_counter()
        res = wh.land_batch(batch, body_checksum=hashlib.blake2b(body, digest_size=16).hexdigest(),
                            received_ms=T0)
        t2 = time.perf_counter()
        with lock:
            t["decode"] += t1 - t0
            t["ods"] += t2 - t1
        return res.readings

    c0 = _cpu()
    w0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        n = sum(pool.map(one, bodies))
    wall = time.perf_counter() - w0
    c1 = _cpu()
    share = wall / max(t["decode"] + t["ods"], 1e-9)
    t["decode"] *= share
    t["ods"] *= share
    t0 = time.perf_counter()
    rows = wh.run_transforms(only=["dwd_reading"])
    t["dwd"] = time.perf_counter() - t0
    t["cpu_land"], t["cpu_dwd"] = c1 - c0, _cpu() - c1
    dwd_rows = sum(v for k, v in rows.items() if k.startswith("dwd_"))
    assert dwd_rows == n, f"DWD rows {dwd_rows} != landed readings {n}"
    return n, t


def _cpu() -> float:
    """CPU seconds (user + system) of this process, every thread (DuckDB's own included)."""
    ti = os.times()
    return ti.user + ti.system


def baseline_executemany(url: str, bodies: list[bytes], sample: int) -> float:
    """Rows/s of a plain executemany of the same ODS rows (one INSERT per row, parameters from Python)."""
    wh = open_warehouse(url)
    try:
        batch = decode(bodies[0])
        n = min(sample, batch.n_readings)
        s = batch.r_series[:n]
        rows = [(batch.gateway, batch.seq, 1, batch.devices[batch.s_device[i]],
                 batch.metrics[batch.s_metric[i]],
                 batch.units[batch.s_unit[i]], batch.profiles[0], "raw", 0, int(ts), float(v), 0, 0, T0, "x")
                for i, ts, v in zip(s.tolist(), batch.r_ts_ms[:n].tolist(), batch.r_value[:n].tolist(),
                                    strict=True)]
        sql = ("INSERT INTO ods_iot_reading_di (gateway_id, batch_seq, load_id, device_id, metric_code, "
               "unit_code, "
               "profile_ref, agg_code, window_s, ts_ms, value, quality_flag, window_ver, received_ms, "
               "checksum) "
               "VALUES (" + ", ".join(["?"] * 15) + ")")
        with wh.maintenance() as session:
            con = getattr(session, "_con", None) or getattr(session, "_conn", None)
            t0 = time.perf_counter()
            if url.startswith("duckdb"):
                con.executemany(sql, rows)  # type: ignore[union-attr]
            else:
                with con.cursor() as cur:  # type: ignore[union-attr]
                    cur.executemany(sql.replace("?", "%s"), rows)
            return n / (time.perf_counter() - t0)
    finally:
        wh.close()


def report(name: str, n: int, t: dict[str, float], base: float) -> dict[str, float]:
    total = t["decode"] + t["ods"] + t["dwd"]
    rate = n / total
    print(f"{name}: {n:,} readings in {total:.2f} s = {rate:,.0f} readings/s "
          f"(decode {t['decode']:.2f} s, ODS {t['ods']:.2f} s, DWD {t['dwd']:.2f} s = {n / t['dwd']:,.0f}/s)")
    cpu = t["cpu_land"] + t["cpu_dwd"]
    # With DuckDB every CPU second is this process's; with PostgreSQL the server's backends are not counted.
    print(f"{name}: CPU of this process {cpu:.2f} s (decode + ODS {t['cpu_land']:.2f} s, DWD {t['cpu_dwd']:.2f} s)"
          f" = {n / max(cpu, 1e-9):,.0f} readings per CPU second")
    print(f"{name}: baseline executemany {base:,.0f} rows/s; ratio {rate / base:,.1f}x")
    return {"readings": n, "readings_per_s": round(rate), "decode_s": round(t["decode"], 3),
            "ods_s": round(t["ods"], 3), "dwd_s": round(t["dwd"], 3), "ods_readings_per_s": round(n / t["ods"]),
            "dwd_readings_per_s": round(n / t["dwd"]), "cpu_land_s": round(t["cpu_land"], 3),
            "cpu_dwd_s": round(t["cpu_dwd"], 3), "readings_per_cpu_s": round(n / max(cpu, 1e-9)),
            "baseline_executemany_rows_per_s": round(base), "ratio": round(rate / base, 1)}


@contextlib.contextmanager
def _postgres(url: str) -> Iterator[str]:
    """``url`` itself, or with ``auto`` a fresh database on a throw-away local server."""
    if url != "auto":
        yield url
        return
    import psycopg

    from tests.cloud.pgserver import running_postgres

    with running_postgres() as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        yield server.url("bench")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=2_000_000)
    ap.add_argument("--batch-size", type=int, default=50_000, help="readings per batch (default 50,000)")
    ap.add_argument("--devices", type=int, default=2_000)
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--baseline-sample", type=int, default=20_000, help="rows for the executemany baseline")
    ap.add_argument("--threads", type=int, default=2, help="landing threads, like the API's workers (default 2)")
    ap.add_argument("--postgres", metavar="URL",
                    help="also run against this (empty) PostgreSQL database; 'auto': a throw-away local server")
    ap.add_argument("--postgres-readings", type=int, default=None, metavar="N",
                    help="PostgreSQL only on the first batches holding N readings (default: all)")
    ap.add_argument("--rounds", type=int, default=1, metavar="N",
                    help="land and transform in N consecutive parts: later DWD runs merge into a filled DWD "
                         "table, as in a running service (default 1: one DWD run over everything)")
    ap.add_argument("--quick", action="store_true", help="100,000 readings, small baseline (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.readings, args.baseline_sample = 100_000, 2_000
    t0 = time.perf_counter()
    bodies = make_bodies(args.readings, args.batch_size, args.devices, args.gateways)
    size = sum(len(b) for b in bodies)
    print(f"prepared {len(bodies)} batches, {size / 1e6:.1f} MB encoded ({size / args.readings:.2f} "
          f"B/reading) "
          f"in {time.perf_counter() - t0:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        n, t = run_pipeline(f"duckdb://{tmp}/bench.duckdb", bodies, args.threads, args.rounds)
        base = baseline_executemany(f"duckdb://{tmp}/base.duckdb", bodies, args.baseline_sample)
        results = {"duckdb": report("duckdb", n, t, base)}
    if args.postgres:
        pg_bodies = bodies
        if args.postgres_readings:
            pg_bodies = bodies[:max(1, -(-args.postgres_readings // args.batch_size))]
        with _postgres(args.postgres) as url:
            n, t = run_pipeline(url, pg_bodies, args.threads, args.rounds)
            base = baseline_executemany(url, pg_bodies, args.baseline_sample)
        results["postgres"] = report("postgres", n, t, base)
        results["postgres"]["server"] = "throw-away local, fsync=off" if args.postgres == "auto" else "given URL"
    path = write_result("warehouse" + ("-quick" if args.quick else ""), {
        "benchmark": "warehouse", "quick": args.quick, "machine": machine(), "readings": args.readings,
        "batch_size": args.batch_size, "threads": args.threads, "rounds": args.rounds, "engines": results})
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

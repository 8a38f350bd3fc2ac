"""Run every benchmark, print one summary table, write the figures as JSON.

Each benchmark script runs as its own subprocess (real Mosquitto, the real ``campus-edge run`` daemon and the
real ``campus-cloud serve`` service over loopback, where the benchmark uses them) and writes
``bench/results/<name>.json``; this script collects those files into one table — figure, ours, baseline
measured in the same run, ratio, target, met? — and writes ``bench/results/summary.json``. Each script's
own output goes to ``bench/results/<name>.log``. A benchmark that fails or times out is reported as such;
the others still run.

    .venv/bin/python bench/run_all.py            # everything, full sizes (about 30-45 min on the 2-core VM)
    .venv/bin/python bench/run_all.py --quick    # every script's --quick (about 3 min; *-quick.json)
    .venv/bin/python bench/run_all.py --only latency,drain
    .venv/bin/python bench/run_all.py --summary-only   # rebuild the table from the existing JSON files

Not included: ``bench/soak.py`` (a reliability check, 200 kills of the daemon: it counts losses, not speed).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine, table, write_result  # noqa: E402

PEER_GATEWAY_MSGS_PER_S = 1500  # ThingsBoard IoT Gateway, published figure (DESIGN §9), not measured here


@dataclass(frozen=True)
class Bench:
    name: str  # result file stem: bench/results/<name>.json
    script: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    timeout_s: float = 3600.0
    what: str = ""


BENCHES = (
    Bench("edge_ingest", "bench_edge_ingest.py", what="live QoS 1 ingest: bare paho vs pipeline vs daemon, 3 traffic "
          "variants"),
    Bench("edge_ingest_queued", "bench_edge_ingest.py", ("--mode", "queued", "--variants", "zigbee"),
          ("--mode", "queued", "--variants", "zigbee"), what="draining a queued session: bare vs pipeline"),
    Bench("edge_memory", "bench_edge_memory.py", what="daemon RSS by devices, RSS vs a 1M-reading backlog"),
    Bench("latency", "bench_latency.py", what="publish -> ODS -> DWD, daemon + cloud service, per transform cadence"),
    Bench("drain", "bench_drain.py", what="an outage hour drained after the cloud comes back"),
    Bench("wire", "bench_wire.py", what="wire bytes per reading vs JSON+gzip"),
    Bench("reduce", "bench_reduce.py", what="numpy reducers vs plain Python"),
    Bench("buffer", "bench_buffer.py", what="SQLite buffer commit and outbox throughput"),
    Bench("warehouse", "bench_warehouse.py", ("--postgres", "auto"),
          what="decode + ODS + DWD on DuckDB (and PostgreSQL) vs executemany"),
)


@dataclass
class Row:
    figure: str
    ours: str
    baseline: str | None = None
    ratio: str | None = None
    target: str | None = None
    met: str | None = None  # "yes" / "no" / None (no target)
    bench: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # the raw numbers, for summary.json


# -- running ----------------------------------------------------------------------------------------------------

def run_bench(b: Bench, quick: bool) -> dict[str, Any]:
    """Run one script (output to bench/results/<name>[-quick].log); return its status and wall time."""
    stem = b.name + ("-quick" if quick else "")
    result = RESULTS / f"{stem}.json"
    result.unlink(missing_ok=True)  # a failed run must not report an older file's figures
    log = RESULTS / f"{stem}.log"
    cmd = [sys.executable, str(ROOT / "bench" / b.script), *(("--quick", *b.quick_args) if quick else b.args)]
    t0 = time.monotonic()
    print(f"== {b.name}: {' '.join(cmd[1:])}", flush=True)
    with log.open("w") as fh:
        try:
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                timeout=300 if quick else b.timeout_s).returncode
            status = "ok" if rc == 0 and result.exists() else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            status = "timed out"
    seconds = round(time.monotonic() - t0, 1)
    print(f"   {status} in {seconds} s (log: {log.relative_to(ROOT)})", flush=True)
    return {"status": status, "seconds": seconds, "log": str(log.relative_to(ROOT)), "command": cmd[1:]}


def load(name: str, quick: bool) -> dict[str, Any] | None:
    path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    with contextlib.suppress(OSError, ValueError):
        return dict(json.loads(path.read_text()))
    return None


# -- the summary rows, per benchmark ------------------------------------------------------------------------------

def _n(x: float | None, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}{unit}"


def _ratio(a: float | None, b: float | None, digits: int = 2) -> str | None:
    return f"{a / b:.{digits}f}" if a is not None and b else None


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def rows_edge_ingest(d: dict[str, Any]) -> list[Row]:
    out = []
    for v in d["variants"]:
        k = v["kinds"]
        bare = k.get("bare", {})
        for kind in ("pipeline", "daemon"):
            if kind not in k:
                continue
            r = k[kind]
            ratio = r["msgs_per_s"] / bare["msgs_per_s"] if bare.get("msgs_per_s") else None
            out.append(Row(f"edge ingest {d['mode']}, {v['variant']} ({v['readings_per_msg']:g} readings/msg), {kind}",
                           f"{r['msgs_per_s']:,} msg/s", f"bare paho {bare.get('msgs_per_s', 0):,} msg/s",
                           f"{ratio:.2f}" if ratio is not None else None, f">= {d['target_ratio']} of bare",
                           _met(ratio is not None and ratio >= d["target_ratio"]) if ratio is not None else None,
                           values={"ours_msgs_per_s": r["msgs_per_s"], "bare_msgs_per_s": bare.get("msgs_per_s"),
                                   "ratio": ratio}))
        if d["mode"] == "live" and "daemon" in k and v["variant"] == "zigbee":
            m = k["daemon"]["msgs_per_s"]
            out.append(Row("edge ingest vs the peer gateway (zigbee, daemon)", f"{m:,} msg/s",
                           f"{PEER_GATEWAY_MSGS_PER_S:,} msg/s (published, not measured)",
                           f"{m / PEER_GATEWAY_MSGS_PER_S:.1f}x", ">= 2.5x", _met(m / PEER_GATEWAY_MSGS_PER_S >= 2.5),
                           values={"ours_msgs_per_s": m}))
    for label, cpu in d.get("cpu_cores_per_1000_msgs_per_s", {}).items():
        variant = label.split(" ")[0]
        bare = next((v["kinds"]["bare"]["cpu_s_per_1000_msgs"] for v in d["variants"]
                     if v["variant"] == variant and "bare" in v["kinds"]), None)
        out.append(Row(f"CPU per 1,000 msgs/s, one worker, {label} ({d['mode']})", f"{cpu:.3f} cores",
                       f"bare {bare:.3f} cores" if bare is not None else None,
                       _ratio(cpu, bare, 1) and f"{_ratio(cpu, bare, 1)}x", values={"cores": cpu, "bare": bare}))
    return out


def rows_edge_memory(d: dict[str, Any]) -> list[Row]:
    target = d["target_mb"]
    out = []
    for dev in d["devices"]:
        out.append(Row(f"daemon peak RSS, {dev['devices']:,} devices", f"{dev['peak_rss_mb']} MB",
                       f"import floor {d['import_floor']['peak_rss_mb']} MB", None, f"<= {target} MB",
                       _met(dev["peak_rss_mb"] <= target), values=dev))
    for key, label in (("backlog_direct", "direct"), ("backlog_daemon", "daemon")):
        b = d.get(key)
        if b and b.get("points"):
            pts = b["points"]
            sizes = " / ".join(f"{p['rss_mb']}" for p in pts)
            readings = " / ".join(f"{p.get('unsent_readings', p.get('target', 0)) // 1000:,}k" for p in pts)
            out.append(Row(f"RSS vs backlog ({label}), {readings} readings", f"{sizes} MB",
                           f"growth {b['growth_mb']:+} MB", None, "flat", _met(abs(b["growth_mb"]) <= 0.1 * pts[0]
                                                                               ["rss_mb"] + 2),
                           values={"points": [{"readings": p.get("unsent_readings"), "rss_mb": p["rss_mb"]}
                                              for p in pts], "growth_mb": b["growth_mb"]}))
    return out


def rows_latency(d: dict[str, Any]) -> list[Row]:
    out = []
    target = d["target_p99_s"]
    for r in d["runs"]:
        bare = r["bare_s"]["p99"]
        cad = f"transform every {r['cadence_s']:g} s" + (f", DWD every {r['dwd_every_s']:g} s"
                                                          if r.get("dwd_every_s") else "")
        for key, label in (("ods_s", "publish -> ODS"), ("dwd_s", "publish -> DWD")):
            p = r[key]
            met = _met(p["p99"] is not None and p["p99"] < target) if key == "dwd_s" else None
            out.append(Row(f"latency {label} p50/p95/p99 ({cad}, {r['rate']:g} msg/s)",
                           f"{_s(p['p50'])} / {_s(p['p95'])} / {_s(p['p99'])} s", f"bare subscriber p99 {bare:.3f} s",
                           f"{p['p99'] / bare:,.0f}x" if p["p99"] and bare else None,
                           f"p99 < {target:g} s" if key == "dwd_s" else None, met,
                           values={"p": p, "bare": r["bare_s"], "cadence_s": r["cadence_s"]}))
    return out


def rows_drain(d: dict[str, Any]) -> list[Row]:
    f = d["fresh_during_drain"]
    outage = f"{d['outage_s'] / 3600:g} h" if d["outage_s"] >= 3600 else f"{d['outage_s'] / 60:g} min"
    return [
        Row(f"backlog drain, {outage} outage ({d['backlog_readings']:,} readings)",
            f"{d['drain_readings_per_s']:,.0f} readings/s",
            f"production {d['production_readings_per_s']:,.0f} readings/s", f"{d['multiple']}x",
            f">= {d['target_multiple']:g}x", _met(d["multiple"] >= d["target_multiple"]),
            values={k: d[k] for k in ("drain_readings_per_s", "production_readings_per_s", "multiple",
                                      "multiple_uploading", "drain_s_from_cloud_up", "retry_wait_s")}),
        Row("fresh data during the drain: publish -> cloud p50/p99", f"{_s(f['publish_to_cloud_s']['p50'])} / "
            f"{_s(f['publish_to_cloud_s']['p99'])} s ({f['batches']} batches)", None, None, "keeps flowing",
            _met(f["batches"] > 0), values=f),
    ]


def rows_wire(d: dict[str, Any]) -> list[Row]:
    r, m = d["regular"], d["mixed"]
    return [Row("wire bytes per reading, regular series", f"{r['wire_bytes_per_reading']:.3f} B",
                f"JSON+gzip {r['json_gzip_bytes_per_reading']:.2f} B", f"{r['ratio']}x smaller", "<= 1.2 B",
                _met(r["wire_bytes_per_reading"] <= 1.2), values=r),
            Row("wire bytes per record, mixed campus traffic", f"{m['wire_bytes_per_record']:.2f} B",
                f"JSON+gzip {m['json_gzip_bytes_per_record']:.2f} B", f"{m['ratio']}x smaller", values=m)]


def rows_reduce(d: dict[str, Any]) -> list[Row]:
    unit = {"waveform": "samples/s"}
    return [Row(f"reduction: {k} ({d['series']:,} series x {d['readings_per_series']})",
                f"{v['numpy_per_s'] / 1e6:.1f} M {unit.get(k, 'rows/s')}",
                f"plain Python {v['python_per_s'] / 1e6:.1f} M", f"{v['ratio']}x", values=v)
            for k, v in d["reducers"].items()]


def rows_buffer(d: dict[str, Any]) -> list[Row]:
    c = d["commit_readings_per_s_by_burst_msgs"]
    return [Row("buffer commit_burst (bursts of 100 / 500 / 2000 msgs, synchronous=FULL)",
                " / ".join(f"{c[k] / 1000:,.0f}k" for k in ("100", "500", "2000")) + " readings/s", values=c),
            Row("buffer outbox drain (take, store, mark sent)", f"{d['outbox_drain_readings_per_s']:,} readings/s",
                values={"readings_per_s": d["outbox_drain_readings_per_s"]})]


def rows_warehouse(d: dict[str, Any]) -> list[Row]:
    out = []
    for engine, e in d["engines"].items():
        target = ">= 1 M readings/s" if engine == "duckdb" else None
        out.append(Row(f"cloud decode + ODS + DWD, {engine} ({e['readings']:,} readings)",
                       f"{e['readings_per_s']:,} readings/s",
                       f"executemany {e['baseline_executemany_rows_per_s']:,} rows/s", f"{e['ratio']:,}x", target,
                       _met(e["readings_per_s"] >= 1_000_000) if target else None, values=e))
    return out


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "edge_ingest": rows_edge_ingest, "edge_ingest_queued": rows_edge_ingest, "edge_memory": rows_edge_memory,
    "latency": rows_latency, "drain": rows_drain, "wire": rows_wire, "reduce": rows_reduce, "buffer": rows_buffer,
    "warehouse": rows_warehouse,
}


def summary_rows(names: list[str], quick: bool, status: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        d = load(name, quick)
        st = status.get(name, {}).get("status", "ok" if d else "no result")
        if d is None or st != "ok":
            rows.append(Row(f"{name}: {st}", "-", bench=name))
            continue
        try:
            got = ROWS[name](d)
        except (KeyError, TypeError, ZeroDivisionError) as exc:  # a result file of another shape: say so
            got = [Row(f"{name}: result not understood ({type(exc).__name__}: {exc})", "-")]
        for r in got:
            r.bench = name
        rows.extend(got)
    return rows


# -- main -------------------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every script with --quick (smoke sizes, *-quick.json)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(b.name for b in BENCHES)}")
    ap.add_argument("--summary-only", action="store_true", help="run nothing; summarise the existing results")
    args = ap.parse_args()
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - {b.name for b in BENCHES}
    if unknown:
        ap.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = machine()
    t0 = time.monotonic()
    status = {} if args.summary_only else {b.name: run_bench(b, args.quick) for b in chosen}
    rows = summary_rows([b.name for b in chosen], args.quick, status)
    print(f"\nsummary ({'quick sizes: not figures to quote' if args.quick else 'full sizes'}); machine: "
          f"{info['cpus']} x {info['cpu']}, {info['mem_gib']} GiB, {info['os']}, Python {info['python']}, "
          f"load at start {info['loadavg_at_start']}")
    print(table(["figure", "ours", "baseline (same run)", "ratio", "target", "met?"],
                [[r.figure, r.ours, r.baseline, r.ratio, r.target, r.met] for r in rows]))
    failed = [n for n, s in status.items() if s["status"] != "ok"]
    path = write_result("summary" + ("-quick" if args.quick else ""), {
        "benchmark": "summary", "quick": args.quick, "machine": info,
        "seconds": round(time.monotonic() - t0, 1), "runs": status,
        "rows": [{"bench": r.bench, "figure": r.figure, "ours": r.ours, "baseline": r.baseline, "ratio": r.ratio,
                  "target": r.target, "met": r.met, "values": r.values} for r in rows]})
    print(f"results: {path.relative_to(ROOT)}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

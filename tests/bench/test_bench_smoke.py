"""The edge benchmarks still run (``--quick``) and print their tables; their figures are never asserted.

Only completeness is checked (every message acknowledged after commit, every backlog point reported), so a
benchmark that silently measured nothing fails here. With ``--quick`` each script writes
``bench/results/<name>-quick.json``, so a developer's full-run figures are not overwritten.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_TIMEOUT_S = 120  # --quick runs take ~10-20 s each on the 2-core VM


def _run(script: str, *args: str, result: str | None = None) -> tuple[str, dict]:  # type: ignore[type-arg]
    res = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", *args], capture_output=True,
                         text=True, timeout=BENCH_TIMEOUT_S, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    name = result or script.removeprefix("bench_").removesuffix(".py")
    return res.stdout, json.loads((ROOT / "bench" / "results" / f"{name}-quick.json").read_text())


@pytest.mark.slow
def test_bench_edge_ingest_quick() -> None:
    out, result = _run("bench_edge_ingest.py")
    for column in ("bare msgs/s", "ours msgs/s", "ratio", "ours readings/s", "cpu s/1k ours"):  # the table
        assert column in out
    assert {v["variant"] for v in result["variants"]} == {"zigbee", "sim", "senml"}
    for v in result["variants"]:
        assert set(v["kinds"]) == {"bare", "pipeline", "daemon"}
        for kind in v["kinds"].values():
            assert kind["all_acked"], v["variant"]  # every message committed and acknowledged
            assert kind["msgs_per_s"] > 0


@pytest.mark.slow
def test_bench_edge_memory_quick() -> None:
    out, result = _run("bench_edge_memory.py")
    for column in ("peak RSS MB", "backlog readings", "anon MB"):
        assert column in out
    assert [d["devices"] for d in result["devices"]] == [10, 300]
    assert all(d["peak_rss_mb"] > 0 for d in result["devices"])
    assert [p["unsent_readings"] for p in result["backlog_direct"]["points"]] == [20_000, 50_000, 100_000]


@pytest.mark.slow
def test_bench_edge_ingest_queued_quick() -> None:
    """Draining a session's queue (the ceiling of bare and pipeline), and CPU per 1,000 msgs/s of one worker."""
    out, result = _run("bench_edge_ingest.py", "--mode", "queued", "--variants", "zigbee",
                       result="edge_ingest_queued")
    assert "CPU per 1,000 msgs/s" in out
    (v,) = result["variants"]
    assert set(v["kinds"]) == {"bare", "pipeline"}  # the daemon kind is skipped in queued mode
    assert all(k["all_acked"] for k in v["kinds"].values())
    assert v["kinds"]["pipeline"]["rss_peak_mb"]
    assert result["cpu_cores_per_1000_msgs_per_s"]


def test_bench_wire_quick() -> None:
    _, result = _run("bench_wire.py")
    assert result["regular"]["wire_bytes_per_reading"] > 0
    assert result["mixed"]["records"] > 0


def test_bench_reduce_quick() -> None:
    _, result = _run("bench_reduce.py")
    assert set(result["reducers"]) == {"windows", "deadband", "counters", "waveform"}


def test_bench_buffer_quick() -> None:
    _, result = _run("bench_buffer.py")
    assert set(result["commit_readings_per_s_by_burst_msgs"]) == {"100", "500", "2000"}
    assert result["outbox_drain_readings_per_s"] > 0


def test_bench_warehouse_quick() -> None:
    _, result = _run("bench_warehouse.py")
    assert result["engines"]["duckdb"]["readings"] == 100_000  # every landed reading reached DWD (checked inside)


def test_run_all_quick_subset() -> None:
    """The one command: runs the chosen scripts, prints one table, writes summary-quick.json."""
    cmd = [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--only", "wire,reduce,buffer"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    for column in ("figure", "ours", "baseline (same run)", "ratio", "target", "met?"):
        assert column in res.stdout
    summary = json.loads((ROOT / "bench" / "results" / "summary-quick.json").read_text())
    assert {r["status"] for r in summary["runs"].values()} == {"ok"}
    assert {r["bench"] for r in summary["rows"]} == {"wire", "reduce", "buffer"}
    assert all(r["ours"] != "-" for r in summary["rows"])

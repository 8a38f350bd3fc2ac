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


def _run(script: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    res = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], capture_output=True, text=True,
                         timeout=BENCH_TIMEOUT_S, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    name = script.removeprefix("bench_").removesuffix(".py")
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

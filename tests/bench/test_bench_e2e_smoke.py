"""The end-to-end benchmarks (real Mosquitto, daemon and cloud service) still run with ``--quick``.

Only completeness is checked — every published message reached ODS and DWD, the backlog drained, fresh data
landed after it — never a latency or a rate: those are measured, not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_TIMEOUT_S = 180  # --quick runs take ~10-25 s each on the 2-core VM


def _run(script: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    res = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], capture_output=True, text=True,
                         timeout=BENCH_TIMEOUT_S, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    name = script.removeprefix("bench_").removesuffix(".py")
    return res.stdout, json.loads((ROOT / "bench" / "results" / f"{name}-quick.json").read_text())


@pytest.mark.slow
def test_bench_latency_quick() -> None:
    out, result = _run("bench_latency.py")
    for column in ("publish → ODS", "publish → DWD", "bare subscriber (baseline)", "p99"):
        assert column in out
    (run,) = result["runs"]
    assert run["published"] > 0
    assert run["bare_received"] == run["in_ods"] == run["in_dwd"] == run["published"]  # nothing lost on the way
    for path in ("bare_s", "ods_s", "dwd_s"):
        assert run[path]["p99"] is not None
    assert run["dwd_runs"]["runs"] >= 1


@pytest.mark.slow
def test_bench_drain_quick() -> None:
    out, result = _run("bench_drain.py")
    assert "drain rate" in out
    assert result["prefill"]["unsent_readings"] > 0
    assert result["backlog_readings"] >= result["prefill"]["unsent_readings"]  # the whole pre-filled hour landed
    assert result["ods_readings"] >= result["backlog_readings"]
    assert result["daemon_end"]["evicted"] == {}  # nothing dropped to make room
    assert result["after_drain"]["batches"] >= 1  # fresh data went on landing after the drain
    assert result["multiple"] > 0

"""The edge benchmark still runs (``--quick``); its figures are printed, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_edge_quick() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_edge.py"), "--quick"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ratio edge/bare" in res.stdout
    result = json.loads((ROOT / "bench" / "results" / "edge.json").read_text())
    assert result["edge_committed"] == result["messages"] == result["edge_acked"]  # everything acked after commit
    assert len(result["backlog_memory"]) == 2

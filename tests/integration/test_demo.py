"""Quick start command 1, shortened: the whole chain runs and its summary adds up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--duration", "15", "--devices", "80",
                          "--rate", "80", "--out", str(out)], capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "demo OK" in res.stdout
    assert "warehouse file:" in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    st, rows, sim = summary["status"], summary["rows"], summary["simulator"]
    # everything the edge received was committed and acknowledged, and it all reached ODS
    assert st["mqtt"]["received"] == st["ingest"]["messages"] == st["mqtt"]["acked"]
    assert st["backlog"]["readings"] == 0
    assert rows["ods_iot_reading_di"] == st["upload"]["readings_sent"]
    assert rows["ods_iot_reading_di"] >= st["ingest"]["readings"]  # plus the edge's window aggregates
    # the simulator's injected malformed messages are quarantined with a reason, not lost
    assert sim["faults"]["malformed"] > 0
    assert sum(st["quarantined_by_reason"].values()) >= sim["faults"]["malformed"]
    assert st["quarantined_by_reason"].get("malformed", 0) > 0
    for table in ("dwd_env_reading_di", "dws_env_room_1h", "ads_iot_online_rate_1d", "dim_iot_device"):
        assert rows[table] > 0, table
    assert "indicators (ADS):" in res.stdout

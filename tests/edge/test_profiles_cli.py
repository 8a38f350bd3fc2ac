"""``campus-edge check-profiles`` run as a real subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BAD = Path(__file__).resolve().parents[1] / "data" / "malformed" / "profiles"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_shipped_profiles_are_all_valid(project_root: Path) -> None:
    r = _run(project_root, "check-profiles")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(
        line.startswith("OK    device_profiles/zigbee2mqtt/generic.yaml  zigbee2mqtt.generic@1")
        for line in lines
    )
    assert lines[-1].endswith(", 0 invalid")


def test_invalid_profiles_exit_1_and_name_file_and_field(project_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    shutil.copytree(project_root / "device_profiles", root)
    shutil.copy(BAD / "bad_unit.yaml", root / "zigbee2mqtt" / "aqara_th.yaml")
    r = _run(project_root, "check-profiles", str(root))
    assert r.returncode == 1
    assert f"{root}/zigbee2mqtt/aqara_th.yaml: metrics[2].unit: unknown unit 'degC2' (line 14)" in r.stdout
    assert "OK    " in r.stdout  # the others are still reported
    # one file, checked on its own (the root is found upwards); relative paths are printed as typed
    r = _run(tmp_path, "check-profiles", "profiles/zigbee2mqtt/aqara_th.yaml", "profiles/tasmota")
    assert r.returncode == 1
    assert (
        r.stdout.splitlines()[0]
        == "profiles/zigbee2mqtt/aqara_th.yaml: metrics[2].unit: unknown unit 'degC2' (line 14)"
    )
    assert "OK    profiles/tasmota/energy_plug.yaml  tasmota.energy_plug@1" in r.stdout
    assert "generic.yaml  zigbee2mqtt" not in r.stdout


def test_missing_path_and_missing_registry(project_root: Path, tmp_path: Path) -> None:
    r = _run(tmp_path, "check-profiles", "nowhere", str(tmp_path))
    assert r.returncode == 1
    assert "nowhere: no such file or directory" in r.stdout
    assert "no metrics.yaml" in r.stdout


def test_help(project_root: Path) -> None:
    r = _run(project_root, "check-profiles", "--help")
    assert r.returncode == 0
    assert "PATH" in r.stdout
    assert "metrics.yaml" in r.stdout

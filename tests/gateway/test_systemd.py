"""The systemd units install into a staging root and pass ``systemd-analyze verify`` there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ["Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=", "ConfigurationDirectory=",
            "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "User=",
            "CapabilityBoundingSet="]


@pytest.mark.parametrize("unit", ["campus-edge.service", "campus-cloud.service"])
def test_units_are_hardened(unit: str) -> None:
    text = (ROOT / "systemd" / unit).read_text()
    for key in REQUIRED:
        assert key in text, f"{unit} lacks {key}"


@pytest.fixture(scope="module")
def staged_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stage")
    # The stage stands for a Debian host: give it the OS's own units and the binaries the units call.
    for unit_dir in ("usr/lib/systemd/system", "lib/systemd/system"):
        if (Path("/") / unit_dir).is_dir() and not (Path("/") / unit_dir).is_symlink():
            shutil.copytree(Path("/") / unit_dir, root / unit_dir, symlinks=True)
            break
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy2(shutil.which("kill") or "/bin/kill", root / "bin" / "kill")
    for extra in ([], ["--cloud"]):
        subprocess.run([str(ROOT / "scripts" / "install.sh"), "--root", str(root), "--no-deps", *extra],
                       check=True, capture_output=True, text=True, timeout=240)
    return root


def test_install_puts_everything_in_place(staged_root: Path) -> None:
    assert (staged_root / "opt/campus-collector/venv/bin/campus-edge").exists()
    assert (staged_root / "etc/systemd/system/campus-edge.service").exists()
    assert (staged_root / "etc/systemd/system/campus-cloud.service").exists()
    conf = (staged_root / "etc/campus-edge/edge.toml").read_text()
    assert 'state_dir = "/var/lib/campus-edge"' in conf
    assert (staged_root / "etc/campus-edge/device_profiles").is_dir()
    shebang = (staged_root / "opt/campus-collector/venv/bin/campus-edge").read_text().splitlines()[0]
    assert shebang == "#!/opt/campus-collector/venv/bin/python", shebang


@pytest.mark.parametrize("unit", ["campus-edge.service", "campus-cloud.service"])
def test_systemd_analyze_verify(staged_root: Path, unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: scripts/bootstrap.sh installs the systemd package"
    res = subprocess.run([analyze, "verify", f"--root={staged_root}", f"/etc/systemd/system/{unit}"],
                         capture_output=True, text=True, timeout=60)
    problems = [ln for ln in res.stderr.splitlines() if unit in ln or "campus" in ln]
    assert res.returncode == 0, res.stderr
    assert not problems, problems

"""``campus-edge decode`` run as a real subprocess: one JSON object on stdout, exit 0 whenever it ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def _run(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "decode", *args],
        cwd=cwd,
        capture_output=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def _json(r: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert r.returncode == 0, r.stderr.decode()
    out: dict[str, Any] = json.loads(r.stdout)
    assert set(out) >= {"profile", "device", "readings", "events", "quarantine"}
    return out


def test_decode_zigbee2mqtt(project_root: Path) -> None:
    out = _json(
        _run(
            project_root,
            "--topic",
            "zigbee2mqtt/Temperature_Lyne",
            "--now",
            "2024-01-01T18:11:00Z",
            "--payload",
            '{"battery":97,"humidity":61.85,"last_seen":"2024-01-01T19:10:43+01:00",'
            '"pressure":995.6,"temperature":19.34,"voltage":2995}',
        )
    )
    assert out["profile"] == {"id": "zigbee2mqtt.aqara_wsdcgq11lm", "version": 1}
    assert out["device"] == "Temperature_Lyne"
    assert out["quarantine"] is None
    temp = next(r for r in out["readings"] if r["metric"] == "temperature_air")
    assert temp == {
        "metric": "temperature_air",
        "ts": "2024-01-01T18:10:43.000Z",
        "value": 19.34,
        "unit": "Cel",
        "quality": [],
    }
    volt = next(r for r in out["readings"] if r["metric"] == "voltage_battery")
    assert volt["value"] == 2.995
    assert volt["unit"] == "V"


def test_decode_quarantine_still_exits_0(project_root: Path) -> None:
    out = _json(_run(project_root, "--topic", "zigbee2mqtt/x", "--payload", '{"temperature": 21'))
    assert out["quarantine"]["reason"] == "malformed"
    assert "invalid JSON" in out["quarantine"]["detail"]
    assert out["readings"] == []
    assert out["profile"] is None


def test_decode_binary_from_file_and_hex(project_root: Path, tmp_path: Path) -> None:
    body = {
        "deviceInfo": {"devEui": "24e124710b423527"},
        "fPort": 85,
        "time": "2024-03-04T01:20:15Z",
        "data": "A2fuAARofAUAAQbLAgd9qAMIfSUACXNmJw==",
    }
    f = tmp_path / "up.json"
    f.write_text(json.dumps(body))
    out = _json(
        _run(
            project_root,
            "--topic",
            "application/a/device/24e124710b423527/event/up",
            "--payload-file",
            str(f),
            "--now",
            "1709515215000",
        )
    )
    got = {r["metric"]: r["value"] for r in out["readings"]}
    assert got["co2"] == 936
    assert got["pressure_air"] == 1008.6
    assert got["temperature_air"] == 23.8
    out = _json(_run(project_root, "--topic", "campus/noise/r1/level", "--payload-hex", "34382e37"))
    assert out["readings"][0]["value"] == 48.7
    assert out["readings"][0]["quality"] == ["receive_time"]
    out = _json(_run(project_root, "--topic", "campus/noise/r1/level", "--payload-file", "-", stdin=b"51.0"))
    assert out["readings"][0]["value"] == 51.0


def test_decode_events_with_key_file_and_device_map(project_root: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("p7 " + "ab" * 32 + "\n")
    keys.chmod(0o600)
    out = _json(
        _run(
            project_root,
            "--topic",
            "/rfid/send",
            "--key-file",
            str(keys),
            "--now",
            "1605991375000",
            "--payload",
            '{"type":"access","time":1605991375,"access":"Admin","username":"J",'
            '"uid":"0036A26A","hostname":"door-1"}',
        )
    )
    (event,) = out["events"]
    assert event["kind"] == "card_swipe"
    assert event["attrs"]["card"].startswith("p7:")
    assert "0036A26A" not in json.dumps(out)
    dmap = tmp_path / "map.yaml"
    dmap.write_text("device_map:\n  lab-9: zigbee2mqtt.generic\n")
    out = _json(
        _run(
            project_root,
            "--topic",
            "zigbee2mqtt/lab-9",
            "--device-map",
            str(dmap),
            "--payload",
            '{"temperature":20,"humidity":30}',
        )
    )
    assert out["profile"]["id"] == "zigbee2mqtt.generic"


def test_decode_usage_errors_exit_2(project_root: Path, tmp_path: Path) -> None:
    r = _run(project_root, "--topic", "x", "--payload", "1", "--profiles", str(tmp_path))
    assert r.returncode == 2
    assert b"metrics.yaml" in r.stderr
    r = _run(project_root, "--topic", "x")
    assert r.returncode == 2  # argparse: one payload option is required
    r = _run(project_root, "--topic", "x", "--payload-hex", "zz")
    assert r.returncode == 2


def test_help(project_root: Path) -> None:
    r = _run(project_root, "--help")
    assert r.returncode == 0
    assert b"--payload-file" in r.stdout
    assert b"--device-map" in r.stdout

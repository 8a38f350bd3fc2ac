"""The daemon as systemd runs it: SIGTERM, SIGHUP reload, watchdog on a stalled pipeline, silent devices.

Real parts: Mosquitto, the ingest API on DuckDB, ``campus-edge run`` as a subprocess, a unix datagram
socket standing in for systemd's NOTIFY_SOCKET, and a second SQLite connection holding the buffer's
write lock to stall the pipeline for real.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.cloud.api_fixtures import GATEWAYS, OPERATOR_TOKEN, api_on_warehouse, open_test_warehouse
from tests.integration.edge_harness import ROOT, Publisher, edge_process, wait_until, write_gateway_config
from tests.support.procs import Broker


@pytest.fixture
def api(tmp_path: Path):  # type: ignore[no-untyped-def]
    wh = open_test_warehouse(tmp_path)
    with api_on_warehouse(wh) as server:
        yield server
    wh.close()


def notify_socket(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    return sock


def drain_notes(sock: socket.socket, seconds: float) -> list[str]:
    notes, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            notes.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return notes


def test_sigterm_stops_cleanly_and_notifies(broker: Broker, api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sock = notify_socket(tmp_path)
    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    with edge_process(cfg, tmp_path / "edge.log", env=env) as edge:
        notes = drain_notes(sock, 3)
        assert any(n.startswith("READY=1") for n in notes), notes
        assert "WATCHDOG=1" in notes
        assert any("STATUS=" in n for n in notes)
        pub = Publisher(broker.port)
        pub.publish(200)
        pub.close()
        assert wait_until(lambda: edge.status()["ingest"]["messages"] >= 200, 20)
        t0 = time.monotonic()
        assert edge.stop(signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 25
        assert "STOPPING=1" in drain_notes(sock, 0.5)
        assert "stopped cleanly" in edge.log()


def test_sighup_reloads_profiles_and_keeps_old_on_error(broker: Broker, api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profiles = tmp_path / "profiles"
    shutil.copytree(ROOT / "device_profiles", profiles)
    new_profile = profiles / "zigbee2mqtt" / "xiaomi_wsdcgq01lm.yaml"
    saved = new_profile.read_text()
    new_profile.unlink()  # start without the specific T/H profile: the generic one decodes
    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
    cfg.write_text(cfg.read_text().replace(str(ROOT / "device_profiles"), str(profiles)))
    with edge_process(cfg, tmp_path / "edge.log") as edge:
        before = edge.status()["profiles"]
        assert "zigbee2mqtt.xiaomi_wsdcgq01lm" not in before["versions"]
        new_profile.write_text(saved)
        edge.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        assert wait_until(lambda: edge.status()["profiles"]["reloads"] == 1, 10), edge.log()
        assert "zigbee2mqtt.xiaomi_wsdcgq01lm" in edge.status()["profiles"]["versions"]
        # a broken profile: the reload fails, the running set stays, the error is visible
        (profiles / "zigbee2mqtt" / "broken.yaml").write_text("id: broken\nversion: x\n")
        edge.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        assert wait_until(lambda: edge.status()["profiles"]["reload_error"] is not None, 10)
        st = edge.status()
        assert "broken.yaml" in st["profiles"]["reload_error"]
        assert st["profiles"]["count"] == before["count"] + 1
        pub = Publisher(broker.port)
        pub.publish(10)
        pub.close()
        assert wait_until(lambda: edge.status()["ingest"]["readings"] >= 20, 10)  # still decoding
        assert edge.stop() == 0


def test_watchdog_withheld_while_pipeline_stalls(broker: Broker, api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sock = notify_socket(tmp_path)
    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"],
                               extra="pipeline_stall_s = 2")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    with edge_process(cfg, tmp_path / "edge.log", env=env) as edge:
        assert "WATCHDOG=1" in drain_notes(sock, 2)
        # another process takes the buffer's write lock: commits fail, messages wait
        con = sqlite3.connect(str(tmp_path / "state" / "buffer.sqlite"), timeout=1, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        try:
            pub = Publisher(broker.port)
            pub.publish(20)
            time.sleep(3)  # past pipeline_stall_s
            drain_notes(sock, 0.3)  # discard notifications sent before the stall was detected
            notes = drain_notes(sock, 3)
            assert "WATCHDOG=1" not in notes, notes
            st = edge.status()
            assert st["ingest"]["pipeline_healthy"] is False
            assert st["ingest"]["commit_errors"] >= 1
            assert st["mqtt"]["acked"] == 0  # nothing acknowledged that is not committed
        finally:
            con.execute("ROLLBACK")
            con.close()
        assert wait_until(lambda: edge.status()["ingest"]["messages"] >= 20, 15)
        assert "WATCHDOG=1" in drain_notes(sock, 3)  # healthy again
        pub.close()
        assert edge.stop() == 0


def test_silent_devices_are_reported(broker: Broker, api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
    cfg.write_text(cfg.read_text().replace("interval_s = 1", "interval_s = 1\nsilent_factor = 0.01"))
    with edge_process(cfg, tmp_path / "edge.log") as edge:
        pub = Publisher(broker.port, devices=3)
        pub.publish(3)
        pub.close()
        # expected interval 60 s x 0.01 = 0.6 s without data -> silent
        assert wait_until(lambda: edge.status()["devices"]["silent"] == 3, 10), edge.status()["devices"]
        silent = {d["device"] for d in edge.status()["devices"]["silent_list"]}
        assert silent == {"room-000", "room-001", "room-002"}
        body = orjson.loads(orjson.dumps(edge.status()))
        assert body["devices"]["tracked"] == 3
        assert edge.stop() == 0


def test_fleet_sees_a_gateway_go_silent(broker: Broker, api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def state() -> str:
        out = subprocess.run([sys.executable, "-m", "cloud_ingest.cli", "fleet", "gw-a", "--url", api.url,
                              "--json"], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "CAMPUS_API_TOKEN": OPERATOR_TOKEN})
        assert out.returncode == 0, out.stderr
        return str(orjson.loads(out.stdout)["state"])

    cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=api.url, token=GATEWAYS["gw-a"])
    with edge_process(cfg, tmp_path / "edge.log") as edge:  # heartbeat every 1 s
        assert wait_until(lambda: state() == "online", 10)
        edge.kill()
        t0 = time.monotonic()
        assert wait_until(lambda: state() == "offline", 10)
        assert time.monotonic() - t0 <= 3 * 1 + 1.5  # visible within 3 intervals (+ polling slack)

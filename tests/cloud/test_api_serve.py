"""``campus-cloud serve`` as a real subprocess: configuration errors, config file, systemd notify, SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.cloud.api_fixtures import batch_headers, body_of, running_api_process, write_tokens_file
from tests.support.procs import free_port, wait_port


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloud_ingest.cli", "serve", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_help() -> None:
    out = _serve("--help")
    assert out.returncode == 0
    for flag in ("--warehouse", "--tokens", "--host", "--port", "--config", "--transform-every", "--dwd-every"):
        assert flag in out.stdout


def test_bad_tokens_file_exits_2_naming_it(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[gateways]\n"gw-1" = "plaintext"\n')
    out = _serve("--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}", "--tokens", str(tokens))
    assert out.returncode == 2
    assert f"{tokens}: gateways.gw-1: not a token hash" in out.stderr
    assert "plaintext" not in out.stderr


def test_missing_tokens_and_bad_settings_exit_2(tmp_path: Path) -> None:
    missing = _serve("--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}")
    assert missing.returncode == 2
    assert "--tokens" in missing.stderr
    tokens = write_tokens_file(tmp_path / "tokens.toml")
    bad = _serve("--tokens", str(tokens), env={"CAMPUS_API_MAX_IN_FLIGHT": "many", "PATH": "/usr/bin"})
    assert bad.returncode == 2
    assert "CAMPUS_API_MAX_IN_FLIGHT has value 'many', not a valid int" in bad.stderr


def test_bad_config_file_names_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "cloud.toml"
    cfg.write_text('[serve]\nport = "eighty"\n')
    out = _serve("--config", str(cfg))
    assert out.returncode == 2
    assert f"{cfg}: serve.port" in out.stderr
    cfg.write_text("[api]\nmax_body_bytes = -1\n")
    out = _serve("--config", str(cfg), "--tokens", str(write_tokens_file(tmp_path / "tokens.toml")))
    assert out.returncode == 2
    assert f"{cfg}: api.max_body_bytes has value -1, must be > 0" in out.stderr


def test_config_file_serves_with_its_limits(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "cloud.toml"
    cfg.write_text(f'[serve]\nwarehouse = "duckdb:///{tmp_path / "w.duckdb"}"\n'
                   f'tokens = "{write_tokens_file(tmp_path / "tokens.toml")}"\nport = {port}\n'
                   "transform_every_s = 0\n\n[api]\nmax_body_bytes = 200\n")
    proc = subprocess.Popen([sys.executable, "-m", "cloud_ingest.cli", "serve", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, timeout=30)
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            resp = c.post("/v1/batches", content=body_of(1), headers=batch_headers())
        assert resp.status_code == 413
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_systemd_ready_watchdog_and_graceful_stop(tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(30)
        env = {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"}
        with running_api_process(tmp_path, env=env, args=["--transform-every", "0.5"]) as server:
            messages = [sock.recv(4096).decode() for _ in range(3)]
            assert messages[0].startswith("READY=1")
            assert messages[1:] == ["WATCHDOG=1", "WATCHDOG=1"]
            with server.client() as c:
                assert c.post("/v1/batches", content=body_of(1), headers=batch_headers()).status_code == 201
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(30) == 0
            sock.settimeout(0.5)
            rest = []
            with contextlib.suppress(TimeoutError):
                while True:
                    rest.append(sock.recv(4096).decode())
            assert "STOPPING=1" in rest
    # the landed batch is in the file the service closed cleanly
    from cloud_ingest.warehouse import open_warehouse

    with open_warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}") as wh:
        _, rows = wh.query("SELECT COUNT(*) FROM ods_iot_batch_di")
        assert rows == [(1,)]

"""Fixtures for the ingest API tests: a real uvicorn server on 127.0.0.1, a real DuckDB warehouse file.

``running_api(app)`` serves an app from a thread (same process: tests can inject a clock or a warehouse
wrapper); ``running_api_process`` serves ``campus-cloud serve`` in a subprocess (its memory is measured).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from cloud_ingest.api import ApiSettings, TokenStore, create_app, hash_token
from cloud_ingest.warehouse import Warehouse, open_warehouse
from edge_agent.model import Event, ProfileRef, Reading
from edge_agent.wire import CONTENT_TYPE, Batch, build_batch, encode
from tests.support.procs import free_port, wait_port

GATEWAYS = {"gw-a": "token-a-0123456789abcdef", "gw-b": "token-b-0123456789abcdef"}
OPERATOR_TOKEN = "token-op-0123456789abcdef"
BATCH_HEADERS = {"Content-Type": CONTENT_TYPE}
PROFILE = ProfileRef("test_env", 1)


def auth(gateway: str = "gw-a") -> dict[str, str]:
    token = OPERATOR_TOKEN if gateway == "operator" else GATEWAYS[gateway]
    return {"Authorization": f"Bearer {token}"}


def batch_headers(gateway: str = "gw-a") -> dict[str, str]:
    return {**BATCH_HEADERS, **auth(gateway)}


def write_tokens_file(path: Path) -> Path:
    lines = ["[gateways]"] + [f'"{gw}" = "{hash_token(t)}"' for gw, t in GATEWAYS.items()]
    lines += ["", "[operators]", f'noc = "{hash_token(OPERATOR_TOKEN)}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def token_store() -> TokenStore:
    return TokenStore.from_hashes({gw: hash_token(t) for gw, t in GATEWAYS.items()},
                                  {"noc": hash_token(OPERATOR_TOKEN)})


def make_batch(seq: int, gateway: str = "gw-a", n: int = 10, *, base_ms: int = 1_750_000_000_000,
               offset: float = 0.0, events: int = 0) -> Batch:
    """A small valid batch: ``n`` temperature readings of one device (+ ``events`` card swipes)."""
    readings = [Reading("dev-1", "air_temp", base_ms + seq * 60_000 + i * 1000, 20.0 + offset + i * 0.1,
                        "Cel", PROFILE) for i in range(n)]
    evs = [Event("door-1", "card_swipe", base_ms + seq * 60_000 + i, PROFILE, (("subject", f"p{i}"),))
           for i in range(events)]
    return build_batch(gateway, seq, base_ms + seq * 60_000, readings, evs, precision={"air_temp": 0.01})


def body_of(seq: int, gateway: str = "gw-a", **kw: Any) -> bytes:
    return encode(make_batch(seq, gateway, **kw))


def big_batch(seq: int, n: int, gateway: str = "gw-a") -> Batch:
    """``n`` random float readings (incompressible): a body of about 8 bytes per reading."""
    rng = np.random.default_rng(seq)
    return Batch.from_columns(
        gateway, seq, 1_750_000_000_000, devices=("dev-1",), metrics=("air_temp",), units=("Cel",),
        profiles=(str(PROFILE),), device=np.zeros(n, np.int64), metric=np.zeros(n, np.int64),
        unit=np.zeros(n, np.int64), profile=np.zeros(n, np.int64),
        ts_ms=1_750_000_000_000 + np.arange(n, dtype=np.int64), value=rng.random(n))


@dataclass
class ManualClock:
    """An injectable epoch-ms clock that moves only when told."""

    now_ms: int = 1_750_000_000_000

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


@dataclass
class ApiServer:
    url: str
    app: Any = None
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 30.0), **kw)


@contextlib.contextmanager
def running_api(app: Any) -> Iterator[ApiServer]:
    """Serve ``app`` with a real uvicorn server in a thread, on a socket bound to 127.0.0.1:0."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield ApiServer(f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def api_on_warehouse(warehouse: Any, settings: ApiSettings | None = None, **kw: Any) -> Iterator[ApiServer]:
    app = create_app(settings or ApiSettings(), warehouse, tokens=kw.pop("tokens", token_store()), **kw)
    with running_api(app) as server:
        yield server


def open_test_warehouse(tmp_path: Path) -> Warehouse:
    return open_warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")


@contextlib.contextmanager
def running_api_process(tmp_path: Path, env: dict[str, str] | None = None,
                        args: Sequence[str] = ()) -> Iterator[ApiServer]:
    """``campus-cloud serve`` in a subprocess on a free port (its RSS can be measured via /proc)."""
    port = free_port()
    tokens = write_tokens_file(tmp_path / "tokens.toml")
    cmd = [sys.executable, "-m", "cloud_ingest.cli", "serve", "--warehouse",
           f"duckdb:///{tmp_path / 'warehouse.duckdb'}", "--tokens", str(tokens), "--host", "127.0.0.1",
           "--port", str(port), *args]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    try:
        try:
            wait_port(port, timeout=30)
        except TimeoutError:
            proc.kill()
            raise RuntimeError((tmp_path / "serve.log").read_text(errors="replace")) from None
        yield ApiServer(f"http://127.0.0.1:{port}", proc=proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """Resident memory of a process from /proc (``VmHWM`` is the peak), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)

"""Run the real edge daemon (``campus-edge run``) as a subprocess against a real broker and cloud API.

Also what the end-to-end tests (and ``bench/``) share around it: the gateway config writer, a publisher
that streams from a thread with a ledger of what the broker acknowledged (:func:`streaming`), waiting for
the daemon to drain (:func:`wait_drained`) and reading DWD back by (device, id) (:func:`dwd_ledger_rows`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.procs import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
TEST_TOPICS = ("zigbee2mqtt/#", "tele/#", "application/#", "v3/#", "campus/#")


def write_gateway_config(tmp: Path, *, broker_port: int, api_url: str, token: str, gateway: str = "gw-a",
                         extra: str = "", campus: str = "test-campus", topics: Sequence[str] = TEST_TOPICS,
                         profiles_dir: Path | None = None, upload: str = "batch_max_age_s = 0.5",
                         heartbeat_s: float | None = 1) -> Path:
    """``tmp/edge.toml`` for ``campus-edge run`` with its state directory (token, campus key) under ``tmp``.

    Test defaults: batch age 0.5 s (``upload``: the keys of ``[upload]`` after ``url``), a heartbeat every
    second (``heartbeat_s``; None = the daemon's default, 30 s), the shipped profiles; ``extra`` appends whole
    tables. The local HTTP port is free; read it back with :func:`http_port`."""
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "gateway.token").write_text(token)
    key = state / "campus.key"
    key.write_text("k1 " + "ab" * 32 + "\n")
    key.chmod(0o600)
    port = free_port()
    heartbeat = "" if heartbeat_s is None else f"[heartbeat]\ninterval_s = {heartbeat_s:g}\n"
    cfg = tmp / "edge.toml"
    cfg.write_text(f"""
[gateway]
id = "{gateway}"
campus = "{campus}"
state_dir = "{state}"
profiles_dir = "{profiles_dir or ROOT / 'device_profiles'}"

[mqtt]
port = {broker_port}
client_id = "edge-{gateway}"
topics = {json.dumps(list(topics))}

[upload]
url = "{api_url}"
{upload}
{heartbeat}
[http]
listen = "127.0.0.1:{port}"
{extra}
""")
    return cfg


def http_port(config: Path) -> int:
    """The daemon's local HTTP port (``[http] listen``) in a config written by :func:`write_gateway_config`."""
    return int(_listen(config).rsplit(":", 1)[1])


def _listen(config: Path) -> str:
    return config.read_text().split('listen = "')[1].split('"')[0]


class EdgeProcess:
    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.config, self.log_path, self.env = config, log, env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = "http://" + _listen(config)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)],
                                     stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        log.close()
        port = int(self.http.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"campus-edge exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                wait_port(port, timeout=0.5)
            except TimeoutError:
                continue
            # Subscribed (SUBACK) before returning: messages published before the agent's first subscription
            # would not be queued for its session, and a test publishing at once would lose them.
            if wait_until(lambda: self.status()["mqtt"]["connected"], 15):
                return
            raise TimeoutError(f"campus-edge did not subscribe within 15 s:\n{self.log()[-3000:]}")
        raise TimeoutError(f"campus-edge did not listen on {port}:\n{self.log()[-3000:]}")

    def status(self) -> dict:
        return httpx.get(self.http + "/status", timeout=20).json()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def edge_process(config: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[EdgeProcess]:
    edge = EdgeProcess(config, log, env)
    edge.start()
    try:
        yield edge
    finally:
        with contextlib.suppress(Exception):
            edge.stop()
        if edge.proc and edge.proc.poll() is None:
            edge.proc.kill()


class Publisher:
    """QoS 1 publisher of Zigbee2MQTT temperature/humidity messages with unique timestamps (the ledger).

    ``ids=True`` sends temperature plus a per-message id instead (a per-device frame counter in
    ``illuminance_lux``, i.e. metric ``illuminance`` of the generic profile, no deadband): the id survives
    even when the gateway replaces the timestamp (clock skew), so the ledger can be checked by
    (device, id) — see :meth:`ledger_ids`. ``skew_ms(device_index)`` shifts the device's ``last_seen``
    (a device with a wrong clock); ``sent`` keeps the true times.
    """

    def __init__(self, port: int, devices: int = 20, prefix: str = "room", *, ids: bool = False,
                 skew_ms: Callable[[int], int] | None = None) -> None:
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"pub-{port}")
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.devices = devices
        self.prefix = prefix
        self.ids = ids
        self.skew_ms = skew_ms
        self.base_ms = int(time.time() * 1000)
        self._last_ts = self.base_ms - 1
        self.sent: list[tuple[str, int]] = []
        self.sent_at: list[float] = []  # publisher wall clock when the broker acknowledged message i

    def publish(self, n: int, *, pace_s: float = 0.0, stop: threading.Event | None = None) -> None:
        start = len(self.sent)
        for i in range(start, start + n):
            if stop is not None and stop.is_set():
                return
            dev = f"{self.prefix}-{i % self.devices:03d}"
            # unique per message, and close to the real time however long the run (a device with a good clock)
            ts = self._last_ts = max(self._last_ts + 1, int(time.time() * 1000))
            if self.ids:
                stamp = ts + (self.skew_ms(i % self.devices) if self.skew_ms else 0)
                doc = {"temperature": 20 + (i % 100) / 10, "illuminance_lux": i // self.devices, "last_seen": stamp}
            else:
                doc = {"temperature": 20 + (i % 100) / 10, "humidity": 45.5, "last_seen": ts}
            self.client.publish(f"zigbee2mqtt/{dev}", orjson.dumps(doc), qos=1).wait_for_publish(30)
            self.sent.append((dev, ts))
            self.sent_at.append(time.time())
            if pace_s:
                time.sleep(pace_s)

    def ledger_ids(self) -> set[tuple[str, int]]:
        """(device, id) of every acknowledged message (``ids=True``): the set DWD's illuminance rows must equal."""
        return {(dev, i // self.devices) for i, (dev, _) in enumerate(self.sent)}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def streaming(port: int, *, pace_s: float = 0.002, **kw: Any) -> Iterator[Publisher]:
    """A :class:`Publisher` (``kw``: devices, ids, skew_ms…) publishing from a thread, one message every
    ``pace_s``, until the block ends; then it stops, joins and disconnects (its ledger stays readable)."""
    pub = Publisher(port, **kw)
    stop = threading.Event()
    thread = threading.Thread(target=pub.publish, args=(10_000_000,), kwargs={"pace_s": pace_s, "stop": stop},
                              daemon=True)
    thread.start()
    try:
        yield pub
    finally:
        stop.set()
        thread.join(30)
        pub.close()


def wait_drained(edge: EdgeProcess, timeout: float, interval: float = 0.2) -> dict:  # type: ignore[type-arg]
    """Until the daemon holds nothing (no readings or batches in its backlog, no MQTT message pending);
    returns its last ``/status``. Fails the test with the backlog if that takes longer than ``timeout``."""
    status: dict = {}  # type: ignore[type-arg]

    def empty() -> bool:
        nonlocal status
        status = edge.status()
        return bool(status["backlog"]["readings"] == 0 and status["backlog"]["batches"] == 0
                    and status["mqtt"]["pending"] == 0)

    assert wait_until(empty, timeout, interval), status.get("backlog")
    return status


def dwd_ledger_rows(db: Path, columns: str = "device_id, value") -> list[tuple[Any, ...]]:
    """Run the transforms on the (stopped) service's DuckDB file and return ``columns`` of the raw
    ``illuminance`` rows in DWD: the per-message ids of ``Publisher(ids=True)`` (see ``ledger_ids``)."""
    from cloud_ingest.warehouse import open_warehouse

    wh = open_warehouse(f"duckdb:///{db}")
    try:
        wh.run_transforms()
        _, rows = wh.query(f"SELECT {columns} FROM dwd_env_reading_di "
                           "WHERE metric_code = 'illuminance' AND agg_code = 'raw'", ())
    finally:
        wh.close()
    return rows


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

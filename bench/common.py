"""Shared helpers of the edge benchmarks: /proc readings, tables, results, traffic, publisher, daemon.

Every benchmark measures its baseline in the same run and prints a table; nothing here asserts a
timing. Processes that are measured are started with the ``spawn`` method (a fresh interpreter, like
the daemon under systemd), so their RSS and CPU do not include the benchmark's own pages.

- ``/proc`` readers: :func:`proc_mem` (VmRSS, VmHWM, RssAnon, RssFile in KiB), :func:`proc_cpu_s`.
- Output: :func:`table` (aligned text), :func:`write_result` (``bench/results/<name>.json``),
  :func:`machine` (what the figures were measured on).
- Traffic: :func:`zigbee_messages`, :func:`senml_messages`, :func:`sim_messages` (pre-generated
  ``(topic, payload)`` lists) and :func:`publisher` (a QoS 1 publisher *process* target).
- The full daemon: :func:`write_daemon_config`, :class:`Daemon` (``campus-edge run`` as a subprocess),
  :class:`Sink` (a dummy cloud that accepts every batch).
- The real cloud: :class:`Cloud` (``campus-cloud serve`` as a subprocess on a DuckDB file), its ``/metrics``
  counters, :func:`raw_profiles` (a copy of the shipped profiles with every reduction switched off),
  :func:`percentiles`.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
T0_MS = 1_764_000_000_000  # fixed epoch for synthetic payloads (deterministic bytes)
BENCH_TOKEN = "bench-token-0123456789abcdef"  # the gateway token of write_daemon_config, accepted by Cloud

Msgs = list[tuple[str, bytes]]


# -- /proc -------------------------------------------------------------------------------------------

def proc_mem(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS), RssAnon, RssFile and RssShmem of a process, in KiB (0 if gone)."""
    out = {"VmRSS": 0, "VmHWM": 0, "RssAnon": 0, "RssFile": 0, "RssShmem": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in out:
                out[key] = int(rest.split()[0])
    return out


def proc_cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds a process has used so far (all its threads); 0.0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15 of stat)


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


# -- output ------------------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Aligned text table: first column left-aligned, the others right-aligned; floats as given."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def _fmt(c: object) -> str:
    if isinstance(c, float):
        return f"{c:,.0f}" if abs(c) >= 100 else f"{c:.3g}"
    if isinstance(c, int):
        return f"{c:,}"
    return "-" if c is None else str(c)


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model and count, memory, OS, Python, SQLite, paho, mosquitto."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                if ln.startswith("model name")), platform.processor())
    mem_kib = next((int(ln.split()[1]) for ln in _read("/proc/meminfo").splitlines()
                    if ln.startswith("MemTotal:")), 0)
    try:
        from importlib.metadata import version
        paho_v = version("paho-mqtt")
    except Exception:  # pragma: no cover - paho is a dependency
        paho_v = "?"
    mosq = "?"
    with contextlib.suppress(Exception):
        from tests.support.procs import mosquitto_binary
        res = subprocess.run([mosquitto_binary(), "-h"], capture_output=True, text=True, timeout=5)
        mosq = next((ln.strip() for ln in (res.stdout + res.stderr).splitlines() if "version" in ln), "?")
    return {"cpu": cpu, "cpus": os.cpu_count(), "mem_gib": round(mem_kib / 2**20, 1),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "paho_mqtt": paho_v, "mosquitto": mosq,
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# -- traffic -----------------------------------------------------------------------------------------

def zigbee_messages(n: int, devices: int = 200, prefix: str = "room") -> Msgs:
    """Zigbee2MQTT Aqara WSDCGQ11LM messages: 5 readings each (temperature, humidity, pressure, battery,
    link quality — what ``campus-edge decode`` reports for the shipped profile)."""
    return [(f"zigbee2mqtt/{prefix}-{i % devices:05d}",
             json.dumps({"battery": 90 - i % 7, "humidity": round(40 + (i % 50) / 10, 1),
                         "linkquality": 100 + i % 50, "pressure": 1001.5,
                         "temperature": round(20 + (i % 80) / 10, 1)}, separators=(",", ":")).encode())
            for i in range(n)]


def senml_messages(n: int, records: int = 50, devices: int = 50) -> Msgs:
    """SenML (RFC 8428) packs of ``records`` records: a node's temperature and humidity samples of the last
    few seconds (10 Hz), with times relative to receipt (negative ``bt`` + ``t``), as a node without a
    clock sends them."""
    out: Msgs = []
    half = records // 2
    span = half / 10
    for i in range(n):
        dev = f"node-{i % devices:03d}"
        pack: list[dict[str, Any]] = [{"bn": f"{dev}/", "bt": -span, "n": "temp", "u": "Cel", "v": 21.5}]
        pack += [{"n": "temp", "u": "Cel", "t": k / 10, "v": round(21.5 + ((i + k) % 30) / 10, 1)}
                 for k in range(1, half)]
        pack += [{"n": "rh", "u": "%RH", "t": k / 10, "v": round(40 + ((i + k) % 40) / 10, 1)}
                 for k in range(records - half)]
        out.append((f"senml/{dev}", json.dumps(pack, separators=(",", ":")).encode()))
    return out


def sim_messages(n: int, devices: int = 300, seed: int = 1) -> Msgs:
    """The realistic campus mix of ``gateway.simulator`` (every device type and ecosystem, no faults).

    Simulated time starts now and runs at real speed for a publisher of 5,000 msgs/s, so device times are
    current when the messages are published within a minute or so of generation."""
    from gateway.simulator import Simulator

    sim = Simulator.build(devices, seed=seed, start_ms=int(time.time() * 1000), rate=5000.0, time_scale=1.0)
    return [(m.topic, m.payload) for m in sim.messages(n)]


def readings_per_message(msgs: Msgs) -> tuple[float, float]:
    """Mean readings and events per message as the shipped profiles decode ``msgs`` (a sample of 2,000)."""
    from edge_agent.decode import decode
    from edge_agent.model import Message
    from edge_agent.profiles import ProfileSet

    profiles = ProfileSet.load(ROOT / "device_profiles")
    now = int(time.time() * 1000)
    sample = msgs[:: max(1, len(msgs) // 2000)]
    res = [decode(Message(t, p, now), profiles, now_ms=now) for t, p in sample]
    return (sum(len(r.readings) for r in res) / len(res), sum(len(r.events) for r in res) / len(res))


def publisher(port: int, msgs: Msgs, ready: Any, go: Any, out: Any, inflight: int = 1000) -> None:
    """Process target: connect, signal ``ready``, wait for ``go``, publish ``msgs`` at QoS 1 as fast as the
    broker takes them, wait for every PUBACK; put ``{"t_start", "t_end", "published", "cpu_s"}`` (monotonic s)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.set()
    go.wait(120)
    t0 = time.monotonic()
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    deadline = time.monotonic() + 600
    for i in infos:
        i.wait_for_publish(max(0.1, deadline - time.monotonic()))
    t1 = time.monotonic()
    out.put({"t_start": t0, "t_end": t1, "published": sum(i.is_published() for i in infos),
             "cpu_s": proc_cpu_s()})
    c.disconnect()
    c.loop_stop()


def spawn() -> Any:
    """The multiprocessing context for measured processes (fresh interpreters, nothing inherited)."""
    return mp.get_context("spawn")


# -- the daemon and a dummy cloud ----------------------------------------------------------------------

class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        if self.path.startswith("/v1/batches"):
            self.server.batches += 1  # type: ignore[attr-defined]
        body = b'{"status":"accepted"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class Sink:
    """A dummy cloud on 127.0.0.1 that answers 200 to every POST (batches and heartbeats), in a thread."""

    def __init__(self) -> None:
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), _SinkHandler)
        self._srv.batches = 0  # type: ignore[attr-defined]
        self._srv.daemon_threads = True
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._srv.server_address[1]}"

    @property
    def batches(self) -> int:
        return int(self._srv.batches)  # type: ignore[attr-defined]

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._srv.shutdown()
        self._srv.server_close()


def write_daemon_config(tmp: Path, *, broker_port: int, api_url: str, topics: Sequence[str] = ("#",),
                        gateway: str = "gw-bench", extra: str = "", profiles_dir: Path | None = None,
                        upload: str = "") -> tuple[Path, int]:
    """A gateway config with production defaults (batch age 1 s, heartbeat 30 s); returns (path, http port).

    The tests' :func:`tests.integration.edge_harness.write_gateway_config` with the daemon's own defaults
    instead of the tests' fast ones; its token is :data:`BENCH_TOKEN` (what :class:`Cloud` accepts);
    ``upload`` adds keys to ``[upload]``, ``extra`` whole tables."""
    from tests.integration.edge_harness import http_port, write_gateway_config

    cfg = write_gateway_config(tmp, broker_port=broker_port, api_url=api_url, token=BENCH_TOKEN, gateway=gateway,
                               extra=extra, campus="bench-campus", topics=topics, profiles_dir=profiles_dir,
                               upload=upload, heartbeat_s=None)
    return cfg, http_port(cfg)


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> int:
    """SIGTERM ``proc`` and wait up to ``timeout`` s (then SIGKILL); its exit code (0 if it never started)."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else 0
    proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


class Daemon:
    """``campus-edge run --config`` as a subprocess; ``status()`` reads its ``/status`` JSON."""

    def __init__(self, config: Path, http_port: int, log: Path) -> None:
        self.config, self.http_port, self.log_path = config, http_port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until the daemon has subscribed (its /status says MQTT connected)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"campus-edge exited with {self.proc.returncode}: {self.log()[-2000:]}")
            with contextlib.suppress(OSError, ValueError):
                if self.status(timeout=2)["mqtt"]["connected"]:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"campus-edge did not subscribe within {timeout} s: {self.log()[-2000:]}")

    def status(self, timeout: float = 10.0) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/status", timeout=timeout) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def stop(self, timeout: float = 30.0) -> int:
        return terminate(self.proc, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_daemon(config: Path, http_port: int, log: Path) -> Iterator[Daemon]:
    d = Daemon(config, http_port, log)
    d.start()
    try:
        yield d
    finally:
        d.stop()


# -- the real cloud service -----------------------------------------------------------------------------

class Cloud:
    """``campus-cloud -v serve`` as a subprocess on a DuckDB file, accepting ``gateways`` (token BENCH_TOKEN).

    ``transform_every_s`` is the service's whole-DAG schedule (``--transform-every``; 0 = never) and
    ``dwd_every_s`` its DWD step after landings (``--dwd-every``; 0 = only with the DAG); None leaves the
    option out (the service's default). The port is fixed at construction, so a gateway can be configured
    before the service first starts (an outage). DuckDB has one writer process: read the file
    (:meth:`connect_readonly`) only after :meth:`stop`.
    """

    def __init__(self, tmp: Path, *, transform_every_s: float | None = None, dwd_every_s: float | None = None,
                 gateways: Sequence[str] = ("gw-bench",), name: str = "cloud") -> None:
        from cloud_ingest.api.auth import hash_token
        from tests.support.procs import free_port

        self.port = free_port()
        self.db = tmp / f"{name}.duckdb"
        self.log_path = tmp / f"{name}.log"
        self.tokens = tmp / f"{name}-tokens.toml"
        self.tokens.write_text("[gateways]\n" + "".join(f'"{g}" = "{hash_token(BENCH_TOKEN)}"\n' for g in gateways))
        self.transform_every_s = transform_every_s
        self.dwd_every_s = dwd_every_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until ``/healthz`` answers."""
        import urllib.request

        schedule = [*(["--transform-every", f"{self.transform_every_s:g}"] if self.transform_every_s is not None
                      else []),
                    *(["--dwd-every", f"{self.dwd_every_s:g}"] if self.dwd_every_s is not None else [])]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloud_ingest.cli", "-v", "serve", "--warehouse", f"duckdb:///{self.db}",
                 "--tokens", str(self.tokens), "--port", str(self.port), *schedule],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"campus-cloud serve exited with {self.proc.returncode}: {self.log()[-2000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"campus-cloud serve did not answer within {timeout} s: {self.log()[-2000:]}")

    def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """The service's ``/metrics`` samples as ``{name{labels}: value}`` (comments skipped)."""
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/metrics", timeout=timeout) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out

    def landed(self, timeout: float = 5.0) -> tuple[int, int]:
        """(readings landed in ODS, batches stored) so far, from ``/metrics`` (counted after the commit)."""
        m = self.metrics(timeout)
        return (int(m.get("campus_ingest_readings_landed_total", 0)),
                int(m.get('campus_ingest_batches_total{status="stored"}', 0)))

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM (in-flight landings and a running transform finish), then wait."""
        return terminate(self.proc, timeout)

    def connect_readonly(self) -> Any:
        """A read-only DuckDB connection to the warehouse file (the service must be stopped)."""
        import duckdb

        return duckdb.connect(str(self.db), read_only=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def raw_profiles(dest: Path) -> Path:
    """A copy of ``device_profiles/`` in ``dest`` with every profile's reduction set to ``mode: raw`` (upload raw
    readings only: no windows, no aggregates); returns ``dest``."""
    import re
    import shutil

    def raw(m: re.Match[str]) -> str:  # keep the upload priority, drop everything else of the block
        keep = [ln for ln in m.group(0).splitlines()[1:] if ln.strip().startswith("priority:")]
        return "\n".join(["reduction:", "  mode: raw", *keep]) + "\n"

    shutil.copytree(ROOT / "device_profiles", dest)
    for f in dest.rglob("*.yaml"):
        text = f.read_text()
        # a top-level 'reduction:' block: the key line and its indented lines
        new = re.sub(r"^reduction:\n(?:[ \t]+.*(?:\n|$))*", raw, text, flags=re.M)
        if new != text:
            f.write_text(new)
    return dest


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float | None]:
    """``{"p50": …, "p95": …, "p99": …, "max": …}`` of ``values`` (linear interpolation); None when empty."""
    import numpy as np

    if not values:
        return {**{f"p{q:g}": None for q in qs}, "max": None}
    arr = np.asarray(values, dtype=float)
    return {**{f"p{q:g}": round(float(np.percentile(arr, q)), 4) for q in qs}, "max": round(float(arr.max()), 4)}

"""The end-to-end demo (Quick start command 1): everything real, on loopback, bounded in time.

Mosquitto → campus-sim (a simulated campus in every ecosystem's real format, with faults) → campus-edge
run (decode, validate, buffer, upload) → campus-cloud serve (ingest API on DuckDB) → transforms
(ODS → DWD → DWS → ADS). Prints what happened and where the warehouse file is.

    .venv/bin/python scripts/demo.py [--duration 90] [--devices 300] [--rate 150] [--out demo-out]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GATEWAY = "gw-demo-01"
FAULTS = "gaps=0.01,spikes=0.005,out_of_range=0.005,duplicates=0.01,skew=0.005,malformed=0.01"


def say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"demo: {what} exited with {proc.returncode}; its log ({log}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return
        time.sleep(0.1)
    sys.exit(f"demo: {what} did not start listening on port {port} within {timeout}s (log: {log})")


class Procs:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.out / f"{name}.log"
        with log.open("ab") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=self.out)
        self.procs.append((name, proc))
        return proc, log

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> int | None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(5)

    @contextlib.contextmanager
    def cleanup(self) -> Iterator[Procs]:
        try:
            yield self
        finally:
            for _, p in reversed(self.procs):
                if p.poll() is None:
                    self.stop(p, 10)


def mosquitto_conf(out: Path, port: int) -> Path:
    conf = out / "mosquitto.conf"
    (out / "mosquitto").mkdir(exist_ok=True)
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {out / 'mosquitto'}/\nmax_inflight_messages 1000\n"
                    "max_queued_messages 1000000\nlog_type error\n"
                    # as root, mosquitto would switch to user 'mosquitto' and fail to write persistence here
                    + ("user root\n" if os.geteuid() == 0 else ""))
    return conf


def edge_config(out: Path, broker_port: int, api_port: int, http_port: int, token: str) -> Path:
    state = out / "edge-state"
    state.mkdir(exist_ok=True)
    (state / "gateway.token").write_text(token)
    key = state / "campus.key"
    key.write_text(f"k1 {secrets.token_hex(32)}\n")
    key.chmod(0o600)
    cfg = out / "edge.toml"
    cfg.write_text(f"""# written by scripts/demo.py
[gateway]
id = "{GATEWAY}"
campus = "demo"
timezone = "Asia/Shanghai"
state_dir = "{state}"
profiles_dir = "{ROOT / 'device_profiles'}"

[mqtt]
port = {broker_port}
client_id = "campus-edge-demo"

[reduce]
max_clock_skew_s = 864000   # the simulator runs simulated time faster than real time

[upload]
url = "http://127.0.0.1:{api_port}"
batch_max_age_s = 1.0

[heartbeat]
interval_s = 5

[http]
listen = "127.0.0.1:{http_port}"
""")
    return cfg


def registry(out: Path, args: argparse.Namespace, start_ms: int) -> Path:
    sys.path.insert(0, str(ROOT))
    from edge_agent.profiles import ProfileSet
    from gateway.simulator.registry_export import registry_for
    from gateway.simulator.simulator import Simulator

    versions = {p.id: p.version for p in ProfileSet.load(ROOT / "device_profiles")}
    sim = Simulator.build(args.devices, seed=args.seed, start_ms=start_ms, rate=args.rate, time_scale=args.time_scale)
    reg = registry_for(sim, campus_id="demo", gateway_id=GATEWAY, profile_versions=versions)
    path = out / "registry.yaml"
    path.write_text(yaml.safe_dump(reg, allow_unicode=True, sort_keys=False))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=float(os.environ.get("DEMO_DURATION", 90)),
                    help="seconds of simulated traffic (default 90; env DEMO_DURATION)")
    ap.add_argument("--devices", type=int, default=300, help="simulated devices (default 300)")
    ap.add_argument("--rate", type=float, default=150.0, help="messages per second (default 150)")
    ap.add_argument("--time-scale", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(ROOT / "demo-out"), help="working directory (default demo-out/)")
    args = ap.parse_args()

    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker_port, api_port, http_port = free_port(), free_port(), free_port()
    token = secrets.token_urlsafe(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    (out / "tokens.toml").write_text(f'[gateways]\n"{GATEWAY}" = "sha256:{digest}"\n')
    warehouse = out / "warehouse.duckdb"
    wh_url = f"duckdb:///{warehouse}"
    # simulated time starts at 07:30 local (UTC+8) today, so a short demo covers the first lessons
    today = datetime.datetime.now(datetime.UTC).astimezone(datetime.timezone(datetime.timedelta(hours=8))).date()
    start = datetime.datetime.combine(today, datetime.time(7, 30), datetime.timezone(datetime.timedelta(hours=8)))
    start_ms = int(start.timestamp() * 1000)

    with Procs(out).cleanup() as procs:
        say(f"1/7 Mosquitto on 127.0.0.1:{broker_port}")
        broker, blog = procs.start("mosquitto", [mosquitto, "-c", str(mosquitto_conf(out, broker_port))])
        wait_port(broker_port, broker, "mosquitto", blog)

        say(f"2/7 registry of the simulated campus ({args.devices} devices) -> DIM tables")
        reg = registry(out, args, start_ms)
        subprocess.run([str(BIN / "campus-cloud"), "registry", "load", str(reg), "--warehouse", wh_url], check=True,
                       cwd=out, stdout=subprocess.DEVNULL)

        say(f"3/7 cloud ingest API on 127.0.0.1:{api_port} (DuckDB {warehouse})")
        cloud, clog = procs.start("cloud", [str(BIN / "campus-cloud"), "serve", "--warehouse", wh_url, "--tokens",
                                            str(out / "tokens.toml"), "--port", str(api_port), "--transform-every",
                                            "15"])
        wait_port(api_port, cloud, "campus-cloud serve", clog)

        say(f"4/7 edge daemon (endpoints on 127.0.0.1:{http_port})")
        edge, elog = procs.start("edge", [str(BIN / "campus-edge"), "run", "--config",
                                          str(edge_config(out, broker_port, api_port, http_port, token))])
        wait_port(http_port, edge, "campus-edge run", elog)
        status_url = f"http://127.0.0.1:{http_port}/status"

        say(f"5/7 campus-sim: {args.devices} devices, {args.rate:.0f} msg/s for {args.duration:.0f} s, "
            f"time x{args.time_scale:.0f}, faults {FAULTS}")
        sim, slog = procs.start("sim", [str(BIN / "campus-sim"), "--broker", f"127.0.0.1:{broker_port}",
                                        "--devices", str(args.devices), "--rate", str(args.rate), "--duration",
                                        str(args.duration), "--faults", FAULTS, "--seed", str(args.seed),
                                        "--time-scale", str(args.time_scale), "--start", start.isoformat(), "-q"])
        t0 = time.monotonic()
        while sim.poll() is None:
            time.sleep(min(10.0, max(1.0, args.duration / 10)))
            with contextlib.suppress(httpx.HTTPError, KeyError):
                s = httpx.get(status_url, timeout=5).json()
                say(f"   {time.monotonic() - t0:5.0f} s: edge received {s['mqtt']['received']}, committed "
                    f"{s['ingest']['messages']}, quarantined {s['ingest']['quarantined']}, uploaded "
                    f"{s['upload']['readings_sent']} readings, backlog {s['backlog']['readings']}")
            if time.monotonic() - t0 > args.duration + 120:
                say("   the simulator overran its duration by 2 minutes; stopping it")
                procs.stop(sim)
        sim_summary = {}
        with contextlib.suppress(Exception):
            text = slog.read_text()
            sim_summary = json.loads(text[max(text.find("{\n"), 0):])  # the JSON summary closes the log

        say("6/7 draining: waiting for the edge backlog to reach the warehouse")
        deadline = time.monotonic() + 120
        status: dict = {}
        while time.monotonic() < deadline:
            status = httpx.get(status_url, timeout=5).json()
            if status["mqtt"]["pending"] == 0 and status["backlog"]["readings"] == 0 and \
                    status["backlog"]["events"] == 0:
                break
            time.sleep(1)
        procs.stop(edge)
        procs.stop(cloud)

        say("7/7 warehouse transforms (ODS -> DWD -> DWS -> ADS)")
        subprocess.run([str(BIN / "campus-cloud"), "transform", "--warehouse", wh_url], check=True, cwd=out,
                       stdout=subprocess.DEVNULL)
    return report(out, warehouse, status, sim_summary)


def report(out: Path, warehouse: Path, status: dict, sim_summary: dict) -> int:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    tiers: dict[str, int] = {}
    for t, n in counts.items():
        tiers[t.split("_")[0]] = tiers.get(t.split("_")[0], 0) + n
    print()
    print("=" * 78)
    print("campus-collector demo: what happened")
    print("=" * 78)
    if sim_summary:
        print(f"simulator   published {sim_summary.get('messages', '?')} messages; faults injected: "
              f"{sim_summary.get('faults', {})}")
    m, i, u = status.get("mqtt", {}), status.get("ingest", {}), status.get("upload", {})
    print(f"edge        received {m.get('received')} messages, committed {i.get('messages')}, acknowledged "
          f"{m.get('acked')}; {i.get('readings')} readings, {i.get('events')} events")
    print(f"            quarantined {i.get('quarantined')} by reason: {status.get('quarantined_by_reason')}")
    print(f"            uploaded {u.get('sent')} batches / {u.get('readings_sent')} readings; backlog left "
          f"{status.get('backlog', {}).get('readings')}; silent devices {status.get('devices', {}).get('silent')}")
    print("warehouse   rows per tier: " + ", ".join(f"{k.upper()} {v}" for k, v in sorted(tiers.items())))
    for t in tables:
        if t.split("_")[0] in ("ods", "dwd", "dws", "ads") and counts[t]:
            print(f"            {t:<32} {counts[t]:>9}")
    print("indicators (ADS):")
    for t in [t for t in tables if t.startswith("ads_")]:
        rows = con.execute(f'SELECT * FROM "{t}" LIMIT 5').fetchall()
        cols = [d[0] for d in con.description]
        print(f"  {t}: {counts[t]} rows")
        for r in rows:
            print("    " + ", ".join(f"{c}={v}" for c, v in zip(cols, r, strict=True) if not c.endswith("_key")))
    print(f"\nwarehouse file: {warehouse}")
    print(f"logs and configs: {out}")
    print(f"try: .venv/bin/campus-cloud sql --warehouse duckdb:///{warehouse} "
          "\"SELECT * FROM dws_env_room_1h LIMIT 5\"")
    summary = {"status": status, "simulator": sim_summary, "rows": counts, "warehouse": str(warehouse)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    con.close()
    ok = counts.get("ods_iot_reading_di", 0) > 0 and counts.get("dwd_env_reading_di", 0) > 0
    print("\ndemo " + ("OK" if ok else "FAILED: no readings reached the warehouse"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

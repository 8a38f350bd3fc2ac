"""Edge ingest throughput (MQTT in → decoded → committed → acknowledged) against a bare paho subscriber.

One real Mosquitto per run (own temp dir, free port, ``max_inflight_messages 1000``). A subscriber process
creates its persistent QoS 1 session and subscribes to ``#``; then a separate publisher *process* publishes
N pre-generated messages at QoS 1 as fast as the broker takes them; we time from the publisher's start
until the subscriber has all N:

- ``bare``: a paho-mqtt 2.x subscriber at QoS 1 that only counts (paho acknowledges on receipt);
- ``pipeline``: ``MqttSource`` + ``IngestLoop`` + ``decode`` + ``Buffer.commit_burst`` (SQLite file, WAL,
  synchronous=FULL), acknowledging each burst after its commit — the daemon's data path alone;
- ``daemon``: the full ``campus-edge run`` (uploading to a dummy local cloud that accepts everything),
  its committed count and last commit time read from ``/status``.

Each subscriber is its own process with one MQTT connection, on the same broker configuration with the
same traffic. Traffic variants: ``zigbee`` (Zigbee2MQTT temperature/humidity sensors, 5 readings per
message), ``sim`` (the campus simulator's realistic mix of every ecosystem), ``senml`` (SenML packs of
50 records). CPU is the subscriber process's user+system time over the timed window (``/proc``).
One untimed warm-up, then ``--runs`` runs (the kinds interleaved), the median reported.
``--mode queued`` publishes while the subscriber is away and times draining its session's queue
(bare and pipeline only): the ceiling of each, far above what a live publisher produces.

    .venv/bin/python bench/bench_edge_ingest.py [--runs 3] [--variants zigbee,sim,senml]
        [--kinds bare,pipeline,daemon] [--mode live|queued] [--scale 1.0] [--quick]

CPU per 1,000 msgs/s (cores) is the CPU seconds per 1,000 messages of the daemon (else the pipeline): the daemon is
one process with one MQTT session; it does not share its subscription with other workers (MQTT 5 shared
subscriptions, ``$share/…``): see docs/performance.md for why.

Prints a table and writes ``bench/results/edge_ingest.json`` (``edge_ingest_queued.json`` with ``--mode queued``).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    Daemon,
    Msgs,
    Sink,
    machine,
    median,
    proc_cpu_s,
    proc_mem,
    publisher,
    readings_per_message,
    senml_messages,
    sim_messages,
    spawn,
    table,
    write_daemon_config,
    write_result,
    zigbee_messages,
)
from tests.support.procs import running_broker  # noqa: E402

VARIANTS: dict[str, tuple[str, Callable[[int], Msgs], int, int, bool]] = {
    # name: (description, generator, messages per run, messages with --quick, regenerate before each run)
    # The simulator stamps device times: its traffic is regenerated per run so the times are current
    # (older than the decoder's skew tolerance would take another code path). Zigbee2MQTT messages carry no
    # time (receive time is used) and the SenML packs use times relative to receipt.
    "zigbee": ("Zigbee2MQTT temp/humidity, 5 readings", zigbee_messages, 20_000, 600, False),
    "sim": ("campus simulator mix", sim_messages, 20_000, 600, True),
    "senml": ("SenML packs of 50 records", senml_messages, 2_000, 100, False),
}
KINDS = ("bare", "pipeline", "daemon")
TARGET_RATIO = 0.8
RUN_TIMEOUT_S = 300.0  # one run (publish + receive) must finish within this
STATUS_POLL_S = 0.25  # /status polling of the daemon; the end time comes from its last_commit_ms, not the poll


# -- subscriber processes (spawned) ---------------------------------------------------------------------

def bare_subscriber(port: int, n: int, mode: str, ready: Any, go: Any, out: Any, finish: Any) -> None:
    """A paho subscriber at QoS 1 (persistent session) that only counts; paho acknowledges on receipt."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    count = [0]
    t_done = [0.0]
    done, subscribed = threading.Event(), threading.Event()

    def on_message(_c: object, _u: object, _m: object) -> None:
        count[0] += 1
        if count[0] == n:
            t_done[0] = time.monotonic()
            done.set()

    def client() -> paho.Client:
        c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-sub",
                        clean_session=False)
        c.on_message = on_message
        c.on_connect = lambda cl, *_: cl.subscribe("#", qos=1)
        c.on_subscribe = lambda *_: subscribed.set()
        c.connect("127.0.0.1", port)
        c.loop_start()
        subscribed.wait(30)
        return c

    c = client()
    if mode == "queued":
        c.disconnect()
        c.loop_stop()
        ready.set()
        go.wait(RUN_TIMEOUT_S)
        subscribed.clear()
        c = client()
    else:
        ready.set()
    done.wait(RUN_TIMEOUT_S)
    out.put({"t_done": t_done[0], "messages": count[0], "acked": count[0]})
    finish.wait(60)
    c.disconnect()
    c.loop_stop()


class _CountingSource:
    """Wraps MqttSource: stamps the moment the n-th acknowledgement (after commit) is sent."""

    def __init__(self, src: Any, n: int) -> None:
        self.src, self.n, self.acked, self.t_done = src, n, 0, 0.0
        self.done = asyncio.Event()

    @property
    def pending(self) -> int:
        return int(self.src.pending)

    def drain(self, max_n: int) -> list[Any]:
        return self.src.drain(max_n)  # type: ignore[no-any-return]

    def ack(self, items: Any) -> int:
        sent = int(self.src.ack(items))
        self.acked += sent
        if self.acked >= self.n and not self.done.is_set():
            self.t_done = time.monotonic()
            self.done.set()
        return sent


def pipeline_subscriber(port: int, n: int, mode: str, db: str, key_file: str, ready: Any, go: Any, out: Any,
                        finish: Any) -> None:
    """The daemon's data path alone: MqttSource → IngestLoop → decode → Buffer.commit_burst → ack."""
    from edge_agent.buffer import Buffer, BufferConfig
    from edge_agent.decode import decode
    from edge_agent.ingest import IngestLoop
    from edge_agent.model import DecodeResult, Message
    from edge_agent.mqtt import MqttSettings, MqttSource
    from edge_agent.privacy import Pseudonymizer
    from edge_agent.profiles import ProfileSet

    profiles = ProfileSet.load(ROOT / "device_profiles")
    pseudo = Pseudonymizer.from_file(key_file) if profiles.needs_pseudonymizer else None
    settings = MqttSettings(port=port, client_id="bench-sub", topics=("#",))

    def dec(m: Message) -> DecodeResult:
        return decode(m, profiles, now_ms=int(time.time() * 1000), pseudonymizer=pseudo)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        buf = await Buffer.open(db, BufferConfig(budget_bytes=4 << 30))

        def connect() -> tuple[MqttSource, _CountingSource, IngestLoop]:
            src = MqttSource(settings)
            counting = _CountingSource(src, n)
            ingest = IngestLoop(counting, dec, buf)
            src.start(loop, ingest.wake)
            return src, counting, ingest

        src, counting, ingest = connect()
        await loop.run_in_executor(None, src.wait_connected, 30)
        if mode == "queued":
            src.stop()
            ready.set()
            await loop.run_in_executor(None, go.wait, RUN_TIMEOUT_S)
            src, counting, ingest = connect()
        else:
            ready.set()
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(counting.done.wait(), RUN_TIMEOUT_S)
        stop.set()
        await task
        st = ingest.stats
        out.put({"t_done": counting.t_done, "messages": st.messages, "acked": counting.acked,
                 "readings": st.readings, "events": st.events, "quarantined": st.quarantined, "bursts": st.bursts,
                 "rss_peak_kib": proc_mem()["VmHWM"]})
        await loop.run_in_executor(None, finish.wait, 60)
        src.stop()
        await buf.close()

    asyncio.run(run())


# -- one run ------------------------------------------------------------------------------------------------

def one_run(kind: str, msgs: Msgs, mode: str, profile: Path | None = None) -> dict[str, Any]:
    """Start a broker, the subscriber of ``kind`` and a publisher; time N messages through; return figures.

    With ``profile`` (a file path), py-spy samples the subscriber process (all threads, idle excluded,
    collapsed-stack format) during the timed window; the figures of such a run are perturbed by sampling.
    """
    n = len(msgs)
    ctx = spawn()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp_s, \
            running_broker(Path(tmp_s) / "mqtt") as broker, contextlib.ExitStack() as stack:
        tmp = Path(tmp_s)
        assert broker.proc is not None
        ready, sub_go, finish, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
        pub_ready, pub_go, pub_out = ctx.Event(), ctx.Event(), ctx.Queue()
        daemon = None
        if kind == "daemon":
            sink = stack.enter_context(Sink())
            cfg, http_port = write_daemon_config(tmp, broker_port=broker.port, api_url=sink.url)
            daemon = Daemon(cfg, http_port, tmp / "daemon.log")
            stack.callback(daemon.stop)
            daemon.start()
            pid = daemon.pid
        else:
            if kind == "bare":
                target, args = bare_subscriber, (broker.port, n, mode, ready, sub_go, out, finish)
            else:
                key = tmp / "campus.key"
                key.write_text("k1 " + "ab" * 32 + "\n")
                key.chmod(0o600)
                target, args = pipeline_subscriber, (broker.port, n, mode, str(tmp / "buffer.sqlite"), str(key),
                                                     ready, sub_go, out, finish)
            sub = ctx.Process(target=target, args=args, daemon=True)
            sub.start()
            stack.callback(_join, sub)
            stack.callback(finish.set)
            if not ready.wait(60):
                raise RuntimeError(f"{kind} subscriber did not become ready")
            pid = sub.pid
        pub = ctx.Process(target=publisher, args=(broker.port, msgs, pub_ready, pub_go, pub_out), daemon=True)
        pub.start()
        stack.callback(_join, pub)
        if not pub_ready.wait(60):
            raise RuntimeError("publisher did not connect")
        pres: dict[str, Any] | None = None
        if mode == "queued":  # everything is queued for the absent subscriber's session first
            pub_go.set()
            pres = pub_out.get(timeout=RUN_TIMEOUT_S)
        spy = contextlib.ExitStack()
        if profile is not None:
            spy.enter_context(_py_spy(pid, profile))
        cpu0, bcpu0, pcpu0 = proc_cpu_s(pid), proc_cpu_s(broker.proc.pid), proc_cpu_s(pub.pid)
        t_go, t_go_wall = time.monotonic(), time.time()
        (sub_go if mode == "queued" else pub_go).set()
        res: dict[str, Any]
        if daemon is not None:
            res = _wait_daemon(daemon, n, t_go_wall)
        else:
            res = out.get(timeout=RUN_TIMEOUT_S + 30)
            res["seconds"] = (res.pop("t_done") - t_go) if res["t_done"] else float("nan")
        cpu1, bcpu1 = proc_cpu_s(pid), proc_cpu_s(broker.proc.pid)
        spy.close()  # stops py-spy (it writes its file) before the subscriber is told to finish
        if daemon is not None:
            res["rss_peak_kib"] = proc_mem(daemon.pid)["VmHWM"]
        if pres is None:
            pres = pub_out.get(timeout=RUN_TIMEOUT_S)
        pcpu1 = pres["cpu_s"]
    secs = res["seconds"]
    res.update({
        "kind": kind, "n": n, "msgs_per_s": n / secs if secs > 0 else 0.0, "cpu_s": round(cpu1 - cpu0, 3),
        "broker_cpu_s": round(bcpu1 - bcpu0, 3),
        "publisher_cpu_s": round(pcpu1 - pcpu0, 3) if mode == "live" else None,
        "publisher_msgs_per_s": n / (pres["t_end"] - pres["t_start"]), "published": pres["published"],
    })
    res["cpu_s_per_1000_msgs"] = round(res["cpu_s"] / n * 1000, 4)
    if res.get("readings") is not None:
        res["readings_per_s"] = res["readings"] / secs if secs > 0 else 0.0
    return res


def _wait_daemon(daemon: Any, n: int, t_go_wall: float) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        time.sleep(STATUS_POLL_S)
        with contextlib.suppress(OSError, ValueError):
            st = daemon.status()
            if st["ingest"]["messages"] >= n and st["mqtt"]["acked"] >= n:
                break
    ing = st.get("ingest", {})
    last = ing.get("last_commit_ms", 0) / 1000
    return {"seconds": last - t_go_wall if last else float("nan"), "messages": ing.get("messages", 0),
            "acked": st.get("mqtt", {}).get("acked", 0), "readings": ing.get("readings", 0),
            "events": ing.get("events", 0), "quarantined": ing.get("quarantined", 0), "bursts": ing.get("bursts", 0)}


@contextlib.contextmanager
def _py_spy(pid: int, out: Path) -> Iterator[None]:
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                             "--threads", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# Where a sample's time goes: the first rule whose pattern is in the sample's stack (thread name first).
PROFILE_CATEGORIES = (
    ("SQLite (aiosqlite thread)", "_connection_worker_thread"),
    ("ack after commit", "MqttSource.ack"),
    ("on_message: convert + enqueue", "MqttSource._on_message"),
    ("MQTT receive (paho thread)", "paho-mqtt-client"),
    ("decode", "edge_agent/decode/"),
    ("buffer commit (Python side)", "edge_agent/buffer/"),
    ("daemon jobs (cut, upload, windows, status)", ("edge_agent/outbox", "edge_agent/upload", "edge_agent/windowing",
                                                    "gateway/status", "apscheduler", "httpx", "gateway/devices")),
    ("ingest loop, asyncio, other", ""),
)


def profile_summary(path: Path) -> list[tuple[str, float]]:
    """Share of py-spy samples (non-idle, all threads) per category of :data:`PROFILE_CATEGORIES`."""
    counts = dict.fromkeys((c for c, _ in PROFILE_CATEGORIES), 0)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        for cat, pats in PROFILE_CATEGORIES:
            if any(p in stack for p in ((pats,) if isinstance(pats, str) else pats)):
                counts[cat] += int(n)
                break
    return [(c, n / total if total else 0.0) for c, n in counts.items()]


def _join(p: Any) -> None:
    p.join(30)
    if p.is_alive():
        p.kill()
        p.join(5)


# -- main ---------------------------------------------------------------------------------------------------

def summarise(name: str, msgs: Msgs, runs: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    rpm, epm = readings_per_message(msgs)
    by_kind: dict[str, Any] = {}
    for k in kinds:
        rs = [r for r in runs if r["kind"] == k]
        rate = median([r["msgs_per_s"] for r in rs])
        by_kind[k] = {
            "msgs_per_s": round(rate), "readings_per_s": round(median([r.get("readings_per_s", rate * rpm)
                                                                        for r in rs])),
            "cpu_s_per_1000_msgs": round(median([r["cpu_s_per_1000_msgs"] for r in rs]), 4),
            "publisher_msgs_per_s": round(median([r["publisher_msgs_per_s"] for r in rs])),
            "all_acked": all(r["acked"] >= r["n"] for r in rs),
            "rss_peak_mb": round(max(r.get("rss_peak_kib", 0) for r in rs) / 1024, 1) or None,
            "runs": rs,
        }
    base = by_kind.get("bare", {}).get("msgs_per_s", 0)
    for k in kinds:
        if k != "bare":
            by_kind[k]["ratio"] = round(by_kind[k]["msgs_per_s"] / base, 3) if base else None
    return {"variant": name, "description": VARIANTS[name][0], "messages": len(msgs),
            "readings_per_msg": round(rpm, 2), "events_per_msg": round(epm, 3), "kinds": by_kind}


def print_table(results: list[dict[str, Any]], mode: str, runs: int) -> None:
    rows = []
    for v in results:
        kinds = v["kinds"]
        bare = kinds.get("bare")
        for k, r in kinds.items():
            if k == "bare":
                continue
            rows.append([v["variant"], k, v["messages"], bare["msgs_per_s"] if bare else None, r["msgs_per_s"],
                         r.get("ratio"), r["readings_per_s"],
                         bare["cpu_s_per_1000_msgs"] if bare else None, r["cpu_s_per_1000_msgs"],
                         "yes" if r["all_acked"] else "NO"])
        if bare and len(kinds) == 1:
            rows.append([v["variant"], "bare only", v["messages"], bare["msgs_per_s"], None, None,
                         bare["readings_per_s"], bare["cpu_s_per_1000_msgs"], None, "yes"])
    print(f"edge ingest, QoS 1, {mode} publisher, median of {runs} run(s); ratio target >= {TARGET_RATIO}")
    print(table(["variant", "ours", "msgs", "bare msgs/s", "ours msgs/s", "ratio", "ours readings/s",
                 "cpu s/1k bare", "cpu s/1k ours", "all acked"], rows))
    pubs = {v["variant"]: max(r["publisher_msgs_per_s"] for r in v["kinds"].values()) for v in results}
    print("publisher (QoS 1, own process) msgs/s: " + ", ".join(f"{k} {v:,}" for k, v in pubs.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per variant and kind (median reported)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {list(KINDS)}")
    ap.add_argument("--mode", choices=("live", "queued"), default="live",
                    help="live: subscribed while the publisher runs; queued: drain a queued session")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the message counts")
    ap.add_argument("--quick", action="store_true", help="small counts, one run, no warm-up (smoke test)")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="also run each variant/kind once under py-spy (not timed); collapsed stacks to DIR")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    kinds = [k for k in args.kinds.split(",") if k]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"--variants: unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    for k in kinds:
        if k not in KINDS:
            ap.error(f"--kinds: unknown kind {k!r} (known: {', '.join(KINDS)})")
    if args.mode == "queued" and "daemon" in kinds:
        kinds.remove("daemon")
        print("--mode queued: the daemon kind is skipped (it would have to be restarted inside the timed window)")
    runs = 1 if args.quick else args.runs
    info = machine()

    def make(v: str) -> Msgs:
        return VARIANTS[v][1](VARIANTS[v][3] if args.quick else max(10, int(VARIANTS[v][2] * args.scale)))

    traffic = {v: make(v) for v in variants}
    if not args.quick:  # warm-up: imports, page cache, CPU frequency; results discarded
        warm = traffic[variants[0]][:1000]
        for k in kinds:
            one_run(k, warm, args.mode)
    results = []
    for v in variants:
        rs: list[dict[str, Any]] = []
        for i in range(runs):
            if i and VARIANTS[v][4]:
                traffic[v] = make(v)
            for k in kinds:
                r = one_run(k, traffic[v], args.mode)
                r["run"] = i
                rs.append(r)
                print(f"  {v:7} run {i + 1}/{runs} {k:9} {r['msgs_per_s']:>9,.0f} msgs/s  cpu {r['cpu_s']:.2f} s"
                      f"  publisher {r['publisher_msgs_per_s']:,.0f} msgs/s", flush=True)
        results.append(summarise(v, traffic[v], rs, kinds))
    print_table(results, args.mode, runs)
    if args.profile is not None:
        for v in variants:
            for k in kinds:
                if k != "bare":
                    out = args.profile / f"{v}-{k}.txt"
                    one_run(k, make(v) if VARIANTS[v][4] else traffic[v], args.mode, profile=out)
                    shares = profile_summary(out)
                    print(f"profile {v}/{k} ({out}): " + ", ".join(f"{c} {x:.0%}" for c, x in shares if x >= 0.005))
    cpu: dict[str, float] = {}
    for v in results:
        kind = next((k for k in ("daemon", "pipeline") if k in v["kinds"]), None)
        if kind is not None:
            cpu[f"{v['variant']} ({kind})"] = v["kinds"][kind]["cpu_s_per_1000_msgs"]
    if cpu:  # CPU seconds per 1,000 messages = cores busy per 1,000 msgs/s
        print("one worker process (the daemon takes no MQTT shared subscription, docs/performance.md): CPU per "
              "1,000 msgs/s = " + ", ".join(f"{k} {c:.3f} cores" for k, c in cpu.items()))
    name = "edge_ingest" + ("_queued" if args.mode == "queued" else "") + ("-quick" if args.quick else "")
    path = write_result(name, {
        "benchmark": "edge_ingest", "mode": args.mode, "runs": runs, "quick": args.quick,
        "target_ratio": TARGET_RATIO, "machine": info, "variants": results,
        "cpu_cores_per_1000_msgs_per_s": cpu})
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the gateway reports about itself: ``/status`` JSON, ``/metrics``, ``/readyz``, heartbeats.

One snapshot (refreshed by the watchdog job every few seconds and on each request) feeds every view,
so the numbers a person sees in ``campus-edge status``, Prometheus and the cloud's fleet view agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.http import Response

if TYPE_CHECKING:
    from gateway.daemon import Daemon

try:
    AGENT_VERSION = version("campus-collector")
except PackageNotFoundError:  # running from a checkout without install
    AGENT_VERSION = "0.0.0+checkout"

SILENT_LIST_MAX = 50  # silent devices listed in /status (the count is always complete)


class StatusBuilder:
    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self.snapshot: dict[str, Any] = {}
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(self))

    async def refresh(self) -> dict[str, Any]:
        d = self._d
        now_ms = int(d.clock() * 1000)
        backlog = await d.buffer.backlog(now_ms=now_ms)
        counters = await d.buffer.counters()
        silent = d.devices.silent(now_ms)
        up = d.drainer.stats
        unsent = backlog.unsent_readings + backlog.unsent_events
        since_ok = time.monotonic() - (up.last_success_mono or d.started_mono)  # not fooled by clock steps
        stalled = unsent > 0 and since_ok > d.config.stall_after_s
        ist = d.ingest.stats
        self.snapshot = {
            "gateway": d.config.gateway_id, "campus": d.config.campus, "agent_version": AGENT_VERSION,
            "now_ms": now_ms, "uptime_s": round((now_ms - d.started_ms) / 1000, 1),
            "mqtt": {"connected": d.source.connected, "received": d.source.received, "acked": d.source.acked,
                     "pending": d.source.pending, "connects": d.source.connects,
                     "stale_acks_skipped": d.source.stale_acks_skipped, "last_error": d.source.last_error},
            "ingest": {"messages": ist.messages, "readings": ist.readings, "events": ist.events,
                       "quarantined": ist.quarantined, "bursts": ist.bursts, "commit_errors": ist.commit_errors,
                       "back_pressure": ist.backpressure, "back_pressure_episodes": ist.backpressure_episodes,
                       "last_commit_ms": ist.last_commit_ms, "pipeline_healthy": d.pipeline_healthy(),
                       "receive_stamps_moved": d.stamps.moved},
            "backlog": {"readings": backlog.unsent_readings, "events": backlog.unsent_events,
                        "batches": backlog.batches, "bytes": backlog.batch_bytes,
                        "oldest_unsent_age_s": backlog.oldest_unsent_age_s,
                        "dead_letters": backlog.dead_letters, "quarantine_rows": backlog.quarantine},
            "upload": {"last_success_ms": up.last_success_ms or None, "sent": up.sent,
                       "duplicates": up.duplicates, "readings_sent": up.readings_sent, "splits": up.splits,
                       "dead_letters": up.dead_letters, "retries": up.retries, "auth_failures": up.auth_failures,
                       "last_error": up.last_error or None, "stalled": stalled},
            "quarantined_by_reason": _prefixed(counters, "quarantined."),
            "evicted": _prefixed(counters, "evicted."),
            "late": _prefixed(counters, "late."),
            "unmatched_topics": dict(d.profiles.stats.no_profile),
            "ambiguous_topics": dict(d.profiles.stats.ambiguous),
            "devices": {"tracked": len(d.devices), "silent": len(silent), "silent_list": silent[:SILENT_LIST_MAX]},
            "disk": {"used_bytes": backlog.budget.used_bytes, "budget_bytes": backlog.budget.budget_bytes,
                     "used_ratio": round(backlog.budget.used_bytes / backlog.budget.budget_bytes, 4),
                     "back_pressure": backlog.budget.back_pressure},
            "clock_offset_to_cloud_ms": d.cloud_clock_offset_ms,
            "heartbeat": {"sent": d.heartbeats_sent, "failed": d.heartbeats_failed,
                          "last_ack_ms": d.last_heartbeat_ms or None, "upload_wakes": d.upload_wakes},
            "clock": {"steps": d.clock_steps, "last_step_s": d.last_clock_step_s},
            "profiles": {"count": len(d.profiles), "versions": {p.id: p.version for p in d.profiles},
                         "reloads": d.reloads, "reload_error": d.reload_error},
            "tasks": d.supervisor.snapshot(),
        }
        return self.snapshot

    def ready(self) -> tuple[bool, list[str]]:
        s = self.snapshot
        why = []
        if not s["mqtt"]["connected"]:
            why.append("broker not connected")
        if s["disk"]["back_pressure"] or s["ingest"]["back_pressure"]:
            why.append("buffer full: back-pressure")
        if s["upload"]["stalled"]:
            why.append("uploads stalled")
        if not s["ingest"]["pipeline_healthy"]:
            why.append("ingest pipeline stalled")
        return not why, why

    async def heartbeat(self) -> dict[str, Any]:
        s = await self.refresh()
        d = self._d
        return {
            "gateway": d.config.gateway_id, "sent_at_ms": int(d.clock() * 1000),
            "interval_s": d.config.heartbeat_interval_s, "agent_version": AGENT_VERSION,
            "backlog_batches": s["backlog"]["batches"], "backlog_readings": s["backlog"]["readings"],
            "oldest_unsent_age_s": s["backlog"]["oldest_unsent_age_s"],
            "last_upload_ms": s["upload"]["last_success_ms"],
            "devices_online": s["devices"]["tracked"] - s["devices"]["silent"],
            "devices_silent": s["devices"]["silent"],
            "silent_devices": [x["device"] for x in s["devices"]["silent_list"]],
            "quarantined_by_reason": s["quarantined_by_reason"], "evicted": s["evicted"], "late": s["late"],
            "back_pressure": s["disk"]["back_pressure"], "disk_used_ratio": s["disk"]["used_ratio"],
            "profiles": s["profiles"]["versions"],
        }

    def one_line(self) -> str:
        s = self.snapshot
        if not s:
            return "starting"
        return (f"{s['ingest']['messages']} msgs, backlog {s['backlog']['readings']} readings, "
                f"mqtt {'up' if s['mqtt']['connected'] else 'DOWN'}, "
                f"{sum(s['quarantined_by_reason'].values())} quarantined")

    def routes(self) -> dict[str, Any]:
        async def healthz() -> Response:
            return 200, "text/plain", b"ok\n"

        async def readyz() -> Response:
            await self.refresh()
            ok, why = self.ready()
            return (200, "text/plain", b"ready\n") if ok else (503, "text/plain", ("; ".join(why) + "\n").encode())

        async def status() -> Response:
            await self.refresh()
            return 200, "application/json", orjson.dumps(self.snapshot, option=orjson.OPT_INDENT_2)

        async def metrics() -> Response:
            await self.refresh()
            return 200, "text/plain; version=0.0.4", generate_latest(self._registry)

        return {"/healthz": healthz, "/readyz": readyz, "/status": status, "/metrics": metrics}


def _prefixed(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in counters.items() if k.startswith(prefix)}


class _Collector:
    """Prometheus view of the snapshot (names ``campus_edge_*``)."""

    def __init__(self, builder: StatusBuilder) -> None:
        self._b = builder

    def collect(self) -> Iterator[Metric]:
        s = self._b.snapshot
        if not s:
            return
        for name, value, doc in [
            ("mqtt_received", s["mqtt"]["received"], "MQTT messages received"),
            ("mqtt_acked", s["mqtt"]["acked"], "MQTT messages acknowledged after commit"),
            ("ingest_messages", s["ingest"]["messages"], "messages committed to the buffer"),
            ("ingest_readings", s["ingest"]["readings"], "readings committed"),
            ("ingest_events", s["ingest"]["events"], "events committed"),
            ("ingest_commit_errors", s["ingest"]["commit_errors"], "failed burst commits (retried)"),
            ("upload_batches", s["upload"]["sent"], "batches acknowledged by the cloud"),
            ("upload_readings", s["upload"]["readings_sent"], "readings acknowledged by the cloud"),
            ("upload_retries", s["upload"]["retries"], "upload attempts to retry later"),
            ("upload_dead_letters", s["upload"]["dead_letters"], "batches the cloud refused as malformed"),
        ]:
            yield CounterMetricFamily(f"campus_edge_{name}", doc, value=value)
        q = CounterMetricFamily("campus_edge_quarantined", "quarantined messages", labels=["reason"])
        for reason, n in sorted(s["quarantined_by_reason"].items()):
            q.add_metric([reason], n)
        yield q
        e = CounterMetricFamily("campus_edge_evicted", "rows evicted under the disk budget", labels=["kind"])
        for kind, n in sorted(s["evicted"].items()):
            e.add_metric([kind], n)
        yield e
        for name, value, doc in [
            ("mqtt_connected", int(s["mqtt"]["connected"]), "1 while connected to the broker"),
            ("mqtt_pending", s["mqtt"]["pending"], "received messages waiting for the next burst"),
            ("backlog_readings", s["backlog"]["readings"], "readings not yet acknowledged by the cloud"),
            ("backlog_batches", s["backlog"]["batches"], "stored batches not yet sent"),
            ("backlog_oldest_age_seconds", s["backlog"]["oldest_unsent_age_s"] or 0, "age of the oldest unsent"),
            ("disk_used_bytes", s["disk"]["used_bytes"], "buffer size on disk"),
            ("disk_budget_bytes", s["disk"]["budget_bytes"], "configured disk budget"),
            ("back_pressure", int(s["disk"]["back_pressure"]), "1 while not acknowledging for lack of space"),
            ("devices_silent", s["devices"]["silent"], "devices silent beyond their expected interval"),
            ("profiles_loaded", s["profiles"]["count"], "device profiles loaded"),
            ("uptime_seconds", s["uptime_s"], "seconds since start"),
        ]:
            yield GaugeMetricFamily(f"campus_edge_{name}", doc, value=value)
        r = GaugeMetricFamily("campus_edge_task_restarts", "supervised task restarts", labels=["task"])
        for task, info in s["tasks"].items():
            r.add_metric([task], info["restarts"])
        yield r



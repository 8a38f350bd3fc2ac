"""The edge daemon: wires MQTT source, decoder, buffer, outbox, uploader, endpoints and heartbeats.

Lifecycle: ``run()`` loads profiles and opens the buffer (refusing bad configuration before any
connection), starts the supervised tasks (ingest, upload drain) and the apscheduler jobs (batch cut,
heartbeat, retention, status refresh, watchdog), tells systemd READY, and waits for a signal:

- SIGTERM/SIGINT: stop receiving, commit and acknowledge the burst in hand, cut what is committed into
  batches, close the buffer, tell systemd STOPPING, exit 0 (bounded by ``STOP_TIMEOUT_S``).
- SIGHUP: re-read the config's device map and the profiles; a bad profile keeps the old set running
  (the error is logged and shown in /status). No data is lost: the swap happens between bursts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from edge_agent.buffer import Buffer, BufferConfig
from edge_agent.decode import ReceiveStamps, decode
from edge_agent.errors import EdgeAgentError
from edge_agent.ingest import IngestLoop
from edge_agent.model import DecodeResult, Message
from edge_agent.mqtt import MqttSource
from edge_agent.outbox import Drainer, cut_batches
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet
from edge_agent.upload import Outcome, Timeouts, Uploader
from edge_agent.windowing import WindowJob
from gateway import heap
from gateway.config import GatewayConfig, load_config
from gateway.devices import DeviceTracker
from gateway.http import LocalHttpServer
from gateway.sdnotify import Notifier
from gateway.status import StatusBuilder
from gateway.supervisor import Supervisor

_LOGGER = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0  # graceful stop must finish within this (systemd TimeoutStopSec is 30)
RETENTION_EVERY_S = 300.0
STATUS_EVERY_S = 2.0
WINDOW_EVERY_S = 5.0  # how often final windows are computed (latency of aggregates on top of the lateness)
CLOCK_CHECK_S = 1.0  # how often the wall clock is compared with the monotonic clock
CLOCK_STEP_S = 2.0  # a wall-clock change this large between two checks is a step (NTP, date -s), not drift


class Daemon:
    def __init__(self, config: GatewayConfig, *, notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.pipeline_stall_s = config.pipeline_stall_s
        self.stop_event = asyncio.Event()
        self.supervisor = Supervisor()
        self.devices = DeviceTracker(config.silent_factor)
        self.profiles: ProfileSet
        self.pseudonymizer: Pseudonymizer | None = None
        self.buffer: Buffer
        self.source: MqttSource
        self.ingest: IngestLoop
        self.uploader: Uploader
        self.drainer: Drainer
        self.status: StatusBuilder
        self.reload_error: str | None = None
        self.reloads = 0
        self.precision: dict[str, float] = {}
        self.cloud_clock_offset_ms: int | None = None
        self.last_heartbeat_ms = 0
        self.heartbeats_sent = 0
        self.heartbeats_failed = 0
        self.upload_wakes = 0  # upload backoffs cut short by an acknowledged heartbeat
        self.clock_steps = 0  # steps of the wall clock seen (against the monotonic clock)
        self.last_clock_step_s: float | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.stamps = ReceiveStamps()  # receive-time stamps unique per series (DWD de-duplicates on them)
        self._drain_wake = asyncio.Event()
        self.started_ms = int(clock() * 1000)
        self.started_mono = time.monotonic()
        # stall detection runs on the monotonic clock: a step of the wall clock is not a stall
        self._waiting_since_mono = time.monotonic()  # last time the ingest queue was seen empty
        self._last_commit_mono = 0.0

    # -- set-up -------------------------------------------------------------------------------------

    def _load_profiles(self) -> None:
        profiles = ProfileSet.load(self.config.profiles_dir, device_map=self.config.device_map,
                                   timezone=self.config.timezone)
        pseudo = self.pseudonymizer
        if profiles.needs_pseudonymizer and pseudo is None:
            pseudo = Pseudonymizer.from_file(self.config.key_file)
        precision: dict[str, float] = {}
        for p in profiles:
            for m in p.metrics:
                if m.precision:
                    precision[m.name] = min(precision.get(m.name, m.precision), m.precision)
        self.profiles, self.pseudonymizer, self.precision = profiles, pseudo, precision
        # raw readings of aggregate-only profiles stay on the gateway (only their windows are uploaded)
        self.local_profiles = frozenset(p.ref for p in profiles if p.reduction.mode == "aggregate")
        if hasattr(self, "windows"):
            self.windows.reset()

    def _decode(self, message: Message) -> DecodeResult:
        return self.stamps.apply(decode(message, self.profiles, now_ms=int(self.clock() * 1000),
                                        max_skew_ms=self.config.max_clock_skew_ms, pseudonymizer=self.pseudonymizer))

    async def _open(self) -> None:
        cfg = self.config
        self._load_profiles()
        cfg.buffer.path.parent.mkdir(parents=True, exist_ok=True)
        self.buffer = await Buffer.open(cfg.buffer.path, BufferConfig(
            budget_bytes=cfg.buffer.disk_budget_bytes, quarantine_payload_cap=cfg.buffer.quarantine_payload_cap,
            uploaded_retention_s=0.0 if cfg.buffer.retention_hours <= 0 else cfg.buffer.retention_hours * 3600))
        self.source = MqttSource(cfg.mqtt)
        self.ingest = IngestLoop(self.source, self._decode, _TrackingStore(self))
        self.uploader = Uploader(cfg.upload.url, cfg.gateway_id, cfg.upload.token,
                                 timeouts=Timeouts(total=cfg.upload.timeout_s), max_body=cfg.upload.max_body_bytes)
        self.drainer = Drainer(self.buffer, self.uploader, clock=self.clock)
        self.windows = WindowJob(self.buffer, lambda: self.profiles, allowed_lateness_ms=cfg.allowed_lateness_ms,
                                 clock=self.clock)
        self.status = StatusBuilder(self)

    # -- tasks and jobs -----------------------------------------------------------------------------

    async def _drain_forever(self) -> None:
        while not self.stop_event.is_set():
            self._drain_wake.clear()
            wait = await self.drainer.run_once()
            self.supervisor.beat("upload")
            if wait > 0:
                await _wait_any((self.stop_event, self._drain_wake), wait)

    async def _cut(self) -> None:
        await cut_batches(self.buffer, self.config.gateway_id, max_readings=self.config.upload.batch_max_readings,
                          precision=self.precision, clock=self.clock)

    async def _heartbeat(self) -> None:
        body = await self.status.heartbeat()
        res = await self.uploader.send_heartbeat(body)
        if res.outcome is not Outcome.SENT:
            self.heartbeats_failed += 1
            return
        self.heartbeats_sent += 1
        self.last_heartbeat_ms = int(self.clock() * 1000)
        if self.drainer.waiting_for_cloud:
            # Uploads are backing off because the cloud was unreachable (after a long outage the wait has grown
            # to the backoff cap, 60 s); the cloud just answered: retry now instead of at the end of the wait.
            _LOGGER.info("cloud reachable again (heartbeat acknowledged): resuming uploads")
            self.drainer.waiting_for_cloud = False
            self.upload_wakes += 1
            self._drain_wake.set()
        if res.response and "clock_offset_ms" in res.response:
            self.cloud_clock_offset_ms = int(res.response["clock_offset_ms"])

    async def _watch_clock(self) -> None:
        """Notice steps of the wall clock against the monotonic one (see :meth:`_clock_stepped`)."""
        base = self.clock() - time.monotonic()
        while not self.stop_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), CLOCK_CHECK_S)
            offset = self.clock() - time.monotonic()
            step, base = offset - base, offset
            if abs(step) >= CLOCK_STEP_S:
                self._clock_stepped(step)

    def _clock_stepped(self, step_s: float) -> None:
        """The wall clock jumped by ``step_s`` seconds (an NTP step after a boot without RTC, ``date -s``, a bad
        RTC). Readings are still checked against the gateway's clock as it now is (skew → receive time and
        CLOCK_SKEW). apscheduler keeps its next run times on the wall clock: after a backward step it would
        wait the step out (an hour back: no batch cut, heartbeat, window or watchdog for an hour), so every
        scheduled job is due now. (Stall detection and upload backoff run on the monotonic clock.)"""
        self.clock_steps += 1
        self.last_clock_step_s = round(step_s, 3)
        _LOGGER.warning("the gateway's wall clock stepped by %+.1f s; scheduled jobs run from the new time", step_s)
        sched = self.scheduler
        if step_s < 0 and sched is not None and sched.running:
            now = _now()
            for job in sched.get_jobs():
                if job.next_run_time is not None:  # paused jobs stay paused
                    job.modify(next_run_time=now)

    async def _retention(self) -> None:
        await self.buffer.space(evict=True)
        await self.buffer.apply_retention()
        heap.trim()

    async def _windows(self) -> None:
        await self.windows.run_once()
        heap.trim()  # the job's temporary columns (a few times the held rows) go back to the OS

    def pipeline_healthy(self) -> bool:
        """Ingest task alive, and not holding messages without committing for ``pipeline_stall_s``."""
        if not self.supervisor.alive("ingest"):
            return False
        if self.ingest.stats.backpressure:
            return True  # a planned state: not acknowledging until space frees; a restart would not help
        waiting = self.source.pending > 0 or bool(self.ingest._held)
        last = max(self._last_commit_mono, self._waiting_since_mono)
        return not waiting or (time.monotonic() - last) < self.pipeline_stall_s

    async def _watchdog(self) -> None:
        if self.source.pending == 0 and not self.ingest._held:
            self._waiting_since_mono = time.monotonic()
        if self.pipeline_healthy():
            self.notifier.watchdog()
        else:
            _LOGGER.error("pipeline stalled: %d messages waiting, last commit %.1f s ago; withholding watchdog",
                          self.source.pending, time.monotonic() - self._last_commit_mono)
        await self.status.refresh()
        self.notifier.status(self.status.one_line())

    def reload(self) -> None:
        """SIGHUP: re-read the device map and profiles; keep the running set on any error."""
        self.notifier.reloading()
        try:
            fresh = load_config(self.config.source)
            if fresh.mqtt != self.config.mqtt or fresh.buffer != self.config.buffer:
                _LOGGER.warning("mqtt/buffer settings changed: they take effect after a restart")
            self.config = dataclasses.replace(self.config, device_map=fresh.device_map, profiles_dir=fresh.profiles_dir)
            self._load_profiles()
            self.reload_error = None
            self.reloads += 1
            _LOGGER.info("reloaded: %d profiles from %s", len(self.profiles), self.config.profiles_dir)
        except (EdgeAgentError, OSError) as exc:
            self.reload_error = str(exc)
            _LOGGER.error("reload failed, keeping the running profiles: %s", exc)
        self.notifier.ready(self.status.one_line() if hasattr(self, "status") else "")

    # -- run ----------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        await self._open()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        http = LocalHttpServer(self.status.routes(), self.config.http_host, self.config.http_port)
        await http.start()
        self.source.start(loop, self.ingest.wake)
        self.supervisor.start("ingest", lambda: self.ingest.run(self.stop_event), finished=self.stop_event.is_set)
        self.supervisor.start("upload", self._drain_forever, finished=self.stop_event.is_set)
        self.supervisor.start("clock", self._watch_clock, finished=self.stop_event.is_set)
        sched = self.scheduler = AsyncIOScheduler(event_loop=loop)
        every = self.notifier.watchdog_interval_s or 5.0
        jobs: list[tuple[Callable[[], Any], float]] = [
            (self._cut, self.config.upload.batch_max_age_s), (self._heartbeat, self.config.heartbeat_interval_s),
            (self._retention, RETENTION_EVERY_S), (self._windows, WINDOW_EVERY_S),
            (self._watchdog, min(every, STATUS_EVERY_S))]
        for fn, seconds in jobs:
            # retention first runs one interval after start; the others at once (next_run_time=None would
            # add the job *paused*: retention never ran)
            first = {} if fn is self._retention else {"next_run_time": _now()}
            sched.add_job(fn, "interval", seconds=seconds, max_instances=1, coalesce=True,
                          misfire_grace_time=None, **first)
        sched.start()
        await self.status.refresh()
        self.notifier.ready(self.status.one_line())
        _LOGGER.info("campus-edge %s running: %d profiles, MQTT %s:%d, upload %s, endpoints %s:%d",
                     self.config.gateway_id, len(self.profiles), self.config.mqtt.host, self.config.mqtt.port,
                     self.config.upload.url, http.host, http.port)
        await self.stop_event.wait()
        self.notifier.stopping()
        try:
            await asyncio.wait_for(self._shutdown(sched, http), STOP_TIMEOUT_S)
        except TimeoutError:
            _LOGGER.error("graceful stop took longer than %ss; exiting (committed data is safe)", STOP_TIMEOUT_S)
        return 0

    async def _shutdown(self, sched: AsyncIOScheduler, http: LocalHttpServer) -> None:
        sched.shutdown(wait=False)
        # The ingest task sees stop_event, commits and acknowledges the burst in hand, then returns.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ingest_finished(), STOP_TIMEOUT_S / 2)
        self.source.stop()  # from here nothing is acknowledged; the broker keeps the rest
        await self.supervisor.stop()
        with contextlib.suppress(Exception):
            await self.windows.run_once()  # flush windows that are final
            await self._cut()
        await http.stop()
        await self.uploader.aclose()
        await self.buffer.close()
        _LOGGER.info("stopped cleanly after %d messages", self.ingest.stats.messages)

    async def _ingest_finished(self) -> None:
        while self.supervisor.alive("ingest") and (self.ingest._held or self.source.pending):
            await asyncio.sleep(0.05)


class _TrackingStore:
    """Commits through the buffer, then updates the device tracker and the ingest beat."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon

    async def commit_burst(self, results: Any) -> Any:
        d = self._d
        stats = await d.buffer.commit_burst(results, local_profiles=d.local_profiles)
        d._last_commit_mono = time.monotonic()
        d.devices.update(results, d.profiles)
        d.supervisor.beat("ingest")
        return stats


async def _wait_any(events: tuple[asyncio.Event, ...], timeout: float) -> None:
    """Return when one of ``events`` is set or after ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)

"""Prometheus metrics of one API instance, in a registry of its own (no global state).

Names are prefixed ``campus_ingest_``. Rejections are labelled with the same machine-readable ``code`` the
client receives, so a dashboard and an edge log speak the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Landing latency buckets (s): a small batch lands in milliseconds; seconds mean the writer is contended.
LANDING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _FleetCollector(Collector):
    """Gateways per fleet state, computed at scrape time from a callable (no stale copies)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("campus_ingest_fleet_gateways", "Gateways by heartbeat state",
                                   labels=["state"])
        for state, n in sorted(self._counts().items()):
            family.add_metric([state], n)
        yield family


class ApiMetrics:
    """The counters, gauges and histograms ``/metrics`` exposes; ``render()`` gives the text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.batches = Counter("campus_ingest_batches", "Batch uploads by outcome "
                               "(stored, duplicate, conflict, rejected, failed)", ["status"], registry=r)
        self.readings = Counter("campus_ingest_readings_landed", "Readings written to ODS", registry=r)
        self.events = Counter("campus_ingest_events_landed", "Events written to ODS", registry=r)
        self.duplicates = Counter("campus_ingest_duplicates", "Batches received again (nothing written)",
                                  registry=r)
        self.rejections = Counter("campus_ingest_rejections", "Requests refused, by error code",
                                  ["code"], registry=r)
        self.body_bytes = Counter("campus_ingest_body_bytes", "Batch body bytes accepted for decoding",
                                  registry=r)
        self.landing = Histogram("campus_ingest_landing_seconds", "Time land_batch took (worker thread)",
                                 buckets=LANDING_BUCKETS, registry=r)
        self.admitted = Gauge("campus_ingest_admitted", "Batch requests admitted (receiving to landing)",
                              registry=r)
        self.in_flight = Gauge("campus_ingest_in_flight", "Batches decoding or landing", registry=r)
        self.waiting = Gauge("campus_ingest_waiting", "Batch requests waiting for a landing slot", registry=r)
        self.heartbeats = Counter("campus_ingest_heartbeats", "Heartbeats accepted", registry=r)

    def watch_fleet(self, counts: Callable[[], dict[str, int]]) -> None:
        """Export gateway counts per state, computed by ``counts`` at each scrape."""
        self.registry.register(_FleetCollector(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)

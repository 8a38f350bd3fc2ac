"""Gateway heartbeats: the JSON a gateway posts, and the store of each gateway's latest state.

``POST /v1/heartbeats`` is authenticated like batch uploads (a gateway posts only its own heartbeat). The
server stamps the receive time; the clock offset is ``sent_at_ms - received_ms`` (positive: the gateway's
clock is ahead; network delay is included, so offsets of a few hundred ms are noise).

Every accepted heartbeat is appended to ``ods_iot_heartbeat_di`` (history; its cumulative quarantine and
eviction counters feed the quality tables). The current state per gateway is kept by a :class:`FleetStore`
(:class:`InMemoryFleetStore`), seeded at startup from each gateway's last stored heartbeat and last upload,
so a restarted service knows the fleet at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

_LOGGER = logging.getLogger(__name__)

MAX_INTERVAL_S = 86_400.0  # a heartbeat interval over a day is a configuration error, not a gateway


class HeartbeatIn(BaseModel):
    """Body of ``POST /v1/heartbeats``. Unknown fields are ignored (newer gateways may send more)."""

    model_config = ConfigDict(extra="ignore", strict=False)

    gateway: str = Field(min_length=1, max_length=128, description="Gateway id; must be the token's gateway")
    sent_at_ms: int = Field(ge=0, lt=2**53, description="Gateway clock when sent, epoch ms (UTC)")
    interval_s: float = Field(gt=0, le=MAX_INTERVAL_S, description="Seconds until the next heartbeat")
    backlog_batches: int = Field(0, ge=0, description="Batches waiting to be uploaded")
    backlog_readings: int = Field(0, ge=0, description="Readings not yet uploaded")
    oldest_unsent_age_s: float | None = Field(None, ge=0, description="Age of the oldest unsent record")
    last_upload_ms: int | None = Field(None, ge=0, lt=2**53,
                                       description="Gateway clock at its last successful upload")
    devices_online: int = Field(0, ge=0, description="Devices heard from within their expected interval")
    devices_silent: int = Field(0, ge=0, description="Devices silent beyond their expected interval")
    agent_version: str | None = Field(None, max_length=64)


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    """What the cloud knows about one gateway now: its last heartbeat and its last upload."""

    gateway: str
    received_ms: int | None = None  # server clock at the last heartbeat
    sent_at_ms: int | None = None
    interval_s: float | None = None
    backlog_batches: int = 0
    backlog_readings: int = 0
    oldest_unsent_age_s: float | None = None
    reported_last_upload_ms: int | None = None  # gateway clock
    devices_online: int = 0
    devices_silent: int = 0
    agent_version: str | None = None
    last_upload_ms: int | None = None  # server clock at the last batch received (stored or duplicate)
    last_seq: int | None = None  # highest sequence number received

    @property
    def clock_offset_ms(self) -> int | None:
        if self.received_ms is None or self.sent_at_ms is None:
            return None
        return self.sent_at_ms - self.received_ms


class FleetStore(Protocol):
    """Current state per gateway. Implementations are thread-safe; calls are quick."""

    def record_heartbeat(self, hb: HeartbeatIn, received_ms: int) -> GatewayRecord: ...

    def record_upload(self, gateway: str, seq: int, received_ms: int) -> None: ...

    def get(self, gateway: str) -> GatewayRecord | None: ...

    def all(self) -> list[GatewayRecord]: ...


class InMemoryFleetStore:
    """A :class:`FleetStore` in a dict under a lock; bounded by the number of gateways with tokens."""

    def __init__(self, seed: Iterable[GatewayRecord] = ()) -> None:
        self._lock = threading.Lock()
        self._by_gateway = {r.gateway: r for r in seed}

    def record_heartbeat(self, hb: HeartbeatIn, received_ms: int) -> GatewayRecord:
        with self._lock:
            old = self._by_gateway.get(hb.gateway) or GatewayRecord(hb.gateway)
            new = dataclasses.replace(
                old, received_ms=received_ms, sent_at_ms=hb.sent_at_ms, interval_s=hb.interval_s,
                backlog_batches=hb.backlog_batches, backlog_readings=hb.backlog_readings,
                oldest_unsent_age_s=hb.oldest_unsent_age_s, reported_last_upload_ms=hb.last_upload_ms,
                devices_online=hb.devices_online, devices_silent=hb.devices_silent,
                agent_version=hb.agent_version)
            self._by_gateway[hb.gateway] = new
            return new

    def record_upload(self, gateway: str, seq: int, received_ms: int) -> None:
        with self._lock:
            old = self._by_gateway.get(gateway) or GatewayRecord(gateway)
            last_seq = seq if old.last_seq is None else max(old.last_seq, seq)
            last_ms = received_ms if old.last_upload_ms is None else max(old.last_upload_ms, received_ms)
            self._by_gateway[gateway] = dataclasses.replace(old, last_upload_ms=last_ms, last_seq=last_seq)

    def get(self, gateway: str) -> GatewayRecord | None:
        with self._lock:
            return self._by_gateway.get(gateway)

    def all(self) -> list[GatewayRecord]:
        with self._lock:
            return list(self._by_gateway.values())

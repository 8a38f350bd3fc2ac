"""QoS 1 subscriber with a persistent session and acknowledge-after-commit.

paho runs its network loop in its own thread. ``on_message`` converts the paho message to our
:class:`ReceivedMessage` on its first line and appends it to a deque; the consumer (an asyncio task)
is woken with ``loop.call_soon_threadsafe`` only when the deque goes from empty to non-empty, so a
burst costs one wake-up. The consumer acknowledges with :meth:`MqttSource.ack` after the burst is
committed to SQLite.

Acks are tied to the connection they came from (``generation``): MQTT message ids restart on a new
connection, so acknowledging an old id on a new connection would acknowledge a *different* message.
Messages of a dropped connection are simply not acknowledged; the broker redelivers them (DUP) from the
persistent session, which makes a duplicate, never a loss.

Queue policy: the deque is bounded by the broker's in-flight window (mosquitto ``max_inflight_messages``),
because the broker sends no more unacknowledged QoS 1 messages than that. ``pending`` is exported.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.model import Message

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_S = 1  # first reconnect delay; doubles up to RECONNECT_MAX_S
RECONNECT_MAX_S = 30  # cap: a gateway whose broker restarts is back within this long


@dataclass(slots=True, frozen=True)
class MqttSettings:
    """Connection settings of the agent's subscription (parsed once from the gateway config)."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "campus-edge"
    topics: tuple[str, ...] = ("#",)
    qos: int = 1
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise ValueError(f"mqtt.qos: {self.qos!r} is not 0, 1 or 2")
        for t in self.topics:
            if not t or ("#" in t and not t.endswith("#")) or any(
                ("+" in lvl or "#" in lvl) and len(lvl) > 1 for lvl in t.split("/")
            ):
                raise ValueError(f"mqtt.topics: invalid topic filter {t!r}")


@dataclass(slots=True, frozen=True)
class ReceivedMessage:
    """A message plus what is needed to acknowledge it on the connection it came from."""

    message: Message
    generation: int
    dup: bool = False


class MqttSource:
    """Subscribe with QoS 1, persistent session, manual acknowledgement.

    ``start(loop)`` connects asynchronously (reconnecting with backoff forever); ``drain(max_n)``
    returns received messages; ``ack(received)`` acknowledges one after commit.
    """

    def __init__(self, settings: MqttSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._queue: collections.deque[ReceivedMessage] = collections.deque()
        self._generation = 0
        self._connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.received = 0
        self.acked = 0
        self.stale_acks_skipped = 0
        self.connects = 0
        self.last_error: str | None = None
        self._client = self._make_client()

    # -- lifecycle -----------------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=False,  # persistent session: the broker queues for us while we are away
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        # 0 = no client-side cap on incoming QoS 1 messages awaiting our ack; the broker's window rules.
        client.max_inflight_messages_set(0)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls_ca_file:
            client.tls_set(ca_certs=s.tls_ca_file, certfile=s.tls_cert_file, keyfile=s.tls_key_file,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        """Connect in the background; ``wake`` is set (thread-safely) whenever messages arrive."""
        self._loop = loop
        self._wake = wake
        self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly. Unacknowledged messages stay queued at the broker (persistent session)."""
        self._connected.clear()
        self._generation += 1  # no ack may reach the broker after this point
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # -- paho callbacks (paho's thread) -------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: object, flags: paho.ConnectFlags,
                    reason_code: ReasonCode, _props: object) -> None:
        if reason_code.is_failure:
            self.last_error = f"connect refused: {reason_code}"
            _LOGGER.error("MQTT broker %s:%s refused the connection: %s", self.settings.host,
                          self.settings.port, reason_code)
            if reason_code.value in (134, 135, 4, 5):  # bad credentials / not authorised: stop retrying
                client.disconnect()
            return
        self._generation += 1
        self.connects += 1
        self.last_error = None
        _LOGGER.info("connected to MQTT %s:%s (session present: %s)", self.settings.host,
                     self.settings.port, flags.session_present)
        client.subscribe([(t, self.settings.qos) for t in self.settings.topics])

    def _on_subscribe(self, _c: paho.Client, _u: object, _mid: int, reason_codes: Sequence[ReasonCode],
                      _p: object) -> None:
        bad = [str(rc) for rc in reason_codes if rc.is_failure]
        if bad:
            self.last_error = f"subscription refused: {', '.join(bad)}"
            _LOGGER.error("broker refused subscription to %s: %s", self.settings.topics, bad)
        self._connected.set()

    def _on_disconnect(self, _c: paho.Client, _u: object, _flags: object, reason_code: ReasonCode,
                       _p: object) -> None:
        self._connected.clear()
        self._generation += 1  # acks for this connection's messages must not go out on the next one
        if reason_code.is_failure:
            self.last_error = f"disconnected: {reason_code}"
            _LOGGER.warning("MQTT connection lost (%s); reconnecting", reason_code)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        received = ReceivedMessage(
            Message(msg.topic, cast(bytes, msg.payload), int(self._clock() * 1000), msg.mid, msg.qos, bool(msg.retain)),
            self._generation,
            bool(msg.dup),
        )
        was_empty = not self._queue
        self._queue.append(received)
        self.received += 1
        if was_empty and self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- consumer side -------------------------------------------------------------------------

    def drain(self, max_n: int) -> list[ReceivedMessage]:
        """Pop up to ``max_n`` received messages (oldest first)."""
        q = self._queue
        n = min(max_n, len(q))
        return [q.popleft() for _ in range(n)]

    def ack(self, items: Sequence[ReceivedMessage]) -> int:
        """Acknowledge committed messages; returns how many acks were sent.

        Messages from an earlier connection are skipped (the broker will redeliver them).
        """
        gen = self._generation
        sent = 0
        for r in items:
            if r.message.qos == 0:
                continue
            if r.generation != gen:
                self.stale_acks_skipped += 1
                continue
            self._client.ack(r.message.mid, r.message.qos)
            sent += 1
        self.acked += sent
        return sent

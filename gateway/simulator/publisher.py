"""Publish simulated traffic to a real broker: paho-mqtt 2.x, QoS 1, bounded in-flight window, rate control.

paho's network loop runs in its own thread (``loop_start``). :meth:`Publisher.publish` blocks while
``window`` messages are unacknowledged (PUBACK not yet received), so memory stays bounded whatever
the broker's speed: that is the in-flight policy. Rate control is a pacing clock: message ``i`` is
not sent before ``t0 + i / rate``; when the publisher falls behind (slow broker) it does not burst to
catch up by more than ``BURST_S`` worth of messages.

Clocks (``monotonic`` and ``sleep``) are parameters so tests can run without waiting.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

_LOGGER = logging.getLogger(__name__)

BURST_S = 0.25  # after a stall, catch up at most this many seconds' worth of messages at once
CONNECT_TIMEOUT_S = 10.0


class PublishError(RuntimeError):
    """The broker cannot be reached, refused the connection, or did not acknowledge in time."""


@dataclass(slots=True, frozen=True)
class PublisherSettings:
    """Where and how to publish."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "campus-sim"
    qos: int = 1
    window: int = 200  # unacknowledged messages in flight, at most
    rate: float | None = None  # messages per second; None = as fast as the window allows
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos: {self.qos!r} is not 0, 1 or 2")
        if self.window < 1:
            raise ValueError(f"window: {self.window!r} must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate: {self.rate!r} must be positive")

    @classmethod
    def parse_address(cls, address: str, **kwargs: Any) -> PublisherSettings:
        """``host:port`` (or ``host``, port 1883) into settings."""
        host, sep, port = address.rpartition(":")
        if not sep:
            return cls(host=address, **kwargs)
        try:
            return cls(host=host.strip("[]") or "127.0.0.1", port=int(port), **kwargs)
        except ValueError:
            raise ValueError(f"broker: {address!r} is not HOST:PORT") from None


class Publisher:
    """A QoS 1 publisher with a bounded window of unacknowledged messages. Use as a context manager."""

    def __init__(
        self,
        settings: PublisherSettings,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._monotonic = monotonic
        self._sleep = sleep
        self._cond = threading.Condition()
        self._in_flight = 0
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self.sent = 0  # handed to paho
        self.acked = 0  # PUBACK received (QoS 1), or written to the socket (QoS 0)
        self.disconnects = 0
        self._closing = False
        self._t0: float | None = None
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=settings.client_id,
            protocol=paho.MQTTv311, clean_session=True,
        )
        self._client.max_inflight_messages_set(settings.window)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 10)
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        if settings.tls_ca_file is not None:
            self._client.tls_set(ca_certs=settings.tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    # -- paho callbacks (network thread)
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
        else:
            self._connect_error = None
            self._connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if self._closing:
            return
        self.disconnects += 1
        _LOGGER.warning("disconnected from %s:%s: %s", self.settings.host, self.settings.port, reason)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._cond:
            self._in_flight -= 1
            self.acked += 1
            self._cond.notify()

    # -- lifecycle
    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Connect and start the network thread. Raises :class:`PublishError`."""
        s = self.settings
        try:
            self._client.connect(s.host, s.port, keepalive=s.keepalive_s)
        except OSError as exc:
            raise PublishError(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self._client.loop_stop()
            detail = self._connect_error or "no CONNACK"
            raise PublishError(f"cannot connect to {s.host}:{s.port} within {timeout:g}s: {detail}")

    def close(self, timeout: float = 30.0) -> bool:
        """Wait for outstanding acknowledgements (up to ``timeout``), then disconnect. True if all acked."""
        done = self.flush(timeout)
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        return done

    def __enter__(self) -> Publisher:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- publishing
    def publish(self, topic: str, payload: bytes) -> None:
        """Send one message, waiting for the pacing clock and for room in the in-flight window."""
        self._pace()
        with self._cond:
            while self._in_flight >= self.settings.window:
                self._cond.wait(1.0)
            self._in_flight += 1
        info = self._client.publish(topic, payload, qos=self.settings.qos)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            with self._cond:
                self._in_flight -= 1
            raise PublishError(f"publish to {topic!r} failed: {paho.error_string(info.rc)}")
        self.sent += 1

    def _pace(self) -> None:
        rate = self.settings.rate
        if rate is None:
            return
        now = self._monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self.sent / rate
        if due > now:
            self._sleep(due - now)
        elif now - due > BURST_S:  # fell behind: forget the debt beyond one burst
            self._t0 = now - self.sent / rate - BURST_S

    def flush(self, timeout: float) -> bool:
        """Wait until every sent message is acknowledged; False on timeout."""
        deadline = self._monotonic() + timeout
        with self._cond:
            while self._in_flight > 0:
                left = deadline - self._monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    @property
    def in_flight(self) -> int:
        return self._in_flight

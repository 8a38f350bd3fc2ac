"""campus-sim against a real Mosquitto: a plain paho subscriber receives exactly what was published."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.simulator import Publisher, PublisherSettings, Simulator
from gateway.simulator.cli import main
from gateway.simulator.ledger import read_ledger
from gateway.simulator.runner import run
from tests.support.procs import Broker


class Subscriber:
    """A bare QoS 1 subscriber to everything, counting messages per topic."""

    def __init__(self, port: int) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="plain-sub")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(5)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.payloads.append((msg.topic, msg.payload))

    def wait_for(self, n: int, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.payloads) < n:
            time.sleep(0.05)
        time.sleep(0.2)  # and nothing more arrives
        return len(self.payloads)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    sub = Subscriber(broker.port)
    yield sub
    sub.close()


def test_cli_publishes_and_a_plain_subscriber_gets_the_same_count(
    broker: Broker, subscriber: Subscriber, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rc = main(["--broker", f"127.0.0.1:{broker.port}", "--devices", "120", "--rate", "600", "--duration", "2",
               "--faults", "duplicates=0.02,malformed=0.02,gaps=0.01", "--ledger", str(ledger), "--seed", "4",
               "--window", "50"])
    assert rc == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    sent = summary["run"]["sent"]
    assert sent == summary["messages"] == summary["run"]["acknowledged"]
    assert 900 <= sent <= 1500
    assert summary["run"]["all_acknowledged"] is True
    assert subscriber.wait_for(sent) == sent
    lines = [r for r in read_ledger(ledger) if "topic" in r]
    assert len(lines) == sent
    assert sorted(t for t, _ in subscriber.payloads) == sorted(r["topic"] for r in lines)
    assert "campus-sim:" in captured.err  # progress on stderr


def test_publisher_keeps_the_in_flight_window(broker: Broker, subscriber: Subscriber) -> None:
    sim = Simulator.build(50, seed=1, start_ms=1_725_235_200_000, rate=1000)
    settings = PublisherSettings(port=broker.port, client_id="win-test", window=5)
    peak = 0
    with Publisher(settings) as pub:
        class Watch:
            def publish(self, topic: str, payload: bytes) -> None:
                nonlocal peak
                pub.publish(topic, payload)
                peak = max(peak, pub.in_flight)

        final = run(sim, Watch(), until_ms=None, count=400, pace=False)
        assert pub.flush(10)
        assert pub.acked == 400
    assert final.sent == 400
    assert 1 <= peak <= 5
    assert subscriber.wait_for(400) == 400

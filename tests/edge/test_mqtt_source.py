"""MqttSource against a real Mosquitto: QoS 1, persistent session, acknowledge only after commit."""

from __future__ import annotations

import asyncio
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.mqtt import MqttSettings, MqttSource
from tests.support.procs import Broker


def publish(port: int, topic: str, payloads: list[bytes]) -> None:
    pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-pub")
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(topic, p, qos=1) for p in payloads]
    for i in infos:
        i.wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()


async def collect(src: MqttSource, n: int, timeout: float, ack: bool) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        items = src.drain(1000)
        if not items:
            await asyncio.sleep(0.01)
            continue
        got += [i.message.payload for i in items]
        if ack:
            src.ack(items)
    return got


async def test_receives_and_acks(broker: Broker) -> None:
    src = MqttSource(MqttSettings(port=broker.port, client_id="agent-1", topics=("t/#",)))
    src.start(asyncio.get_running_loop(), asyncio.Event())
    assert src.wait_connected(5)
    publish(broker.port, "t/a", [str(i).encode() for i in range(500)])
    got = await collect(src, 500, 10, ack=True)
    assert sorted(int(p) for p in got) == list(range(500))
    assert src.acked == 500
    src.stop()


async def test_unacked_messages_are_redelivered_after_restart(broker: Broker) -> None:
    settings = MqttSettings(port=broker.port, client_id="agent-2", topics=("t/#",))
    src = MqttSource(settings)
    src.start(asyncio.get_running_loop(), asyncio.Event())
    assert src.wait_connected(5)
    publish(broker.port, "t/a", [str(i).encode() for i in range(50)])
    got = await collect(src, 50, 10, ack=False)  # received, never committed, never acked
    assert len(got) == 50
    src.stop()

    src2 = MqttSource(settings)
    src2.start(asyncio.get_running_loop(), asyncio.Event())
    assert src2.wait_connected(5)
    again = await collect(src2, 50, 10, ack=True)
    assert sorted(int(p) for p in again) == list(range(50))
    src2.stop()

    # all acknowledged now: a third session receives nothing
    src3 = MqttSource(settings)
    src3.start(asyncio.get_running_loop(), asyncio.Event())
    assert src3.wait_connected(5)
    assert await collect(src3, 1, 1.5, ack=True) == []
    src3.stop()


async def test_messages_published_while_away_are_queued(broker: Broker) -> None:
    settings = MqttSettings(port=broker.port, client_id="agent-3", topics=("t/#",))
    src = MqttSource(settings)
    src.start(asyncio.get_running_loop(), asyncio.Event())
    assert src.wait_connected(5)
    src.stop()
    publish(broker.port, "t/b", [b"%d" % i for i in range(100)])
    src2 = MqttSource(settings)
    src2.start(asyncio.get_running_loop(), asyncio.Event())
    got = await collect(src2, 100, 10, ack=True)
    assert len(got) == 100
    src2.stop()


def test_invalid_topic_filter_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="invalid topic filter"):
        MqttSettings(topics=("a/#/b",))

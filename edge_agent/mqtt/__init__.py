"""MQTT adapter: the only place that imports paho. Converts paho messages to :class:`Message` at once."""

from edge_agent.mqtt.source import MqttSettings, MqttSource, ReceivedMessage

__all__ = ["MqttSettings", "MqttSource", "ReceivedMessage"]

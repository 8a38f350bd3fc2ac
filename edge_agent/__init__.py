"""Edge agent: the data path on a campus gateway, usable and testable without the daemon.

MQTT source → profile decoding and validation → durable SQLite buffer → numpy reduction → outbox →
batched upload. The daemon in ``gateway/`` wires these together from configuration.
"""

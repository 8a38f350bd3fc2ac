"""The pure decoder: ``decode(message, profiles, now_ms=...) -> DecodeResult``; never raises.

Format parsers (JSON, msgpack, SenML, InfluxDB line protocol, CSV, raw, binary layouts) are exposed
for tools and tests; the daemon only needs :func:`decode`.
"""

from edge_agent.decode.core import decode
from edge_agent.decode.formats import decode_layout, parse_csv, parse_json, parse_msgpack, parse_raw
from edge_agent.decode.influx import parse_influx
from edge_agent.decode.senml import parse_senml
from edge_agent.decode.stamps import ReceiveStamps
from edge_agent.decode.timestamps import parse_iso, to_epoch_ms

__all__ = [
    "ReceiveStamps",
    "decode",
    "decode_layout",
    "parse_csv",
    "parse_influx",
    "parse_iso",
    "parse_json",
    "parse_msgpack",
    "parse_raw",
    "parse_senml",
    "to_epoch_ms",
]

"""``campus-edge decode``: decode one message with the device profiles and print the result as JSON.

The output is exactly one JSON object::

    {"profile": {"id": .., "version": ..} | null, "device": str | null,
     "readings": [{"metric", "ts", "value", "unit", "quality"}],
     "events": [{"kind", "device", "ts", "attrs", "quality"}],
     "waveforms": [{"metric", "device", "ts", "sample_rate_hz", "samples", "unit"}],
     "quarantine": null | {"reason", "detail"}}

``ts`` is an ISO 8601 UTC string with milliseconds (``2024-03-01T08:00:00.123Z``); ``quality`` is the
list of quality flag names (``[]`` when OK). Exit 0 whenever decoding ran (even when the message is
quarantined), 2 when the profiles, device map, key file or arguments are unusable.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from edge_agent.decode import decode, parse_iso
from edge_agent.errors import EdgeAgentError
from edge_agent.model import DecodeResult, Message, Quality
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet

_FLAGS = [f for f in Quality if f.value]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="decode one MQTT message with the device profiles and print the result as JSON",
        description="Decode one message as the edge agent would and print one JSON object: the chosen "
        "profile, device, readings (ts in ISO 8601 UTC), events, waveforms, or the quarantine "
        "reason and detail. Use it to debug a new profile.",
    )
    p.add_argument("--topic", required=True, help="the MQTT topic")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--payload", help="the payload as text (UTF-8)")
    src.add_argument("--payload-file", metavar="FILE", help="read the payload bytes from FILE ('-' = stdin)")
    src.add_argument("--payload-hex", metavar="HEX", help="the payload as hex bytes (binary formats)")
    p.add_argument(
        "--profiles",
        default="device_profiles",
        metavar="DIR",
        help="profile root holding metrics.yaml (default: device_profiles)",
    )
    p.add_argument("--device-map", metavar="FILE", help="YAML/JSON mapping of device id -> profile id")
    p.add_argument(
        "--timezone", default="UTC", help="gateway time zone for ISO times without offset (default UTC)"
    )
    p.add_argument("--now", metavar="TIME", help="gateway clock: ISO 8601 or epoch ms (default: now)")
    p.add_argument(
        "--max-skew-ms",
        type=int,
        default=300_000,
        metavar="MS",
        help="device clock tolerance before receive time is used (default 300000)",
    )
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="pseudonymisation key file (hash-protected fields are dropped without one)",
    )
    p.set_defaults(func=run)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _flags(q: int) -> list[str]:
    return [str(f.name).lower() for f in _FLAGS if q & f.value]


def result_json(r: DecodeResult) -> dict[str, Any]:
    """The CLI's JSON rendering of a decode result."""
    return {
        "profile": {"id": r.profile.id, "version": r.profile.version} if r.profile else None,
        "device": r.device,
        "readings": [
            {
                "metric": x.metric,
                "ts": _iso(x.ts_ms),
                "value": x.value,
                "unit": x.unit,
                "quality": _flags(x.quality),
            }
            for x in r.readings
        ],
        "events": [
            {
                "kind": e.kind,
                "device": e.device,
                "ts": _iso(e.ts_ms),
                "attrs": e.attr_dict(),
                "quality": _flags(e.quality),
            }
            for e in r.events
        ],
        "waveforms": [
            {
                "metric": w.metric,
                "device": w.device,
                "ts": _iso(w.ts_ms),
                "sample_rate_hz": w.sample_rate_hz,
                "samples": len(w.samples),
                "unit": w.unit,
            }
            for w in r.waveforms
        ],
        "quarantine": {"reason": str(r.quarantine.reason), "detail": r.quarantine.detail}
        if r.quarantine
        else None,
    }


def _fail(text: str) -> int:
    sys.stderr.write(f"campus-edge decode: {text}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    if args.payload is not None:
        payload = args.payload.encode("utf-8")
    elif args.payload_hex is not None:
        try:
            payload = bytes.fromhex(args.payload_hex)
        except ValueError:
            return _fail("--payload-hex is not valid hex")
    else:
        try:
            payload = (
                sys.stdin.buffer.read() if args.payload_file == "-" else Path(args.payload_file).read_bytes()
            )
        except OSError as exc:
            return _fail(f"cannot read {args.payload_file}: {exc.strerror or exc}")
    now_ms = int(time.time() * 1000)
    if args.now:
        try:
            now_ms = int(args.now) if args.now.lstrip("-").isdigit() else parse_iso(args.now, None)
        except ValueError as exc:
            return _fail(f"--now: {exc}")
    device_map: dict[str, str] = {}
    if args.device_map:
        try:
            raw = yaml.safe_load(Path(args.device_map).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            return _fail(f"cannot read the device map {args.device_map}: {exc}")
        if isinstance(raw, dict) and isinstance(raw.get("device_map"), dict):
            raw = raw["device_map"]
        if not isinstance(raw, dict):
            return _fail(f"{args.device_map}: expected a mapping of device id -> profile id")
        device_map = {str(k): str(v) for k, v in raw.items()}
    try:
        profiles = ProfileSet.load(args.profiles, device_map=device_map, timezone=args.timezone)
        pseudo = Pseudonymizer.from_file(args.key_file) if args.key_file else None
    except EdgeAgentError as exc:
        return _fail(str(exc))
    result = decode(
        Message(args.topic, payload, now_ms),
        profiles,
        now_ms=now_ms,
        max_skew_ms=args.max_skew_ms,
        pseudonymizer=pseudo,
    )
    sys.stdout.write(orjson.dumps(result_json(result), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0

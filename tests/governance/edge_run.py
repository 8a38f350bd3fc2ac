"""A small simulated campus run through the real edge decoder into a real warehouse.

Messages as the devices publish them (esp-rfid card swipes with raw card numbers and holder names, Aqara
climate sensors over Zigbee2MQTT) are decoded with the shipped profiles and a campus pseudonymisation key,
packed into wire batches (encode → decode, as the API receives them), landed in ODS and transformed.
The raw identifiers are returned so a test can prove none of them reached the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from edge_agent.decode import decode
from edge_agent.model import Event, Message, Reading
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet, load_directory
from edge_agent.wire import Batch, encode, factorize
from edge_agent.wire import decode as wire_decode

ROOT = Path(__file__).resolve().parents[2]
KEY_TEXT = "p1 " + "5a" * 32
T0_MS = 1_725_238_800_000  # 2024-09-02T01:00:00Z = 09:00 in Hangzhou
NAMES = ("Zhang Wei", "Li Na", "Wang Fang", "Liu Yang", "Chen Jie", "Zhao Lei")


@dataclass(slots=True, frozen=True)
class RunResult:
    cards: tuple[str, ...]  # raw card UIDs as the readers published them
    names: tuple[str, ...]  # card holders' names as published
    batches: tuple[tuple[str, int, int], ...]  # (gateway, seq, received_ms) landed


def profiles() -> ProfileSet:
    report = load_directory(ROOT / "device_profiles")
    assert report.registry is not None
    return ProfileSet(report.profiles, report.registry)


def messages(seed: int = 3) -> tuple[list[Message], list[str]]:
    rng = random.Random(seed)
    cards = [f"{rng.getrandbits(40):010X}" for _ in range(12)]
    out: list[Message] = []
    for i in range(60):
        ts = T0_MS + i * 30_000
        card = cards[i % len(cards)]
        swipe = {"type": "access", "time": ts // 1000, "isKnown": "true", "access": "Admin" if i % 7 else "Denied",
                 "username": NAMES[i % len(NAMES)], "uid": card, "hostname": "rfid-t1"}
        out.append(Message("esp-rfid/send", json.dumps(swipe).encode(), ts + 40))
        climate = {"temperature": round(24 + (i % 10) * 0.1, 2), "humidity": 55.0 + i % 3, "pressure": 1008.2,
                   "battery": 91, "voltage": 3005, "linkquality": 120}
        out.append(Message("zigbee2mqtt/aq-t101", json.dumps(climate).encode(), ts + 15))
    return out, cards


def make_batch(gateway: str, seq: int, readings: list[Reading], events: list[Event], created_ms: int) -> Batch:
    devices, dev = factorize(r.device for r in readings)
    metrics, met = factorize(r.metric for r in readings)
    units, uni = factorize(r.unit for r in readings)
    profs, pro = factorize(str(r.profile) for r in readings)
    return Batch.from_columns(
        gateway, seq, created_ms, devices=devices, metrics=metrics, units=units, profiles=profs, device=dev,
        metric=met, unit=uni, profile=pro, ts_ms=[r.ts_ms for r in readings], value=[r.value for r in readings],
        quality=[r.quality for r in readings], events=events)


def run(warehouse, gateway: str = "gw-teach", per_batch: int = 40) -> RunResult:  # type: ignore[no-untyped-def]
    """Decode, batch, land and transform; returns the raw identifiers and the batches landed."""
    ps = profiles()
    pz = Pseudonymizer.from_text(KEY_TEXT)
    msgs, cards = messages()
    results = [decode(m, ps, now_ms=m.received_ms, pseudonymizer=pz) for m in msgs]
    assert all(r.quarantine is None for r in results), [r.quarantine for r in results if r.quarantine]
    landed = []
    for seq, start in enumerate(range(0, len(results), per_batch), 1):
        chunk = results[start:start + per_batch]
        readings = [x for r in chunk for x in r.readings]
        events = [x for r in chunk for x in r.events]
        created = max(r.message.received_ms for r in chunk)
        body = encode(make_batch(gateway, seq, readings, events, created))
        received = created + 500
        res = warehouse.land_batch(wire_decode(body), body_checksum=hashlib.sha256(body).hexdigest(),
                                   received_ms=received)
        assert res.status == "stored"
        landed.append((gateway, seq, received))
    warehouse.run_transforms()
    return RunResult(tuple(cards), NAMES, tuple(landed))

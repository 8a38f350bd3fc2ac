"""Campus device simulator (``campus-sim``): realistic traffic in the ecosystems' real MQTT formats.

Library use, no broker needed::

    from gateway.simulator import Simulator, FaultRates
    sim = Simulator.build(300, seed=42, start_ms=1_725_235_200_000, rate=200,
                          faults=FaultRates(gaps=0.01, malformed=0.01))
    for msg in sim.messages(10_000):          # or messages(until_ms=...)
        msg.topic, msg.payload, msg.expected  # expected: Truth / EventTruth / WaveTruth
        msg.fault, msg.detail                 # None for a good message
    sim.summary(); sim.ledger                 # counts; every fault, gap and rollover

Modules: :mod:`.campus` (buildings, rooms, timetables), :mod:`.physics` (weather, CO2, energy, water,
people, vibration), :mod:`.devices` and :mod:`.sensing` (what each device measures),
:mod:`.formats` and :mod:`.lorawan` (topics and payloads), :mod:`.catalog` (device types and their
profiles), :mod:`.faults`, :mod:`.simulator`, :mod:`.publisher` (paho-mqtt QoS 1), :mod:`.runner`,
:mod:`.ledger`, :mod:`.cli`. See docs/simulator.md.
"""

from gateway.simulator.campus import Campus, Room, RoomType, build_campus
from gateway.simulator.faults import FAULT_KINDS, FaultRates, FaultRecord, FaultSpecError
from gateway.simulator.model import EventTruth, SimMessage, Truth, WaveTruth
from gateway.simulator.publisher import Publisher, PublishError, PublisherSettings
from gateway.simulator.simulator import Simulator

__all__ = [
    "FAULT_KINDS",
    "Campus",
    "EventTruth",
    "FaultRates",
    "FaultRecord",
    "FaultSpecError",
    "PublishError",
    "Publisher",
    "PublisherSettings",
    "Room",
    "RoomType",
    "SimMessage",
    "Simulator",
    "Truth",
    "WaveTruth",
    "build_campus",
]

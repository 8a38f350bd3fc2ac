"""The simulator: a campus, its fleet and a fault injector, producing messages in time order.

``Simulator.messages(n=None, until_ms=None)`` yields :class:`SimMessage` objects (topic, payload
bytes, expected readings/events, fault tag) in simulated-time order. It is deterministic for a seed
and needs no broker: tests and benchmarks use it directly; ``campus-sim`` publishes what it yields.
Successive calls continue where the previous one stopped.

Per scheduled message: if the device is in a gap, the message is sensed (registers keep counting)
but not sent; otherwise a fault may be drawn (:mod:`.faults`), the device senses its room, a spike
or out-of-range value may replace one value, the renderer builds topic and payload at the device's
clock (hours off for a skew fault), a malformed fault corrupts the payload, and a duplicate fault
sends the message twice.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gateway.simulator import catalog
from gateway.simulator.campus import Campus, build_campus
from gateway.simulator.catalog import DeviceType
from gateway.simulator.devices import Device, reset_counters
from gateway.simulator.faults import FaultInjector, FaultRates, FaultRecord
from gateway.simulator.fleet import ROOMS_PER_DEVICE, assign_intervals, build_fleet, next_swipe, rooms_for
from gateway.simulator.limits import Limits
from gateway.simulator.model import SimMessage, Truth
from gateway.simulator.physics import RoomModel
from gateway.simulator.render import Ctx
from gateway.simulator.sensing import CardPopulation, sense

_LOGGER = logging.getLogger(__name__)

DEFAULT_PROFILES = Path(__file__).resolve().parents[2] / "device_profiles"
CARDS_PER_ROOM = 30  # synthetic card holders per room of the campus


class Simulator:
    """Generates campus traffic. Build with :meth:`build`, or from a campus (and optionally its devices).

    ``start_ms`` is the simulated clock's start (epoch ms); ``time_scale`` simulated seconds pass per
    real second; ``rate`` is the total messages per real second the devices' intervals are sized for;
    ``wall_stamps`` stamps messages with the real send time instead of simulated time.
    """

    def __init__(
        self,
        campus: Campus,
        devices: Sequence[Device] | None = None,
        *,
        seed: int = 0,
        faults: FaultRates | None = None,
        start_ms: int,
        rate: float = 200.0,
        time_scale: float = 1.0,
        limits: Limits | None = None,
        wall_stamps: bool = False,
    ) -> None:
        self.campus = campus
        if devices is None:  # about three devices per room, every type
            devices = build_fleet(campus, catalog.TYPES, max(1, round(len(campus.rooms) / ROOMS_PER_DEVICE)), seed)
        self.devices = list(devices)
        self.seed = seed
        self.rates = faults or FaultRates()
        self.start_ms = start_ms
        self.rate = rate
        self.time_scale = time_scale
        self.wall_stamps = wall_stamps  # stamp messages with send time, not simulated time (live demos)
        self.types: dict[str, DeviceType] = {t.name: t for t in catalog.TYPES}
        self.limits = limits or Limits.load(DEFAULT_PROFILES)
        self.injector = FaultInjector(self.rates, seed)
        self.k = assign_intervals(self.devices, self.types, campus, rate, time_scale)
        self.rooms = {r.id: RoomModel(campus, r, start_ms) for r in campus.rooms}
        self.cards = CardPopulation(seed, max(200, CARDS_PER_ROOM * len(campus.rooms)))
        self.ledger: list[FaultRecord] = []  # faults, gaps and counter rollovers, in order
        self.scheduled = 0  # messages devices meant to send (before gaps)
        self.seq = 0  # messages yielded
        self.by_type: Counter[str] = Counter()
        self.by_ecosystem: Counter[str] = Counter()
        self.by_profile: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.suppressed = 0
        self.rollovers = 0
        self.now_ms = start_ms
        self._counts: dict[str, int] = {}
        self._heap: list[tuple[int, int]] = []
        self._pending: deque[SimMessage] = deque()
        self._buildings: dict[str, list[RoomModel]] = {}
        for i, d in enumerate(self.devices):
            first = start_ms + int(d.rng.random() * d.interval_s * 1000)
            d.state["ideal_ms"] = float(first)
            self._push(i, max(start_ms, self._first_time(d, first, start_ms)))

    @classmethod
    def build(
        cls,
        devices: int = 300,
        *,
        seed: int = 0,
        mix: str = "all",
        faults: FaultRates | str | None = None,
        start_ms: int,
        rate: float = 200.0,
        time_scale: float = 1.0,
        profiles_dir: Path | None = None,
        wall_stamps: bool = False,
    ) -> Simulator:
        """A campus sized for ``devices`` devices of the ``mix`` (see :func:`catalog.select`)."""
        types = catalog.select(mix)
        campus = build_campus(rooms_for(devices), seed=seed)
        fleet = build_fleet(campus, types, devices, seed)
        rates = FaultRates.parse(faults) if isinstance(faults, str) else faults
        limits = Limits.load(profiles_dir or DEFAULT_PROFILES)
        return cls(campus, fleet, seed=seed, faults=rates, start_ms=start_ms, rate=rate, time_scale=time_scale,
                   limits=limits, wall_stamps=wall_stamps)

    # ----------------------------------------------------------------------------- scheduling
    def _push(self, i: int, t: int) -> None:
        heapq.heappush(self._heap, (t, i))

    def _first_time(self, d: Device, t: int, after: int) -> int:
        dtype = self.types[d.type_name]
        if dtype.event_driven:
            d.state["next_hb"] = self._quantise(dtype, t)
            return self._next_event(d, after)
        return self._quantise(dtype, t)

    @staticmethod
    def _quantise(dtype: DeviceType, t: int) -> int:
        r = dtype.resolution_ms
        return (t + r // 2) // r * r

    def _next_event(self, d: Device, after: int) -> int:
        """Card readers: the next swipe before the next heartbeat, else the heartbeat."""
        hb = d.state["next_hb"]
        swipe = next_swipe(d, self.campus, after, hb)
        d.state["swipe_now"] = swipe is not None
        return swipe if swipe is not None else hb

    def _schedule_next(self, i: int, d: Device, t: int) -> None:
        dtype = self.types[d.type_name]
        if dtype.event_driven:
            if not d.state["swipe_now"]:
                d.state["next_hb"] = t + max(1000, self._quantise(dtype, round(d.state["heartbeat_s"] * 1000)))
            self._push(i, self._next_event(d, t))
            return
        # keep the unrounded schedule: rounding each step to the format's resolution would bias the rate
        ideal = d.state.get("ideal_ms", float(t)) + d.interval_s * 1000 * (0.97 + 0.06 * d.rng.random())
        d.state["ideal_ms"] = ideal
        self._push(i, max(t + dtype.resolution_ms, self._quantise(dtype, round(ideal))))

    # -------------------------------------------------------------------------------- messages
    def messages(self, n: int | None = None, until_ms: int | None = None) -> Iterator[SimMessage]:
        """Yield up to ``n`` messages, or those scheduled before ``until_ms`` (at least one limit)."""
        if n is None and until_ms is None:
            raise ValueError("messages(): give n, until_ms or both")
        produced = 0
        while n is None or produced < n:
            if self._pending:  # the second copy of a duplicate left over from the previous call
                yield self._pending.popleft()
                produced += 1
                continue
            if not self._heap:
                return
            t, i = self._heap[0]
            if until_ms is not None and t >= until_ms:
                return
            heapq.heappop(self._heap)
            d = self.devices[i]
            self._pending.extend(self._step(d, t, bool(d.state.get("swipe_now"))))
            self._schedule_next(i, d, t)

    def _step(self, d: Device, t: int, swipe: bool) -> list[SimMessage]:
        dtype = self.types[d.type_name]
        self.now_ms = t
        self.scheduled += 1
        count = self._counts.get(d.id, 0)
        self._counts[d.id] = count + 1
        if swipe:
            d.state["card"] = self.cards.pick(d.rng)
        inj = self.injector
        if inj.in_gap(d.id):
            self._sense(d, t, dtype)
            self.suppressed += 1
            return []
        kind = inj.choose(self._applicable(dtype, swipe)) if inj.enabled else None
        if kind == "gaps":
            length = inj.start_gap(d.id)
            self._sense(d, t, dtype)
            self.suppressed += 1
            self._fault("gaps", d, self._stamp(dtype, t), None, f"silent for {length} messages")
            return []
        if kind == "resets":
            reset_counters(d)
        values = self._sense(d, t, dtype)
        detail = ""
        if kind in ("spikes", "out_of_range"):
            detail = self._corrupt_value(kind, dtype, values) or ""
            if not detail:
                inj.owe(kind)
                kind = None
        skew = inj.skew_ms() if kind == "skew" else 0
        stamp = self._stamp(dtype, t)
        ctx = Ctx(ts_ms=stamp, clock_ms=stamp + skew, tz_offset_s=self.campus.tz_offset_s, count=count)
        rendered = dtype.render(d, values, ctx)
        topic, payload, expected = rendered.topic, rendered.payload, rendered.expected
        if kind == "skew" and not rendered.has_clock:  # e.g. a Shelly status topic: no time to be wrong
            inj.owe("skew")
            kind = None
        elif kind == "skew":
            detail = f"clock offset {skew:+d} ms"
        elif kind == "resets":
            detail = "counters restarted from zero"
        elif kind == "malformed":
            variant = inj.malformed_variant(True)
            metrics = [e.metric for e in expected if isinstance(e, Truth)]
            if variant == "wrong_type" and metrics:
                metric = inj.rng.choice(metrics)
                bad = self._bad_value(rendered.json_like, inj)
                ctx.bad = {metric: bad}
                payload = dtype.render(d, values, ctx).payload
                detail = f"wrong_type: {metric} = {bad!r}"
            elif variant == "truncated" and rendered.json_like:
                payload = inj.truncate(payload)
                detail = f"truncated to {len(payload)} of {len(rendered.payload)} bytes"
            else:
                payload = inj.garbage(len(rendered.payload))
                detail = f"garbage ({len(payload)} bytes)"
            expected = ()
        out = [self._message(d, dtype, stamp, topic, payload, expected, kind if kind != "duplicates" else None,
                             detail)]
        if kind == "duplicates":
            out.append(self._message(d, dtype, stamp, topic, payload, expected, "duplicates",
                                     f"copy of seq {out[0].seq}"))
        return out

    def _stamp(self, dtype: DeviceType, t: int) -> int:
        """The time a message carries: simulated time, or with ``wall_stamps`` the real time it is sent."""
        if not self.wall_stamps:
            return t
        real = self.start_ms + (t - self.start_ms) / self.time_scale
        return int(real) // dtype.resolution_ms * dtype.resolution_ms

    def _applicable(self, dtype: DeviceType, swipe: bool) -> tuple[str, ...]:
        kinds = ["gaps", "duplicates", "malformed"]
        if dtype.clock:
            kinds.append("skew")
        if dtype.counters and not swipe:  # a swipe message shows no counter: reset at a heartbeat
            kinds.append("resets")
        if dtype.spikes and not swipe:
            kinds.append("spikes")
        if dtype.out_of_range and not swipe and any(self.limits.get(dtype.profile, m) for m in dtype.out_of_range):
            kinds.append("out_of_range")
        return tuple(kinds)

    def _sense(self, d: Device, t: int, dtype: DeviceType) -> dict[str, Any]:
        building = self._building(d.room.building) if dtype.sensing == "building_meter" else ()
        values, wrapped = sense(d, self.campus, self.rooms[d.room.id], t, dtype.sensing, building)
        for name in wrapped:
            self.rollovers += 1
            self.ledger.append(FaultRecord("rollover", d.id, self._stamp(dtype, t), None, f"register {name} wrapped"))
        return values

    def _building(self, name: str) -> list[RoomModel]:
        if name not in self._buildings:
            self._buildings[name] = [self.rooms[r.id] for r in self.campus.rooms if r.building == name]
        return self._buildings[name]

    def _corrupt_value(self, kind: str, dtype: DeviceType, values: dict[str, Any]) -> str | None:
        inj = self.injector
        if kind == "spikes":
            metric = inj.rng.choice(dtype.spikes)
            new = self.limits.spike(dtype.profile, metric, values[metric], inj.rng)
        else:
            options = [m for m in dtype.out_of_range if self.limits.get(dtype.profile, m)]
            metric = inj.rng.choice(options)
            new = self.limits.outside(dtype.profile, metric, dtype.out_of_range[metric])
        if new is None:
            return None
        old = values[metric]
        values[metric] = new
        return f"{metric}: {old:.6g} -> {new:.6g}"

    @staticmethod
    def _bad_value(json_like: bool, inj: FaultInjector) -> Any:
        if not json_like:
            return "error"
        return inj.rng.choice(["error", "n/a", [1, 2], {"value": 1}, "NaN°C"])

    def _message(self, d: Device, dtype: DeviceType, t: int, topic: str, payload: bytes,
                 expected: tuple[Any, ...], fault: str | None, detail: str) -> SimMessage:
        msg = SimMessage(self.seq, topic, payload, expected, d.id, dtype.name, dtype.ecosystem, dtype.profile, t,
                         fault, detail)
        self.seq += 1
        self.by_type[dtype.name] += 1
        self.by_ecosystem[dtype.ecosystem] += 1
        self.by_profile[dtype.profile] += 1
        if fault is not None:
            self._fault(fault, d, t, msg.seq, detail)
        return msg

    def _fault(self, kind: str, d: Device, t: int, seq: int | None, detail: str) -> None:
        self.faults[kind] += 1
        self.ledger.append(FaultRecord(kind, d.id, t, seq, detail))

    # --------------------------------------------------------------------------------- summary
    def summary(self) -> dict[str, Any]:
        """Counts so far: messages by ecosystem, type and profile; faults by kind; rates."""
        return {
            "messages": self.seq,
            "scheduled": self.scheduled,
            "suppressed_by_gaps": self.suppressed,
            "devices": len(self.devices),
            "rooms": len(self.campus.rooms),
            "simulated_from_ms": self.start_ms,
            "simulated_to_ms": self.now_ms,
            "time_scale": self.time_scale,
            "timestamps": "wall" if self.wall_stamps else "simulated",
            "by_ecosystem": dict(sorted(self.by_ecosystem.items())),
            "by_type": dict(sorted(self.by_type.items())),
            "by_profile": dict(sorted(self.by_profile.items())),
            "faults": {k: self.faults.get(k, 0) for k in self.rates.as_dict()},
            "fault_rates_requested": self.rates.as_dict(),
            "counter_rollovers": self.rollovers,
        }

"""The simulator and the shipped profiles agree: every simulated message decodes to the simulated truth.

This is the contract test between ``gateway/simulator`` and ``device_profiles`` + ``edge_agent.decode``:
good messages decode with no quarantine, with the profile they are meant for, the device id, every
expected metric and nothing else, values equal after unit conversion, timestamps equal; faulty
messages decode the way their fault says (flagged, quarantined, receive time).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from edge_agent.decode import decode
from edge_agent.model import DecodeResult, Message, Quality, Reason
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet
from gateway.simulator import EventTruth, FaultRates, SimMessage, Simulator, Truth, WaveTruth
from gateway.simulator.catalog import TYPES

START = 1_725_235_200_000  # 2024-09-02 08:00 +08:00, a Monday morning
PSEUDO = Pseudonymizer({"k1": b"campus-test-key-" * 2}, "k1")
ALL_FAULTS = FaultRates(gaps=0.01, spikes=0.02, out_of_range=0.02, duplicates=0.02, skew=0.02, malformed=0.04,
                        resets=0.01)


@pytest.fixture(scope="module")
def profiles(profiles_dir: Path) -> ProfileSet:
    return ProfileSet.load(profiles_dir, timezone="Asia/Shanghai")  # the campus's local time (Tasmota 'Time')


def _decode(m: SimMessage, profiles: ProfileSet) -> DecodeResult:
    # the gateway receives the message when it is sent: receive time = gateway clock = send time
    return decode(Message(m.topic, m.payload, m.ts_ms), profiles, now_ms=m.ts_ms,
                  pseudonymizer=PSEUDO)


def _problems(m: SimMessage, r: DecodeResult, profiles: ProfileSet) -> list[str]:
    """Every way the decoded result differs from what the message should decode to."""
    if r.quarantine is not None:
        return [f"quarantined {r.quarantine.reason}: {r.quarantine.detail}"]
    out = []
    if r.profile is None or r.profile.id != m.profile:
        out.append(f"profile {r.profile} instead of {m.profile}")
    exp = {e.metric: e for e in m.expected if isinstance(e, Truth)}
    got = {x.metric: x for x in r.readings}
    if set(got) != set(exp):
        out.append(f"metrics: unexpected {sorted(set(got) - set(exp))}, missing {sorted(set(exp) - set(got))}")
    for name in set(got) & set(exp):
        g, e = got[name], exp[name]
        if g.device != e.device:
            out.append(f"{name}: device {g.device!r} != {e.device!r}")
        if not math.isclose(g.value, e.value, rel_tol=1e-9, abs_tol=1e-9):
            out.append(f"{name}: value {g.value!r} != {e.value!r}")
        if m.fault == "skew":
            if not g.quality & Quality.CLOCK_SKEW or g.ts_ms != m.ts_ms:
                out.append(f"{name}: skewed clock not flagged (quality {g.quality}, ts {g.ts_ms})")
        elif g.ts_ms != e.ts_ms:
            out.append(f"{name}: ts {g.ts_ms} != {e.ts_ms}")
        oor = bool(g.quality & Quality.OUT_OF_RANGE)
        if oor != (m.fault == "out_of_range" and m.detail.startswith(f"{name}:")):
            out.append(f"{name}: out-of-range flag {oor} on a {m.fault or 'good'} message ({g.value})")
    events = [e for e in m.expected if isinstance(e, EventTruth)]
    if [(e.kind, e.device, e.ts_ms) for e in events] != [(e.kind, e.device, e.ts_ms) for e in r.events]:
        out.append(f"events {r.events} != {events}")
    for e, ge in zip(events, r.events, strict=False):
        attrs = ge.attr_dict()
        want = dict(e.attrs)
        if "user" in attrs or attrs.get("card") == want["card"]:
            out.append("personal data reached the decoded event")
        if (attrs.get("result"), attrs.get("known")) != (want["result"], want["known"]):
            out.append(f"event attributes {attrs} != {want}")
    waves = [e for e in m.expected if isinstance(e, WaveTruth)]
    if len(waves) != len(r.waveforms):
        out.append(f"{len(r.waveforms)} waveforms, expected {len(waves)}")
    for e, gw in zip(waves, r.waveforms, strict=False):
        if gw.sample_rate_hz != e.sample_rate_hz or len(gw.samples) != len(e.samples) or not all(
            math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(gw.samples, e.samples, strict=True)
        ):
            out.append("waveform samples differ")
    return out


def _quarantines_out_of_range(m: SimMessage, profiles: ProfileSet) -> bool:
    p = profiles.get(m.profile)
    assert p is not None
    return any(x.quarantine_out_of_range and m.detail.startswith(f"{x.name}:") for x in p.metrics)


def test_every_good_message_decodes_to_the_simulated_truth(profiles: ProfileSet) -> None:
    # a day per ~10 minutes of a 300-device campus: lessons, breaks, evening, all 25 device types
    sim = Simulator.build(300, seed=7, start_ms=START, rate=200, time_scale=600)
    seen: Counter[str] = Counter()
    bad: dict[str, list[str]] = {}
    readings = 0
    for m in sim.messages(6000):
        r = _decode(m, profiles)
        problems = _problems(m, r, profiles)
        if problems:
            bad.setdefault(m.device_type, [f"{m.topic} {m.payload[:200]!r}", *problems])
        seen[m.device_type] += 1
        readings += len(r.readings)
    assert not bad, bad
    assert set(seen) == {t.name for t in TYPES}, "every device type was simulated"
    assert readings > 6000 * 3


def test_faulty_messages_decode_as_their_fault_says(profiles: ProfileSet) -> None:
    sim = Simulator.build(300, seed=11, start_ms=START, rate=200, time_scale=600, faults=ALL_FAULTS)
    by_fault: Counter[str] = Counter()
    bad: list[str] = []
    for m in sim.messages(8000):
        r = _decode(m, profiles)
        by_fault[m.fault or "none"] += 1
        if m.fault == "malformed":
            if r.quarantine is None:
                bad.append(f"malformed ({m.detail}) not quarantined: {m.topic} {m.payload[:120]!r}")
            elif r.quarantine.reason not in (Reason.MALFORMED, Reason.WRONG_TYPE, Reason.NO_PROFILE):
                bad.append(f"malformed ({m.detail}) quarantined as {r.quarantine.reason}: {r.quarantine.detail}")
            continue
        if m.fault == "out_of_range" and _quarantines_out_of_range(m, profiles):
            if r.quarantine is None or r.quarantine.reason != Reason.OUT_OF_RANGE:
                bad.append(f"out of range on a quarantining metric not quarantined: {m.detail}")
            continue
        bad += [f"{m.fault}: {m.device_type}: {p}" for p in _problems(m, r, profiles)]
    assert not bad, bad[:10]
    for kind in ("spikes", "out_of_range", "duplicates", "skew", "malformed", "resets"):
        assert by_fault[kind] > 20, (kind, by_fault)


def test_malformed_variants_all_occur_and_are_quarantined(profiles: ProfileSet) -> None:
    sim = Simulator.build(200, seed=3, start_ms=START, rate=200, faults=FaultRates(malformed=0.3))
    variants: Counter[str] = Counter()
    for m in sim.messages(1500):
        if m.fault == "malformed":
            variants[m.detail.split(" ")[0].rstrip(":")] += 1
            assert _decode(m, profiles).quarantine is not None, (m.detail, m.payload[:200])
    assert set(variants) == {"truncated", "garbage", "wrong_type"}, variants


def test_wall_stamps_follow_real_time_and_still_decode(profiles: ProfileSet) -> None:
    # a live demo: simulated time runs 600x, but messages carry the real time they are sent at
    sim = Simulator.build(150, seed=5, start_ms=START, rate=100, time_scale=600, wall_stamps=True)
    msgs = list(sim.messages(1500))
    assert msgs[0].ts_ms >= START
    assert msgs[-1].ts_ms < START + 30_000  # ~15 s of real time at 100 msg/s
    assert sim.now_ms > START + 2 * 3_600_000  # while the campus lived through hours
    bad = [(m.device_type, p) for m in msgs for p in _problems(m, _decode(m, profiles), profiles)]
    assert not bad, bad[:5]

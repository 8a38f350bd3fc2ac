"""Wire format: round trips against a plain-Python reference, builders, layout details."""

from __future__ import annotations

import math
import struct

import msgpack
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent import wire
from edge_agent.errors import WireError
from edge_agent.model import Event, ProfileRef, Reading

P1 = ProfileRef("zigbee2mqtt_air", 3)
P2 = ProfileRef("tasmota@plug", 12)  # '@' inside an id is fine: the version is after the last one


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def key(r: Reading) -> tuple[str, str, str, str, int]:
    return (r.device, r.metric, r.unit, str(r.profile), r.ts_ms)


def check_readings(original: list[Reading], decoded: list[Reading], precision: dict[str, float]) -> None:
    """Plain-Python reference: same records; quantised values within precision/2, others bit-exact."""
    assert len(decoded) == len(original)
    by_key = {key(r): r for r in original}
    assert len(by_key) == len(original), "the strategies generate unique (series, ts)"
    for d in decoded:
        o = by_key.pop(key(d))
        assert (d.quality, d.profile, d.priority) == (o.quality, o.profile, o.priority)
        p = precision.get(o.metric, 0.0)
        if bits(d.value) == bits(o.value):
            continue
        # Only a finite value of a series with a declared precision may change, and by at most p/2.
        assert p > 0, (o, d)
        assert math.isfinite(o.value), (o, d)
        assert abs(d.value - o.value) <= p / 2 * (1 + 1e-9) + abs(o.value) * 1e-15, (o, d, p)
    assert not by_key


def check_events(original: list[Event], decoded: list[Event]) -> None:
    assert decoded == sorted(original, key=lambda e: e.ts_ms)  # stable sort by time


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
values = st.one_of(
    finite,
    st.integers(-10**6, 10**6).map(lambda i: i / 10),  # decimal data: sent losslessly as integers
    st.integers(-10**9, 10**9).map(float),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, -1e-300, 2.0**60, 5e-324]),
)
names = st.sampled_from(["dev-a", "dev-b", "校园/楼1/教室2", ""])
metrics = st.sampled_from(["temperature", "co2", "power", "count"])
precisions = st.dictionaries(metrics, st.sampled_from([0.0, 0.1, 0.5, 1.0, 0.01, 0.25, 1e-3, 7.0, 1e-12]))


@st.composite
def reading_lists(draw: st.DrawFn) -> list[Reading]:
    n = draw(st.integers(0, 40))
    out: dict[tuple[str, str, str, str, int], Reading] = {}
    for _ in range(n):
        r = Reading(draw(names), draw(metrics),
                    draw(st.one_of(st.integers(0, 2**53 - 1),
                                   st.integers(1_700_000_000_000, 1_700_000_100_000))),
                    draw(values), draw(st.sampled_from(["Cel", "ppm", "W"])), draw(st.sampled_from([P1, P2])),
                    draw(st.integers(0, 65535)))
        out[key(r)] = r
    return list(out.values())


attr_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), finite,
                        st.text(max_size=20))
events = st.builds(
    Event, device=names, kind=st.sampled_from(["card_swipe", "door_open", "alarm"]),
    ts_ms=st.integers(0, 2**53 - 1), profile=st.sampled_from([P1, P2]),
    attrs=st.dictionaries(st.text(max_size=8), attr_values, max_size=4).map(lambda d: tuple(d.items())),
    quality=st.integers(0, 65535),
)


@settings(max_examples=300, deadline=None)
@given(readings=reading_lists(), evs=st.lists(events, max_size=6), precision=precisions,
       seq=st.integers(0, 2**63 - 1))
def test_round_trip_matches_reference(readings: list[Reading], evs: list[Event], precision: dict[str, float],
                                      seq: int) -> None:
    batch = wire.build_batch("gw-1", seq, 1_700_000_000_000, readings, evs, precision)
    body = wire.encode(batch)
    out = wire.decode(body)
    assert (out.gateway, out.seq, out.created_ms) == ("gw-1", seq, 1_700_000_000_000)
    assert (out.n_readings, out.n_events) == (len(readings), len(evs))
    check_readings(readings, out.to_readings(), precision)
    check_events(evs, out.to_events())
    assert wire.encode(out) == wire.encode(wire.decode(wire.encode(out)))  # decoded batches are a fixpoint


def test_empty_batch() -> None:
    out = wire.decode(wire.encode(wire.build_batch("gw", 0, 0, [], [])))
    assert (out.n_readings, out.n_events, out.n_series) == (0, 0, 0)
    assert out.to_readings() == []
    assert out.to_events() == []


def test_events_only() -> None:
    evs = [Event("reader-1", "card_swipe", 2000, P1, (("card", "9f3a…"), ("ok", True))),
           Event("reader-2", "door_open", 1000, P2)]
    out = wire.decode(wire.encode(wire.build_batch("gw", 5, 3000, [], evs)))
    assert out.n_readings == 0
    check_events(evs, out.to_events())
    assert out.to_events()[1].attr_dict() == {"card": "9f3a…", "ok": True}


def test_quantised_values_are_the_nearest_decimals() -> None:
    rs = [Reading("d", "t", 1000 * i, 22.0 + 0.1 * i + 0.03, "Cel", P1) for i in range(20)]
    out = wire.decode(wire.encode(wire.build_batch("gw", 1, 0, rs, [], {"t": 0.1})))
    assert [r.value for r in out.to_readings()] == [round(22.0 + 0.1 * i, 1) for i in range(20)]


def test_undeclared_decimal_data_is_lossless_and_small() -> None:
    vals = np.round(230 + np.random.default_rng(0).normal(0, 1.5, 500), 1)
    rs = [Reading("plug", "voltage", 10_000 * i, float(v), "V", P1) for i, v in enumerate(vals)]
    b = wire.build_batch("gw", 1, 0, rs, [])
    body = wire.encode(b)
    assert [r.value for r in wire.decode(body).to_readings()] == vals.tolist()
    assert len(body) < 2.0 * len(rs)  # sent as 0.1-scaled integers, not 8-byte floats


def test_non_finite_values_round_trip_bit_exactly() -> None:
    vals = [1.5, math.nan, math.inf, -math.inf, -0.0, 2.25]
    rs = [Reading("d", "m", i, v, "u", P1) for i, v in enumerate(vals)]
    out = wire.decode(wire.encode(wire.build_batch("gw", 1, 0, rs, [], {"m": 0.1})))
    assert [bits(r.value) for r in out.to_readings()] == [bits(v) for v in vals]


def test_duplicate_timestamps_keep_every_reading() -> None:
    rs = [Reading("d", "m", 5, float(v), "u", P1, quality=q) for v, q in ((3, 1), (1, 2), (2, 3))]
    out = wire.decode(wire.encode(wire.build_batch("gw", 1, 0, rs, [])))
    assert sorted((r.value, r.quality) for r in out.to_readings()) == [(1.0, 2), (2.0, 3), (3.0, 1)]


def test_from_columns_aggregates_and_versions() -> None:
    b = wire.Batch.from_columns(
        "gw", 9, 0, devices=("d1", "d2"), metrics=("temperature",), units=("Cel",), profiles=(str(P1),),
        aggs=("mean", "max"), device=[1, 0, 0, 0], metric=[0, 0, 0, 0], unit=[0] * 4, profile=[0] * 4,
        agg=[0, 0, 1, 0], window_s=[60] * 4, ts_ms=[60_000] * 4, value=[1.25, 2.5, 3.0, 2.75],
        version=[0, 1, 0, 0], precision=[0.01] * 4,
    )
    out = wire.decode(wire.encode(b))
    rows = sorted(zip((out.devices[i] for i in out.s_device[out.r_series]),
                      (out.aggs[i] for i in out.s_agg[out.r_series]), out.r_version.tolist(),
                      out.r_value.tolist(), out.s_window_s[out.r_series].tolist(), strict=True))
    assert rows == [("d1", "max", 0, 3.0, 60), ("d1", "mean", 0, 2.75, 60), ("d1", "mean", 1, 2.5, 60),
                    ("d2", "mean", 0, 1.25, 60)]


def test_from_columns_rejects_bad_columns() -> None:
    common = dict(devices=("d",), metrics=("m",), units=("u",), profiles=(str(P1),), metric=[0], unit=[0],
                  profile=[0], ts_ms=[1], value=[1.0])
    with pytest.raises(WireError, match="device"):
        wire.Batch.from_columns("gw", 1, 0, device=[1], **common)  # type: ignore[arg-type]
    with pytest.raises(WireError, match="precision"):
        wire.Batch.from_columns("gw", 1, 0, device=[0, 0], **{**common, "metric": [0, 0], "unit": [0, 0],
                                "profile": [0, 0], "ts_ms": [1, 2], "value": [1.0, 2.0]},  # type: ignore[arg-type]
                                precision=[0.1, 0.2])


def test_encode_sorts_an_unsorted_batch_and_drops_empty_series() -> None:
    b = wire.build_batch("gw", 1, 0, [Reading("d", "m", t, float(t), "u", P1) for t in (3, 1, 2)], [])
    shuffled = wire.Batch(**{**{f: getattr(b, f) for f in b.__slots__},  # type: ignore[arg-type]
                             "r_ts_ms": b.r_ts_ms[::-1].copy(), "r_value": b.r_value[::-1].copy(),
                             "s_device": np.array([0, 0], np.uint32), "s_metric": np.array([0, 0], np.uint32),
                             "s_unit": np.array([0, 0], np.uint32), "s_profile": np.array([0, 0], np.uint32),
                             "s_agg": np.array([0, 0], np.uint32), "s_window_s": np.array([0, 0], np.uint32),
                             "s_precision": np.array([0.0, 0.0]), "r_series": np.array([1, 1, 1], np.uint32)})
    out = wire.decode(wire.encode(shuffled))
    assert out.n_series == 1
    assert out.r_ts_ms.tolist() == [1, 2, 3]
    assert out.r_value.tolist() == [1.0, 2.0, 3.0]


def test_validate_names_the_field() -> None:
    b = wire.build_batch("gw", 1, 0, [Reading("d", "m", 1, 1.0, "u", P1)], [])
    with pytest.raises(WireError, match="r_ts_ms"):
        wire.Batch(**{**{f: getattr(b, f) for f in b.__slots__},  # type: ignore[arg-type]
                      "r_ts_ms": np.array([-5])}).validate()
    with pytest.raises(WireError, match="gateway"):
        wire.build_batch("", 1, 0, [], []).validate()
    with pytest.raises(WireError, match="attrs"):
        wire.build_batch("gw", 1, 0, [], [Event("d", "k", 1, P1, (("a", 1), ("a", 2)))])
    with pytest.raises(WireError, match=r"e_attrs\[0\]\.x"):
        wire.encode(wire.build_batch("gw", 1, 0, [], [Event("d", "k", 1, P1, (("x", [1]),))]))  # type: ignore[arg-type]


def test_halves_split_records_and_keep_everything() -> None:
    rs = [Reading(f"d{i % 3}", "m", i, float(i), "u", P1) for i in range(11)]
    evs = [Event("r", "k", i, P1) for i in range(4)]
    b = wire.build_batch("gw", 1, 0, rs, evs)
    a, c = b.halves()
    assert (a.n_readings + a.n_events, c.n_readings + c.n_events) == (7, 8)
    got = [wire.decode(wire.encode(x)) for x in (a, c)]
    assert sorted(r.ts_ms for x in got for r in x.to_readings()) == list(range(11))
    assert sorted(e.ts_ms for x in got for e in x.to_events()) == list(range(4))
    with pytest.raises(WireError, match="split"):
        wire.build_batch("gw", 1, 0, rs[:1], []).halves()


def test_layout_header_and_payload_keys() -> None:
    rs = [Reading("d", "m", 1000 + i, 1.0, "u", P1) for i in range(3)]
    body = wire.encode(wire.build_batch("gw-9", 42, 1234, rs, []))
    assert body[:4] == b"CBAT"
    assert body[4] == wire.FORMAT_VERSION
    h = wire.read_header(body)
    assert (h.gateway, h.seq, h.created_ms, h.readings, h.events, h.series) == ("gw-9", 42, 1234, 3, 0, 1)
    payload = zstandard.ZstdDecompressor().decompress(body[h.offset:])
    assert len(payload) == h.payload_len
    p = msgpack.unpackb(payload)
    assert set(p) == wire._PAYLOAD_KEYS
    assert p["s.t0"] == ["u1", b"\x00", 1000]  # frame of reference: base 1000, stored 0
    assert p["r.dt"] == ["u1", b"\x00\x00", 1]  # deltas 1, 1 → base 1, stored 0, 0
    assert p["s.scale"] == ["f8", struct.pack("<d", 1.0)]  # integers detected: lossless scale 1
    assert wire.decode(body).checksum == h.checksum

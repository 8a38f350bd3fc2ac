"""Wire format: every hostile body is refused with a WireError naming the field, and nothing else."""

from __future__ import annotations

import contextlib
import hashlib
import struct
import time
from typing import Any

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent import wire
from edge_agent.errors import WireError
from edge_agent.model import Event, ProfileRef, Reading

P = ProfileRef("p", 1)
READINGS = ([Reading(f"dev-{d}", m, 1_700_000_000_000 + 1000 * i + d, 20 + 0.1 * i + d, "u", P)
             for d in range(3) for m in ("temp", "hum") for i in range(8)]
            + [Reading("plug", "power", 1_700_000_000_000 + 7 * i, 1.0 / (i + 1), "W", P) for i in range(5)])
EVENTS = [Event("reader", "swipe", 1_700_000_000_500 + i, P, (("card", f"c{i}"), ("ok", i % 2 == 0)))
          for i in range(3)]
VALID = wire.encode(wire.build_batch("gw-fuzz", 3, 1_700_000_000_000, READINGS, EVENTS, {"temp": 0.1}))
HEADER = wire.read_header(VALID)
PAYLOAD: dict[str, Any] = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(VALID[HEADER.offset:]))
S = HEADER.series  # 7: 3 devices x 2 metrics + 1 plug


def wrap(payload: bytes, *, header: dict[str, Any] | None = None, version: int = wire.FORMAT_VERSION,
         frame: bytes | None = None) -> bytes:
    """A body around ``payload`` with a correct checksum and length unless ``header`` overrides them."""
    h = {"v": version, "gw": "gw-fuzz", "seq": 3, "created": 0,
         "counts": {"readings": HEADER.readings, "events": HEADER.events, "series": HEADER.series},
         "plen": len(payload), "checksum": hashlib.blake2b(payload, digest_size=16).digest(),
         **(header or {})}
    frame = zstandard.ZstdCompressor().compress(payload) if frame is None else frame
    return wire.MAGIC + bytes([version]) + msgpack.packb(h) + frame


def with_payload(**changes: Any) -> bytes:
    return wrap(msgpack.packb({**PAYLOAD, **changes}))


def refuse(body: bytes, field: str | None = None, kind: type[WireError] = WireError) -> WireError:
    with pytest.raises(kind) as info:
        wire.decode(body)
    if field is not None:
        assert info.value.field == field, info.value
    return info.value


def test_the_fixture_is_valid() -> None:
    assert wire.decode(VALID).n_readings == len(READINGS)
    assert wire.decode(wrap(msgpack.packb(PAYLOAD))).n_events == len(EVENTS)


def test_wrong_magic_and_unsupported_version_are_415_material() -> None:
    err = refuse(b"PK\x03\x04" + VALID[4:], "magic", wire.UnsupportedFormat)
    assert "not a campus batch" in str(err)
    refuse(VALID[:4] + b"\x02" + VALID[5:], "version", wire.UnsupportedFormat)
    refuse(b'{"readings": []}', "magic", wire.UnsupportedFormat)
    refuse(VALID[:3], "magic")  # too short to tell: malformed, not unsupported
    assert not isinstance(refuse(VALID[:3]), wire.UnsupportedFormat)


def test_every_truncation_is_refused() -> None:
    for cut in range(len(VALID)):
        refuse(VALID[:cut])


def test_header_problems() -> None:
    refuse(wrap(msgpack.packb(PAYLOAD), header={"v": 7}), "v")
    refuse(wrap(msgpack.packb(PAYLOAD), header={"seq": -1}), "seq")
    refuse(wrap(msgpack.packb(PAYLOAD), header={"gw": ""}), "gw")
    refuse(wrap(msgpack.packb(PAYLOAD), header={"extra": 1}), "header")
    refuse(wrap(msgpack.packb(PAYLOAD), header={"checksum": b"\0" * 16}), "checksum")
    refuse(wrap(msgpack.packb(PAYLOAD), header={"counts": {"readings": 1, "events": 0}}), "counts")
    refuse(wire.MAGIC + b"\x01" + msgpack.packb({"gw": "x" * 5000}), "header")
    refuse(wire.MAGIC + b"\x01" + msgpack.packb([1, 2, 3]), "header")


def test_bad_checksum() -> None:
    body = bytearray(VALID)
    i = body.find(HEADER.checksum)
    body[i] ^= 0xFF
    refuse(bytes(body), "checksum")


def test_declared_size_over_the_limit_is_refused_before_decompressing() -> None:
    refuse(wrap(msgpack.packb(PAYLOAD), header={"plen": 2**40}), "plen", wire.PayloadTooLarge)
    with pytest.raises(wire.PayloadTooLarge):
        wire.decode(VALID, max_decompressed=HEADER.payload_len - 1)
    assert wire.decode(VALID, max_decompressed=HEADER.payload_len).n_readings == len(READINGS)


def _zero_bomb(size: int) -> bytes:
    cobj = zstandard.ZstdCompressor(level=1).compressobj(size=size)
    chunk = bytes(1 << 20)
    return b"".join([*(cobj.compress(chunk) for _ in range(size >> 20)), cobj.flush()])


def test_zstd_bomb_with_honest_size_is_refused_unread() -> None:
    bomb = _zero_bomb(256 << 20)
    assert len(bomb) < 64_000
    started = time.monotonic()
    refuse(wrap(b"", header={"plen": 256 << 20}, frame=bomb), "plen", wire.PayloadTooLarge)
    assert time.monotonic() - started < 0.5


def test_zstd_bomb_that_lies_about_its_size_stops_at_the_declared_size() -> None:
    bomb = bytearray(_zero_bomb(256 << 20))
    fcs = bytes(bomb[:16]).find(struct.pack("<I", 256 << 20))
    assert fcs > 0
    bomb[fcs:fcs + 4] = struct.pack("<I", 1000)
    assert zstandard.get_frame_parameters(bytes(bomb)).content_size == 1000
    started = time.monotonic()
    refuse(wrap(b"", header={"plen": 1000}, frame=bytes(bomb)), "payload")
    assert time.monotonic() - started < 0.5


def test_frames_without_size_or_with_trailing_data() -> None:
    payload = msgpack.packb(PAYLOAD)
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(payload)
    refuse(wrap(payload, frame=no_size), "plen")
    frame = zstandard.ZstdCompressor().compress(payload)
    refuse(wrap(payload, frame=frame + frame), "payload")
    refuse(wrap(payload, frame=frame + b"junk"), "payload")
    refuse(wrap(payload, frame=frame[:-4]), "payload")
    refuse(wrap(payload, frame=b""), "payload")
    refuse(wrap(payload, frame=b"\x00" * 32), "payload")


@pytest.mark.parametrize(("changes", "field"), [
    ({"s.n": ["u1", bytes([8] * S), 0]}, "s.n"),  # counts do not add up
    ({"s.dev": ["u1", bytes([0, 0, 1, 1, 2, 2, 9]), 0]}, "s.dev"),  # index beyond the dictionary
    ({"s.met": ["u1", bytes(S), 7]}, "s.met"),  # base beyond the dictionary
    ({"s.unit": ["i2", bytes(2 * S), 0]}, "s.unit"),  # not an allowed dtype
    ({"s.prof": ["u2", bytes(S), 0]}, "s.prof"),  # wrong byte length
    ({"r.dt": ["u1", PAYLOAD["r.dt"][1], -5]}, "r.dt"),  # negative delta: time going backwards
    ({"r.dt": ["u8", b"\xff" * 8 * (len(READINGS) - 7), 0]}, "r.dt"),  # overflow
    ({"s.t0": ["u1", bytes(S), 2**53 - 1]}, "r.dt"),  # runs past the end of time
    ({"r.dv": ["u8", bytes(8 * len(PAYLOAD["r.dv"][1])), 2**54]}, "r.dv"),
    # starts at the edge of the range, deltas push it out
    ({"s.v0": ["u8", struct.pack(f"<{S}Q", *[2**53] * (S - 1), 0), 0]}, "r.dv"),
    ({"s.prec": ["f8", struct.pack(f"<{S}d", *[float("nan")] * S)]}, "s.prec"),
    ({"s.scale": ["f8", struct.pack(f"<{S}d", *[-1.0] * S)]}, "s.scale"),
    ({"s.scale": ["f8", struct.pack(f"<{S}d", *[0.0] * S)]}, "s.v0"),  # float series must have v0 = 0
    ({"r.vf": ["f8", b""]}, "r.vf"),
    ({"e.ts": ["u1", bytes([2, 1, 0]), 1_700_000_000_500]}, "e.ts"),  # events out of order
    ({"e.kind": ["u1", bytes([0, 0, 1]), 0]}, "e.kind"),
    ({"e.attrs": [{}, {}]}, "e.attrs"),
    ({"e.attrs": [{"a": [1]}, {}, {}]}, "e.attrs[0].a"),
    ({"e.attrs": [{"a": {"b": 1}}, {}, {}]}, "e.attrs[0].a"),
    ({"dev": ["dev-0", 5, "dev-2"]}, "dev"),
    ({"prof": ["no-version"]}, "profiles"),
    ({"r.q": "oops"}, "r.q"),
])
def test_inconsistent_payloads(changes: dict[str, Any], field: str) -> None:
    refuse(with_payload(**changes), field)


def test_payload_structure() -> None:
    refuse(wrap(msgpack.packb([1, 2])), "payload")
    refuse(wrap(msgpack.packb({k: v for k, v in PAYLOAD.items() if k != "r.q"})), "payload")
    refuse(wrap(msgpack.packb({**PAYLOAD, "zz": 1})), "payload")
    refuse(wrap(msgpack.packb({**PAYLOAD, b"zz": 1})), "payload")  # bytes keys: once crashed sorting them
    refuse(wrap(b"\xc1"), "payload")  # never-used msgpack byte
    refuse(wrap(msgpack.packb(PAYLOAD) + b"\x00"), "payload")  # trailing data
    refuse(wrap(msgpack.packb({**PAYLOAD, "dev": msgpack.ExtType(5, b"x")})), "payload")


# ---- property-based fuzzing ---------------------------------------------------------------------------

def decode_or_wire_error(body: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode(body)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(body: bytes) -> None:
    decode_or_wire_error(body)
    decode_or_wire_error(wire.MAGIC + b"\x01" + body)


mutations = st.lists(st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]),
                               st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, byte in ops:
        i = pos % (len(buf) + 1)
        if op == "cut":
            del buf[i:]
        elif op == "insert":
            buf.insert(i, byte)
        elif buf and i < len(buf):
            if op == "flip":
                buf[i] ^= 1 << (byte % 8)
            elif op == "set":
                buf[i] = byte
            else:
                del buf[i]
    return bytes(buf)


@settings(max_examples=500, deadline=None)
@given(mutations)
def test_mutated_bodies(ops: list[tuple[str, int, int]]) -> None:
    decode_or_wire_error(mutate(VALID, ops))


@settings(max_examples=800, deadline=None)
@given(mutations)
def test_mutated_payloads_with_valid_checksum(ops: list[tuple[str, int, int]]) -> None:
    """Mutate the decompressed msgpack payload and re-wrap it, so the checks behind the checksum run."""
    decode_or_wire_error(wrap(mutate(msgpack.packb(PAYLOAD), ops)))


msgpack_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8),
              st.binary(max_size=24)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(wire._PAYLOAD_KEYS)), msgpack_values, min_size=1, max_size=3),
       st.fixed_dictionaries({"readings": st.integers(0, 40), "events": st.integers(0, 4),
                              "series": st.integers(0, 8)}))
def test_structurally_mutated_payloads(changes: dict[str, Any], counts: dict[str, int]) -> None:
    """Replace fields with arbitrary msgpack values and lie about counts: always a WireError or a batch."""
    payload = msgpack.packb({**PAYLOAD, **changes})
    decode_or_wire_error(wrap(payload))
    decode_or_wire_error(wrap(payload, header={"counts": counts}))


def test_record_limit_is_checked_from_the_header() -> None:
    with pytest.raises(wire.PayloadTooLarge) as info:
        wire.decode(VALID, max_records=len(READINGS))
    assert info.value.field == "counts"
    assert wire.decode(VALID, max_records=len(READINGS) + len(EVENTS)).n_events == len(EVENTS)

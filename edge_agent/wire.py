"""The batch wire format shared by the edge (encoder) and the cloud (decoder). Spec: docs/wire-format.md.

A batch is columnar: dictionaries (devices, metrics, units, profiles, aggregate names, event kinds), a
series table (one row per distinct (device, metric, unit, profile, agg, window) tuple), then per-reading
arrays sorted by (series, ts): timestamps (ms, delta-encoded per series), values (quantised to the series
precision where declared, or losslessly to a decimal scale when the data allow it, delta-encoded, else raw
float64), quality flags and window version; plus events with their attributes.

Body = ``MAGIC | version byte | msgpack(header map) | zstd(msgpack(payload map))``. Integer arrays travel
as raw little-endian unsigned bytes after subtracting their minimum (frame of reference), narrowed to the
smallest of u1/u2/u4/u8, so decoding is a handful of ``numpy.frombuffer`` calls plus two ``cumsum``.

This module is pure (no I/O). ``encode`` and ``decode`` are the only ways bytes are made or read; every
problem with a body is a :class:`~edge_agent.errors.WireError` naming the field:

    WireError                 400 malformed (field, problem)
    ├── UnsupportedFormat     415 not this format, or a version this code does not speak
    └── PayloadTooLarge       413 the declared payload exceeds the decoder's limit
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import numpy as np
import numpy.typing as npt
import zstandard

from edge_agent.errors import WireError
from edge_agent.model import Event, Priority, ProfileRef, Reading

FORMAT_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = frozenset({1})
MAGIC: Final = b"CBAT"  # 4 bytes before the version byte: "campus batch"
CONTENT_TYPE = "application/vnd.campus.batch"  # HTTP Content-Type; compression is part of the format
RAW = "raw"  # the aggregate name of raw (not windowed) series

# zstd level, measured by bench/bench_wire.py: levels 1..19 are within ~5 % of each other on sensor data
# (the delta/narrowing does the work); 3 encodes 60k readings in ~1 ms, 19 takes ~20 ms.
ZSTD_LEVEL = 3
DEFAULT_MAX_DECOMPRESSED = 64 << 20  # decoder's hard cap on the payload size (a zstd bomb stops here)
# Decoder's cap on readings + events: decoded arrays take ~60 B per reading at peak, so 2M ≈ 120 MB.
DEFAULT_MAX_RECORDS = 2_000_000
MAX_HEADER = 4096  # the header map must fit in this many bytes
MAX_GATEWAY_LEN = 256
MAX_TS: Final = 2**53  # exclusive bound on timestamps (epoch ms) and on quantised magnitudes
MAX_COUNT: Final = 2**32 - 1
_MIN_SCALE, _MAX_SCALE = 1e-15, 1e15
_DECIMALS = tuple(10.0**-e for e in range(7))  # lossless scales tried for series without a precision
_CHUNK = 1 << 20  # streaming decompression step
_UNSIGNED: Final[dict[str, np.dtype[Any]]] = {c: np.dtype(f"<{c}") for c in ("u1", "u2", "u4", "u8")}
_F8: Final = np.dtype("<f8")
_HEADER_KEYS = frozenset({"v", "gw", "seq", "created", "counts", "plen", "checksum"})
_COUNT_KEYS = frozenset({"readings", "events", "series"})
_DICT_KEYS = ("dev", "met", "unit", "prof", "agg", "kind")
_PAYLOAD_KEYS = frozenset({*_DICT_KEYS, "s.dev", "s.met", "s.unit", "s.prof", "s.agg", "s.win", "s.prec",
                           "s.scale", "s.n", "s.t0", "s.v0", "r.dt", "r.dv", "r.vf", "r.q", "r.ver",
                           "e.dev", "e.prof", "e.kind", "e.ts", "e.q", "e.attrs"})
_SCALARS = (str, int, float, bool, type(None))

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class UnsupportedFormat(WireError):
    """The body is not this format (magic) or is a version this decoder does not speak: answer 415."""


class PayloadTooLarge(WireError):
    """The declared decompressed payload is larger than the decoder accepts: answer 413."""


@dataclass(slots=True, frozen=True)
class Header:
    """The uncompressed header of an encoded batch; readable without decompressing anything."""

    version: int
    gateway: str
    seq: int
    created_ms: int
    readings: int
    events: int
    series: int
    payload_len: int  # bytes of the decompressed payload
    checksum: bytes  # BLAKE2b-128 of the decompressed payload
    offset: int  # where the zstd frame starts in the body


@dataclass(slots=True, frozen=True, eq=False)
class Batch:
    """One upload unit. Arrays are numpy; lengths must agree (checked by ``validate``).

    Series table columns index into the dictionaries. Reading columns have one entry per reading.
    Event columns have one entry per event; ``e_attrs`` holds one dict per event (already protected).
    ``checksum`` is filled by :func:`decode` (empty on a batch that was built, not decoded).
    """

    gateway: str
    seq: int  # per-gateway, monotonically increasing
    created_ms: int
    devices: tuple[str, ...]
    metrics: tuple[str, ...]
    units: tuple[str, ...]
    profiles: tuple[str, ...]  # "id@version"
    aggs: tuple[str, ...]  # "raw", "mean", "min", "max", "count", "sum", "std", "first", "last", "p50"…
    s_device: npt.NDArray[np.uint32]
    s_metric: npt.NDArray[np.uint32]
    s_unit: npt.NDArray[np.uint32]
    s_profile: npt.NDArray[np.uint32]
    s_agg: npt.NDArray[np.uint32]
    s_window_s: npt.NDArray[np.uint32]  # 0 for raw series
    s_precision: npt.NDArray[np.float64]  # 0.0 = not quantised
    r_series: npt.NDArray[np.uint32]
    r_ts_ms: npt.NDArray[np.int64]
    r_value: npt.NDArray[np.float64]
    r_quality: npt.NDArray[np.uint16]
    r_version: npt.NDArray[np.uint16]  # window version (0 for raw; late data re-emits version+1)
    e_device: npt.NDArray[np.uint32]
    e_profile: npt.NDArray[np.uint32]
    e_ts_ms: npt.NDArray[np.int64]
    e_quality: npt.NDArray[np.uint16]
    e_kind: tuple[str, ...] = ()
    e_attrs: tuple[dict[str, Any], ...] = field(default=())
    checksum: bytes = b""

    @property
    def n_readings(self) -> int:
        return int(self.r_series.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.e_ts_ms.shape[0])

    @property
    def n_series(self) -> int:
        return int(self.s_device.shape[0])

    @classmethod
    def from_columns(
        cls, gateway: str, seq: int, created_ms: int, *,
        devices: Sequence[str], metrics: Sequence[str], units: Sequence[str], profiles: Sequence[str],
        device: npt.ArrayLike, metric: npt.ArrayLike, unit: npt.ArrayLike, profile: npt.ArrayLike,
        ts_ms: npt.ArrayLike, value: npt.ArrayLike,
        quality: npt.ArrayLike | None = None, version: npt.ArrayLike | None = None,
        aggs: Sequence[str] = (RAW,), agg: npt.ArrayLike | None = None, window_s: npt.ArrayLike | None = None,
        precision: Mapping[str, float] | npt.ArrayLike | None = None, events: Sequence[Event] = (),
    ) -> Batch:
        """Build a batch from per-reading columns without a Python object per reading.

        ``device``/``metric``/``unit``/``profile``/``agg`` are integer indices into the dictionaries
        (see :func:`factorize` for string columns). ``precision`` is per metric name (a mapping) or per
        reading (an array, constant within a series); missing means 0 (not quantised). Readings are
        sorted by (series, ts, version); series by (device, metric, unit, profile, agg, window) index.
        Raises WireError when columns disagree in length or an index is out of range.
        """
        n = int(np.asarray(ts_ms).shape[0])
        dev = _index_col(device, len(devices), n, "device")
        met = _index_col(metric, len(metrics), n, "metric")
        uni = _index_col(unit, len(units), n, "unit")
        pro = _index_col(profile, len(profiles), n, "profile")
        agi = _index_col(agg, len(aggs), n, "agg") if agg is not None else np.zeros(n, np.int64)
        win = _int_col(window_s, n, "window_s", 0, MAX_COUNT)
        ts = _int_col(ts_ms, n, "ts_ms", 0, MAX_TS - 1)
        qual = _int_col(quality, n, "quality", 0, 65535)
        ver = _int_col(version, n, "version", 0, 65535)
        val = np.ascontiguousarray(np.asarray(value, dtype=np.float64).reshape(-1))
        if val.shape[0] != n:
            raise WireError("value", f"{val.shape[0]} values for {n} timestamps")
        if precision is None:
            prec = np.zeros(n)
        elif isinstance(precision, Mapping):
            prec = np.array([float(precision.get(m, 0.0)) for m in metrics], dtype=np.float64)[met]
        else:
            prec = np.asarray(precision, dtype=np.float64).reshape(-1)
            if prec.shape[0] != n:
                raise WireError("precision", f"{prec.shape[0]} precisions for {n} readings")
        order = np.lexsort((ver, ts, win, agi, pro, uni, met, dev))
        keys = [c[order] for c in (dev, met, uni, pro, agi, win)]
        same = np.ones(max(n - 1, 0), dtype=bool)
        for k in keys:
            same &= k[1:] == k[:-1]
        new = np.ones(n, dtype=bool)
        new[1:] = ~same
        series = np.cumsum(new) - 1
        firsts = np.flatnonzero(new)
        prec = prec[order]
        s_prec = prec[firsts]
        if not np.array_equal(prec, s_prec[series]):
            raise WireError("precision", "differs between readings of one series")
        devs, profs = list(devices), list(profiles)
        ev = sorted(events, key=lambda e: e.ts_ms)
        e_dev = _extend(devs, [e.device for e in ev])
        e_prof = _extend(profs, [str(e.profile) for e in ev])
        attrs = []
        for e in ev:
            d = dict(e.attrs)
            if len(d) != len(e.attrs):
                raise WireError("events.attrs", f"duplicate attribute key in {e.kind} event of {e.device}")
            attrs.append(d)
        return cls(
            gateway=gateway, seq=seq, created_ms=created_ms, devices=tuple(devs), metrics=tuple(metrics),
            units=tuple(units), profiles=tuple(profs), aggs=tuple(aggs),
            s_device=_u32(keys[0][firsts]), s_metric=_u32(keys[1][firsts]), s_unit=_u32(keys[2][firsts]),
            s_profile=_u32(keys[3][firsts]), s_agg=_u32(keys[4][firsts]), s_window_s=_u32(keys[5][firsts]),
            s_precision=np.ascontiguousarray(s_prec), r_series=_u32(series), r_ts_ms=ts[order],
            r_value=val[order], r_quality=qual[order].astype(np.uint16),
            r_version=ver[order].astype(np.uint16), e_device=e_dev, e_profile=e_prof,
            e_ts_ms=np.array([e.ts_ms for e in ev], dtype=np.int64),
            e_quality=np.array([e.quality for e in ev], dtype=np.uint16),
            e_kind=tuple(e.kind for e in ev), e_attrs=tuple(attrs),
        )

    def validate(self) -> None:
        """Check lengths, index ranges and value domains; raise WireError naming the field."""
        _check_text("gateway", self.gateway, MAX_GATEWAY_LEN)
        _check_int("seq", self.seq, 0, 2**63 - 1)
        _check_int("created_ms", self.created_ms, 0, MAX_TS - 1)
        for name in _DICT_KEYS[:-1]:
            for s in getattr(self, _DICT_ATTR[name]):
                if not isinstance(s, str):
                    raise WireError(_DICT_ATTR[name], f"entry {s!r} is not a string")
        for p in self.profiles:
            _parse_profile(p)
        n_s, n_r, n_e = self.n_series, self.n_readings, self.n_events
        for col, size, bound in (
            ("s_device", n_s, len(self.devices)), ("s_metric", n_s, len(self.metrics)),
            ("s_unit", n_s, len(self.units)), ("s_profile", n_s, len(self.profiles)),
            ("s_agg", n_s, len(self.aggs)), ("s_window_s", n_s, MAX_COUNT + 1),
            ("r_series", n_r, n_s), ("r_quality", n_r, 65536), ("r_version", n_r, 65536),
            ("e_device", n_e, len(self.devices)), ("e_profile", n_e, len(self.profiles)),
            ("e_quality", n_e, 65536),
        ):
            _check_col(col, getattr(self, col), size, 0, bound - 1)
        _check_col("r_ts_ms", self.r_ts_ms, n_r, 0, MAX_TS - 1)
        _check_col("e_ts_ms", self.e_ts_ms, n_e, 0, MAX_TS - 1)
        if np.asarray(self.r_value).shape != (n_r,):
            raise WireError("r_value", f"shape {np.asarray(self.r_value).shape}, expected ({n_r},)")
        prec = np.asarray(self.s_precision, dtype=np.float64)
        if prec.shape != (n_s,) or not (np.isfinite(prec) & (prec >= 0)).all():
            raise WireError("s_precision", f"must be {n_s} finite values >= 0")
        if len(self.e_kind) != n_e or len(self.e_attrs) != n_e:
            raise WireError("e_kind", f"{len(self.e_kind)} kinds, {len(self.e_attrs)} attrs for {n_e} events")
        for i, kind in enumerate(self.e_kind):
            if not isinstance(kind, str):
                raise WireError(f"e_kind[{i}]", "must be a string")
        for i, attrs in enumerate(self.e_attrs):
            _check_attrs(f"e_attrs[{i}]", attrs)

    def to_readings(self) -> list[Reading]:
        """Expand to model records (tests, small consumers). Aggregate name and window are not kept."""
        profs = [_parse_profile(p) for p in self.profiles]
        rows = zip(self.s_device.tolist(), self.s_metric.tolist(), self.s_unit.tolist(),
                   self.s_profile.tolist(), self.s_agg.tolist(), strict=True)
        series = [(self.devices[d], self.metrics[m], self.units[u], profs[p],
                   Priority.RAW if self.aggs[a] == RAW else Priority.AGGREGATE) for d, m, u, p, a in rows]
        out = []
        for s, ts, v, q in zip(self.r_series.tolist(), self.r_ts_ms.tolist(), self.r_value.tolist(),
                               self.r_quality.tolist(), strict=True):
            dev, met, unit, prof, prio = series[s]
            out.append(Reading(dev, met, ts, v, unit, prof, q, prio))
        return out

    def to_events(self) -> list[Event]:
        """Expand to model records, attributes in their encoded order."""
        profs = [_parse_profile(p) for p in self.profiles]
        return [Event(self.devices[d], k, ts, profs[p], tuple(a.items()), q)
                for d, p, ts, q, k, a in zip(self.e_device.tolist(), self.e_profile.tolist(),
                                             self.e_ts_ms.tolist(), self.e_quality.tolist(), self.e_kind,
                                             self.e_attrs, strict=True)]

    def halves(self) -> tuple[Batch, Batch]:
        """Split into two batches of about half the records each (for HTTP 413); seq is unchanged.

        Raises WireError when the batch holds fewer than two records.
        """
        n_r, n_e = self.n_readings, self.n_events
        if n_r + n_e < 2:
            raise WireError("batch", "a batch of fewer than two records cannot be split")
        order = np.lexsort((self.r_version, self.r_ts_ms, self.r_series))
        cut_r = min(n_r, (n_r + n_e) // 2)  # readings first, then events: the halves differ by <= 1 record
        cut_e = (n_r + n_e) // 2 - cut_r
        return self._select(order[:cut_r], slice(0, cut_e)), self._select(order[cut_r:], slice(cut_e, n_e))

    def _select(self, r: npt.NDArray[np.intp], e: slice) -> Batch:
        return Batch(
            gateway=self.gateway, seq=self.seq, created_ms=self.created_ms, devices=self.devices,
            metrics=self.metrics, units=self.units, profiles=self.profiles, aggs=self.aggs,
            s_device=self.s_device, s_metric=self.s_metric, s_unit=self.s_unit, s_profile=self.s_profile,
            s_agg=self.s_agg, s_window_s=self.s_window_s, s_precision=self.s_precision,
            r_series=self.r_series[r], r_ts_ms=self.r_ts_ms[r], r_value=self.r_value[r],
            r_quality=self.r_quality[r], r_version=self.r_version[r], e_device=self.e_device[e],
            e_profile=self.e_profile[e], e_ts_ms=self.e_ts_ms[e], e_quality=self.e_quality[e],
            e_kind=self.e_kind[e], e_attrs=self.e_attrs[e],
        )


_DICT_ATTR = {"dev": "devices", "met": "metrics", "unit": "units", "prof": "profiles", "agg": "aggs",
              "kind": "e_kind"}


def factorize(values: Iterable[str]) -> tuple[tuple[str, ...], npt.NDArray[np.uint32]]:
    """Turn a string column into (sorted dictionary, uint32 indices into it)."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64)
    names = sorted(index)
    remap = np.empty(len(names), dtype=np.int64)
    remap[[index[n] for n in names]] = np.arange(len(names))
    return tuple(names), remap[codes].astype(np.uint32)


def build_batch(gateway: str, seq: int, created_ms: int, readings: Sequence[Reading], events: Sequence[Event],
                precision: Mapping[str, float] | None = None) -> Batch:
    """Build a batch of raw readings and events from model records; ``precision`` is per metric name."""
    devices, dev = factorize(r.device for r in readings)
    metrics, met = factorize(r.metric for r in readings)
    units, uni = factorize(r.unit for r in readings)
    profiles, pro = factorize(str(r.profile) for r in readings)
    return Batch.from_columns(
        gateway, seq, created_ms, devices=devices, metrics=metrics, units=units, profiles=profiles,
        device=dev, metric=met, unit=uni, profile=pro,
        ts_ms=np.fromiter((r.ts_ms for r in readings), dtype=np.int64, count=len(readings)),
        value=np.fromiter((r.value for r in readings), dtype=np.float64, count=len(readings)),
        quality=np.fromiter((r.quality for r in readings), dtype=np.int64, count=len(readings)),
        precision=precision, events=events,
    )


def encode(batch: Batch, *, level: int = ZSTD_LEVEL) -> bytes:
    """Encode a batch to its wire bytes (deterministic for a given batch). Raises WireError if invalid."""
    batch.validate()
    series = batch.r_series.astype(np.int64)
    ts = batch.r_ts_ms.astype(np.int64)
    ver = batch.r_version.astype(np.int64)
    order = _reading_order(series, ts, ver)
    val = np.ascontiguousarray(batch.r_value, dtype=np.float64)
    qual = batch.r_quality.astype(np.int64)
    if order is not None:
        series, ts, ver, val, qual = series[order], ts[order], ver[order], val[order], qual[order]
    counts_all = np.bincount(series, minlength=batch.n_series)
    keep = np.flatnonzero(counts_all)  # series without readings are not sent
    counts = counts_all[keep]
    starts = np.cumsum(counts) - counts
    nonstart = np.ones(len(ts), dtype=bool)
    nonstart[starts] = False
    prec = np.asarray(batch.s_precision, dtype=np.float64)[keep]
    scale, q = _choose_scales(val, counts, starts, prec)
    isq = scale > 0
    mask_q = np.repeat(isq, counts)
    counts_q = counts[isq]
    q_nonstart = np.ones(len(q), dtype=bool)
    q_nonstart[np.cumsum(counts_q) - counts_q] = False
    v0 = np.zeros(len(keep), dtype=np.int64)
    v0[isq] = q[~q_nonstart]
    e_order = np.argsort(batch.e_ts_ms, kind="stable")
    kinds, e_kind = factorize(batch.e_kind[i] for i in e_order.tolist())
    payload_map = {
        "dev": list(batch.devices), "met": list(batch.metrics), "unit": list(batch.units),
        "prof": list(batch.profiles), "agg": list(batch.aggs), "kind": list(kinds),
        "s.dev": _pack_int(batch.s_device[keep]), "s.met": _pack_int(batch.s_metric[keep]),
        "s.unit": _pack_int(batch.s_unit[keep]), "s.prof": _pack_int(batch.s_profile[keep]),
        "s.agg": _pack_int(batch.s_agg[keep]), "s.win": _pack_int(batch.s_window_s[keep]),
        "s.prec": ["f8", prec.astype(_F8).tobytes()], "s.scale": ["f8", scale.astype(_F8).tobytes()],
        "s.n": _pack_int(counts), "s.t0": _pack_int(ts[starts]), "s.v0": _pack_int(v0),
        "r.dt": _pack_int(np.diff(ts)[nonstart[1:]]), "r.dv": _pack_int(np.diff(q)[q_nonstart[1:]]),
        "r.vf": ["f8", val[~mask_q].astype(_F8).tobytes()],
        "r.q": _pack_int(qual), "r.ver": _pack_int(ver),
        "e.dev": _pack_int(batch.e_device[e_order]), "e.prof": _pack_int(batch.e_profile[e_order]),
        "e.kind": _pack_int(e_kind), "e.ts": _pack_int(batch.e_ts_ms[e_order]),
        "e.q": _pack_int(batch.e_quality[e_order]), "e.attrs": [batch.e_attrs[i] for i in e_order.tolist()],
    }
    try:
        payload = msgpack.packb(payload_map, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError("e_attrs", f"cannot be packed: {exc}") from exc
    header = msgpack.packb({
        "v": FORMAT_VERSION, "gw": batch.gateway, "seq": batch.seq, "created": batch.created_ms,
        "counts": {"readings": len(ts), "events": batch.n_events, "series": len(keep)},
        "plen": len(payload), "checksum": hashlib.blake2b(payload, digest_size=16).digest(),
    }, use_bin_type=True)
    frame = zstandard.ZstdCompressor(level=level, write_content_size=True).compress(payload)
    return bytes(MAGIC + bytes([FORMAT_VERSION]) + header + frame)


def read_header(body: bytes | bytearray | memoryview) -> Header:
    """Read and check the uncompressed header (magic, version, gateway, seq, counts, sizes, checksum).

    Cheap: an API can authorise and de-duplicate on (gateway, seq) before decompressing anything.
    Raises UnsupportedFormat (wrong magic or version) or WireError.
    """
    view = memoryview(body)
    if len(view) < len(MAGIC) + 1:
        raise WireError("magic", f"truncated: {len(view)} bytes is shorter than magic and version")
    if bytes(view[:4]) != MAGIC:
        raise UnsupportedFormat("magic", f"{bytes(view[:4])!r} is not {MAGIC!r}: not a campus batch")
    version = view[4]
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedFormat("version", f"format version {version} is not supported "
                                           f"(supported: {sorted(SUPPORTED_VERSIONS)})")
    unpacker = msgpack.Unpacker(raw=False, max_str_len=MAX_GATEWAY_LEN * 4, max_bin_len=64,
                                max_array_len=0, max_map_len=16, max_ext_len=0)
    unpacker.feed(view[5:5 + MAX_HEADER])
    try:
        h = unpacker.unpack()
    except msgpack.OutOfData as exc:
        raise WireError("header", f"truncated or longer than {MAX_HEADER} bytes") from exc
    except Exception as exc:  # msgpack raises ValueError, FormatError, StackError, UnicodeDecodeError…
        raise WireError("header", f"not a msgpack map: {exc}") from exc
    if not isinstance(h, dict) or set(h) != _HEADER_KEYS:
        raise WireError("header", f"must be a map with exactly the keys {sorted(_HEADER_KEYS)}")
    if h["v"] != version or isinstance(h["v"], bool):
        raise WireError("v", f"{h['v']!r} does not match the version byte {version}")
    counts = h["counts"]
    if not isinstance(counts, dict) or set(counts) != _COUNT_KEYS:
        raise WireError("counts", f"must be a map with exactly the keys {sorted(_COUNT_KEYS)}")
    for key in _COUNT_KEYS:
        _check_int(f"counts.{key}", counts[key], 0, MAX_COUNT)
    _check_text("gw", h["gw"], MAX_GATEWAY_LEN)
    _check_int("seq", h["seq"], 0, 2**63 - 1)
    _check_int("created", h["created"], 0, MAX_TS - 1)
    _check_int("plen", h["plen"], 1, 2**63 - 1)
    if not isinstance(h["checksum"], bytes) or len(h["checksum"]) != 16:
        raise WireError("checksum", "must be 16 bytes (BLAKE2b-128)")
    return Header(version, h["gw"], h["seq"], h["created"], counts["readings"], counts["events"],
                  counts["series"], h["plen"], h["checksum"], 5 + unpacker.tell())


def decode(body: bytes | bytearray | memoryview, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
           max_records: int = DEFAULT_MAX_RECORDS) -> Batch:
    """Decode and fully check wire bytes.

    The payload is decompressed by streaming into a buffer of the declared size, refused up front when
    that exceeds ``max_decompressed``; batches of more than ``max_records`` readings + events are refused
    from the header. Raises UnsupportedFormat (415), PayloadTooLarge (413) or WireError (400); nothing else.
    """
    h = read_header(body)
    if h.payload_len > max_decompressed:
        raise PayloadTooLarge("plen", f"payload of {h.payload_len} bytes exceeds the limit of "
                                      f"{max_decompressed}")
    if h.readings + h.events > max_records:
        raise PayloadTooLarge("counts", f"{h.readings} readings + {h.events} events exceed the limit of "
                                        f"{max_records} records")
    payload = _decompress(memoryview(body)[h.offset:], h.payload_len)
    if hashlib.blake2b(payload, digest_size=16).digest() != h.checksum:
        raise WireError("checksum", "does not match the decompressed payload")
    try:
        p = msgpack.unpackb(payload, raw=False, strict_map_key=True, max_ext_len=0,
                            max_array_len=max_records, max_map_len=max(64, max_records))
    except Exception as exc:  # msgpack raises ValueError, FormatError, StackError, UnicodeDecodeError…
        raise WireError("payload", f"not msgpack: {exc}") from exc
    if not isinstance(p, dict) or set(p) != _PAYLOAD_KEYS:
        extra = sorted(set(p) ^ _PAYLOAD_KEYS, key=repr) if isinstance(p, dict) else "not a map"
        raise WireError("payload", f"keys differ from the spec: {extra}")
    return _parse_payload(p, h)


# ---- decoding ------------------------------------------------------------------------------------------

def _decompress(frame: memoryview, size: int) -> bytearray:
    if len(frame) == 0:
        raise WireError("payload", "missing: the body ends after the header")
    try:
        declared = zstandard.get_frame_parameters(frame).content_size
    except zstandard.ZstdError as exc:
        raise WireError("payload", f"not a zstd frame: {exc}") from exc
    if declared != size:
        raise WireError("plen", f"header says {size} bytes, zstd frame says {declared}")
    out = bytearray(size)
    view = memoryview(out)
    pos = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(frame, read_across_frames=True) as reader:
            while pos < size:
                got = reader.readinto(view[pos:pos + _CHUNK])
                if got == 0:
                    break
                pos += got
            extra = reader.read(1)  # at most 1 more byte is ever produced
    except zstandard.ZstdError as exc:
        raise WireError("payload", f"corrupt zstd data: {exc}") from exc
    if pos != size or extra:
        raise WireError("payload", f"decompresses to {'more' if extra else pos} bytes, header says {size}")
    return out


def _parse_payload(p: dict[str, Any], h: Header) -> Batch:
    d = {k: _dictionary(k, p[k]) for k in _DICT_KEYS}
    for prof in d["prof"]:
        _parse_profile(prof)
    n_s, n_r, n_e = h.series, h.readings, h.events
    s_idx = {k: _unpack_int(p[f"s.{k}"], f"s.{k}", n_s, 0, len(d[k]) - 1)
             for k in ("dev", "met", "unit", "prof", "agg")}
    s_win = _unpack_int(p["s.win"], "s.win", n_s, 0, MAX_COUNT)
    s_n = _unpack_int(p["s.n"], "s.n", n_s, 1, MAX_COUNT)
    if int(s_n.sum()) != n_r:
        raise WireError("s.n", f"series counts add up to {int(s_n.sum())}, header says {n_r} readings")
    s_prec = _unpack_f8(p["s.prec"], "s.prec", n_s)
    if not (np.isfinite(s_prec) & (s_prec >= 0)).all():
        raise WireError("s.prec", "precisions must be finite and >= 0")
    s_scale = _unpack_f8(p["s.scale"], "s.scale", n_s)
    isq = s_scale > 0
    if not ((s_scale == 0) | ((s_scale >= _MIN_SCALE) & (s_scale <= _MAX_SCALE))).all():
        raise WireError("s.scale", f"scales must be 0 or in [{_MIN_SCALE}, {_MAX_SCALE}]")
    s_t0 = _unpack_int(p["s.t0"], "s.t0", n_s, 0, MAX_TS - 1)
    s_v0 = _unpack_int(p["s.v0"], "s.v0", n_s, -MAX_TS, MAX_TS)
    if s_v0[~isq].any():
        raise WireError("s.v0", "must be 0 for float series (scale 0)")
    starts = np.cumsum(s_n) - s_n
    r_dt = _unpack_int(p["r.dt"], "r.dt", n_r - n_s, 0, MAX_TS)
    ts = _undelta(r_dt, starts, s_t0, s_n)
    if n_r and (ts.min() < 0 or ts.max() >= MAX_TS):
        raise WireError("r.dt", "timestamps leave the range [0, 2^53) ms")
    counts_q = s_n[isq]
    n_q = int(counts_q.sum())
    r_dv = _unpack_int(p["r.dv"], "r.dv", n_q - len(counts_q), -2 * MAX_TS, 2 * MAX_TS)
    r_vf = _unpack_f8(p["r.vf"], "r.vf", n_r - n_q)
    q = _undelta(r_dv, np.cumsum(counts_q) - counts_q, s_v0[isq], counts_q)
    if n_q and (q.min() < -MAX_TS or q.max() > MAX_TS):
        raise WireError("r.dv", "quantised values leave the range [-2^53, 2^53]")
    values = _dequantise(q, s_scale[isq], counts_q)
    if n_q != n_r:
        mask_q = np.repeat(isq, s_n)
        merged = np.empty(n_r, dtype=np.float64)
        merged[mask_q] = values
        merged[~mask_q] = r_vf
        values = merged
    r_q = _unpack_int(p["r.q"], "r.q", n_r, 0, 65535)
    r_ver = _unpack_int(p["r.ver"], "r.ver", n_r, 0, 65535)
    e_ts = _unpack_int(p["e.ts"], "e.ts", n_e, 0, MAX_TS - 1)
    if n_e > 1 and (np.diff(e_ts) < 0).any():
        raise WireError("e.ts", "events are not sorted by time")
    e_kind = _unpack_int(p["e.kind"], "e.kind", n_e, 0, len(d["kind"]) - 1)
    attrs = p["e.attrs"]
    if not isinstance(attrs, list) or len(attrs) != n_e:
        raise WireError("e.attrs", f"must be a list of {n_e} maps")
    for i, a in enumerate(attrs):
        _check_attrs(f"e.attrs[{i}]", a)
    kinds = d["kind"]
    return Batch(
        gateway=h.gateway, seq=h.seq, created_ms=h.created_ms, devices=d["dev"], metrics=d["met"],
        units=d["unit"], profiles=d["prof"], aggs=d["agg"], s_device=_u32(s_idx["dev"]),
        s_metric=_u32(s_idx["met"]), s_unit=_u32(s_idx["unit"]), s_profile=_u32(s_idx["prof"]),
        s_agg=_u32(s_idx["agg"]), s_window_s=_u32(s_win), s_precision=s_prec,
        r_series=np.repeat(np.arange(n_s, dtype=np.uint32), s_n), r_ts_ms=ts, r_value=values,
        r_quality=r_q.astype(np.uint16), r_version=r_ver.astype(np.uint16),
        e_device=_u32(_unpack_int(p["e.dev"], "e.dev", n_e, 0, len(d["dev"]) - 1)),
        e_profile=_u32(_unpack_int(p["e.prof"], "e.prof", n_e, 0, len(d["prof"]) - 1)),
        e_ts_ms=e_ts, e_quality=_unpack_int(p["e.q"], "e.q", n_e, 0, 65535).astype(np.uint16),
        e_kind=tuple(kinds[k] for k in e_kind.tolist()), e_attrs=tuple(attrs), checksum=h.checksum,
    )


def _undelta(deltas: I64, starts: I64, firsts: I64, counts: I64) -> I64:
    """Per-series prefix sums: ``firsts[s]`` then ``deltas`` (which omit each series' first element)."""
    n = int(counts.sum())
    full = np.zeros(n, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    mask[starts] = False
    full[mask] = deltas
    cs = np.cumsum(full)  # wraps modulo 2^64 on hostile input; the caller's range check catches it
    return cs + np.repeat(firsts - cs[starts], counts)


def _dictionary(name: str, obj: Any) -> tuple[str, ...]:
    if not isinstance(obj, list) or not all(isinstance(s, str) for s in obj):
        raise WireError(name, "must be a list of strings")
    return tuple(obj)


def _unpack_int(obj: Any, name: str, n: int, lo: int, hi: int) -> I64:
    """``[code, bytes, base]`` → int64 array of ``n`` values, each checked to lie in [lo, hi]."""
    if not isinstance(obj, list) or len(obj) != 3:
        raise WireError(name, "must be [dtype, bytes, base]")
    code, raw, base = obj
    dtype = _UNSIGNED.get(code) if isinstance(code, str) else None
    if dtype is None:
        raise WireError(name, f"dtype {code!r} is not one of {sorted(_UNSIGNED)}")
    if not isinstance(raw, bytes) or isinstance(base, bool) or not isinstance(base, int):
        raise WireError(name, "must be [dtype, bytes, base] with bytes as bin and base an integer")
    if len(raw) != n * dtype.itemsize:
        raise WireError(name, f"{len(raw)} bytes, expected {n} values of {code}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    stored = np.frombuffer(raw, dtype=dtype)
    if base < lo or base + int(stored.max()) > hi:
        raise WireError(name, f"values out of range [{lo}, {hi}]")
    out: I64 = stored.astype(np.int64) + np.int64(base)
    return out


def _unpack_f8(obj: Any, name: str, n: int) -> F64:
    if not isinstance(obj, list) or len(obj) != 2 or obj[0] != "f8" or not isinstance(obj[1], bytes):
        raise WireError(name, "must be ['f8', bytes]")
    if len(obj[1]) != 8 * n:
        raise WireError(name, f"{len(obj[1])} bytes, expected {n} float64 values")
    return np.frombuffer(obj[1], dtype=_F8).astype(np.float64)


def _parse_profile(text: str) -> ProfileRef:
    try:
        return ProfileRef.parse(text)
    except ValueError as exc:
        raise WireError("profiles", str(exc)) from exc


# ---- encoding ------------------------------------------------------------------------------------------

def _reading_order(series: I64, ts: I64, ver: I64) -> npt.NDArray[np.intp] | None:
    """Sort order by (series, ts, version), or None when the readings are already in that order."""
    if len(series) < 2:
        return None
    ds, dt, dv = np.diff(series), np.diff(ts), np.diff(ver)
    if ((ds > 0) | ((ds == 0) & ((dt > 0) | ((dt == 0) & (dv >= 0))))).all():
        return None
    return np.lexsort((ver, ts, series))


def _divisors(scale: F64) -> F64:
    """Per series: d > 0 means value = q / d (scale is 1/d, e.g. 0.1 → 10), 0 means value = q * scale."""
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
    r = np.rint(inv)
    out: F64 = np.where((scale > 0) & (r >= 1) & (np.abs(inv - r) <= 1e-9 * r), r, 0.0)
    return out


def _dequantise(q: I64, scale: F64, counts: I64) -> F64:
    div = _divisors(scale)
    mul = np.repeat(np.where(div > 0, 1.0, scale), counts)
    out: F64 = q.astype(np.float64) * mul / np.repeat(np.where(div > 0, div, 1.0), counts)
    return out


def _quantise(v: F64, scale: F64, counts: I64) -> F64:
    """round(v / scale) per reading, as float64 (may be non-finite or huge: the caller checks)."""
    div = np.repeat(_divisors(scale), counts)
    sc = np.repeat(scale, counts)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        out: F64 = np.rint(np.where(div > 0, v * div, v / np.where(sc > 0, sc, 1.0)))
    return out


def _choose_scales(val: F64, counts: I64, starts: I64, prec: F64) -> tuple[F64, I64]:
    """Pick each series' scale and return (scales, quantised values of the quantised series in order).

    Declared precision p > 0 → scale p (lossy, within p/2) when every value quantises into ±2^53;
    otherwise (no precision, NaN/inf, huge) try decimal scales 1, 0.1 … 1e-6 that reproduce every value
    bit-exactly; else scale 0 = raw float64.
    """
    n_s = len(counts)
    scale = np.zeros(n_s)
    if n_s == 0:
        return scale, np.zeros(0, dtype=np.int64)

    def fits(candidate: F64, exact: bool) -> npt.NDArray[np.bool_]:
        q = _quantise(val, candidate, counts)
        ok = np.abs(q) <= MAX_TS
        if exact:
            with np.errstate(invalid="ignore", over="ignore"):
                back = _dequantise(np.where(ok, q, 0).astype(np.int64), candidate, counts)
            ok &= back.view(np.uint64) == val.view(np.uint64)
        return np.minimum.reduceat(ok, starts).astype(bool)

    declared = prec > 0
    if declared.any():
        scale = np.where(declared & fits(np.where(declared, prec, 1.0), exact=False), prec, 0.0)
    for candidate in _DECIMALS:
        todo = scale == 0
        if not todo.any():
            break
        scale = np.where(todo & fits(np.full(n_s, candidate), exact=True), candidate, scale)
    mask = np.repeat(scale > 0, counts)
    q = _quantise(val[mask], scale[scale > 0], counts[scale > 0])
    return scale, q.astype(np.int64)


def _pack_int(a: npt.ArrayLike) -> list[Any]:
    """Frame of reference + narrowing: ``[code, (a - min) as the smallest unsigned dtype, min]``."""
    arr = np.asarray(a).astype(np.int64, copy=False)
    if arr.size == 0:
        return ["u1", b"", 0]
    lo, hi = int(arr.min()), int(arr.max())
    span = hi - lo
    code = "u1" if span < 2**8 else "u2" if span < 2**16 else "u4" if span < 2**32 else "u8"
    shifted = arr.astype(np.uint64) - np.uint64(lo % 2**64)  # modular: exact because span < 2^64
    return [code, shifted.astype(_UNSIGNED[code]).tobytes(), lo]


def _u32(a: npt.ArrayLike) -> U32:
    return np.asarray(a).astype(np.uint32)


def _extend(dictionary: list[str], names: list[str]) -> U32:
    index = {n: i for i, n in enumerate(dictionary)}
    for n in names:
        if n not in index:
            index[n] = len(dictionary)
            dictionary.append(n)
    return np.array([index[n] for n in names], dtype=np.uint32)


# ---- checks --------------------------------------------------------------------------------------------

def _index_col(col: npt.ArrayLike, size: int, n: int, name: str) -> I64:
    return _int_col(col, n, name, 0, size - 1)


def _int_col(col: npt.ArrayLike | None, n: int, name: str, lo: int, hi: int) -> I64:
    if col is None:
        return np.zeros(n, dtype=np.int64)
    arr = np.asarray(col).reshape(-1)
    if arr.shape[0] != n:
        raise WireError(name, f"{arr.shape[0]} entries for {n} readings")
    if n and arr.dtype.kind not in "iu":
        raise WireError(name, f"must be integers, not {arr.dtype}")
    arr = arr.astype(np.int64)
    if n and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise WireError(name, f"values out of range [{lo}, {hi}]")
    return arr


def _check_col(name: str, col: Any, n: int, lo: int, hi: int) -> None:
    arr = np.asarray(col)
    if arr.shape != (n,):
        raise WireError(name, f"shape {arr.shape}, expected ({n},)")
    if n and arr.dtype.kind not in "iu":
        raise WireError(name, f"must be integers, not {arr.dtype}")
    if n and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise WireError(name, f"values out of range [{lo}, {hi}]")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise WireError(name, f"{value!r} is not an integer in [{lo}, {hi}]")


def _check_text(name: str, value: Any, max_len: int) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise WireError(name, f"must be a non-empty string of at most {max_len} characters")


def _check_attrs(name: str, attrs: Any) -> None:
    if not isinstance(attrs, dict):
        raise WireError(name, "must be a map")
    for k, v in attrs.items():
        if not isinstance(k, str):
            raise WireError(name, f"key {k!r} is not a string")
        if not isinstance(v, _SCALARS) or (isinstance(v, int) and not -(2**63) <= v < 2**64):
            raise WireError(f"{name}.{k}", f"{type(v).__name__} is not a str/int/float/bool/None value")

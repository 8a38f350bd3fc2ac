"""Wire-format benchmark: bytes per reading, ratio to JSON+gzip, encode/decode speed, zstd level choice.

Run: ``.venv/bin/python bench/bench_wire.py [--seconds 60] [--devices 200] [--repeat 5] [--quick]``

The baseline, in the same run, is JSON+gzip (level 6) of the same records. Prints figures and writes
``bench/results/wire.json``.

Data sets (deterministic, seeded):
- *regular*: ``devices`` classroom sensors × 5 metrics (temperature, humidity, CO2, PM2.5, noise) at
  1 Hz for ``seconds`` s. One message per device per second carries all five metrics with one timestamp;
  each device has its own phase and the gateway receive time adds ±20 ms jitter. Values are a level plus
  a slow random walk plus sensor noise (σ: 0.03 °C, 0.1 %RH, 3 ppm, 1 µg/m³, 0.5 dB), reported as the
  sensors do at their resolution (0.1; CO2 and PM2.5 are integers) and declared with that precision.
- *mixed*: half the classrooms, energy plugs (power/voltage/current/energy counter every 10 s with
  vendor decimals and no declared precision), people counters reporting by exception, vibration
  features as full float64, one window of 60 s aggregates (mean/min/max/count) per environment series,
  and card-swipe events with pseudonymised attributes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result
from edge_agent import wire
from edge_agent.model import Event, ProfileRef, Reading

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_760_000_000_000
ENV = (  # metric, unit, precision, level, spread, noise sigma
    ("temperature", "Cel", 0.1, 22.0, 2.0, 0.03),
    ("relative_humidity", "%RH", 0.1, 50.0, 8.0, 0.1),
    ("co2_concentration", "ppm", 1.0, 700.0, 200.0, 3.0),
    ("pm25_concentration", "ug/m3", 1.0, 12.0, 6.0, 1.0),
    ("noise_level", "dB", 0.1, 45.0, 8.0, 0.5),
)
ENV_PROFILE = ProfileRef("zigbee2mqtt_air_quality", 3)


def regular(devices: int = 200, seconds: int = 60, seed: int = 1) -> tuple[list[Reading], dict[str, float]]:
    """The *regular* data set (see module docstring) and its per-metric precision."""
    rng = np.random.default_rng(seed)
    out: list[Reading] = []
    for d in range(devices):
        dev = f"campus-a/building-{d // 40:02d}/room-{d:03d}/air"
        ts = T0 + int(rng.integers(0, 1000)) + np.arange(seconds) * 1000 + rng.integers(-20, 21, seconds)
        for metric, unit, prec, level, spread, sigma in ENV:
            base = level + rng.uniform(-spread, spread)
            v = base + np.cumsum(rng.normal(0.0, sigma / 5, seconds)) + rng.normal(0.0, sigma, seconds)
            v = np.round(np.round(v / prec) * prec, 1)
            out.extend(Reading(dev, metric, t, x, unit, ENV_PROFILE)
                       for t, x in zip(ts.tolist(), v.tolist(), strict=True))
    return out, {m[0]: m[2] for m in ENV}


def mixed(devices: int = 200, seconds: int = 60, seed: int = 2) -> tuple[list[Reading], list[Event],
                                                                        dict[str, float]]:
    """The *mixed* data set (see module docstring): readings, events and per-metric precision."""
    rng = np.random.default_rng(seed)
    readings, precision = regular(devices // 2, seconds, seed)
    plug = ProfileRef("tasmota_energy_plug", 1)
    for d in range(devices // 4):
        ts = T0 + int(rng.integers(0, 10_000)) + np.arange(0, seconds * 1000, 10_000)
        n = len(ts)
        watts = np.round(np.abs(300 + np.cumsum(rng.normal(0, 20, n))), 1)
        volts = np.round(230 + rng.normal(0, 1.5, n), 1)
        amps = np.round(watts / volts, 3)
        kwh = np.round(1234.5 + d + np.cumsum(watts) * 10 / 3.6e6, 3)
        dev = f"campus-a/plug-{d:03d}"
        for metric, unit, vals in (("active_power", "W", watts), ("voltage", "V", volts),
                                   ("current", "A", amps), ("energy_total", "kWh", kwh)):
            readings.extend(Reading(dev, metric, t, x, unit, plug)
                            for t, x in zip(ts.tolist(), vals.tolist(), strict=True))
    counter = ProfileRef("people_counter", 2)
    for d in range(devices // 10):
        k = int(rng.integers(3, 12))
        ts = np.sort(T0 + rng.integers(0, seconds * 1000, k))
        occupancy = np.maximum(0, 20 + np.cumsum(rng.integers(-3, 4, k)))
        readings.extend(Reading(f"campus-a/door-{d:03d}", "occupancy_count", t, float(x), "1", counter)
                        for t, x in zip(ts.tolist(), occupancy.tolist(), strict=True))
    vib = ProfileRef("vibration_pump", 1)
    for d in range(devices // 20):
        ts = T0 + np.arange(0, seconds * 1000, 10_000)
        for metric in ("velocity_rms", "acceleration_peak", "crest_factor", "dominant_frequency"):
            readings.extend(Reading(f"campus-a/pump-{d:02d}", metric, t, float(x), "mm/s", vib)
                            for t, x in zip(ts.tolist(), rng.gamma(4.0, 0.7, len(ts)).tolist(), strict=True))
    events = [Event(f"campus-a/gate-{int(rng.integers(0, 8))}", "card_swipe",
                    T0 + int(rng.integers(0, seconds * 1000)), ProfileRef("card_reader", 1),
                    (("card", f"pseud-{int(rng.integers(0, 2**40)):010x}"),
                     ("granted", bool(rng.random() < .97)),
                     ("direction", "in" if rng.random() < .6 else "out")))
              for _ in range(devices // 2)]
    return readings, events, precision


def aggregates(batch_readings: list[Reading], precision: dict[str, float]) -> wire.Batch:
    """One 60 s window of mean/min/max/count per series of ``batch_readings`` (via from_columns)."""
    b = wire.build_batch("gw", 0, T0, batch_readings, [], precision)
    aggs = ("count", "max", "mean", "min")
    s_n = np.bincount(b.r_series, minlength=b.n_series)
    starts = np.cumsum(s_n) - s_n
    v = b.r_value
    cols = [s_n.astype(float), np.maximum.reduceat(v, starts), np.add.reduceat(v, starts) / s_n,
            np.minimum.reduceat(v, starts)]
    k = b.n_series
    return wire.Batch.from_columns(
        "gw", 0, T0, devices=b.devices, metrics=b.metrics, units=b.units, profiles=b.profiles, aggs=aggs,
        device=np.tile(b.s_device, 4), metric=np.tile(b.s_metric, 4), unit=np.tile(b.s_unit, 4),
        profile=np.tile(b.s_profile, 4), agg=np.repeat(np.arange(4), k), window_s=np.full(4 * k, 60),
        ts_ms=np.full(4 * k, T0 // 60_000 * 60_000), value=np.concatenate(cols),
        precision=np.concatenate([np.ones(k), b.s_precision, b.s_precision / 10, b.s_precision]),
    )


def json_gzip(readings: list[Reading], events: list[Event] = ()) -> int:  # type: ignore[assignment]
    rows: list[dict[str, object]] = [{"device": r.device, "metric": r.metric, "ts": r.ts_ms, "value": r.value}
                                     for r in readings]
    rows += [{"device": e.device, "kind": e.kind, "ts": e.ts_ms, "attrs": e.attr_dict()} for e in events]
    return len(gzip.compress(json.dumps(rows, separators=(",", ":")).encode(), 6))


def timed(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="20 devices x 10 s, one repeat (smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.devices, args.seconds, args.repeat = 20, 10, 1

    readings, precision = regular(args.devices, args.seconds)
    n = len(readings)
    batch = wire.build_batch("gw-campus-a-01", 1, T0, readings, [], precision)
    body = wire.encode(batch)
    jg = json_gzip(readings)
    print(f"regular: {n} readings ({args.devices} devices x 5 metrics x {args.seconds} s at 1 Hz)")
    print(f"  wire      {len(body):>9} B  {len(body) / n:6.3f} B/reading")
    print(f"  JSON+gzip {jg:>9} B  {jg / n:6.3f} B/reading   ratio JSON+gzip / wire = {jg / len(body):.1f}x")
    print("  zstd level: " + "  ".join(f"{lvl}={len(wire.encode(batch, level=lvl)) / n:.3f}"
                                       for lvl in (1, 3, 6, 9, 15, 19)))
    t_enc = timed(lambda: wire.encode(batch), args.repeat)
    t_dec = timed(lambda: wire.decode(body), args.repeat)
    t_build = timed(lambda: wire.build_batch("gw", 1, T0, readings, [], precision), max(1, args.repeat // 2))
    print(f"  encode {n / t_enc / 1e6:6.2f} M readings/s   decode {n / t_dec / 1e6:6.2f} M readings/s   "
          f"build_batch from objects {n / t_build / 1e6:5.2f} M readings/s")

    m_read, m_events, m_prec = mixed(args.devices, args.seconds)
    mb = wire.build_batch("gw-campus-a-01", 2, T0, m_read, m_events, m_prec)
    m_body = wire.encode(mb)
    records = len(m_read) + len(m_events)
    m_jg = json_gzip(m_read, m_events)
    print(f"mixed: {len(m_read)} readings + {len(m_events)} events")
    print(f"  wire      {len(m_body):>9} B  {len(m_body) / records:6.3f} B/record")
    print(f"  JSON+gzip {m_jg:>9} B  {m_jg / records:6.3f} B/record    ratio = {m_jg / len(m_body):.1f}x")
    agg = aggregates(readings, precision)
    a_body = wire.encode(agg)
    print(f"aggregates: {agg.n_readings} window values (4 aggs x {agg.n_series // 4} series, one 60 s window)"
          f"  {len(a_body) / agg.n_readings:6.3f} B/value")
    path = write_result("wire" + ("-quick" if args.quick else ""), {
        "benchmark": "wire", "quick": args.quick, "machine": machine(), "devices": args.devices,
        "seconds": args.seconds,
        "regular": {"readings": n, "wire_bytes_per_reading": round(len(body) / n, 4),
                    "json_gzip_bytes_per_reading": round(jg / n, 4), "ratio": round(jg / len(body), 2),
                    "encode_readings_per_s": round(n / t_enc), "decode_readings_per_s": round(n / t_dec),
                    "build_readings_per_s": round(n / t_build)},
        "mixed": {"records": records, "wire_bytes_per_record": round(len(m_body) / records, 4),
                  "json_gzip_bytes_per_record": round(m_jg / records, 4), "ratio": round(m_jg / len(m_body), 2)},
        "aggregates_bytes_per_value": round(len(a_body) / agg.n_readings, 4)})
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

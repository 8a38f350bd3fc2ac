"""``campus-sim``: publish realistic campus device traffic to an MQTT broker (or write it to a file).

Progress goes to standard error; a JSON summary (messages by ecosystem and profile, faults by kind,
publishing statistics) goes to standard output at the end. Exit codes: 0 success, 1 the run failed
(broker unreachable, messages left unacknowledged), 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.simulator import catalog
from gateway.simulator.faults import FAULT_KINDS, FaultRates, FaultSpecError
from gateway.simulator.ledger import Ledger
from gateway.simulator.publisher import Publisher, PublishError, PublisherSettings
from gateway.simulator.runner import FileSink, Progress, open_output, run
from gateway.simulator.simulator import DEFAULT_PROFILES, Simulator

_LOGGER = logging.getLogger(__name__)
SKEW_WARN_MS = 300_000  # the edge agent's default clock-skew tolerance
PASSWORD_ENV = "CAMPUS_SIM_MQTT_PASSWORD"  # never on the command line (visible in ps)

EPILOG = f"""\
examples:
  campus-sim --broker 127.0.0.1:1883 --devices 300 --rate 200 --duration 60
  campus-sim --mix z2m,lorawan --faults gaps=0.01,malformed=0.01 --ledger run.jsonl
  campus-sim --time-scale 1440 --start 2024-09-02T06:00:00+08:00 --duration 60   # a school day a minute
  campus-sim --time-scale 600 --stamp wall --duration 600   # live demo into an edge agent: 100 h of campus
  campus-sim --dry-run --out traffic.jsonl --count 10000 --seed 7

fault kinds: {", ".join(FAULT_KINDS)} (per-message probabilities)
ecosystems for --mix: all, lorawan, {", ".join(catalog.ECOSYSTEMS)}, or device types (--list-types)
password: set {PASSWORD_ENV} in the environment
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="campus-sim", description="Simulate a campus of IoT devices publishing in their real MQTT formats.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker HOST:PORT (default %(default)s)")
    p.add_argument("--devices", type=int, default=300, help="number of simulated devices (default %(default)s)")
    p.add_argument("--rate", type=float, default=200.0, help="total messages per second (default %(default)s)")
    p.add_argument("--duration", type=float, default=60.0,
                   help="run length in real seconds at --rate (default %(default)s)")
    p.add_argument("--count", type=int, default=None, help="stop after this many messages")
    p.add_argument("--mix", default="all", help="ecosystems or device types, comma-separated (default all)")
    p.add_argument("--faults", default="", help="fault rates, e.g. gaps=0.01,spikes=0.005,malformed=0.01")
    p.add_argument("--seed", type=int, default=42, help="random seed: same seed, same traffic (default %(default)s)")
    p.add_argument("--ledger", type=Path, default=None, help="write every message's expected readings to this JSONL")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="simulated seconds per real second, e.g. 1440 for a day per minute (default 1)")
    p.add_argument("--start", default=None, help="simulated start time, ISO 8601 (default: now)")
    p.add_argument("--stamp", choices=("simulated", "wall"), default="simulated",
                   help="device timestamps: simulated time (default), or the real send time, so that an edge "
                        "agent's clock-skew check accepts a --time-scale or --start demo")
    p.add_argument("--dry-run", action="store_true", help="do not publish: write topic+payload lines (see --out)")
    p.add_argument("--out", default=None, help="with --dry-run: output file, '-' for stdout (default '-')")
    p.add_argument("--qos", type=int, choices=(0, 1, 2), default=1, help="publish QoS (default %(default)s)")
    p.add_argument("--window", type=int, default=200, help="unacknowledged messages in flight (default %(default)s)")
    p.add_argument("--client-id", default=None, help="MQTT client id (default campus-sim-<pid>)")
    p.add_argument("--username", default=None, help="MQTT user name (password from the environment)")
    p.add_argument("--tls-ca", default=None, help="CA file: connect with TLS")
    p.add_argument("--profiles", type=Path, default=DEFAULT_PROFILES, help="device profile directory (for ranges)")
    p.add_argument("--no-pace", action="store_true", help="publish as fast as the broker acknowledges")
    p.add_argument("--list-types", action="store_true", help="list device types with their profiles and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return p


def parse_start(text: str | None) -> int:
    """ISO 8601 (offset optional, UTC assumed) to epoch ms; now when absent."""
    if text is None:
        return int(time.time() * 1000)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"start: {text!r} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def list_types() -> str:
    rows = [f"{'type':<15} {'ecosystem':<12} {'share':>5} {'nominal':>7}  profile"]
    for t in catalog.TYPES:
        rows.append(f"{t.name:<15} {t.ecosystem:<12} {t.share:>5.2f} {t.nominal_s:>6.0f}s  {t.profile}")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.list_types:
        sys.stdout.write(list_types() + "\n")
        return 0
    try:
        faults = FaultRates.parse(args.faults)
        start_ms = parse_start(args.start)
        if args.out is not None and not args.dry_run:
            raise ValueError("out: --out needs --dry-run (to publish, leave --out away)")
        if args.duration <= 0 and args.count is None:
            raise ValueError("duration: must be positive (or give --count)")
        settings = None
        if not args.dry_run:
            settings = PublisherSettings.parse_address(
                args.broker, client_id=args.client_id or f"campus-sim-{os.getpid()}", qos=args.qos,
                window=args.window, username=args.username, password=os.environ.get(PASSWORD_ENV),
                tls_ca_file=args.tls_ca)
        sim = Simulator.build(args.devices, seed=args.seed, mix=args.mix, faults=faults, start_ms=start_ms,
                              rate=args.rate, time_scale=args.time_scale, profiles_dir=args.profiles,
                              wall_stamps=args.stamp == "wall")
    except (ValueError, FaultSpecError) as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"campus-sim: error: {exc}\n")
        return 2
    if not args.dry_run and args.stamp == "simulated" and (
        args.time_scale != 1 or abs(start_ms - time.time() * 1000) > SKEW_WARN_MS
    ):
        _LOGGER.warning("device timestamps follow simulated time, not the wall clock: an edge agent will flag "
                        "them as clock skew (use --stamp wall for a live demo)")
    until_ms = start_ms + int(args.duration * args.time_scale * 1000) if args.duration > 0 else None
    header = {"seed": args.seed, "start_ms": start_ms, "stamp": args.stamp, "devices": args.devices, "rate": args.rate,
              "time_scale": args.time_scale, "mix": args.mix, "faults": faults.as_dict()}
    ledger = Ledger(args.ledger, header) if args.ledger else None
    report = None if args.quiet else _progress
    try:
        if args.dry_run:
            out_path = args.out or "-"
            fh = open_output(out_path)
            try:
                final = run(sim, FileSink(fh), until_ms=until_ms, count=args.count, pace=False, ledger=ledger,
                            progress=report)
            finally:
                if out_path != "-":
                    fh.close()
                else:
                    fh.flush()
            publish_stats: dict[str, Any] = {"dry_run": True, "written": final.sent}
            ok = True
        else:
            assert settings is not None
            publisher = Publisher(settings)
            try:
                publisher.connect()
            except PublishError as exc:
                sys.stderr.write(f"campus-sim: {exc}\n")
                return 1
            try:
                final = run(sim, publisher, until_ms=until_ms, count=args.count, pace=not args.no_pace,
                            ledger=ledger, progress=report)
            finally:
                ok = publisher.close(timeout=30.0)
            publish_stats = {"sent": publisher.sent, "acknowledged": publisher.acked,
                             "all_acknowledged": ok, "disconnects": publisher.disconnects}
    except KeyboardInterrupt:
        sys.stderr.write("campus-sim: interrupted\n")
        if ledger is not None:
            ledger.close(sim.summary())
        return 130
    if report is not None:
        report(final)
    summary = sim.summary()
    summary["run"] = {**publish_stats, "elapsed_s": round(final.elapsed_s, 3), "rate": round(final.rate, 1),
                      "max_lag_s": round(final.max_lag_s, 3)}
    if ledger is not None:
        ledger.close(summary)
    stream = sys.stderr.buffer if args.dry_run and (args.out or "-") == "-" else sys.stdout.buffer
    stream.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    stream.flush()
    if not ok:
        sys.stderr.write("campus-sim: not every message was acknowledged by the broker\n")
        return 1
    return 0


def _progress(p: Progress) -> None:
    sim_time = datetime.fromtimestamp(p.sim_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    lag = f", {p.lag_s:.1f}s behind" if p.lag_s > 0.5 else ""
    sys.stderr.write(f"campus-sim: {p.sent} messages in {p.elapsed_s:.0f}s ({p.rate:.0f}/s), "
                     f"simulated {sim_time} UTC{lag}\n")


if __name__ == "__main__":
    sys.exit(main())

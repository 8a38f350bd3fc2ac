"""Issue 7: the gateway's wall clock jumps forwards and backwards mid-stream, and some devices' clocks are wrong.

The real ``campus-edge run`` daemon runs under libfaketime (``LD_PRELOAD=libfaketime.so.1``) with
``FAKETIME_TIMESTAMP_FILE``: the test rewrites the file to step the daemon's wall clock by +1 h, then to
-1 h, then back, while a publisher streams. ``FAKETIME_DONT_FAKE_MONOTONIC=1`` keeps ``CLOCK_MONOTONIC``
real, as an NTP step or an operator's ``date -s`` would (asyncio, timeouts and the daemon's clock-step
detector depend on it). Broker, publisher and cloud keep the real clock.

Two settings differ from the obvious ones, for speed (4,000 messages through the daemon: 1.0 s without
libfaketime; 1.1 s as here; 5.8 s with ``libfaketimeMT.so.1``, whose lock serialises every clock call of
the daemon's threads; 11 s with ``FAKETIME_NO_CACHE=1``, which re-reads the file on every call; in the
suite the daemon then fell behind the publisher and ``/status`` timed out): ``libfaketime.so.1`` and
``FAKETIME_CACHE_DURATION=1`` (the file is re-read at most once a second, so a step takes effect within a
second; the assertions leave two seconds either side of a step).

A tenth of the devices run two hours slow (device clock skew). Checked, against real Mosquitto and a real
``campus-cloud serve`` on DuckDB:

- the daemon keeps running (no task restart), detects each step (``/status`` ``clock.steps``), keeps
  cutting and uploading batches and sending heartbeats in every phase (the cloud sees the offset);
- every acknowledged message is in DWD exactly once, by (device, id);
- a reading is flagged CLOCK_SKEW (quality bit 2, timestamp replaced by the gateway's receive time) exactly
  when device and gateway clocks disagree by more than ``reduce.max_clock_skew_s``; unflagged readings
  keep the device's timestamp;
- windows closed early by the forward step are not reopened: readings for them are counted
  (``late.too_late``), raw rows still upload.

libfaketime 0.9.10 (Debian 12) breaks Python's ``time.sleep`` when the monotonic clock is not faked
(``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` fails with EINVAL, wolfcw/libfaketime#426). The
daemon's own code does not call it; paho-mqtt does only while reconnecting to the broker, which this
test keeps up.
"""

from __future__ import annotations

import glob
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.cloud.api_fixtures import GATEWAYS, auth
from tests.integration.edge_harness import (
    dwd_ledger_rows,
    edge_process,
    streaming,
    wait_drained,
    wait_until,
    write_gateway_config,
)
from tests.integration.test_cloud_outage import cloud_service
from tests.support.procs import Broker

HOUR_S = 3600
DEVICE_SKEW_S = -2 * HOUR_S  # devices whose index ends in 3 run two hours slow
MAX_SKEW_S = 300  # reduce.max_clock_skew_s (default)
PHASES = ((0, 6.0), (+HOUR_S, 10.0), (-HOUR_S, 10.0), (0, 8.0))  # (gateway clock offset s, seconds)
NEAR_STEP_S = 2.0  # messages published this close to a step may be stamped on either side of it
CLOCK_SKEW = 2
DEVICES = 200  # a device's messages are ~0.5 s apart: receive times (ms) never collide within a device


def faketime_library() -> str:
    for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/local/lib/faketime/libfaketime.so.1",
                    "/usr/lib/faketime/libfaketime.so.1"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise RuntimeError("libfaketime is not installed: run scripts/bootstrap.sh (Debian package faketime)")


class FakeClock:
    """The daemon's wall-clock offset, read by libfaketime from a file on every time call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: list[tuple[float, int]] = []  # (real time of the step, new offset in seconds)
        self.set(0)

    def set(self, offset_s: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{offset_s:+d}\n")
        os.replace(tmp, self.path)  # atomic: the library never reads a half-written file
        self.steps.append((time.time(), offset_s))

    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": faketime_library(), "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def offset_at(self, t: float) -> tuple[int, bool]:
        """The offset in force at real time ``t``, and whether ``t`` is too close to a step to tell."""
        offset, near = 0, False
        for at, off in self.steps:
            if t >= at:
                offset = off
            near = near or (abs(t - at) < NEAR_STEP_S and at != self.steps[0][0])
        return offset, near


@pytest.mark.slow
def test_gateway_clock_jumps_and_device_skew(broker: Broker, tmp_path: Path) -> None:
    clock = FakeClock(tmp_path / "faketime.rc")
    with cloud_service(tmp_path) as cloud:
        cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=cloud.url, token=GATEWAYS["gw-a"])
        with edge_process(cfg, tmp_path / "edge.log", env=clock.env()) as edge:
            seen: list[dict] = []
            with streaming(broker.port, devices=DEVICES, ids=True,
                           skew_ms=lambda d: DEVICE_SKEW_S * 1000 if d % 10 == 3 else 0) as pub:
                # warm-up on the real clock: the first batches and heartbeats are through
                assert wait_until(lambda: (s := edge.status())["upload"]["sent"] > 0 and s["heartbeat"]["sent"] > 0,
                                  30), edge.status()["upload"]
                for offset, seconds in PHASES:
                    if offset != clock.steps[-1][1]:
                        clock.set(offset)
                    before = edge.status()
                    before["_real"] = time.time()
                    time.sleep(seconds)
                    after = edge.status()
                    after["_real"] = time.time()
                    fleet = httpx.get(f"{cloud.url}/v1/fleet/gw-a", headers=auth("operator"), timeout=10).json()
                    seen.append({"offset": offset, "before": before, "after": after, "fleet": fleet})
            final = wait_drained(edge, 60)
            assert edge.proc is not None
            assert edge.proc.poll() is None, edge.log()[-3000:]  # still running
        cloud.stop(signal.SIGTERM)

    # the daemon lived through every phase: jobs ran, uploads and heartbeats went on, the cloud saw the offset
    for phase in seen:
        b, a, offset = phase["before"], phase["after"], phase["offset"]
        assert a["upload"]["sent"] > b["upload"]["sent"], (offset, a["upload"])  # batches cut and uploaded
        # heartbeats flowed: acknowledged during the phase, and the cloud's last one carries the phase's clock
        assert a["heartbeat"]["sent"] > b["heartbeat"]["sent"], (offset, a["heartbeat"])
        assert phase["fleet"]["last_heartbeat_ms"] / 1000 > b["_real"], (offset, phase["fleet"])
        assert a["heartbeat"]["failed"] == 0
        assert a["ingest"]["pipeline_healthy"], (offset, a["ingest"])
        assert not a["upload"]["stalled"]
        assert abs(a["now_ms"] / 1000 - a["_real"] - offset) < 5  # the daemon's clock was the faked one
        assert abs(a["clock_offset_to_cloud_ms"] / 1000 - offset) < 5, (offset, a["clock_offset_to_cloud_ms"])
        assert abs(phase["fleet"]["clock_offset_ms"] / 1000 - offset) < 5, phase["fleet"]
    assert all(task["restarts"] == 0 for task in final["tasks"].values()), final["tasks"]
    assert final["clock"]["steps"] == 3, final["clock"]
    assert final["clock"]["last_step_s"] == pytest.approx(HOUR_S, abs=5)

    # every acknowledged message exactly once in DWD, flagged exactly when the clocks disagree
    rows = dwd_ledger_rows(cloud.db, "device_id, value, ts_ms, quality_flag")
    by_id = {(d, int(v)): (int(ts), int(q)) for d, v, ts, q in rows}
    ledger = pub.ledger_ids()
    assert len(rows) == len(by_id) == len(ledger)  # no duplicates
    assert set(by_id) == ledger  # nothing lost
    flagged = checked = 0
    wrong: list[tuple] = []
    for i, (dev, true_ts) in enumerate(pub.sent):
        ts, quality = by_id[(dev, i // DEVICES)]
        gateway_off, near = clock.offset_at(pub.sent_at[i])
        device_skew = DEVICE_SKEW_S if (i % DEVICES) % 10 == 3 else 0
        is_flagged = bool(quality & CLOCK_SKEW)
        flagged += is_flagged
        if near:
            continue
        checked += 1
        expect_flag = abs(device_skew - gateway_off) > MAX_SKEW_S
        receive_ms = pub.sent_at[i] * 1000 + gateway_off * 1000
        ok = (is_flagged and abs(ts - receive_ms) < 10_000) if expect_flag else (not is_flagged and ts == true_ts)
        if not ok:
            wrong.append((i, dev, true_ts, ts, quality, gateway_off, device_skew))
    print(f"\nclock jumps: {len(clock.steps) - 1} gateway clock steps (+1 h, -2 h, +1 h), devices 2 h slow: "
          f"{DEVICES // 10}; {len(ledger)} messages acknowledged, {len(rows)} in DWD, lost "
          f"{len(ledger - set(by_id))}, duplicated {len(rows) - len(by_id)}; {flagged} flagged CLOCK_SKEW; "
          f"{checked} checked against the expected flag and timestamp, {len(wrong)} wrong; "
          f"windows: {final['late']}")
    assert not wrong, wrong[:10]
    assert checked > 0.5 * len(ledger)  # the rest were published within 2 s of a step
    # windows: the +1 h step closed the open 5-minute windows early; readings for them stamped after the step
    # back (the -1 h phase and the rest of the window) are counted too late (raw rows still upload)
    assert final["late"].get("too_late", 0) > 0
    assert flagged > 0.5 * len(ledger)  # two of four phases + the slow devices



@pytest.mark.slow
def test_backlog_of_devices_with_wrong_clocks_lands_exactly_once(broker: Broker, tmp_path: Path) -> None:
    """Devices two hours slow: every reading carries the gateway's receive time (CLOCK_SKEW). The daemon
    is stopped for a few seconds while they publish; on restart the broker delivers their queued messages
    in one burst, many of a device within the same millisecond. DWD de-duplicates on (device, metric,
    time): without unique receive stamps per series (``edge_agent.decode.stamps``) a third of them were
    dropped there as duplicates of each other."""
    with cloud_service(tmp_path) as cloud:
        cfg = write_gateway_config(tmp_path, broker_port=broker.port, api_url=cloud.url, token=GATEWAYS["gw-a"])
        with edge_process(cfg, tmp_path / "edge.log") as edge:
            with streaming(broker.port, ids=True, skew_ms=lambda d: DEVICE_SKEW_S * 1000) as pub:
                for _ in range(2):
                    time.sleep(2)
                    assert edge.stop() == 0  # SIGTERM: commits and acknowledges what it holds
                    time.sleep(3)  # ~1,000 messages queue in the broker, ~50 per device
                    edge.start()
                time.sleep(2)
            moved = wait_drained(edge, 60)["ingest"]["receive_stamps_moved"]
        cloud.stop(signal.SIGTERM)
    rows = dwd_ledger_rows(cloud.db, "device_id, value, quality_flag")
    ledger = pub.ledger_ids()
    found = {(d, int(v)) for d, v, _ in rows}
    print(f"\nskewed backlog: {len(ledger)} messages, {len(rows)} DWD rows, lost {len(ledger - found)}, "
          f"duplicated {len(rows) - len(found)}, receive stamps moved after restarts: {moved}")
    assert moved > 0  # the burst after the last restart had same-millisecond stamps
    assert found == ledger
    assert len(rows) == len(ledger)
    assert all(q & CLOCK_SKEW for _, _, q in rows)

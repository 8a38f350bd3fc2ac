"""campus-sim: determinism, fault rates and the ledger, the CLI (help, errors, dry run), the library API."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gateway.simulator import FAULT_KINDS, FaultRates, FaultSpecError, Simulator, Truth
from gateway.simulator.cli import main
from gateway.simulator.ledger import read_ledger

START = 1_725_235_200_000


def _fingerprint(sim: Simulator, n: int) -> list[tuple[str, bytes, str | None]]:
    return [(m.topic, m.payload, m.fault) for m in sim.messages(n)]


def test_same_seed_same_traffic_other_seed_other_traffic() -> None:
    faults = FaultRates(gaps=0.02, malformed=0.02, duplicates=0.02, skew=0.02, spikes=0.02)
    a = _fingerprint(Simulator.build(120, seed=5, start_ms=START, faults=faults), 1500)
    b = _fingerprint(Simulator.build(120, seed=5, start_ms=START, faults=faults), 1500)
    c = _fingerprint(Simulator.build(120, seed=6, start_ms=START, faults=faults), 1500)
    assert a == b
    assert a != c


def test_messages_continue_where_the_last_call_stopped() -> None:
    one = Simulator.build(60, seed=1, start_ms=START, faults=FaultRates(duplicates=0.2))
    two = Simulator.build(60, seed=1, start_ms=START, faults=FaultRates(duplicates=0.2))
    first = list(one.messages(7)) + list(one.messages(13))
    assert [m.seq for m in first] == list(range(20))
    assert [m.payload for m in first] == [m.payload for m in two.messages(20)]
    last = list(one.messages(until_ms=START + 60_000))
    assert all(m.ts_ms < START + 60_000 for m in last)
    assert [m.ts_ms for m in first + last] == sorted(m.ts_ms for m in first + last)
    topic, payload, expected = first[0]
    assert isinstance(payload, bytes)
    assert isinstance(topic, str)
    assert all(isinstance(e, Truth) for e in expected)


def test_fault_rates_match_the_requested_rates() -> None:
    rates = FaultRates(gaps=0.03, spikes=0.03, out_of_range=0.03, duplicates=0.03, skew=0.03, malformed=0.03,
                       resets=0.03)
    sim = Simulator.build(300, seed=21, start_ms=START, rate=200, time_scale=60, faults=rates)
    for _ in sim.messages(15000):
        pass
    n = sim.scheduled
    for kind in FAULT_KINDS:
        expected = getattr(rates, kind) * n
        got = sim.faults[kind]
        assert abs(got - expected) < 5 * math.sqrt(expected) + 0.08 * expected, (kind, got, expected)
    gap_records = [r for r in sim.ledger if r.kind == "gaps"]
    assert len(gap_records) == sim.faults["gaps"]
    assert sim.suppressed >= 3 * len(gap_records)


def test_fault_spec_parsing() -> None:
    assert FaultRates.parse("gaps=0.01, malformed=0.02") == FaultRates(gaps=0.01, malformed=0.02)
    assert FaultRates.parse("") == FaultRates()
    with pytest.raises(FaultSpecError, match="unknown kind 'gap'"):
        FaultRates.parse("gap=0.1")
    with pytest.raises(FaultSpecError, match="spikes has value 'x'"):
        FaultRates.parse("spikes=x")
    with pytest.raises(FaultSpecError, match="not a probability"):
        FaultRates(skew=1.5)


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--broker", "--devices", "--rate", "--duration", "--mix", "--faults", "--seed", "--ledger",
                   "--time-scale", "--start", "--dry-run", "--out"):
        assert option in text


@pytest.mark.parametrize(("args", "message"), [
    (["--faults", "gaps=lots"], "gaps has value 'lots'"),
    (["--mix", "zigbee3"], "unknown ecosystem or device type 'zigbee3'"),
    (["--start", "yesterday"], "not an ISO 8601"),
    (["--devices", "0"], "at least 1"),
    (["--out", "x.jsonl"], "needs --dry-run"),
])
def test_usage_errors_exit_2_with_a_clear_message(args: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dry-run", *args] if "--out" not in args else args) == 2
    assert message in capsys.readouterr().err


def test_unreachable_broker_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.procs import free_port

    assert main(["--broker", f"127.0.0.1:{free_port()}", "--duration", "1", "-q"]) == 1
    assert "cannot connect" in capsys.readouterr().err


def test_dry_run_writes_topic_payload_lines_ledger_and_summary(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out, ledger = tmp_path / "traffic.jsonl", tmp_path / "ledger.jsonl"
    rc = main(["--dry-run", "--out", str(out), "--ledger", str(ledger), "--devices", "80", "--rate", "100",
               "--duration", "10", "--seed", "3", "--faults", "gaps=0.05,malformed=0.05,duplicates=0.05",
               "--start", "2024-09-02T09:00:00+08:00", "-q"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == summary["messages"] == summary["run"]["written"]
    assert 700 <= len(lines) <= 1300  # 100 msg/s for 10 s
    assert all("topic" in x and ("payload" in x or "payload_b64" in x) for x in lines)
    assert sum(summary["by_ecosystem"].values()) == len(lines)
    assert summary["faults"]["malformed"] > 0
    assert summary["faults"]["gaps"] > 0
    records = read_ledger(ledger)
    assert records[0]["ledger"] == "campus-sim"
    assert records[0]["seed"] == 3
    assert records[-1]["summary"]["messages"] == len(lines)
    messages = [r for r in records if "seq" in r and "topic" in r]
    assert [m["topic"] for m in messages] == [x["topic"] for x in lines]
    assert sum(1 for r in records if r.get("fault") == "gaps") == summary["faults"]["gaps"]
    assert all(m.get("fault") != "malformed" or "readings" not in m for m in messages)
    good = [m for m in messages if "fault" not in m and "readings" in m]
    assert good
    assert all(len(r) == 3 for m in good for r in m["readings"])


def test_list_types(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-types"]) == 0
    text = capsys.readouterr().out
    assert "zigbee2mqtt.tuya_ts0601_air_quality" in text
    assert "chirpstack.milesight_am300" in text


def test_every_cli_option_is_documented(project_root: Path) -> None:
    from gateway.simulator.cli import build_parser

    doc = (project_root / "docs" / "simulator.md").read_text()
    for action in build_parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert f"`{option}" in doc, f"{option} is not documented in docs/simulator.md"

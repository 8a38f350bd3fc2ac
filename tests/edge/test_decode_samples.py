"""Every shipped profile decodes real sample messages to the expected values, units, flags and times.

Expectations live in tests/data/samples/cases.yaml next to the samples (see its header).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.decode import decode
from edge_agent.model import DecodeResult, Message, Quality
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
CASES: list[dict[str, Any]] = yaml.safe_load((SAMPLES / "cases.yaml").read_text(encoding="utf-8"))
KEY = Pseudonymizer({"k1": bytes(range(32))}, "k1")


def _ms(text: Any) -> int:
    if isinstance(text, datetime):
        return int(text.timestamp() * 1000)
    return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * 1000)


def _sample(ref: str) -> dict[str, Any]:
    name, _, index = ref.partition("#")
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines()
    return json.loads(lines[int(index)])


def _message(case: dict[str, Any]) -> Message:
    now = _ms(case["now"])
    if "sample" in case:
        s = _sample(case["sample"])
        topic, payload = case.get("topic") or s["topic"], s["payload"]
    else:
        topic, payload = case["topic"], case["payload"]
    if case.get("wrap") == "tts_decoded_payload":
        device = topic.split("/")[3]
        payload = json.dumps(
            {
                "end_device_ids": {"device_id": device},
                "received_at": case["now"] if isinstance(case["now"], str) else case["now"].isoformat(),
                "uplink_message": {"f_port": 85, "decoded_payload": json.loads(payload)},
            }
        )
    return Message(topic, payload.encode("utf-8"), now)


def _case_id(case: dict[str, Any]) -> str:
    exp = case["expect"]
    return f"{case.get('sample') or case['topic']}->{exp.get('profile') or exp.get('quarantine')}"


@pytest.fixture(scope="module")
def profile_sets(profiles_dir: Path) -> dict[str, ProfileSet]:
    return {tz: ProfileSet.load(profiles_dir, timezone=tz) for tz in ("UTC", "Asia/Shanghai")}


def _decode(case: dict[str, Any], sets: dict[str, ProfileSet]) -> DecodeResult:
    msg = _message(case)
    return decode(
        msg,
        sets[case.get("timezone", "UTC")],
        now_ms=msg.received_ms,
        pseudonymizer=KEY if case.get("key") else None,
    )


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_sample_decodes_as_expected(case: dict[str, Any], profile_sets: dict[str, ProfileSet]) -> None:
    result = _decode(case, profile_sets)
    exp = case["expect"]
    if "quarantine" in exp:
        assert result.quarantine is not None, result
        assert result.quarantine.reason == exp["quarantine"], result.quarantine
    else:
        assert result.quarantine is None, result.quarantine
    if "profile" in exp:
        assert result.profile is not None
        assert result.profile.id == exp["profile"], result.profile
    if "device" in exp:
        assert result.device == exp["device"]
    if "devices" in exp:
        assert sorted({r.device for r in result.readings}) == sorted(exp["devices"])
    got: dict[str, list[tuple[float, str]]] = {}
    for r in result.readings:
        got.setdefault(r.metric, []).append((r.value, r.unit))
        assert r.profile == result.profile
    for metric, want in exp.get("readings", {}).items():
        pairs = want if isinstance(want[0], list) else [want]
        assert metric in got, f"{metric} missing; got {sorted(got)}"
        assert len(got[metric]) == len(pairs), got[metric]
        for (value, unit), (wv, wu) in zip(got[metric], pairs, strict=True):
            assert unit == wu, (metric, unit)
            assert _close(value, float(wv)), (metric, value, wv)
    for metric in exp.get("absent", []):
        assert metric not in got
    if "quality" in exp:
        want_q = 0
        for name in exp["quality"]:
            want_q |= Quality[name.upper()]
        for item in (*result.readings, *result.events):
            assert item.quality == want_q, (item, exp["quality"])
    if "ts" in exp:
        for item in (*result.readings, *result.events, *result.waveforms):
            assert item.ts_ms == _ms(exp["ts"]), item
    if "priority" in exp:
        assert all(r.priority == exp["priority"] for r in result.readings)
    if "events" in exp:
        assert [e.kind for e in result.events] == [e["kind"] for e in exp["events"]]
        for ev, want_e in zip(result.events, exp["events"], strict=True):
            attrs = ev.attr_dict()
            for name, value in want_e.get("attrs", {}).items():
                if value == "PSEUDONYM":
                    assert isinstance(attrs[name], str)
                    assert attrs[name].startswith("k1:")
                    assert len(attrs[name]) == 19
                else:
                    assert attrs[name] == value, (name, attrs)
            if "priority" in want_e:
                assert ev.priority == want_e["priority"]
    if "waveforms" in exp:
        assert len(result.waveforms) == len(exp["waveforms"])
        for w, want_w in zip(result.waveforms, exp["waveforms"], strict=True):
            assert (w.metric, len(w.samples), w.sample_rate_hz, w.unit) == (
                want_w["metric"],
                want_w["samples"],
                want_w["sample_rate_hz"],
                want_w["unit"],
            )
            for got_v, want_v in zip(w.samples, want_w.get("first", []), strict=False):
                assert _close(got_v, want_v)
    for secret in exp.get("never", []):
        assert secret not in repr(result), f"{secret!r} leaked into the result"


def test_every_shipped_profile_has_a_sample(profile_sets: dict[str, ProfileSet]) -> None:
    covered = {c["expect"].get("profile") for c in CASES}
    shipped = {p.id for p in profile_sets["UTC"]}
    assert shipped - covered == set(), "profiles without a sample case in tests/data/samples/cases.yaml"


def test_every_sample_line_is_used() -> None:
    used = {c["sample"] for c in CASES if "sample" in c}
    for path in SAMPLES.glob("*.jsonl"):
        n = len(path.read_text(encoding="utf-8").splitlines())
        missing = {f"{path.name}#{i}" for i in range(n)} - used
        assert not missing, f"sample lines without an expectation: {sorted(missing)}"

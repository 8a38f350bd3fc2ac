"""Profile loading, topic patterns, paths, the unit registry, and profile matching rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_agent.decode import decode
from edge_agent.model import Message, Quality, Reason
from edge_agent.profiles import MetricRegistry, ProfileSet, matcher
from edge_agent.profiles.paths import MISSING, PathError, format_path, get, parse_path
from edge_agent.profiles.topics import TopicPatternError, compile_pattern, topic_group

NOW = 1_714_550_400_000
ECOSYSTEMS = ("zigbee2mqtt", "tasmota", "shelly", "senml", "influx", "chirpstack", "tts")


@pytest.fixture(scope="module")
def shipped(profiles_dir: Path) -> ProfileSet:
    return ProfileSet.load(profiles_dir)


def _decode(ps: ProfileSet, topic: str, payload: str | bytes) -> object:
    data = payload.encode() if isinstance(payload, str) else payload
    return decode(Message(topic, data, NOW), ps, now_ms=NOW)


# --- the shipped set ------------------------------------------------------------------------------------


def test_shipped_profiles_load_with_unique_ids(shipped: ProfileSet) -> None:
    ids = [p.id for p in shipped]
    assert len(ids) == len(set(ids)) >= 20
    for p in shipped:
        assert p.ref.version >= 1
        assert p.file.endswith(".yaml")
        assert p.domain in ("public", "teaching", "research", "service", "management")


def test_one_generic_profile_per_ecosystem(shipped: ProfileSet) -> None:
    generic = {p.ecosystem for p in shipped if p.generic}
    assert set(ECOSYSTEMS) <= generic


def test_extends_inherits_source_but_not_metrics(shipped: ProfileSet) -> None:
    base, child = shipped.get("zigbee2mqtt.generic"), shipped.get("zigbee2mqtt.aqara_wsdcgq11lm")
    assert base is not None
    assert child is not None
    assert [e.text for e in child.excludes] == [e.text for e in base.excludes]
    assert child.device_sources == base.device_sources
    assert {m.name for m in child.metrics} != {m.name for m in base.metrics}
    assert not child.generic
    assert child.match


def test_subscriptions_cover_every_topic(shipped: ProfileSet) -> None:
    subs = shipped.subscriptions()
    assert "zigbee2mqtt/#" in subs
    assert "#" not in subs
    assert "application/+/device/+/event/up" in subs


def test_personal_data_profiles_are_flagged(shipped: ProfileSet) -> None:
    assert shipped.needs_pseudonymizer
    rfid = shipped.get("esp_rfid.reader")
    assert rfid is not None
    assert rfid.personal
    assert rfid.field_classification["card_swipe.card"] == "sensitive"


# --- topic patterns -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "topic", "captures"),
    [
        ("zigbee2mqtt/{device+}", "zigbee2mqtt/Kühlschrank Küche", {"device": "Kühlschrank Küche"}),
        ("zigbee2mqtt/{device+}", "zigbee2mqtt/floor 2/room 204/pir", {"device": "floor 2/room 204/pir"}),
        ("tele/{device+}/SENSOR", "tele/a/b/SENSOR", {"device": "a/b"}),
        ("{device}/status/switch:0", "shellyplus1pm-a8/status/switch:0", {"device": "shellyplus1pm-a8"}),
        (
            "v3/{app}/devices/{device}/up",
            "v3/app1@tenant1/devices/dev1/up",
            {"app": "app1@tenant1", "device": "dev1"},
        ),
        ("/rfid/send", "/rfid/send", {}),
        ("a/+/c", "a//c", {}),
        ("a/#", "a", {}),
        ("a/#", "a/b/c", {}),
        ("#", "anything/at/all", {}),
    ],
)
def test_topic_pattern_matches(pattern: str, topic: str, captures: dict[str, str]) -> None:
    assert compile_pattern(pattern).match(topic) == captures


@pytest.mark.parametrize(
    ("pattern", "topic"),
    [
        ("zigbee2mqtt/{device+}", "zigbee2mqtt"),
        ("zigbee2mqtt/{device+}", "zigbee2mqtt/"),
        ("zigbee2mqtt/{device}", "zigbee2mqtt/a/b"),
        ("tele/{device}/SENSOR", "tele/x/STATE"),
        ("a/#", "ab"),
    ],
)
def test_topic_pattern_rejects(pattern: str, topic: str) -> None:
    assert compile_pattern(pattern).match(topic) is None


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("a/#/b", "level 2: '#' must be the last level"),
        ("a/b+", "must occupy a whole level"),
        ("a/{x}/{x}", "placeholder {x} is used twice"),
        ("a/pre{x}", "is not a placeholder"),
        ("", "empty"),
    ],
)
def test_bad_topic_patterns(pattern: str, problem: str) -> None:
    with pytest.raises(TopicPatternError, match=problem):
        compile_pattern(pattern)


def test_topic_pattern_metadata() -> None:
    p = compile_pattern("application/{app}/device/{device}/event/up")
    assert p.first_literal == "application"
    assert p.literal_levels == 4
    assert not p.exact
    assert p.mqtt_filter() == "application/+/device/+/event/up"
    assert compile_pattern("tele/{device+}/SENSOR").mqtt_filter() == "tele/#"
    assert compile_pattern("esp-rfid/send").exact
    assert topic_group("zigbee2mqtt/kitchen") == "zigbee2mqtt/+"
    assert topic_group("application/a/device/b/event/up") == "application/+/+/+/#"


# --- paths ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("", ()),
        ("$", ()),
        ("a.b.c", ("a", "b", "c")),
        ("params.switch:0.apower", ("params", "switch:0", "apower")),
        (
            "uplink_message.decoded_payload.Battery Status",
            ("uplink_message", "decoded_payload", "Battery Status"),
        ),
        ('SDS0X1["PM2.5"]', ("SDS0X1", "PM2.5")),
        ("x['a[b]'].y", ("x", "a[b]", "y")),
        ("rxInfo[0].rssi", ("rxInfo", 0, "rssi")),
        ("[1][-1]", (1, -1)),
        ("Signal (dBm)", ("Signal (dBm)",)),
    ],
)
def test_parse_path(text: str, steps: tuple[object, ...]) -> None:
    assert parse_path(text) == steps


@pytest.mark.parametrize("text", ["a..b", "a.", ".a", "a[x]", "a[0", 'a["b]', "a[0]b"])
def test_bad_paths(text: str) -> None:
    with pytest.raises(PathError):
        parse_path(text)


def test_get_never_raises() -> None:
    doc = {"a": [{"b": 1}, None], "switch:0": {"x": 2}}
    assert get(doc, ("a", 0, "b")) == 1
    assert get(doc, ("a", -1)) is None
    assert get(doc, ("a", 5)) is MISSING
    assert get(doc, ("a", "b")) is MISSING
    assert get(doc, ("switch:0", "x", "y")) is MISSING
    assert get(42, ("a",)) is MISSING
    assert format_path(("SDS0X1", "PM2.5", 0)) == 'SDS0X1["PM2.5"][0]'


# --- registry -------------------------------------------------------------------------------------------


def test_unit_conversions(shipped: ProfileSet) -> None:
    reg: MetricRegistry = shipped.registry

    def conv(src: str, dst: str, v: float) -> float:
        code = reg.resolve_unit(src)
        assert code is not None, src
        c = reg.conversion(code, dst)
        assert c is not None
        return v * c[0] + c[1]

    assert conv("°F", "Cel", 212) == pytest.approx(100)
    assert conv("K", "Cel", 273.15) == pytest.approx(0)
    assert conv("Wh", "kWh", 1234) == pytest.approx(1.234)
    assert conv("mV", "V", 2995) == pytest.approx(2.995)
    assert conv("inHg", "hPa", 29.92) == pytest.approx(1013.2, abs=0.1)
    assert conv("mg/m³", "ug/m3", 0.07) == pytest.approx(70)
    assert conv("μg/m³", "ug/m3", 5) == 5  # Greek mu
    assert conv("µg/m³", "ug/m3", 5) == 5  # micro sign
    assert conv("L", "m3", 1500) == pytest.approx(1.5)
    assert conv("g", "m/s2", 1) == pytest.approx(9.80665)
    assert conv("%", "1", 50) == pytest.approx(0.5)
    assert reg.conversion("V", "Cel") is None
    assert reg.resolve_unit("degC2") is None


def test_every_registered_metric_unit_exists(shipped: ProfileSet) -> None:
    reg = shipped.registry
    for m in reg.metrics.values():
        assert m.unit in reg.units
        assert m.name_zh
        assert m.name_en
        assert m.name.replace("_", "").isalnum()
        assert m.name == m.name.lower()


# --- matching -------------------------------------------------------------------------------------------


def _root(tmp_path: Path, profiles_dir: Path, files: dict[str, str]) -> Path:
    shutil.copy(profiles_dir / "metrics.yaml", tmp_path / "metrics.yaml")
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _profile(
    pid: str,
    *,
    match: str = "",
    generic: bool = False,
    topic: str = "room/{device}",
    metric: str = "temperature_air",
    path: str = "t",
) -> str:
    return (
        f"id: {pid}\nversion: 1\nvendor: T\nmodel: {pid}\necosystem: test\ndomain: public\n"
        f"generic: {'true' if generic else 'false'}\n"
        f'source:\n  topic: "{topic}"\n  format: json\n{match}'
        f"metrics:\n  - {{name: {metric}, path: {path}}}\n"
    )


def test_specific_beats_generic(shipped: ProfileSet) -> None:
    r = _decode(shipped, "zigbee2mqtt/x", '{"temperature":21,"humidity":50,"pressure":1000}')
    assert r.profile.id == "zigbee2mqtt.aqara_wsdcgq11lm"  # type: ignore[attr-defined]
    r = _decode(shipped, "zigbee2mqtt/x", '{"temperature":21}')
    assert r.profile.id == "zigbee2mqtt.generic"  # type: ignore[attr-defined]
    assert all(x.quality & Quality.GENERIC for x in r.readings)  # type: ignore[attr-defined]


def test_superset_of_conditions_wins_and_disjoint_sets_are_ambiguous(
    tmp_path: Path, profiles_dir: Path
) -> None:
    root = _root(
        tmp_path,
        profiles_dir,
        {
            "th.yaml": _profile("t.th", match="  match: {keys: [t, h]}\n"),
            "thp.yaml": _profile("t.thp", match="  match: {keys: [t, h, p]}\n"),
            "tx.yaml": _profile("t.tx", match="  match: {keys: [t, x]}\n"),
            "gen.yaml": _profile("t.gen", generic=True),
        },
    )
    ps = ProfileSet.load(root)
    assert _decode(ps, "room/a", '{"t":1,"h":2}').profile.id == "t.th"  # type: ignore[attr-defined]
    assert _decode(ps, "room/a", '{"t":1,"h":2,"p":3}').profile.id == "t.thp"  # type: ignore[attr-defined]
    assert _decode(ps, "room/a", '{"t":1}').profile.id == "t.gen"  # type: ignore[attr-defined]
    r = _decode(ps, "room/a", '{"t":1,"h":2,"x":3}')
    assert r.quarantine.reason == Reason.AMBIGUOUS_PROFILE  # type: ignore[attr-defined]
    assert "t.th@1" in r.quarantine.detail
    assert "t.tx@1" in r.quarantine.detail
    assert ps.stats.ambiguous["room/+"] == 1


def test_equal_profiles_are_ambiguous_never_guessed(tmp_path: Path, profiles_dir: Path) -> None:
    root = _root(tmp_path, profiles_dir, {"a.yaml": _profile("t.a"), "b.yaml": _profile("t.b")})
    ps = ProfileSet.load(root)
    r = _decode(ps, "room/1", '{"t": 20}')
    assert r.quarantine.reason == Reason.AMBIGUOUS_PROFILE  # type: ignore[attr-defined]
    assert not r.readings  # type: ignore[attr-defined]


def test_more_literal_topic_levels_win(tmp_path: Path, profiles_dir: Path) -> None:
    root = _root(
        tmp_path,
        profiles_dir,
        {
            "a.yaml": _profile("t.any", topic="room/{device}"),
            "b.yaml": _profile("t.lab", topic="room/lab-1", match='  device_id: ["path:id"]\n'),
        },
    )
    ps = ProfileSet.load(root)
    assert _decode(ps, "room/lab-1", '{"t":1,"id":"x"}').profile.id == "t.lab"  # type: ignore[attr-defined]
    assert _decode(ps, "room/lab-2", '{"t":1}').profile.id == "t.any"  # type: ignore[attr-defined]


def test_device_map_overrides_matching(tmp_path: Path, profiles_dir: Path) -> None:
    root = _root(tmp_path, profiles_dir, {"a.yaml": _profile("t.a"), "b.yaml": _profile("t.b", path="temp")})
    ps = ProfileSet.load(root, device_map={"r1": "t.b"})
    r = _decode(ps, "room/r1", '{"t": 1, "temp": 2}')
    assert r.profile.id == "t.b"
    assert r.readings[0].value == 2
    assert _decode(ps, "room/r2", '{"t": 1}').quarantine.reason == Reason.AMBIGUOUS_PROFILE  # type: ignore[attr-defined]


def test_device_map_to_a_profile_with_another_topic_is_bad_topic(shipped: ProfileSet) -> None:
    ps = shipped.with_device_map({"lab-1": "tasmota.energy_plug"})
    r = _decode(ps, "zigbee2mqtt/lab-1", '{"temperature": 21}')
    assert r.quarantine.reason == Reason.BAD_TOPIC  # type: ignore[attr-defined]
    assert "tasmota.energy_plug" in r.quarantine.detail  # type: ignore[attr-defined]


def test_device_globs_select_the_model(shipped: ProfileSet) -> None:
    body = '{"id":0,"apower":5.0,"aenergy":{"total":10.0}}'
    assert _decode(shipped, "shellyplus1pm-aa/status/switch:0", body).profile.id == "shelly.plus_pm_switch"  # type: ignore[attr-defined]
    assert _decode(shipped, "office-relay/status/switch:0", body).profile.id == "shelly.generic_status"  # type: ignore[attr-defined]


def test_payload_conditions_failing_everywhere_is_no_profile(tmp_path: Path, profiles_dir: Path) -> None:
    root = _root(tmp_path, profiles_dir, {"a.yaml": _profile("t.a", match="  match: {equals: {kind: th}}\n")})
    ps = ProfileSet.load(root)
    r = _decode(ps, "room/1", '{"kind": "other", "t": 1}')
    assert r.quarantine.reason == Reason.NO_PROFILE
    assert "match conditions" in r.quarantine.detail
    assert _decode(ps, "room/1", '{"kind": "th", "t": 1}').profile.id == "t.a"  # type: ignore[attr-defined]


def test_equals_distinguishes_true_from_one(tmp_path: Path, profiles_dir: Path) -> None:
    root = _root(tmp_path, profiles_dir, {"a.yaml": _profile("t.a", match="  match: {equals: {on: true}}\n")})
    ps = ProfileSet.load(root)
    assert _decode(ps, "room/1", '{"on": 1, "t": 1}').quarantine.reason == Reason.NO_PROFILE  # type: ignore[attr-defined]
    assert _decode(ps, "room/1", '{"on": true, "t": 1}').quarantine is None  # type: ignore[attr-defined]


def test_candidates_are_cached_per_topic_and_bounded(
    shipped: ProfileSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    ps = shipped.with_device_map({})
    first = ps.match_topic("zigbee2mqtt/a")
    assert ps.match_topic("zigbee2mqtt/a") is first
    assert {c.profile.id for c in first.candidates} >= {"zigbee2mqtt.generic", "zigbee2mqtt.aqara_wsdcgq11lm"}
    monkeypatch.setattr(matcher, "TOPIC_CACHE_SIZE", 3)
    for i in range(10):
        ps.match_topic(f"zigbee2mqtt/d{i}")
    assert ps.stats.cache_clears >= 2


def test_excluded_topics_name_the_exclusion(shipped: ProfileSet) -> None:
    r = _decode(shipped, "zigbee2mqtt/lab-1/set", '{"state":"ON"}')
    assert r.quarantine.reason == Reason.NO_PROFILE  # type: ignore[attr-defined]
    assert "zigbee2mqtt.generic@1" in r.quarantine.detail
    assert "/set" in r.quarantine.detail


def test_reference_documents_every_profile_metric_and_reason(shipped: ProfileSet, project_root: Path) -> None:
    doc = (project_root / "docs" / "device-profiles.md").read_text(encoding="utf-8")
    for p in shipped:
        assert f"`{p.id}`" in doc, p.id
    for name in shipped.registry.metrics:
        assert f"`{name}`" in doc, name
    for reason in Reason:
        assert f"`{reason.value}`" in doc, reason

"""Classification and grading: levels, roles, visible columns, and the identifier scan after a simulated
run through the real edge decoder (raw card numbers and names never reach the warehouse)."""

from __future__ import annotations

import hashlib

import pytest

from cloud_ingest.governance.classification import (
    LEVELS,
    POLICIES,
    ROLE_MAX_LEVEL,
    can_read,
    classification_summary,
    columns_hidden,
    columns_visible,
    policy,
    table_level,
)
from cloud_ingest.governance.dictionary import default_dictionary
from cloud_ingest.governance.errors import AccessError, GovernanceError
from cloud_ingest.governance.scan import scan_for_identifiers
from cloud_ingest.warehouse import Warehouse
from cloud_ingest.warehouse.errors import SchemaError
from cloud_ingest.warehouse.schema import LEVELS as SCHEMA_LEVELS
from cloud_ingest.warehouse.schema import load_schema
from edge_agent.decode import decode
from edge_agent.model import Event, Message, ProfileRef
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles import ProfileSet
from edge_agent.wire import decode as wire_decode
from edge_agent.wire import encode
from gateway.simulator import EventTruth, Simulator
from tests.governance import edge_run
from tests.governance.conftest import REGISTRY_DEMO


def test_levels_agree_with_the_schema_and_the_dictionary() -> None:
    assert LEVELS == SCHEMA_LEVELS
    assert tuple(p.code for p in POLICIES) == LEVELS
    assert default_dictionary().table("classification_level").codes() == LEVELS
    assert "never stored" in policy("L4").storage


@pytest.mark.parametrize(("role", "readable"), [
    ("public_viewer", {"L1"}), ("analyst", {"L1", "L2"}), ("data_steward", {"L1", "L2", "L3"}),
    ("security_admin", {"L1", "L2", "L3", "L4"}), ("intruder", set()),
])
def test_roles_read_up_to_their_level(role: str, readable: set[str]) -> None:
    assert {lv for lv in LEVELS if can_read(role, lv)} == readable


def test_an_unknown_level_is_an_error_not_a_guess() -> None:
    with pytest.raises(AccessError, match="unknown classification level 'L9'"):
        can_read("security_admin", "L9")


def test_visible_columns_follow_the_schema_levels() -> None:
    acs = load_schema().table("dwd_acs_event_di")
    assert table_level(acs) == "L3"
    analyst = columns_visible("analyst", "dwd_acs_event_di")
    assert "subject_pseudo" not in analyst
    assert "attrs_json" not in analyst
    assert "device_id" in analyst
    assert columns_hidden("analyst", "dwd_acs_event_di") == ("subject_pseudo", "attrs_json")
    assert columns_visible("data_steward", "dwd_acs_event_di") == acs.column_names
    ads = load_schema().table("ads_env_co2_compliance_1d").column_names
    assert columns_visible("public_viewer", "ads_env_co2_compliance_1d") == tuple(c for c in ads if c != "load_id")
    assert "device_id" not in columns_visible("public_viewer", "dwd_env_reading_di")
    assert columns_visible("nobody", "dwd_env_reading_di") == ()
    with pytest.raises(SchemaError):
        columns_visible("analyst", "no_such_table")


def test_no_warehouse_column_is_l4() -> None:
    # L4 never leaves the gateway: a column of that level in the warehouse would contradict the policy
    summary = classification_summary()
    assert all(level != "L4" for cols in summary.values() for level in cols.values())
    assert set(ROLE_MAX_LEVEL) == {"public_viewer", "analyst", "data_steward", "security_admin"}


def test_raw_card_numbers_and_names_never_reach_the_warehouse(duck: Warehouse) -> None:
    duck.load_registry_file(REGISTRY_DEMO)
    run = edge_run.run(duck)
    swipes = duck.query("SELECT COUNT(*) FROM dwd_acs_event_di WHERE subject_pseudo LIKE 'p1:%'")[1][0][0]
    assert swipes == 60  # the swipes arrived, pseudonymised
    assert scan_for_identifiers(duck, run.cards) == []
    assert scan_for_identifiers(duck, run.names) == []
    assert scan_for_identifiers(duck, [c.lower() for c in run.cards]) == []

    # negative control: a reader whose profile forgot protection sends a raw card number
    leaked = run.cards[0]
    ev = Event("rfid-t1", "card_swipe", edge_run.T0_MS + 5, ProfileRef("esp_rfid.reader", 1),
               (("card", leaked.lower()), ("result", "Admin")))
    body = encode(edge_run.make_batch("gw-teach", 99, [], [ev], edge_run.T0_MS + 10))
    duck.land_batch(wire_decode(body), body_checksum=hashlib.sha256(body).hexdigest(),
                    received_ms=edge_run.T0_MS + 20)
    duck.run_transforms()
    hits = scan_for_identifiers(duck, run.cards)
    assert ("ods_iot_event_di", "attrs_json", 1) in hits
    assert ("dwd_acs_event_di", "attrs_json", 1) in hits
    assert ("dwd_acs_event_di", "subject_pseudo", 1) in hits
    assert scan_for_identifiers(duck, run.cards, case_insensitive=False) == []  # stored lower case


def test_scan_refuses_identifiers_too_short_to_mean_anything(duck: Warehouse) -> None:
    assert scan_for_identifiers(duck, []) == []
    with pytest.raises(GovernanceError, match="shorter than 4"):
        scan_for_identifiers(duck, ["ab"])


def test_simulated_campus_run_leaves_no_raw_identifier(duck: Warehouse) -> None:
    """campus-sim traffic of every device type (card readers included) through the edge decoder with the
    campus key, landed and transformed: none of the simulator's raw card numbers or holder names appears in
    any text column of any table."""
    sim = Simulator.build(120, seed=5, start_ms=1_725_235_200_000, rate=200, time_scale=600)
    profiles = ProfileSet.load(edge_run.ROOT / "device_profiles", timezone="Asia/Shanghai")
    pz = Pseudonymizer.from_text(edge_run.KEY_TEXT)
    cards: set[str] = set()
    holders: set[str] = set()
    results = []
    for m in sim.messages(3000):
        for e in m.expected:
            if isinstance(e, EventTruth):
                attrs = dict(e.attrs)
                cards.add(str(attrs["card"]))
                holders.add(str(attrs.get("user", "")))
        r = decode(Message(m.topic, m.payload, m.ts_ms), profiles, now_ms=m.ts_ms, pseudonymizer=pz)
        if r.quarantine is None:
            results.append(r)
    holders -= {"", "Unknown"}  # the reader's placeholder for an unknown card is not a person's name
    assert len(cards) > 100
    assert holders
    for seq, start in enumerate(range(0, len(results), 500), 1):
        chunk = results[start:start + 500]
        created = max(r.message.received_ms for r in chunk)
        batch = edge_run.make_batch("gw-sim", seq, [x for r in chunk for x in r.readings],
                                    [x for r in chunk for x in r.events], created)
        body = encode(batch)
        assert duck.land_batch(wire_decode(body), body_checksum=hashlib.sha256(body).hexdigest(),
                               received_ms=created + 100).status == "stored"
    duck.run_transforms()
    swipes = duck.query("SELECT COUNT(*) FROM dwd_acs_event_di WHERE subject_pseudo LIKE 'p1:%'")[1][0][0]
    assert swipes > 100
    assert scan_for_identifiers(duck, cards) == []
    assert scan_for_identifiers(duck, holders) == []

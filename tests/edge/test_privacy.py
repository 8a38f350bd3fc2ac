"""Pseudonymisation keys, rotation, and that personal fields never leave the decoder in clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.decode import decode
from edge_agent.model import Message
from edge_agent.privacy import KeyFileError, Pseudonymizer
from edge_agent.profiles import ProfileSet

K1 = "11" * 32
K2 = "22" * 32
NOW = 1_605_991_375_000
CARD = "0036A26A"
NAME = "Jane Student"


def _swipe(**extra: object) -> bytes:
    body = {
        "type": "access",
        "time": 1605991375,
        "isKnown": "true",
        "access": "Admin",
        "username": NAME,
        "uid": CARD,
        "hostname": "door-lab-2",
        **extra,
    }
    return json.dumps(body).encode()


@pytest.fixture(scope="module")
def profiles(profiles_dir: Path) -> ProfileSet:
    return ProfileSet.load(profiles_dir)


def test_key_file_rotation_and_format(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text(f"# campus keys\np1 {K1}\n\np2 {K2}\n")
    f.chmod(0o600)
    p = Pseudonymizer.from_file(f)
    assert p.key_id == "p2"
    assert p.key_ids == ("p1", "p2")
    a = p.pseudonym(CARD)
    assert a.startswith("p2:")
    assert len(a) == 3 + 16
    assert all(c in "0123456789abcdef" for c in a[3:])
    assert p.pseudonym(CARD) == a  # deterministic: records still join
    assert p.pseudonym("0036A26B") != a
    assert p.pseudonym_with("p1", CARD).startswith("p1:")
    assert p.pseudonym_with("p1", CARD)[3:] != a[3:]
    assert K1 not in repr(p)
    assert K2 not in repr(p)


def test_pseudonyms_normalise_numbers() -> None:
    p = Pseudonymizer({"p1": bytes.fromhex(K1)}, "p1")
    assert p.pseudonym(1234) == p.pseudonym(1234.0) == p.pseudonym(" 1234 ")
    assert p.protect("truncate", "192.168.1.23", keep=7) == "192.168"
    assert p.protect("drop", CARD) is None
    assert p.protect("none", CARD) == CARD


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no key"),
        ("p1\n", "expected '<key id> <hex key>'"),
        (f"p1 {K1}\np1 {K2}\n", "appears twice"),
        ("p1 zz\n", "not hex"),
        ("p1 0011\n", "at least 32"),
        (f"bad/id {K1}\n", "key id"),
    ],
)
def test_bad_key_files(text: str, problem: str) -> None:
    with pytest.raises(KeyFileError, match=problem):
        Pseudonymizer.from_text(text, source="keys.txt")


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        Pseudonymizer.from_file(tmp_path / "absent")


def test_card_number_is_pseudonymised_and_name_dropped(profiles: ProfileSet) -> None:
    pseudo = Pseudonymizer({"p1": bytes.fromhex(K1)}, "p1")
    r = decode(Message("/rfid/send", _swipe(), NOW), profiles, now_ms=NOW, pseudonymizer=pseudo)
    (event,) = r.events
    attrs = event.attr_dict()
    assert attrs["card"] == pseudo.pseudonym(CARD)
    assert "user" not in attrs
    text = repr(r)
    assert CARD not in text
    assert NAME not in text
    redacted = json.loads(r.message.payload)
    assert redacted["uid"] == pseudo.pseudonym(CARD)
    assert redacted["username"] is None


def test_without_a_key_hashed_fields_are_dropped(profiles: ProfileSet) -> None:
    r = decode(Message("/rfid/send", _swipe(), NOW), profiles, now_ms=NOW)
    assert "card" not in r.events[0].attr_dict()
    assert CARD not in repr(r)
    assert NAME not in repr(r)


def test_quarantined_personal_messages_are_redacted(profiles: ProfileSet) -> None:
    pseudo = Pseudonymizer({"p1": bytes.fromhex(K1)}, "p1")
    no_host = json.loads(_swipe())
    del no_host["hostname"]
    oversized = _swipe(pad="x" * 5000)
    for payload in (
        json.dumps(no_host).encode(),
        _swipe()[:-5],
        oversized,
    ):  # no device id; truncated; too big
        r = decode(Message("/rfid/send", payload, NOW), profiles, now_ms=NOW, pseudonymizer=pseudo)
        assert r.quarantine is not None
        assert CARD not in repr(r), r
        assert NAME not in repr(r), r

"""Settings and tokens files: typed values, errors that name the key, hashes only."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_ingest.api import ApiSettings, SettingsError, TokenFileError, TokenStore, hash_token, load_settings
from cloud_ingest.api.auth import Principal

H1 = hash_token("secret-one-0123456789")
H2 = hash_token("secret-two-0123456789")


def test_defaults_and_env_values() -> None:
    s = load_settings({"CAMPUS_API_MAX_BODY_BYTES": "1_048_576", "CAMPUS_API_QUEUE_WAIT_S": "0.25",
                       "CAMPUS_API_TOKENS_FILE": "/etc/x.toml", "PATH": "/usr/bin"})
    assert s.max_body_bytes == 1_048_576
    assert s.queue_wait_s == 0.25
    assert s.tokens_file == Path("/etc/x.toml")
    assert s.max_in_flight == ApiSettings().max_in_flight


@pytest.mark.parametrize(("env", "message"), [
    ({"CAMPUS_API_MAX_BODY_BYTES": "abc"}, "CAMPUS_API_MAX_BODY_BYTES has value 'abc', not a valid int"),
    ({"CAMPUS_API_QUEUE_WAIT_S": "nan"}, "CAMPUS_API_QUEUE_WAIT_S has value 'nan', not a valid number"),
    ({"CAMPUS_API_MAX_IN_FLIGHT": "0"}, "CAMPUS_API_MAX_IN_FLIGHT has value 0, must be > 0"),
    ({"CAMPUS_API_MAX_BODY_BYTE": "1"}, "CAMPUS_API_MAX_BODY_BYTE is not a setting"),
    ({"CAMPUS_API_LATE_AFTER_INTERVALS": "4"}, "CAMPUS_API_OFFLINE_AFTER_INTERVALS has value 3.0"),
    ({"CAMPUS_API_MAX_IN_FLIGHT": "20"}, "CAMPUS_API_MAX_IN_FLIGHT has value 20, must be <= max_requests"),
])
def test_bad_env_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        load_settings(env)


def test_precedence_overrides_then_env_then_table() -> None:
    table = {"max_in_flight": 3, "max_requests": 9, "retry_after_s": 11}
    s = load_settings({"CAMPUS_API_MAX_REQUESTS": "5", "CAMPUS_API_RETRY_AFTER_S": "2"}, table=table,
                      retry_after_s=1)
    assert (s.max_in_flight, s.max_requests, s.retry_after_s) == (3, 5, 1)


@pytest.mark.parametrize(("table", "message"), [
    ({"max_in_flight": "3"}, "cloud.toml: api.max_in_flight has value '3', not a valid int"),
    ({"max_in_flight": True}, "cloud.toml: api.max_in_flight has value True, not a valid int"),
    ({"max_inflight": 3}, "cloud.toml: api.max_inflight is not a setting"),
])
def test_bad_table_values_name_file_and_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({}, table=table, table_source="cloud.toml")
    assert str(err.value).startswith(message)


def test_tokens_file_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "tokens.toml"
    toml.write_text(f'[gateways]\n"gw-1" = "{H1}"\n"gw-2" = ["{H2}"]\n')
    yml = tmp_path / "tokens.yaml"
    yml.write_text(f"gw-1: '{H1}'\n")
    store = TokenStore.from_file(toml)
    assert store.gateways == ("gw-1", "gw-2")
    assert store.principal_for("Bearer secret-two-0123456789") == Principal("gw-2", "gateway")
    assert store.principal_for("bearer   secret-one-0123456789 ") == Principal("gw-1", "gateway")
    assert store.principal_for("Bearer secret-one") is None
    assert store.principal_for("Basic secret-one-0123456789") is None
    assert store.principal_for(None) is None
    assert store.principal_for("Bearer " + "x" * 10_000) is None
    from_yaml = TokenStore.from_file(yml)
    assert from_yaml.principal_for("Bearer secret-one-0123456789") == Principal("gw-1", "gateway")


def test_operators_and_rotation(tmp_path: Path) -> None:
    f = tmp_path / "tokens.yaml"
    old = hash_token("old-token-0123456789")
    f.write_text(f"gateways:\n  gw-1: ['{H1}', '{old}']\noperators:\n  noc: '{H2}'\n")
    store = TokenStore.from_file(f)
    assert store.principal_for("Bearer old-token-0123456789") == Principal("gw-1", "gateway")
    assert store.principal_for("Bearer secret-two-0123456789") == Principal("noc", "operator")
    assert store.gateways == ("gw-1",)


@pytest.mark.parametrize(("text", "message"), [
    ('[gateways]\n"gw-1" = "secret-one"\n', "gateways.gw-1: not a token hash"),
    ('[gateways]\n"gw 1" = "' + H1 + '"\n', "gateways.gw 1: not a valid id"),
    ('[gateways]\n"gw-1" = "' + H1 + '"\n"gw-2" = "' + H1 + '"\n', "gateways.gw-2: has the same token hash"),
    ('[gateways]\n"gw-1" = []\n', "gateways.gw-1: needs at least one token hash"),
    ('[gateways]\n"gw-1" = "' + H1 + '"\n[admins]\nx = "' + H2 + '"\n', "admins: unknown table"),
    ("[gateways\n", "not valid TOML"),
])
def test_bad_tokens_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "tokens.toml"
    f.write_text(text)
    with pytest.raises(TokenFileError) as err:
        TokenStore.from_file(f)
    assert str(err.value).startswith(f"{f}: ")
    assert message in str(err.value)


def test_a_plaintext_token_is_never_echoed(tmp_path: Path) -> None:
    f = tmp_path / "tokens.toml"
    f.write_text('[gateways]\n"gw-1" = "my-plaintext-secret"\n')
    with pytest.raises(TokenFileError) as err:
        TokenStore.from_file(f)
    assert "my-plaintext-secret" not in str(err.value)


def test_unreadable_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenStore.from_file(tmp_path / "missing.toml")
    (tmp_path / "tokens.json").write_text("{}")
    with pytest.raises(TokenFileError, match="unknown suffix"):
        TokenStore.from_file(tmp_path / "tokens.json")

"""Read API for ADS indicators: columns filtered by role and level, every read audited (去向)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_ingest.api import TokenStore, hash_token
from cloud_ingest.governance import columns_hidden, columns_visible
from cloud_ingest.warehouse import Warehouse
from tests.cloud.api_fixtures import GATEWAYS, OPERATOR_TOKEN, api_on_warehouse, open_test_warehouse

READERS = {"dash": ("analyst", "tok-dash-0123456789abcdef"), "kiosk": ("public_viewer", "tok-kiosk-0123456789abc"),
           "steward": ("data_steward", "tok-steward-0123456789ab")}


def tokens() -> TokenStore:
    return TokenStore.from_hashes({gw: hash_token(t) for gw, t in GATEWAYS.items()},
                                  {"noc": hash_token(OPERATOR_TOKEN)},
                                  readers={n: {"role": r, "token": hash_token(t)} for n, (r, t) in READERS.items()})


def auth(reader: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {READERS[reader][1]}"}


@pytest.fixture
def wh(tmp_path: Path, registry_demo: Path) -> Iterator[Warehouse]:
    wh = open_test_warehouse(tmp_path)
    wh.load_registry_file(registry_demo)
    wh.run_transforms()
    yield wh
    wh.close()


@pytest.fixture
def api(wh: Warehouse):  # type: ignore[no-untyped-def]
    with api_on_warehouse(wh, tokens=tokens()) as server:
        yield server


def audit(wh: Warehouse) -> list[tuple]:  # type: ignore[type-arg]
    return wh.query("SELECT consumer_name, role_code, table_name, filter_text, row_cnt FROM meta_pub_audit_log "
                    "ORDER BY read_ms", ())[1]


def test_list_and_read_filtered_by_role(api, wh: Warehouse) -> None:  # type: ignore[no-untyped-def]
    listing = httpx.get(api.url + "/v1/ads", headers=auth("dash")).json()
    tables = {t["table"]: t for t in listing["tables"]}
    assert "ads_iot_online_rate_1d" in tables
    for name, t in tables.items():
        assert t["columns"] == list(columns_visible("analyst", name))
    r = httpx.get(api.url + "/v1/ads/ads_iot_online_rate_1d", headers=auth("dash"),
                  params={"campus_id": "hz-xixi", "from": "2024-01-01", "to": "2030-01-01", "limit": 50})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == list(columns_visible("analyst", "ads_iot_online_rate_1d"))
    assert body["hidden_columns"] == list(columns_hidden("analyst", "ads_iot_online_rate_1d"))
    expected = wh.query("SELECT count(*) FROM ads_iot_online_rate_1d WHERE campus_id = 'hz-xixi'", ())[1][0][0]
    assert len(body["rows"]) == min(expected, 50)
    (row,) = audit(wh)
    assert row[:3] == ("dash", "analyst", "ads_iot_online_rate_1d")
    assert json.loads(row[3])["campus_id"] == "hz-xixi"
    assert row[4] == len(body["rows"])


def test_public_viewer_gets_only_public_columns(api, wh: Warehouse) -> None:  # type: ignore[no-untyped-def]
    for t in httpx.get(api.url + "/v1/ads", headers=auth("kiosk")).json()["tables"]:
        r = httpx.get(api.url + f"/v1/ads/{t['table']}", headers=auth("kiosk"))
        assert r.status_code == 200
        assert r.json()["columns"] == list(columns_visible("public_viewer", t["table"]))
        assert all(c not in r.json()["columns"] for c in r.json()["hidden_columns"])
    assert len(audit(wh)) == len(httpx.get(api.url + "/v1/ads", headers=auth("kiosk")).json()["tables"])


def test_refusals(api, wh: Warehouse) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(api.url + "/v1/ads").status_code == 401
    gw = httpx.get(api.url + "/v1/ads", headers={"Authorization": f"Bearer {GATEWAYS['gw-a']}"})
    assert gw.status_code == 403
    assert gw.json()["error"]["code"] == "not_a_reader"
    assert httpx.get(api.url + "/v1/ads/ods_iot_reading_di", headers=auth("steward")).status_code == 404
    assert httpx.get(api.url + "/v1/ads/nope", headers=auth("dash")).status_code == 404
    # injection attempts land in bound parameters or are refused by validation, never in SQL text
    r = httpx.get(api.url + "/v1/ads/ads_iot_online_rate_1d", headers=auth("dash"),
                  params={"campus_id": "x' OR '1'='1"})
    assert r.status_code == 200
    assert r.json()["rows"] == []
    assert httpx.get(api.url + "/v1/ads/ads_iot_online_rate_1d", headers=auth("dash"),
                     params={"from": "2024-01-01; DROP TABLE x"}).status_code in (400, 422)
    assert httpx.get(api.url + "/v1/ads/ads_iot_online_rate_1d;DROP", headers=auth("dash")).status_code == 404
    assert wh.query("SELECT count(*) FROM ads_iot_online_rate_1d", ())[1][0][0] >= 0  # still there


@pytest.mark.parametrize(("query", "field"), [
    ("from=2024-01-01&from=2025-01-01", "query.from"),  # a repeated parameter: no value is picked
    ("campus_id=a&campus_id=b", "query.campus_id"),
    ("from=1700000000", "query.from"),  # a number is not a day (a date type would take it as Unix time)
    ("to=2024-02-30", "query.to"),  # the right shape, but no such day
])
def test_ads_filters_are_one_calendar_day_each(api, query: str, field: str) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{api.url}/v1/ads/ads_iot_online_rate_1d?{query}", headers=auth("dash"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


def test_reader_tokens_file_errors(tmp_path: Path) -> None:
    from cloud_ingest.api.errors import TokenFileError

    p = tmp_path / "tokens.toml"
    p.write_text(f'[gateways]\ng = "{hash_token("x" * 20)}"\n'
                 f'[readers.r]\nrole = "boss"\ntoken = "{hash_token("y" * 20)}"\n')
    with pytest.raises(TokenFileError, match=r"readers\.r\.role"):
        TokenStore.from_file(p)


def test_roles_see_only_columns_of_their_level(api, wh: Warehouse) -> None:  # type: ignore[no-untyped-def]
    from cloud_ingest.governance import ROLE_MAX_LEVEL
    from cloud_ingest.governance.classification import level_rank
    from cloud_ingest.warehouse.schema import load_schema

    schema = load_schema()
    for reader, (role, _) in READERS.items():
        for t in httpx.get(api.url + "/v1/ads", headers=auth(reader)).json()["tables"]:
            body = httpx.get(api.url + f"/v1/ads/{t['table']}", headers=auth(reader)).json()
            levels = {c.name: c.level for c in schema.table(t["table"]).columns}
            assert all(level_rank(levels[c]) <= level_rank(ROLE_MAX_LEVEL[role]) for c in body["columns"])
            assert all(level_rank(levels[c]) > level_rank(ROLE_MAX_LEVEL[role]) for c in body["hidden_columns"])
            assert sorted(body["columns"] + body["hidden_columns"]) == sorted(levels)
    assert "load_id" in httpx.get(api.url + "/v1/ads/ads_iot_online_rate_1d",
                                  headers=auth("kiosk")).json()["hidden_columns"]


def test_table_above_the_role_is_refused(api, wh: Warehouse,  # type: ignore[no-untyped-def]
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from cloud_ingest.api import ads
    from cloud_ingest.warehouse.schema import load_schema

    schema = load_schema()
    base = schema.table("ads_iot_online_rate_1d")
    secret = dataclasses.replace(base, name="ads_acs_subject_1d",  # an ADS table whose every column is L3
                                 columns=tuple(dataclasses.replace(c, level="L3") for c in base.columns))
    monkeypatch.setattr(ads, "load_schema", lambda: dataclasses.replace(schema, tables=(*schema.tables, secret)))
    r = httpx.get(api.url + "/v1/ads/ads_acs_subject_1d", headers=auth("dash"))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "level_too_high"
    names = [t["table"] for t in httpx.get(api.url + "/v1/ads", headers=auth("dash")).json()["tables"]]
    assert "ads_acs_subject_1d" not in names
    assert audit(wh) == []  # nothing was read, nothing went out


def test_access_log_command(api, wh: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from cloud_ingest.cli import main
    from cloud_ingest.commands.access_log import read_log

    got = {}
    for reader, table in (("dash", "ads_iot_online_rate_1d"), ("kiosk", "ads_energy_intensity_1d"),
                          ("dash", "ads_env_co2_compliance_1d")):
        r = httpx.get(api.url + f"/v1/ads/{table}", headers=auth(reader), params={"limit": 3})
        got[(reader, table)] = len(r.json()["rows"])
    log = read_log(wh)
    assert [(e["consumer"], e["table"]) for e in log][::-1] == list(got)
    assert all(e["rows"] == got[(e["consumer"], e["table"])] for e in log)
    assert log[0]["filters"]["columns"] == list(columns_visible("analyst", "ads_env_co2_compliance_1d"))
    wh.close()  # DuckDB: one process holds the file; the command opens it as an operator would after serve stops
    assert main(["access-log", "--consumer", "dash", "--since", "1h", "--format", "json",
                 "--warehouse", wh.url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["table"] for e in out] == ["ads_env_co2_compliance_1d", "ads_iot_online_rate_1d"]
    assert {e["role"] for e in out} == {"analyst"}
    assert main(["access-log", "--since", "2999-01-01", "--warehouse", wh.url]) == 0
    assert capsys.readouterr().out.strip().endswith("(0 reads)")
    assert main(["access-log", "--consumer", "x' OR '1'='1", "--warehouse", wh.url]) == 0
    assert "(0 reads)" in capsys.readouterr().out
    assert main(["access-log", "--since", "yesterday", "--warehouse", wh.url]) == 2
    assert "--since" in capsys.readouterr().err


def test_reads_are_logged_on_each_engine(warehouse: Warehouse, registry_demo: Path) -> None:
    from cloud_ingest.commands.access_log import read_log

    warehouse.load_registry_file(registry_demo)
    with api_on_warehouse(warehouse, tokens=tokens()) as server:
        r = httpx.get(server.url + "/v1/ads/ads_occ_room_util_1d", headers=auth("steward"),
                      params={"campus_id": "hz-xixi'; DROP TABLE meta_pub_audit_log; --", "to": "2030-01-01"})
        assert r.status_code == 200, r.text
    (entry,) = read_log(warehouse)
    assert (entry["consumer"], entry["role"], entry["table"], entry["rows"]) == (
        "steward", "data_steward", "ads_occ_room_util_1d", 0)
    assert entry["filters"]["campus_id"].startswith("hz-xixi'")
    assert entry["filters"]["to"] == "2030-01-01"

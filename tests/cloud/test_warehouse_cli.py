"""``campus-cloud`` warehouse subcommands: help, registry load/check, transform, sql, schema, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_ingest.cli import build_parser, main
from cloud_ingest.warehouse import open_warehouse
from tests.cloud import campus_data as cd

COMMANDS = ("transform", "registry", "sql", "schema")


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert names >= set(COMMANDS)
    for argv in ([], *([c] for c in COMMANDS), ["registry", "load"], ["registry", "check"]):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--help"])
        assert exit_.value.code == 0
        assert "usage: campus-cloud" in capsys.readouterr().out


def test_registry_transform_and_sql_round_trip(tmp_path: Path, registry_demo: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    assert main(["registry", "check", str(registry_demo)]) == 0
    assert "11 devices" in capsys.readouterr().out
    assert main(["registry", "load", str(registry_demo), "--warehouse", url]) == 0
    assert "11 devices" in capsys.readouterr().out
    readings, events = cd.generate()
    with open_warehouse(url) as wh:
        for b, c in cd.batches(readings[:600], events):
            wh.land_batch(b, body_checksum=c, received_ms=1)
    assert main(["transform", "--warehouse", url]) == 0
    out = capsys.readouterr().out
    assert "dwd_env_reading_di" in out
    assert "total" in out
    assert main(["transform", "--warehouse", url]) == 0
    assert out.splitlines()[-1] != capsys.readouterr().out.splitlines()[-1]  # second run: total 0
    assert main(["transform", "--list", "--warehouse", url]) == 0
    assert "dws_energy" in capsys.readouterr().out
    assert main(["sql", "SELECT room_id, room_type FROM dim_pub_room ORDER BY room_id LIMIT 2",
                 "--warehouse", url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "room_id  room_type", "-------  ---------", "l000     plant    ", "l101     lab      ", "(2 rows)"]
    assert main(["sql", "SELECT campus_id FROM dim_pub_campus", "--format", "json", "--warehouse", url]) == 0
    assert capsys.readouterr().out.strip() == '[{"campus_id": "hz-xixi"}]'
    assert main(["sql", "DELETE FROM dim_pub_room", "--warehouse", url]) == 1
    assert "refused" in capsys.readouterr().err


def test_errors_have_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ncampuses: []\ndevices: [{id: x}]\n", encoding="utf-8")
    assert main(["registry", "check", str(bad)]) == 1
    assert f"{bad}: devices[0].gateway: missing" in capsys.readouterr().err
    assert main(["sql", "SELECT 1", "--warehouse", "postgresql://nobody@127.0.0.1:1/x"]) == 2
    assert "cannot connect" in capsys.readouterr().err
    assert main(["sql", "SELECT * FROM nope", "--warehouse", f"duckdb://{tmp_path / 'w.duckdb'}"]) == 1


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "citus"])
def test_schema_prints_ddl(dialect: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--dialect", dialect]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE IF NOT EXISTS ods_iot_reading_di" in out
    assert ("create_distributed_table" in out) == (dialect == "citus")
    assert main(["schema", "--tables"]) == 0
    assert "ads_iot_online_rate_1d" in capsys.readouterr().out

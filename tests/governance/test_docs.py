"""The governance commands have help and are documented; the public surface imports."""

from __future__ import annotations

from pathlib import Path

import pytest

import cloud_ingest.governance as gov
from cloud_ingest.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("naming", "dictionary", "catalog", "lineage", "trace", "access-log")


@pytest.mark.parametrize("command", COMMANDS)
def test_command_has_help_and_is_documented(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "--help"])
    assert exc.value.code == 0
    assert "usage: campus-cloud" in capsys.readouterr().out
    assert f"campus-cloud {command}" in (ROOT / "docs" / "governance.md").read_text(encoding="utf-8")


def test_public_surface() -> None:
    for name in gov.__all__:
        assert hasattr(gov, name), name
    assert gov.dictionary_version() == gov.default_dictionary().version
    assert gov.check_names().ok
    assert gov.can_read("data_steward", "L3")

"""Invalid profiles are refused with errors naming the file, the dotted field path and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_agent.errors import ProfileError
from edge_agent.profiles import ProfileSet, load_directory

BAD = Path(__file__).resolve().parents[1] / "data" / "malformed" / "profiles"
BAD_FILES = sorted(BAD.glob("*.yaml"))


@pytest.fixture
def root(tmp_path: Path, profiles_dir: Path) -> Path:
    """An empty profile root: the real registry and layouts, no profiles."""
    shutil.copy(profiles_dir / "metrics.yaml", tmp_path / "metrics.yaml")
    shutil.copytree(profiles_dir / "layouts", tmp_path / "layouts")
    return tmp_path


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: ")
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("bad", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_planted_error_names_file_field_and_problem(bad: Path, root: Path) -> None:
    shutil.copy(bad, root / bad.name)
    report = load_directory(root)
    assert not report.profiles
    assert len(report.errors) == 1, report.errors
    err = report.errors[0]
    assert err.file.endswith(bad.name)
    text = str(err)
    assert text.startswith(err.file + ": ")
    assert _expected(bad) in text, text
    with pytest.raises(ProfileError) as exc:
        ProfileSet.load(root)
    assert str(exc.value) == text


def test_error_carries_the_yaml_line(root: Path) -> None:
    shutil.copy(BAD / "bad_unit.yaml", root / "x.yaml")
    err = load_directory(root).errors[0]
    assert err.field == "metrics[2].unit"
    assert (
        "(line 14)" in err.problem
    )  # the line of '- {name: co2, ... unit: degC2}' (header comment is line 1)


def test_duplicate_ids_across_files(root: Path, profiles_dir: Path) -> None:
    src = profiles_dir / "campus" / "noise_meter_raw.yaml"
    (root / "a").mkdir()
    shutil.copy(src, root / "a" / "one.yaml")
    shutil.copy(src, root / "two.yaml")
    report = load_directory(root)
    assert len(report.profiles) == 1
    assert len(report.errors) == 1
    assert "duplicate profile id 'campus.noise_meter_raw'" in str(report.errors[0])


def test_circular_extends(root: Path) -> None:
    base = (BAD.parent / "profiles" / "bad_unit.yaml").read_text(encoding="utf-8")
    ok = base.replace("unit: degC2", "unit: ppm")
    (root / "a.yaml").write_text(
        ok.replace("test.bad_unit", "test.a").replace("domain: public", "domain: public\nextends: test.b")
    )
    (root / "b.yaml").write_text(
        ok.replace("test.bad_unit", "test.b").replace("domain: public", "domain: public\nextends: test.a")
    )
    report = load_directory(root)
    assert report.errors
    assert all("circular extends" in str(e) for e in report.errors)


def test_registry_errors_name_the_registry(tmp_path: Path) -> None:
    (tmp_path / "metrics.yaml").write_text(
        "version: 1\nunits: {}\nmetrics:\n  co2: {unit: ppm, name_zh: x, name_en: y, domain: environment}\n"
    )
    report = load_directory(tmp_path)
    assert "metrics.yaml: metrics.co2.unit: unknown unit 'ppm'" in str(report.errors[0])


def test_layout_errors_name_the_layout_file(root: Path) -> None:
    (root / "layouts" / "broken.yaml").write_text(
        "kind: channel_type\nchannels:\n  - {channel: 1, type: 2}\n"
    )
    report = load_directory(root)
    assert any(
        "layouts/broken.yaml: channels[0]: a channel needs 'name' and 'format'" in str(e)
        for e in report.errors
    )


def test_device_map_with_unknown_profile(profiles_dir: Path) -> None:
    with pytest.raises(ProfileError, match="unknown profile 'nope'"):
        ProfileSet.load(profiles_dir, device_map={"dev-1": "nope"})


def test_unknown_gateway_timezone(profiles_dir: Path) -> None:
    with pytest.raises(ProfileError, match="unknown time zone"):
        ProfileSet.load(profiles_dir, timezone="Mars/Base")


def test_yaml_12_booleans_keep_on_off_as_strings(root: Path) -> None:
    text = (BAD / "bad_unit.yaml").read_text(encoding="utf-8").replace("unit: degC2", "unit: ppm")
    text += "  - {name: switch_state, path: state, map: {ON: 1, OFF: 0, yes: 1, no: 0}}\n"
    (root / "p.yaml").write_text(text)
    ps = ProfileSet.load(root)
    metric = next(m for m in ps.profiles[0].metrics if m.name == "switch_state")
    assert metric.enum == {"ON": 1.0, "OFF": 0.0, "yes": 1.0, "no": 0.0}

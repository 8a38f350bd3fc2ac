"""Read a profile directory: the metric registry, shared binary layouts, then one profile per YAML file.

Layout of a profile root (``device_profiles/``)::

    metrics.yaml              canonical metrics and units (required)
    layouts/<id>.yaml         shared binary layouts, referenced by id
    <ecosystem>/<name>.yaml   one device type per file (files starting with '_' or '.' are ignored)

A profile may ``extends: <profile id>``: it inherits ``ecosystem``, ``domain``, ``source``, ``reduction``
and ``governance`` from that profile (mappings merged key by key, the child winning; lists replaced),
never its identity, metrics or events.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge_agent.errors import ProfileError
from edge_agent.profiles.compile import _Ctx, compile_layout, compile_profile, loc_text
from edge_agent.profiles.registry import MetricRegistry
from edge_agent.profiles.schema import LayoutModel, ProfileModel
from edge_agent.profiles.spec import Layout, Profile
from edge_agent.profiles.yamlio import YamlDoc, YamlSyntaxError, load_yaml

_LOGGER = logging.getLogger(__name__)

REGISTRY_FILE = "metrics.yaml"
LAYOUT_DIR = "layouts"
INHERITED = ("ecosystem", "domain", "source", "reduction", "governance")
MAX_PROFILE_FILE_BYTES = 1024 * 1024  # a profile is a page of YAML; refuse anything absurd


def display_path(path: Path) -> str:
    """The path relative to the working directory when it is inside it (as people type it)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def find_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``metrics.yaml``."""
    here = start if start.is_dir() else start.parent
    for d in (here, *here.parents):
        if (d / REGISTRY_FILE).is_file():
            return d
    return None


def profile_files(root: Path) -> list[Path]:
    """Profile files under ``root``, sorted, skipping the registry, layouts and '_'/'.'-prefixed names."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.suffix not in (".yaml", ".yml") or not p.is_file():
            continue
        rel = p.relative_to(root)
        if rel.parts[0] == LAYOUT_DIR or str(rel) == REGISTRY_FILE:
            continue
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        out.append(p)
    return out


def _first_error(exc: ValidationError, file: str, doc: YamlDoc | None) -> ProfileError:
    errors = exc.errors()
    err = errors[0]
    loc = tuple(err["loc"])
    # Unions report one error per branch; the most informative is usually the deepest one.
    for other in errors:
        if len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc:
            err, loc = other, tuple(other["loc"])
    loc = tuple(
        step for step in loc if not (isinstance(step, str) and ("[" in step or step in {"str", "list"}))
    )
    problem = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        problem = "unknown field"
    elif err["type"] == "missing":
        problem = "required field is missing"
    elif err.get("input") is not None and err["type"] in ("literal_error", "string_pattern_mismatch"):
        problem = f"{err['input']!r}: {problem}"
    line = doc.line_of(loc) if doc else None
    return ProfileError(file, loc_text(loc), f"{problem} (line {line})" if line else problem)


def _read(path: Path, file: str) -> YamlDoc:
    try:
        if path.stat().st_size > MAX_PROFILE_FILE_BYTES:
            raise ProfileError(file, "", f"file is larger than {MAX_PROFILE_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(file, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ProfileError(file, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        doc = load_yaml(text)
    except YamlSyntaxError as exc:
        raise ProfileError(file, "", str(exc)) from exc
    if not isinstance(doc.data, dict):
        raise ProfileError(file, "", "a profile file must hold one YAML mapping")
    return doc


def load_layouts(root: Path) -> tuple[dict[str, Layout], list[ProfileError]]:
    """Shared binary layouts from ``root/layouts``; a layout's id defaults to its file name."""
    layouts: dict[str, Layout] = {}
    errors: list[ProfileError] = []
    for path in sorted((root / LAYOUT_DIR).glob("*.y*ml")) if (root / LAYOUT_DIR).is_dir() else []:
        file = display_path(path)
        try:
            doc = _read(path, file)
            try:
                model = LayoutModel.model_validate(doc.data)
            except ValidationError as exc:
                raise _first_error(exc, file, doc) from exc
            layout = compile_layout(model, _Ctx(file, doc.line_of), (), path.stem)
            if layout.id != path.stem:
                raise ProfileError(
                    file, "id", f"layout id {layout.id!r} must equal the file name {path.stem!r}"
                )
            layouts[layout.id] = layout
        except ProfileError as exc:
            errors.append(exc)
    return layouts, errors


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(slots=True)
class LoadReport:
    """Result of loading a directory: the good profiles, and one error per bad file."""

    root: Path
    registry: MetricRegistry | None
    profiles: list[Profile] = field(default_factory=list)
    errors: list[ProfileError] = field(default_factory=list)
    files: dict[str, Profile | ProfileError] = field(default_factory=dict)


def load_directory(
    root: str | Path, *, registry: MetricRegistry | None = None, only: Iterable[Path] | None = None
) -> LoadReport:
    """Load every profile under ``root``, collecting errors instead of stopping at the first.

    ``only`` limits which files are compiled and reported (others are still read so that ``extends``
    can reach them).
    """
    root = Path(root)
    report = LoadReport(root, registry)
    if registry is None:
        try:
            registry = MetricRegistry.load(root / REGISTRY_FILE)
        except ProfileError as exc:
            report.errors.append(exc)
            return report
        report.registry = registry
    layouts, layout_errors = load_layouts(root)
    report.errors.extend(layout_errors)

    docs: dict[str, tuple[str, YamlDoc]] = {}  # profile id -> (file, doc)
    order: list[tuple[Path, str, YamlDoc]] = []
    for path in profile_files(root):
        file = display_path(path)
        try:
            doc = _read(path, file)
        except ProfileError as exc:
            report.errors.append(exc)
            report.files[file] = exc
            continue
        pid = doc.data.get("id")
        if isinstance(pid, str):
            if pid in docs:
                dup = ProfileError(file, "id", f"duplicate profile id {pid!r} (also in {docs[pid][0]})")
                report.errors.append(dup)
                report.files[file] = dup
                continue
            docs[pid] = (file, doc)
        order.append((path, file, doc))
        report.files.setdefault(file, ProfileError(file, "id", "not loaded"))

    wanted = {p.resolve() for p in only} if only is not None else None

    def resolved(pid: str, chain: tuple[str, ...]) -> dict[str, Any]:
        file, doc = docs[pid]
        data: dict[str, Any] = doc.data
        parent = data.get("extends")
        if parent is None:
            return data
        line = doc.line_of(("extends",))
        where = f" (line {line})" if line else ""
        if not isinstance(parent, str) or parent not in docs:
            raise ProfileError(file, "extends", f"unknown profile {parent!r}{where}")
        if parent in chain:
            raise ProfileError(file, "extends", "circular extends: " + " -> ".join((*chain, parent)) + where)
        base = resolved(parent, (*chain, parent))
        inherited = {k: base[k] for k in INHERITED if k in base}
        return _merge(inherited, {k: v for k, v in data.items() if k != "extends"}) | {"extends": parent}

    for path, file, raw_doc in order:
        if wanted is not None and path.resolve() not in wanted:
            report.files.pop(file, None)
            continue
        try:
            pid = raw_doc.data.get("id")
            data = resolved(pid, (pid,)) if isinstance(pid, str) else raw_doc.data
            try:
                model = ProfileModel.model_validate(data)
            except ValidationError as exc:
                raise _first_error(exc, file, raw_doc) from exc
            profile = compile_profile(
                model, file=file, registry=registry, layouts=layouts, line_of=raw_doc.line_of
            )
        except ProfileError as exc:
            report.errors.append(exc)
            report.files[file] = exc
            continue
        report.profiles.append(profile)
        report.files[file] = profile
    if wanted is not None:  # unreadable files outside the selection are not reported as files
        report.files = {f: r for f, r in report.files.items() if Path(f).resolve() in wanted}
    return report


def load_profiles(
    root: str | Path, *, registry: MetricRegistry | None = None
) -> tuple[MetricRegistry, list[Profile]]:
    """Load a profile root strictly: the first problem raises :class:`ProfileError`."""
    report = load_directory(root, registry=registry)
    if report.errors:
        if len(report.errors) > 1:
            _LOGGER.error("%d invalid profile files under %s", len(report.errors), root)
            for err in report.errors[1:]:
                _LOGGER.error("%s", err)
        raise report.errors[0]
    assert report.registry is not None
    return report.registry, report.profiles

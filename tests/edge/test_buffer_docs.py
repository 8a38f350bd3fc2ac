"""docs/buffer.md documents every public method, eviction class, table and counter family."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from edge_agent.buffer import Buffer
from edge_agent.buffer.eviction import BASE_CLASSES, EVENT_CLASSES
from edge_agent.buffer.schema import _V1


def doc(project_root: Path) -> str:
    return (project_root / "docs" / "buffer.md").read_text(encoding="utf-8")


def test_every_public_method_is_documented(project_root: Path) -> None:
    text = doc(project_root)
    public = [n for n, _ in inspect.getmembers(Buffer) if not n.startswith("_")]
    missing = [n for n in public if f"`{n}" not in text and f"{n}(" not in text]
    assert not missing, f"docs/buffer.md does not mention {missing}"


def test_every_eviction_class_and_table_is_documented(project_root: Path) -> None:
    text = doc(project_root)
    for cls in BASE_CLASSES + EVENT_CLASSES:
        assert f"`{cls.name}`" in text, cls.name
    tables = {m.group(1) for stmt in _V1 for m in [re.match(r"\s*CREATE TABLE (\w+)", stmt)] if m}
    for table in tables:
        assert f"`{table}`" in text, table


def test_counter_families_are_documented(project_root: Path) -> None:
    text = doc(project_root)
    for family in ("committed.", "quarantined.", "evicted.", "back_pressure.episodes", "uploaded.",
                   "dead_lettered.", "retention.", "recovery.", "batches.stored"):
        assert family in text, family

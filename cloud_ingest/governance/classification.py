"""Classification and grading (分类分级, 工作任务（十）): levels, their handling rules, and who may read what.

Levels (docs/classification.md has the full rules and the alignment with GB/T 43697-2024 and PIPL):

    L1 公开 public            general data that may be published (indicators, aggregates, reference data)
    L2 内部 internal          general data for internal use (device/gateway ids, operations, jobs)
    L3 个人信息（去标识化）    personal information, pseudonymised on the edge (keyed-hash pseudonyms)
    L4 敏感个人信息/重要数据    identifiable sensitive personal information (incl. minors' data), important
                              data: never leaves the gateway, never stored in the warehouse

Every warehouse column carries a level in the schema data (``schema.yaml``); a table's level is the highest
of its columns. Access is by role: a role reads a column when the column's level is at most the role's
maximum level. Unknown roles read nothing (deny by default); an unknown level raises ``AccessError``.

For the read API::

    can_read(role, level) -> bool
    columns_visible(role, table) -> tuple of column names the role may select from ``table``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cloud_ingest.governance.errors import AccessError
from cloud_ingest.warehouse.schema import Schema, Table, load_schema

LEVELS = ("L1", "L2", "L3", "L4")


@dataclass(slots=True, frozen=True)
class LevelPolicy:
    """One level and how data of that level is handled."""

    code: str
    rank: int
    zh: str
    en: str
    gbt43697: str  # GB/T 43697-2024 category (一般数据 / 重要数据; 核心数据 is out of scope here)
    personal: str  # personal-information category under PIPL
    edge: str  # protection before the data leaves the gateway
    storage: str  # how the warehouse stores it
    readers: str  # roles that may read it
    sharing: str  # sharing and publication


POLICIES: tuple[LevelPolicy, ...] = (
    LevelPolicy("L1", 1, "公开", "Public", "一般数据 (general)", "not personal information",
                "none", "plain, retained per tier", "every role, including public_viewer",
                "may be published and shared with the provincial data hub"),
    LevelPolicy("L2", 2, "内部", "Internal", "一般数据 (general)", "not personal information",
                "none", "plain, retained per tier", "analyst and above",
                "inside the education bureau and schools; sharing reviewed (共享审核)"),
    LevelPolicy("L3", 3, "个人信息（去标识化）", "Personal (pseudonymised)", "一般数据 (general)",
                "personal information, pseudonymised (去标识化, PIPL art. 73); minors' data included",
                "keyed-hash pseudonym (HMAC, campus key on the gateways only) or truncation; free text "
                "naming a person dropped",
                "pseudonyms only, never re-identifiable in the warehouse; reads audited; shortest retention",
                "data_steward and above", "not shared outside; aggregates derived from it are L1/L2"),
    LevelPolicy("L4", 4, "敏感个人信息/重要数据", "Sensitive personal / important",
                "重要数据 (important) where identified by the catalogue of important data",
                "sensitive personal information (PIPL art. 28: whereabouts, biometrics, under-14s' data) in "
                "identifiable form",
                "dropped on the gateway (protect: drop) or pseudonymised there, which makes it L3",
                "never stored in the warehouse; a scan (scan_for_identifiers) proves it",
                "security_admin only (incident handling)", "never leaves the gateway"),
)

ROLE_MAX_LEVEL: Mapping[str, str] = MappingProxyType({
    "public_viewer": "L1",  # published indicators (dashboard, provincial hub)
    "analyst": "L2",  # warehouse tables without personal information
    "data_steward": "L3",  # governance office: quality and lineage down to pseudonymised records
    "security_admin": "L4",  # security officer: everything, audited
})


def level_rank(level: str) -> int:
    """1 for L1 … 4 for L4. Raises ``AccessError`` for anything else."""
    try:
        return LEVELS.index(level) + 1
    except ValueError:
        raise AccessError(f"unknown classification level {level!r}: use one of {', '.join(LEVELS)}") from None


def policy(level: str) -> LevelPolicy:
    """The handling rules of ``level``."""
    return POLICIES[level_rank(level) - 1]


def max_level(role: str, roles: Mapping[str, str] = ROLE_MAX_LEVEL) -> str | None:
    """The highest level ``role`` may read, or None for an unknown role."""
    return roles.get(role)


def can_read(role: str, level: str, roles: Mapping[str, str] = ROLE_MAX_LEVEL) -> bool:
    """Whether ``role`` may read data of ``level``. Unknown role: False. Unknown level: ``AccessError``."""
    need = level_rank(level)
    top = roles.get(role)
    return top is not None and level_rank(top) >= need


def table_level(table: Table) -> str:
    """A table's level: the highest level of its columns."""
    return max((c.level for c in table.columns), key=level_rank, default="L1")


def columns_visible(role: str, table: str, *, schema: Schema | None = None,
                    roles: Mapping[str, str] = ROLE_MAX_LEVEL) -> tuple[str, ...]:
    """Columns of warehouse ``table`` that ``role`` may read, in table order (empty for an unknown role).

    Raises ``SchemaError`` (from the warehouse) for an unknown table.
    """
    t = (schema or load_schema()).table(table)
    return tuple(c.name for c in t.columns if can_read(role, c.level, roles))


def columns_hidden(role: str, table: str, *, schema: Schema | None = None,
                   roles: Mapping[str, str] = ROLE_MAX_LEVEL) -> tuple[str, ...]:
    """Columns of ``table`` that ``role`` may not read (for a response that says what was withheld)."""
    t = (schema or load_schema()).table(table)
    return tuple(c.name for c in t.columns if not can_read(role, c.level, roles))


def classification_summary(schema: Schema | None = None) -> dict[str, dict[str, str]]:
    """Table -> column -> level, plus each table's own level under the key ``"*"``."""
    schema = schema or load_schema()
    return {t.name: {"*": table_level(t), **{c.name: c.level for c in t.columns}} for t in schema.tables}

"""Scan a warehouse for raw personal identifiers (card numbers, names) that must never reach it.

:func:`scan_for_identifiers` searches every text column of every base table (found in the live
information_schema, so tables outside the schema data are scanned too) for any of the given identifiers as
a substring, case-insensitively by default, and returns ``(table, column, rows)`` for each column where one
appears. It only reads (``Warehouse.query``), one statement per text column: identifiers are combined into
regular expressions of at most ``CHUNK`` alternatives (DuckDB ``regexp_matches``, PostgreSQL ``~``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from cloud_ingest.governance.errors import GovernanceError
from cloud_ingest.governance.names import live_columns

_LOGGER = logging.getLogger(__name__)

TEXT_TYPES = ("varchar", "text", "character varying", "character", "json", "jsonb", "string", "bpchar")
MIN_IDENTIFIER_LEN = 4  # shorter strings match ordinary text everywhere: the scan would mean nothing
CHUNK = 400  # alternatives per regular expression; bounds pattern size, not correctness (chunks are ORed)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_text(data_type: str) -> bool:
    t = data_type.lower()
    return any(t == x or t.startswith(x + "(") for x in TEXT_TYPES)


def _patterns(identifiers: Iterable[str]) -> list[str]:
    ids = sorted({str(i) for i in identifiers})
    for i in ids:
        if len(i) < MIN_IDENTIFIER_LEN:
            raise GovernanceError(f"identifier {i[:2]}… is shorter than {MIN_IDENTIFIER_LEN} characters: "
                                  "scanning for it would match ordinary text")
    return ["|".join(re.escape(i) for i in ids[k:k + CHUNK]) for k in range(0, len(ids), CHUNK)]


def _predicate(dialect: str, column: str, case_insensitive: bool) -> str:
    if dialect == "postgres":
        return f"{column} {'~*' if case_insensitive else '~'} ?"
    return f"regexp_matches({column}, ?{', ' + repr('i') if case_insensitive else ''})"


def scan_for_identifiers(warehouse: Any, identifiers: Iterable[str], *,
                         case_insensitive: bool = True) -> list[tuple[str, str, int]]:
    """``(table, column, rows containing any identifier)`` for every text column where one appears.

    ``warehouse`` is an open :class:`~cloud_ingest.warehouse.Warehouse`. Raises ``GovernanceError`` for an
    identifier shorter than ``MIN_IDENTIFIER_LEN``; an empty ``identifiers`` returns ``[]``.
    """
    patterns = _patterns(identifiers)
    if not patterns:
        return []
    dialect = "postgres" if str(getattr(warehouse, "dialect", "")).startswith("postgres") else "duckdb"
    found: list[tuple[str, str, int]] = []
    scanned = 0
    for col in live_columns(warehouse):
        if not _is_text(col.data_type):
            continue
        scanned += 1
        qc = _quote(col.name)
        where = " OR ".join(f"({_predicate(dialect, qc, case_insensitive)})" for _ in patterns)
        _, rows = warehouse.query(f"SELECT COUNT(*) FROM {_quote(col.table)} WHERE {qc} IS NOT NULL "
                                  f"AND ({where})", tuple(patterns))
        n = int(rows[0][0]) if rows else 0
        if n:
            found.append((col.table, col.name, n))
    _LOGGER.info("identifier scan: %d text columns, %d with hits", scanned, len(found))
    return found

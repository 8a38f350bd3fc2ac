"""Exception tree of the governance toolkit.

    GovernanceError                anything the toolkit refuses on purpose
    ├── GovernanceFileError        a governance data file (word roots, a code table) is invalid:
    │                              ``"<file>: <field.path>: <problem>"``
    ├── AccessError                an unknown role or classification level was asked about
    └── TraceError                 a row to trace cannot be found or the table carries no provenance

Warehouse errors (``WarehouseError``) pass through unchanged: the CLI prints them as one line.
"""

from __future__ import annotations


class GovernanceError(Exception):
    """Root of every error the governance toolkit raises on purpose."""


class GovernanceFileError(GovernanceError):
    """A governance data file is invalid; ``str(err)`` reads ``"<file>: <field>: <problem>"``."""

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        super().__init__(f"{file}: {field}: {problem}" if field else f"{file}: {problem}")


class AccessError(GovernanceError):
    """An unknown role or classification level (access decisions never guess)."""


class TraceError(GovernanceError):
    """Row-level provenance cannot be given (no such table, no matching row, no lineage columns)."""

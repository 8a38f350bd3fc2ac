"""Data governance toolkit of the campus warehouse: word roots, data dictionary, catalog, classification,
lineage and row-level provenance (浙江省教育数据治理工作指南, 工作任务（四）and（十）). See docs/governance.md.

Public surface::

    load_roots() -> RootLibrary;  check_names() -> NamingReport (.ok, .problems)
    default_dictionary() -> DataDictionary;  dictionary_version() -> "1.0"
    build_catalog() -> Catalog   (catalog.export_json / export_markdown, catalog_html.render_html)
    can_read(role, level) -> bool;  columns_visible(role, table) -> column names;  ROLE_MAX_LEVEL
    scan_for_identifiers(warehouse, identifiers) -> [(table, column, rows)]
    build_lineage() -> LineageGraph (.upstream / .downstream);  trace(warehouse, table, where=…|keys=…)

Errors: ``GovernanceError`` and its subclasses (``errors.py``).
"""

from cloud_ingest.governance.catalog import Catalog, build_catalog
from cloud_ingest.governance.classification import (
    LEVELS,
    ROLE_MAX_LEVEL,
    can_read,
    columns_hidden,
    columns_visible,
    table_level,
)
from cloud_ingest.governance.dictionary import (
    DataDictionary,
    check_dictionary,
    default_dictionary,
    dictionary_fingerprint,
    dictionary_version,
    load_dictionary,
)
from cloud_ingest.governance.errors import AccessError, GovernanceError, GovernanceFileError, TraceError
from cloud_ingest.governance.lineage import LineageGraph, build_lineage
from cloud_ingest.governance.naming import NamingReport, check_names
from cloud_ingest.governance.provenance import RowTrace, SummaryTrace, trace
from cloud_ingest.governance.roots import RootLibrary, load_roots
from cloud_ingest.governance.scan import scan_for_identifiers

__all__ = [
    "LEVELS",
    "ROLE_MAX_LEVEL",
    "AccessError",
    "Catalog",
    "DataDictionary",
    "GovernanceError",
    "GovernanceFileError",
    "LineageGraph",
    "NamingReport",
    "RootLibrary",
    "RowTrace",
    "SummaryTrace",
    "TraceError",
    "build_catalog",
    "build_lineage",
    "can_read",
    "check_dictionary",
    "check_names",
    "columns_hidden",
    "columns_visible",
    "default_dictionary",
    "dictionary_fingerprint",
    "dictionary_version",
    "load_dictionary",
    "load_roots",
    "scan_for_identifiers",
    "table_level",
    "trace",
]

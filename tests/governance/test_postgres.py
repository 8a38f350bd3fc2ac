"""The read-only governance tools on a real PostgreSQL warehouse: live catalog coverage, naming drift check,
identifier scan (PostgreSQL regular expressions) and row trace (ctid row ids)."""

from __future__ import annotations

import pytest

from cloud_ingest.governance.catalog import build_catalog
from cloud_ingest.governance.names import live_columns, schema_names
from cloud_ingest.governance.naming import check
from cloud_ingest.governance.provenance import RowTrace, trace
from cloud_ingest.governance.roots import load_roots
from cloud_ingest.governance.scan import scan_for_identifiers
from cloud_ingest.warehouse import open_warehouse
from tests.governance import edge_run
from tests.governance.conftest import REGISTRY_DEMO

pytestmark = pytest.mark.postgres


def test_governance_tools_on_postgres(pg_url: str) -> None:
    wh = open_warehouse(pg_url)
    try:
        live = live_columns(wh)
        assert {(c.table, c.name) for c in live} == {(t.name, c.name) for t in build_catalog().tables
                                                    for c in t.columns}
        assert check(load_roots(), schema_names(), live).ok
        wh.load_registry_file(REGISTRY_DEMO)
        run = edge_run.run(wh)
        assert scan_for_identifiers(wh, run.cards) == []
        assert scan_for_identifiers(wh, run.names) == []
        pseudo = wh.query("SELECT subject_pseudo FROM dwd_acs_event_di LIMIT 1")[1][0][0]
        assert ("dwd_acs_event_di", "subject_pseudo", 5) in scan_for_identifiers(wh, [pseudo.upper()])
        ctid = wh.query("SELECT CAST(ctid AS TEXT) FROM dwd_env_reading_di LIMIT 1")[1][0][0]
        [tr] = trace(wh, "dwd_env_reading_di", row_id=ctid)
        assert isinstance(tr, RowTrace)
        assert tr.batch is not None
        assert tr.batch["gateway_id"] == "gw-teach"
    finally:
        wh.close()

"""Row-level provenance after landing real batches: a DWD row traces back to its gateway, batch sequence,
received time, device, profile and version, and the record as received; a DWS row through its DWD inputs."""

from __future__ import annotations

import json

import pytest

from cloud_ingest.cli import main
from cloud_ingest.governance.errors import TraceError
from cloud_ingest.governance.provenance import RowTrace, SummaryTrace, trace
from cloud_ingest.warehouse import Warehouse, open_warehouse
from tests.governance import edge_run
from tests.governance.conftest import REGISTRY_DEMO


@pytest.fixture
def landed(duck_url: str) -> edge_run.RunResult:
    """A DuckDB warehouse with the demo registry and three real batches from the edge decoder, transformed."""
    wh = open_warehouse(duck_url)
    try:
        wh.load_registry_file(REGISTRY_DEMO)
        return edge_run.run(wh, per_batch=40)
    finally:
        wh.close()


def _batch_of(run: edge_run.RunResult, ts_ms: int) -> tuple[str, int, int]:
    """The batch the edge run put the message of ``ts_ms`` in (40 messages per batch, 2 per 30 s step)."""
    step = (ts_ms - edge_run.T0_MS) // 30_000
    return run.batches[(2 * step) // 40]


def test_trace_dwd_reading_returns_its_gateway_and_sequence(duck_url: str, landed: edge_run.RunResult) -> None:
    wh = open_warehouse(duck_url)
    try:
        ts = edge_run.T0_MS + 25 * 30_000 + 15  # the climate message of step 25 (received 15 ms after)
        [tr] = trace(wh, "dwd_env_reading_di", keys={"device_id": "aq-t101", "metric_code": "temperature_air",
                                                       "ts_ms": ts})
    finally:
        wh.close()
    assert isinstance(tr, RowTrace)
    gw, seq, received = _batch_of(landed, ts)
    assert (tr.row["gateway_id"], tr.row["batch_seq"]) == (gw, seq) == ("gw-teach", 2)
    assert tr.batch is not None
    assert (tr.batch["gateway_id"], tr.batch["batch_seq"], tr.batch["received_ms"]) == (gw, seq, received)
    assert tr.profile["profile_id"] == "zigbee2mqtt.aqara_wsdcgq11lm"
    assert tr.profile["profile_ver"] == "1"
    assert tr.placement is not None
    assert tr.placement["room_id"] == "t101"
    assert [r["value"] for r in tr.received] == [tr.row["value"]]
    assert tr.ods_table == "ods_iot_reading_di"


def test_trace_acs_event_and_where_clause(duck_url: str, landed: edge_run.RunResult) -> None:
    wh = open_warehouse(duck_url)
    try:
        ts = edge_run.T0_MS + 50 * 30_000
        traces = trace(wh, "dwd_acs_event_di", where=f"device_id = 'rfid-t1' AND ts_ms = {ts}")
    finally:
        wh.close()
    [tr] = traces
    assert isinstance(tr, RowTrace)
    assert (tr.row["gateway_id"], tr.row["batch_seq"]) == _batch_of(landed, ts)[:2] == ("gw-teach", 3)
    assert tr.ods_table == "ods_iot_event_di"
    assert tr.received[0]["attrs_json"] == tr.row["attrs_json"]
    assert str(tr.row["subject_pseudo"]).startswith("p1:")
    wh = open_warehouse(duck_url)
    try:
        [seen] = trace(wh, "dwd_acs_event_di", where=f"device_id = 'rfid-t1' AND ts_ms = {ts}", role="analyst")
    finally:
        wh.close()
    assert isinstance(seen, RowTrace)
    assert seen.row["subject_pseudo"] == seen.row["attrs_json"] == seen.received[0]["attrs_json"] == "<withheld>"
    assert seen.row["device_id"] == "rfid-t1"


def test_trace_dws_row_through_its_dwd_inputs(duck_url: str, landed: edge_run.RunResult) -> None:
    wh = open_warehouse(duck_url)
    try:
        [tr] = trace(wh, "dws_env_room_1h", keys={"room_id": "t101", "metric_code": "humidity_rel"})
        [ads] = trace(wh, "ads_iot_online_rate_1d", where="campus_id = 'hz-xixi'")
    finally:
        wh.close()
    assert isinstance(tr, SummaryTrace)
    [inp] = tr.inputs
    assert inp.table == "dwd_env_reading_di"
    assert inp.rows == 60  # one humidity reading per 30 s step
    assert tr.row["sample_cnt"] == inp.rows
    assert [(b["gateway_id"], b["batch_seq"], b["received_ms"]) for b in inp.batches] == list(landed.batches)
    assert isinstance(ads, SummaryTrace)
    assert {i.table for i in ads.inputs} >= {"dwd_env_reading_di", "dwd_acs_event_di"}


def test_trace_refuses_what_it_cannot_trace(duck: Warehouse) -> None:
    with pytest.raises(TraceError, match="trace DWD, DWS or ADS rows"):
        trace(duck, "ods_iot_reading_di", where="TRUE")
    with pytest.raises(TraceError, match="no row matches"):
        trace(duck, "dwd_env_reading_di", where="TRUE")
    with pytest.raises(TraceError, match="exactly one"):
        trace(duck, "dwd_env_reading_di", where="TRUE", keys={"device_id": "x"})


def test_cli_trace_text_json_and_row_id(duck_url: str, landed: edge_run.RunResult,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["trace", "--warehouse", duck_url, "--table", "dwd_env_reading_di"]
    assert main([*base, "--key", "device_id=aq-t101", "--key", "metric_code=pressure_air", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "batch: gateway gw-teach seq 1" in out
    assert "profile zigbee2mqtt.aqara_wsdcgq11lm version 1" in out
    assert main([*base, "--row-id", "0", "--format", "json"]) == 0
    [doc] = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "row"
    assert doc["batch"]["gateway_id"] == "gw-teach"
    assert main([*base, "--key", "ts_ms=soon"]) == 2
    assert main([*base, "--where", "device_id = 'ghost'"]) == 1
    assert "no row matches" in capsys.readouterr().err

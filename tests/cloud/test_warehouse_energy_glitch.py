"""A meter reading that steps back a little (glitch, reordering) is not a counter reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_ingest.warehouse import Warehouse
from edge_agent.model import ProfileRef, Reading
from edge_agent.wire import build_batch

T0 = 1_725_242_400_000  # 2024-09-02 10:00 +08:00 (on the hour)
REF = ProfileRef("tasmota_energy", 1)


@pytest.mark.parametrize(("values", "expected"), [
    ([1000.0, 1001.0, 1000.5, 1002.0], 2.5),   # small backwards step: counts 0, not 1000.5
    ([1000.0, 1001.0, 3.0, 4.0], 5.0),         # a real reset (meter replaced): the new reading counts
])
def test_energy_deltas(warehouse: Warehouse, registry_demo: Path, values: list[float], expected: float) -> None:
    warehouse.load_registry_file(registry_demo)
    readings = [Reading("em-teach", "energy_active_total", T0 + i * 600_000, v, "kWh", REF)
                for i, v in enumerate(values)]
    warehouse.land_batch(build_batch("gw-teach", 1, T0, readings, []), body_checksum="c" * 32,
                         received_ms=T0 + 3_600_000)
    warehouse.run_transforms()
    _, rows = warehouse.query("SELECT sum(energy_kwh) FROM dws_energy_building_1h WHERE building_id = 'bld-teach'",
                              ())
    assert rows[0][0] == pytest.approx(expected)

"""Describe a simulated campus as a warehouse registry (DIM tables): campus, buildings, rooms, devices.

The demo loads this into the warehouse so DWS/ADS can roll readings up by room and building. Device ids
are the ids the decoder reports, so the registry and the data join. Format: docs/warehouse.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.simulator.campus import RoomType
from gateway.simulator.simulator import Simulator

# simulator room types → registry room types (docs/warehouse.md lists the registry's)
ROOM_TYPES = {RoomType.ENTRANCE: "corridor"}
ROOM_AREA_M2 = {RoomType.CLASSROOM: 70.0, RoomType.LAB: 90.0, RoomType.OFFICE: 30.0, RoomType.LIBRARY: 400.0,
                RoomType.CANTEEN: 500.0, RoomType.GYM: 800.0, RoomType.ENTRANCE: 60.0, RoomType.PLANT: 40.0}


def registry_for(sim: Simulator, *, campus_id: str, gateway_id: str,
                 profile_versions: Mapping[str, int]) -> dict[str, Any]:
    """A registry dict for ``sim``'s campus and fleet, all devices behind one gateway."""
    campus = sim.campus
    buildings = []
    for b in campus.buildings():
        rooms = [r for r in campus.rooms if r.building == b]
        area = sum(ROOM_AREA_M2[r.type] for r in rooms)
        buildings.append({
            "id": f"bld-{b}".lower(), "name": f"Building {b}", "type": "teaching",
            "floor_area_m2": round(area * 1.4, 1),  # rooms plus corridors, stairs and walls
            "floors": max(r.floor for r in rooms) + 1,
            "rooms": [{"id": r.id.lower(), "name": r.id, "type": ROOM_TYPES.get(r.type, str(r.type)),
                       "floor": r.floor, "area_m2": ROOM_AREA_M2[r.type], "seats": r.capacity} for r in rooms],
        })
    used = sorted({sim.types[d.type_name].profile for d in sim.devices})

    def ref(pid: str) -> str:
        return f"{pid}@{profile_versions.get(pid, 1)}"

    profiles = [{"ref": ref(pid), "vendor": "simulated", "model": pid, "domain": "teaching"} for pid in used]
    devices = [{"id": d.id, "name": f"{d.type_name} in {d.room.id}", "profile": ref(sim.types[d.type_name].profile),
                "gateway": gateway_id, "room": d.room.id.lower()} for d in sim.devices]
    return {
        "version": 1,
        "campuses": [{"id": campus_id, "name": campus.name, "district": "simulated district",
                      "utc_offset_min": campus.tz_offset_s // 60,
                      "gateways": [{"id": gateway_id, "name": f"gateway {gateway_id}"}], "buildings": buildings}],
        "profiles": profiles,
        "devices": devices,
    }

"""Disk budget: measure use cheaply, evict by class when over budget, raise BackPressure when stuck.

Used bytes = (page_count − freelist_count) × page_size + size of the ``-wal`` file. Free pages are not
counted: SQLite reuses them before growing the file, so the file never grows past the high-water mark
of used bytes.
"""

from __future__ import annotations

import logging

from edge_agent.buffer.core import Core
from edge_agent.buffer.eviction import classes
from edge_agent.buffer.opening import wal_bytes
from edge_agent.buffer.records import BudgetStatus
from edge_agent.errors import BackPressure

_LOGGER = logging.getLogger(__name__)

_USED_PAGES = (
    "SELECT (SELECT page_count FROM pragma_page_count()) "
    "- (SELECT freelist_count FROM pragma_freelist_count())"
)


async def measure(core: Core) -> BudgetStatus:
    pages = int(str(await core.scalar(_USED_PAGES)))
    db = pages * core.page_size
    wal = wal_bytes(core.path)
    return BudgetStatus(db + wal, db, wal, core.config.budget_bytes, core.back_pressure)


async def checkpoint(core: Core) -> None:
    """Copy the WAL into the database and truncate it (it counts against the budget)."""
    await core.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def evict_down_to(core: Core, target: int) -> int:
    """Evict class by class, oldest first, until used bytes ≤ ``target``; return rows evicted."""
    total = 0
    cfg = core.config
    used = (await measure(core)).used_bytes
    for cls in classes(cfg.evict_events):
        for step in cls.steps:
            while used > target:
                n = await step(core, cfg.eviction_chunk)
                if n == 0:
                    break
                total += n
                st = await measure(core)
                if st.wal_bytes > max(target // 8, 1):
                    await checkpoint(core)
                    st = await measure(core)
                used = st.used_bytes
            if used <= target:
                break
        if used <= target:
            break
    if total:
        await checkpoint(core)
        _LOGGER.warning("disk budget: evicted %s rows; %s bytes used of %s", total,
                        (await measure(core)).used_bytes, cfg.budget_bytes)
    return total


async def set_back_pressure(core: Core, on: bool) -> None:
    if on and not core.back_pressure:
        async with core.txn("count back-pressure episode"):
            await core.add_counters({"back_pressure.episodes": 1})
        _LOGGER.error("buffer %s: disk budget exhausted and nothing evictable: back-pressure on", core.path)
    elif not on and core.back_pressure:
        _LOGGER.warning("buffer %s: space available again: back-pressure off", core.path)
    core.back_pressure = on


async def ensure_room(core: Core, need: int) -> int:
    """Make room for ``need`` more bytes; return rows evicted, or raise :class:`BackPressure`.

    Nothing of the caller's burst is written when this raises.
    """
    budget = core.config.budget_bytes
    low = int(budget * core.config.low_water)
    # hysteresis: once refusing, accept again only below the low-water mark (no flapping)
    limit = low if core.back_pressure else budget
    st = await measure(core)
    if st.used_bytes + need <= limit:
        await set_back_pressure(core, False)
        return 0
    if st.wal_bytes:
        await checkpoint(core)
        st = await measure(core)
        if st.used_bytes + need <= limit:
            await set_back_pressure(core, False)
            return 0
    target = low - need
    if target <= 0:
        await set_back_pressure(core, True)
        raise BackPressure(
            f"{core.path}: a burst of ~{need} bytes does not fit a disk budget of {budget} bytes; "
            "send smaller bursts or raise the budget"
        )
    evicted = await evict_down_to(core, target)
    st = await measure(core)
    if st.used_bytes + need > limit:
        await set_back_pressure(core, True)
        raise BackPressure(
            f"{core.path}: disk budget of {budget} bytes is full ({st.used_bytes} used, {need} more needed) "
            "and nothing more can be evicted; stop acknowledging until batches are uploaded"
        )
    await set_back_pressure(core, False)
    return evicted

"""Crashed tasks are logged and restarted, not silently dead."""

from __future__ import annotations

import asyncio

import pytest

from gateway import supervisor as sup_mod
from gateway.supervisor import Supervisor


async def test_crashing_task_is_restarted(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) \
        -> None:
    monkeypatch.setattr(sup_mod, "RESTART_MIN_S", 0.01)
    runs = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(3600)

    s = Supervisor()
    s.start("flaky", flaky)
    for _ in range(200):
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.01)
    assert len(runs) == 3
    snap = s.snapshot()["flaky"]
    assert snap["restarts"] == 2
    assert snap["alive"] is True
    assert "RuntimeError: boom" in str(snap["last_error"])
    assert "task flaky crashed" in caplog.text
    await s.stop()
    assert s.snapshot()["flaky"]["alive"] is False


async def test_beats_are_tracked() -> None:
    now = [100.0]
    s = Supervisor(monotonic=lambda: now[0])

    async def idle() -> None:
        await asyncio.sleep(3600)

    s.start("idle", idle)
    now[0] = 105.0
    assert s.since_beat("idle") == 5.0
    s.beat("idle")
    assert s.since_beat("idle") == 0.0
    await s.stop()

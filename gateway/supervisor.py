"""Supervision of the daemon's long-running asyncio tasks.

A task that raises is logged with its traceback and restarted after a backoff (doubling up to
``RESTART_MAX_S``); restarts are counted per task and exported in ``/metrics`` and ``/status``, so a
task is never silently dead. Tasks call :meth:`Supervisor.beat` when they make progress; the watchdog
uses the beats to decide whether the pipeline is healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

_LOGGER = logging.getLogger(__name__)

RESTART_MIN_S = 0.5  # first restart delay after a crash
RESTART_MAX_S = 30.0  # cap, so a task that keeps crashing does not spin the CPU


@dataclass
class TaskState:
    name: str
    factory: Callable[[], Awaitable[None]]
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    last_error: str | None = None
    last_beat: float = field(default_factory=time.monotonic)
    finished: Callable[[], bool] = lambda: False


class Supervisor:
    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._tasks: dict[str, TaskState] = {}
        self._monotonic = monotonic
        self._stopping = False

    def start(self, name: str, factory: Callable[[], Awaitable[None]], *,
              finished: Callable[[], bool] = lambda: False) -> None:
        """Run ``factory()`` as task ``name`` and keep it running until :meth:`stop`.

        A task that returns while ``finished()`` is true ends quietly (e.g. on the daemon's stop event).
        """
        state = TaskState(name, factory, last_beat=self._monotonic(), finished=finished)
        self._tasks[name] = state
        state.task = asyncio.create_task(self._keep_running(state), name=name)

    def beat(self, name: str) -> None:
        state = self._tasks.get(name)
        if state is not None:
            state.last_beat = self._monotonic()

    def since_beat(self, name: str) -> float:
        state = self._tasks[name]
        return self._monotonic() - state.last_beat

    def alive(self, name: str) -> bool:
        state = self._tasks.get(name)
        return state is not None and state.task is not None and not state.task.done()

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {n: {"restarts": s.restarts, "last_error": s.last_error, "alive": self.alive(n)}
                for n, s in self._tasks.items()}

    async def _keep_running(self, state: TaskState) -> None:
        delay = RESTART_MIN_S
        while not self._stopping:
            started = self._monotonic()
            try:
                await state.factory()
                if self._stopping or state.finished():
                    return
                _LOGGER.warning("task %s returned unexpectedly; restarting", state.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.last_error = f"{type(exc).__name__}: {exc}"
                _LOGGER.exception("task %s crashed; restarting in %.1fs", state.name, delay)
            state.restarts += 1
            if self._monotonic() - started > 60:
                delay = RESTART_MIN_S  # it ran fine for a while: start the backoff over
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel every task and wait for them (bounded)."""
        self._stopping = True
        tasks = [s.task for s in self._tasks.values() if s.task is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout)

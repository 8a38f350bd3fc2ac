"""A shared/exclusive lock for threads: many landings at once, or one watermark snapshot.

Landings hold it shared from before they draw a change id until they commit; a transform run takes it
exclusively for the instant it reads the highest committed id (see ``adapter``'s watermark protocol).
A waiting exclusive request blocks new shared holders, so a steady stream of uploads cannot starve it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class SharedExclusiveLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # exclusive requests queued

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._shared:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

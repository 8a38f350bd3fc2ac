"""Request limits: a body reader with a hard byte cap and a deadline, and the gate of in-flight landings.

Policies (each one counted on ``/metrics``):

* Body larger than ``max_body_bytes``: refused with 413 from ``Content-Length`` before a byte is read,
  or, for a chunked body, as soon as the running count passes the cap; at most ``cap + one chunk`` bytes
  are ever held.
* Body not complete within ``body_timeout_s``: 408.
* Admission gate full (``max_requests`` batch requests already receiving, waiting, decoding or landing):
  429 with ``Retry-After`` at once, before a byte of the body is read.
* Landing gate full (``max_in_flight`` decodes/landings running and no slot free within ``queue_wait_s``):
  429 with ``Retry-After``.

Memory bound: about ``max_requests * max_body_bytes`` for bodies plus ``max_in_flight *
(max_decompressed_bytes + 60 B * max_records)`` for decoding (docs/wire-format.md §11).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator

import anyio


class BodyTooLarge(Exception):
    """The body passed ``limit`` bytes; ``seen`` is how many had arrived when reading stopped."""

    def __init__(self, limit: int, seen: int) -> None:
        self.limit = limit
        self.seen = seen
        super().__init__(f"body larger than {limit} bytes (stopped after {seen})")


class BodyTimeout(Exception):
    """The client did not send its whole body in time."""


class Saturated(Exception):
    """No landing slot is free: the caller answers 429 with Retry-After."""


async def read_capped(chunks: AsyncIterable[bytes], limit: int, timeout_s: float) -> bytes:
    """Collect ``chunks`` into bytes, stopping as soon as more than ``limit`` bytes arrived.

    Raises :class:`BodyTooLarge` (nothing more is read from the client) or :class:`BodyTimeout`.
    """
    buf = bytearray()
    with anyio.move_on_after(timeout_s) as scope:
        async for chunk in chunks:
            if len(buf) + len(chunk) > limit:
                raise BodyTooLarge(limit, len(buf) + len(chunk))
            buf += chunk
    if scope.cancelled_caught:
        raise BodyTimeout(f"body not complete after {timeout_s}s ({len(buf)} bytes arrived)")
    return bytes(buf)


async def drain(chunks: AsyncIterable[bytes], max_bytes: int, timeout_s: float) -> bool:
    """Read and discard ``chunks`` up to ``max_bytes`` within ``timeout_s``; True when the body ended.

    A refused body that is small enough is drained before the answer, so the client reads the 413 instead
    of a TCP reset (closing a socket with unread data resets it).
    """
    seen = 0
    with anyio.move_on_after(timeout_s):
        async for chunk in chunks:
            seen += len(chunk)
            if seen > max_bytes:
                return False
        return True
    return False


class Gate:
    """At most ``limit`` holders; a request that finds none free waits up to ``wait_s`` (0: not at all).

    The number of waiters is bounded by whatever admitted them (the admission gate in front of the landing
    gate). Used from one event loop (the API's); holders may hand work to threads while they hold a slot.
    """

    def __init__(self, name: str, limit: int, wait_s: float) -> None:
        self.name = name
        self.limit = limit
        self.wait_s = wait_s
        self._sem = anyio.Semaphore(limit)
        self.holders = 0
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot; raise :class:`Saturated` when none is free within ``wait_s``."""
        acquired = True
        try:
            self._sem.acquire_nowait()
        except anyio.WouldBlock:
            acquired = False
        if not acquired:
            if self.wait_s <= 0:
                raise Saturated(f"all {self.limit} {self.name} slots are busy")
            self.waiting += 1
            try:
                with anyio.move_on_after(self.wait_s):
                    await self._sem.acquire()
                    acquired = True
            finally:
                self.waiting -= 1
            if not acquired:
                raise Saturated(f"no {self.name} slot free within {self.wait_s}s")
        self.holders += 1
        try:
            yield
        finally:
            self.holders -= 1
            self._sem.release()

"""Open the buffer file safely: check the file, switch to WAL, verify integrity, set durability pragmas.

Refuses, with an error naming the file and what was seen:

* a file that is not an SQLite database (wrong magic) or is shorter than its own header says (truncated);
* a file whose ``PRAGMA quick_check`` is not ``ok`` (damaged pages);
* a file or file system where ``PRAGMA journal_mode=WAL`` does not take (e.g. read-only, ``:memory:``).

``synchronous=FULL``: in WAL mode every COMMIT fsyncs the WAL, so a transaction that returned survives
power loss. ``NORMAL`` would skip that fsync (still consistent, but the last commits can vanish on power
loss), which breaks "acknowledge only after commit". The cost is one fsync per transaction, which is why
the buffer commits a whole burst of messages at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from pathlib import Path

import aiosqlite

from edge_agent.buffer.errors import BufferCorrupt, BufferNotWal
from edge_agent.buffer.records import BufferConfig
from edge_agent.errors import BufferError_

_LOGGER = logging.getLogger(__name__)

MAGIC = b"SQLite format 3\x00"
HEADER_LEN = 100
RECOVER_HINT = "open it with recover=True to salvage what can be read into a new file, or move it away"
WAL_LIMIT_BYTES = 4 * 1024 * 1024  # WAL file truncated back to this after checkpoints; counts in budget


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def check_file(path: Path) -> None:
    """Cheap checks before SQLite touches the file; raise :class:`BufferCorrupt` naming what was found.

    A missing file, or an empty one with no WAL, is a new buffer (nothing was ever committed to it).
    """
    if str(path) == ":memory:" or not str(path):
        raise BufferNotWal(str(path) or "''", "memory")
    if not path.exists():
        if _size(wal_path(path)):
            raise BufferCorrupt(str(path), f"the database file is missing but its WAL {wal_path(path)} "
                                f"({_size(wal_path(path))} bytes) exists", RECOVER_HINT)
        return
    if path.is_dir():
        raise BufferCorrupt(str(path), "it is a directory, not a file")
    size = _size(path)
    wal = _size(wal_path(path))
    if size == 0:
        if wal == 0:
            _LOGGER.warning("buffer file %s is empty: initialising a new buffer", path)
        return  # with a WAL: SQLite replays it (crash before the first checkpoint)
    with path.open("rb") as fh:
        head = fh.read(HEADER_LEN)
    if len(head) < HEADER_LEN:
        raise BufferCorrupt(str(path), f"file is {size} bytes, shorter than an SQLite header (truncated)",
                            RECOVER_HINT)
    if head[:16] != MAGIC:
        raise BufferCorrupt(str(path), f"not an SQLite database (first bytes {head[:16]!r})", RECOVER_HINT)
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise BufferCorrupt(str(path), f"header names an invalid page size {page_size}", RECOVER_HINT)
    n_pages = int.from_bytes(head[28:32], "big")
    size_valid = n_pages > 0 and head[24:28] == head[92:96]
    # With a non-empty WAL the main file may legitimately lag its header (interrupted checkpoint).
    if size_valid and wal == 0 and size < n_pages * page_size:
        raise BufferCorrupt(
            str(path),
            f"file is {size} bytes but its header says {n_pages} pages of {page_size} bytes "
            f"({n_pages * page_size} bytes): truncated",
            RECOVER_HINT,
        )


async def _one(db: aiosqlite.Connection, sql: str) -> object:
    rows = list(await db.execute_fetchall(sql))
    return rows[0][0] if rows else None


async def connect(path: Path, config: BufferConfig) -> aiosqlite.Connection:
    """Return an autocommit connection in WAL mode with durability pragmas, after integrity checks."""
    check_file(path)
    try:
        db = await aiosqlite.connect(str(path), isolation_level=None, timeout=config.lock_timeout_s)
    except sqlite3.Error as exc:
        raise BufferCorrupt(str(path), f"SQLite cannot open it: {exc}") from exc
    try:
        try:
            mode = str(await _one(db, "PRAGMA journal_mode=WAL")).lower()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise BufferError_(f"{path}: the buffer is locked by another process ({exc})") from exc
            raise BufferNotWal(str(path), f"error: {exc}") from exc
        if mode != "wal":
            raise BufferNotWal(str(path), mode)
        if config.quick_check:
            try:
                rows = [str(r[0]) for r in await db.execute_fetchall("PRAGMA quick_check(20)")]
            except sqlite3.DatabaseError as exc:
                raise BufferCorrupt(str(path), f"PRAGMA quick_check failed: {exc}", RECOVER_HINT) from exc
            if rows != ["ok"]:
                found = "; ".join(rows[:5]) + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")
                raise BufferCorrupt(str(path), f"PRAGMA quick_check reported: {found}", RECOVER_HINT)
        page_size = int(str(await _one(db, "PRAGMA page_size")))
        wal_pages = max(16, min(1000, config.budget_bytes // page_size // 16))
        wal_limit = min(WAL_LIMIT_BYTES, config.budget_bytes // 16)
        for pragma in (
            "synchronous=FULL",  # see module docstring: an acknowledged message survives power loss
            "foreign_keys=OFF",
            "temp_store=MEMORY",
            f"cache_size=-{int(config.cache_kib)}",
            f"journal_size_limit={int(wal_limit)}",
            f"wal_autocheckpoint={int(wal_pages)}",  # bounds the WAL (it counts against the budget)
        ):
            await db.execute(f"PRAGMA {pragma}")
    except sqlite3.DatabaseError as exc:
        await db.close()
        raise BufferCorrupt(str(path), f"SQLite error: {exc}", RECOVER_HINT) from exc
    except BaseException:
        await db.close()
        raise
    _LOGGER.debug("opened buffer %s (wal, synchronous=FULL)", path, extra={"path": str(path)})
    return db


def acquire_lock(path: Path) -> int:
    """Take ``<path>.lock`` (flock, exclusive, non-blocking) so only one Buffer uses the file.

    Two writers would hand out clashing series ids; the kernel drops the lock when the process dies.
    Returns the file descriptor to pass to :func:`release_lock`.
    """
    if str(path) == ":memory:" or not str(path):
        raise BufferNotWal(str(path) or "''", "memory")
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise BufferError_(
            f"{path}: the buffer is in use by another process or Buffer (lock {lock})") from exc
    return fd


def release_lock(fd: int) -> None:
    if fd >= 0:
        os.close(fd)  # closing the descriptor drops the flock


def wal_bytes(path: Path) -> int:
    return _size(wal_path(path))


def remove_side_files(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            os.unlink(p)

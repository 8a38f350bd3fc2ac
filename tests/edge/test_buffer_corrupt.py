"""Damaged files: refused clearly (naming the file and what was found), or salvaged with recover=True."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest

from edge_agent.buffer import Buffer, BufferConfig, BufferCorrupt, BufferError_, BufferNotWal
from edge_agent.buffer.recover import finish_interrupted
from tests.edge.test_buffer_helpers import BASE, BURST_SPAN, burst, event_burst, quarantine_result, rows

PAGE = 4096


async def make_buffer(path: Path, n_bursts: int = 20) -> tuple[set[tuple[int, float]], int]:
    """A closed buffer with readings (some batched, some sent) and a stored batch; returns the readings
    as (ts_ms, value) and the last issued seq."""
    async with await Buffer.open(path) as b:
        for k in range(n_bursts):
            await b.commit_burst(burst(k, 100))
        await b.commit_burst(event_burst(99, 20) + [quarantine_result(i) for i in range(5)])
        p = await b.take_unbatched(2000, 0)
        seq = await b.next_seq()
        await b.store_batch(seq, p.priority, b"sent body", p.n_readings, 0, p.r_id)
        await b.mark_sent(seq)
        p = await b.take_unbatched(1000, 10)
        seq = await b.next_seq()
        await b.store_batch(seq, p.priority, b"unsent body", p.n_readings, p.n_events, p.r_id, p.e_id)
    written = {(int(str(t)), float(str(v))) for t, v in rows(path, "SELECT ts_ms, value FROM readings")}
    assert not path.with_name(path.name + "-wal").exists()  # clean close: all in the main file
    return written, seq


def garble(path: Path, first_page: int, n_pages: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("r+b") as fh:
        fh.seek((first_page - 1) * PAGE)
        fh.write(bytes(rng.getrandbits(8) for _ in range(n_pages * PAGE)))


async def test_not_an_sqlite_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    path.write_bytes(b"this is a text file, not a database\n" * 100)
    with pytest.raises(BufferCorrupt, match="not an SQLite database") as err:
        await Buffer.open(path)
    assert str(path) in str(err.value)
    assert "recover=True" in str(err.value)
    assert path.read_bytes().startswith(b"this is a text file")  # untouched


async def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    await make_buffer(path, 10)
    size = path.stat().st_size
    os.truncate(path, size // 2)
    with pytest.raises(BufferCorrupt, match="truncated") as err:
        await Buffer.open(path)
    assert str(path) in str(err.value)
    assert f"file is {size // 2} bytes" in str(err.value)
    os.truncate(path, 60)
    with pytest.raises(BufferCorrupt, match="shorter than an SQLite header"):
        await Buffer.open(path)


async def test_garbage_pages_fail_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    await make_buffer(path)
    n_pages = path.stat().st_size // PAGE
    garble(path, n_pages // 3, 4)
    with pytest.raises(BufferCorrupt, match=r"quick_check (reported|failed)") as err:
        await Buffer.open(path)
    assert str(path) in str(err.value)


async def test_recover_salvages_what_is_readable_and_never_serves_wrong_data(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    written, last_seq = await make_buffer(path)
    n_pages = path.stat().st_size // PAGE
    garble(path, n_pages // 3, 4)
    async with await Buffer.open(path, recover=True) as b:
        rep = b.recovery
        assert rep is not None
        assert "quick_check" in rep.found
        assert Path(rep.damaged_path).exists()
        assert Path(rep.damaged_path).name.startswith("buffer.db.damaged-")
        assert rep.salvaged["readings"] > 0
        assert rep.salvaged["series"] == 35 + 3
        assert rep.lost_id_ranges.get("readings") or rep.lost.get("readings") or rep.tables_unreadable
        got = {(int(str(t)), float(str(v))) for t, v in rows(path, "SELECT ts_ms, value FROM readings")}
        assert got <= written  # every salvaged reading is one that was written, with its value
        assert len(got) == rep.salvaged["readings"] < len(written)
        # consistent state: counts, and the sequence continues above every issued number
        assert await b.next_seq() > last_seq
        assert (await b.backlog()).readings_by_state == (await b.backlog(exact=True)).readings_by_state
        c = await b.counters()
        assert c["recovery.runs"] == 1
        await b.commit_burst(burst(50, 10))  # and it works as a buffer again
    async with await Buffer.open(path) as b:  # the new file passes the checks
        assert (await b.backlog()).unsent_readings > 0


async def test_recover_from_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    path.write_bytes(os.urandom(3 * PAGE))
    async with await Buffer.open(path, recover=True, clock=lambda: 1_800_000_000_000) as b:
        rep = b.recovery
        assert rep is not None
        assert "readings" in rep.tables_unreadable
        assert rep.salvaged.get("readings", 0) == 0
        assert await b.next_seq() >= 1_800_000_000_000 * 1000  # cannot know the old seq: start above it
    damaged = list(tmp_path.glob("buffer.db.damaged-*"))
    assert len(damaged) == 1
    assert damaged[0].stat().st_size == 3 * PAGE


async def test_recover_truncated_file_keeps_the_readable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    written, _ = await make_buffer(path)
    os.truncate(path, path.stat().st_size * 2 // 3)
    async with await Buffer.open(path, recover=True) as b:
        rep = b.recovery
        assert rep is not None
        assert "truncated" in rep.found
        got = {(int(str(t)), float(str(v))) for t, v in rows(path, "SELECT ts_ms, value FROM readings")}
        assert got <= written
        assert {(t - BASE) // BURST_SPAN for t, _ in got}  # something was salvaged


async def test_recover_on_a_healthy_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    written, _ = await make_buffer(path, 3)
    async with await Buffer.open(path, recover=True) as b:
        assert b.recovery is None
    got = {(int(str(t)), float(str(v))) for t, v in rows(path, "SELECT ts_ms, value FROM readings")}
    assert got == written


def test_an_interrupted_recovery_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    salvage = tmp_path / "buffer.db.salvage"
    salvage.write_bytes(b"salvaged")
    finish_interrupted(path)  # died after moving the damaged file away: finish the rename
    assert path.read_bytes() == b"salvaged"
    assert not salvage.exists()
    salvage.write_bytes(b"stale")
    finish_interrupted(path)  # died before moving the damaged file: discard, recovery runs again
    assert path.read_bytes() == b"salvaged"
    assert not salvage.exists()


async def test_a_file_that_cannot_do_wal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    con = sqlite3.connect(str(path))
    con.execute("CREATE TABLE x(a)")
    con.commit()
    con.close()
    data = bytearray(path.read_bytes())
    data[18] = 3  # file format write version 3: SQLite may only read this file
    path.write_bytes(bytes(data))
    with pytest.raises(BufferNotWal, match="journal_mode=WAL is not available") as err:
        await Buffer.open(path)
    assert str(path) in str(err.value)
    with pytest.raises(BufferNotWal):
        await Buffer.open(":memory:")


async def test_a_locked_file_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    con = sqlite3.connect(str(path), isolation_level=None)
    con.execute("CREATE TABLE x(a)")
    con.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(BufferError_, match="locked"):
            await Buffer.open(path, BufferConfig(quick_check=False, lock_timeout_s=0.05))
    finally:
        con.execute("ROLLBACK")
        con.close()


async def test_only_one_buffer_may_use_a_file(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    async with await Buffer.open(path):
        with pytest.raises(BufferError_, match="in use by another process"):
            await Buffer.open(path)
    async with await Buffer.open(path):  # released on close
        pass


async def test_a_wal_without_its_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    (tmp_path / "buffer.db-wal").write_bytes(b"\0" * 4096)
    with pytest.raises(BufferCorrupt, match="database file is missing but its WAL"):
        await Buffer.open(path)

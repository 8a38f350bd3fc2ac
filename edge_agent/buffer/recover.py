"""Salvage a damaged buffer file into a new one (``Buffer.open(..., recover=True)``).

Steps, each safe to interrupt:

1. Copy every row that can still be read and passes validation into ``<path>.salvage-partial`` (a new
   file with the current schema), then rename it to ``<path>.salvage``.
2. Move the damaged file and its WAL to ``<path>.damaged-<ms>`` (kept for people to inspect).
3. Rename ``<path>.salvage`` to ``<path>``. :func:`finish_interrupted` completes step 3 on the next
   open if the process died between 2 and 3, and discards a stale salvage if it died before 2.

Reading a damaged table walks its rowids; when SQLite reports corruption, the walk probes further
rowids (doubling, then bisecting) to find the next readable row and records the skipped id range.
Rows are validated (types, ranges, series present, CRC of batch bodies) and never copied when
they look wrong: wrong data is never served. Rows that were batched into a batch that was lost go
back to state NEW (re-uploaded: a duplicate is better than a loss; the cloud de-duplicates).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosqlite
import orjson

from edge_agent.buffer import schema
from edge_agent.buffer.records import BufferConfig, RecoveryReport
from edge_agent.buffer.runs import decode_runs

_LOGGER = logging.getLogger(__name__)

MAX_ID = 2**62
Row = tuple[object, ...]
Check = Callable[[Row, dict[str, set[int]]], bool]


def _salvage_path(path: Path) -> Path:
    return path.with_name(path.name + ".salvage")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finish_interrupted(path: Path) -> None:
    """Complete or discard a recovery that a crash interrupted (see module docstring)."""
    done = _salvage_path(path)
    partial = path.with_name(path.name + ".salvage-partial")
    if partial.exists():
        partial.unlink()
    if done.exists():
        if path.exists():
            done.unlink()  # died before the damaged file was moved: recovery will run again
        else:
            os.replace(done, path)
            _fsync_dir(path)
            _LOGGER.warning("completed an interrupted recovery of %s", path)


def _is_int(v: object, lo: int = -(2**63), hi: int = 2**63 - 1) -> bool:
    return isinstance(v, int) and lo <= v <= hi


def _is_text(v: object) -> bool:
    return isinstance(v, str)


def _json_dict(v: object) -> bool:
    try:
        return isinstance(v, bytes) and isinstance(orjson.loads(v), dict)
    except orjson.JSONDecodeError:
        return False


def _runs_ok(v: object) -> bool:
    try:
        decode_runs(v if isinstance(v, bytes) else None)
    except ValueError:
        return False
    return isinstance(v, bytes)


def _crc_ok(body: object, crc: object) -> bool:
    return isinstance(body, bytes) and isinstance(crc, int) and zlib.crc32(body) == crc


# table, columns (first is the rowid key), validator; order matters (series before readings…)
TABLES: tuple[tuple[str, str, Check], ...] = (
    ("series", "id, device, metric, unit, profile, agg, window_s",
     lambda r, _: _is_int(r[0], 1) and all(map(_is_text, r[1:6])) and _is_int(r[6], 0)),
    ("readings", "id, series, ts_ms, value, quality, priority, state, version",
     lambda r, k: _is_int(r[0], 1) and r[1] in k["series"] and _is_int(r[2])
     and (r[3] is None or isinstance(r[3], int | float)) and _is_int(r[4], 0, 65535)
     and _is_int(r[5], 0, 3) and _is_int(r[6], 0, 3) and _is_int(r[7], 0, 65535)),
    ("events", "id, series, ts_ms, attrs, quality, priority, state",
     lambda r, k: _is_int(r[0], 1) and r[1] in k["series"] and _is_int(r[2]) and _json_dict(r[3])
     and _is_int(r[4], 0, 65535) and _is_int(r[5], 0, 3) and _is_int(r[6], 0, 3)),
    ("waveforms", "id, series, ts_ms, rate_hz, n, samples",
     lambda r, k: _is_int(r[0], 1) and r[1] in k["series"] and _is_int(r[2])
     and isinstance(r[3], int | float) and r[3] > 0 and _is_int(r[4], 0)
     and isinstance(r[5], bytes) and len(r[5]) == 4 * int(str(r[4]))),
    ("quarantine", "id, received_ms, topic, payload, payload_len, profile, device, reason, detail",
     lambda r, _: _is_int(r[0], 1) and _is_int(r[1]) and _is_text(r[2]) and isinstance(r[3], bytes)
     and _is_int(r[4], 0) and (r[5] is None or _is_text(r[5])) and (r[6] is None or _is_text(r[6]))
     and _is_text(r[7]) and _is_text(r[8])),
    ("batch_groups", "id, r_runs, e_runs",
     lambda r, _: _is_int(r[0], 1) and _runs_ok(r[1]) and _runs_ok(r[2])),
    ("batches", "seq, grp, priority, created_ms, n_readings, n_events, size, crc, body",
     lambda r, _: _is_int(r[0], 1) and _is_int(r[1], 1) and _is_int(r[2], 0, 3) and _is_int(r[3])
     and _is_int(r[4], 0) and _is_int(r[5], 0) and _crc_ok(r[8], r[7])),
    ("dead_letter",
     "seq, priority, created_ms, n_readings, n_events, size, crc, body, status, reason, dead_ms",
     lambda r, _: _is_int(r[0], 1) and _crc_ok(r[7], r[6]) and _is_text(r[9])),
)


class _Walker:
    """Reads every readable row of one rowid table in order, recording unreadable id ranges."""

    def __init__(self, src: sqlite3.Connection, table: str, cols: str, hi: int | None) -> None:
        self.src, self.table, self.cols, self.hi = src, table, cols, hi
        self.lost: list[tuple[int, int]] = []

    def _lose(self, a: int, b: int) -> None:
        if self.lost and self.lost[-1][1] == a - 1:
            self.lost[-1] = (self.lost[-1][0], b)  # merge adjacent ranges
        else:
            self.lost.append((a, b))

    def _probe(self, q: int) -> int | bool | None:
        """First rowid ≥ q (None: none), or False when the seek itself hits damage."""
        try:
            row = self.src.execute(
                f"SELECT rowid FROM {self.table} WHERE rowid >= ? ORDER BY rowid LIMIT 1", (q,)).fetchone()
        except sqlite3.DatabaseError:
            return False
        return None if row is None else int(row[0])

    def _resume_after(self, last: int) -> int | None:
        """The next readable rowid after ``last`` (None: nothing readable further on)."""
        step, ok_q, ok_r = 1, None, None
        while last + step < MAX_ID:
            r = self._probe(last + step)
            if r is not False:
                ok_q, ok_r = last + step, r
                break
            step *= 2
        if ok_q is None:
            return None
        lo = last + step // 2 if step > 1 else last  # known to fail (or the failure point)
        while ok_q - lo > 1:  # bisect for the smallest readable probe
            mid = (lo + ok_q) // 2
            r = self._probe(mid)
            if r is False:
                lo = mid
            else:
                ok_q, ok_r = mid, r
        return None if ok_r is None or isinstance(ok_r, bool) else ok_r

    def rows(self) -> Iterator[Row]:
        last, failed_at = 0, None
        sql = f"SELECT {self.cols} FROM {self.table} WHERE rowid > ? ORDER BY rowid"
        while True:
            try:
                for row in self.src.execute(sql, (last,)):
                    last = int(row[0])
                    yield tuple(row)
                return
            except sqlite3.DatabaseError:
                nxt = self._resume_after(last)
                if nxt is None:
                    self._lose(last + 1, self.hi if self.hi and self.hi > last else -1)
                    return
                if failed_at == last and nxt == last + 1:  # the row itself is unreadable: skip it
                    self._lose(nxt, nxt)
                    last = nxt
                elif nxt > last + 1:
                    self._lose(last + 1, nxt - 1)
                    last = nxt - 1
                failed_at = last


def _try(src: sqlite3.Connection, sql: str) -> list[Row] | None:
    try:
        return [tuple(r) for r in src.execute(sql).fetchall()]
    except sqlite3.DatabaseError:
        return None


def _open_damaged(path: Path) -> sqlite3.Connection:
    """Read-only when SQLite allows it, so the damaged file (and its WAL) stay as found."""
    src = None
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        # tolerate a file shorter than its header says (truncated): read the pages that are there
        src.execute("PRAGMA writable_schema=ON")
        src.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return src
    except sqlite3.Error:
        if src is not None:
            src.close()
    src = sqlite3.connect(str(path))
    src.execute("PRAGMA writable_schema=ON")
    return src


def _copy(damaged: Path, target: Path, found: str, now_ms: int) -> RecoveryReport:
    report = RecoveryReport(damaged_path=str(damaged), found=found)
    src = _open_damaged(damaged)
    dst = sqlite3.connect(str(target), isolation_level=None)
    try:
        dst.execute("PRAGMA synchronous=FULL")
        dst.execute("BEGIN")
        seq_rows = _try(src, "SELECT name, seq FROM sqlite_sequence") or []
        seqs: dict[object, object] = {r[0]: r[1] for r in seq_rows}
        keys: dict[str, set[int]] = {"series": set()}
        unreadable: list[str] = []
        for table, cols, check in TABLES:
            hi = seqs.get(table)
            walker = _Walker(src, table, cols, int(str(hi)) if isinstance(hi, int) else None)
            ok = bad = 0
            ins = f"INSERT INTO {table}({cols}) VALUES ({','.join('?' * (cols.count(',') + 1))})"
            chunk: list[Row] = []
            for row in walker.rows():
                if check(row, keys):
                    chunk.append(row)
                    ok += 1
                    if table == "series":
                        keys["series"].add(int(str(row[0])))
                    if len(chunk) >= 5000:
                        dst.executemany(ins, chunk)
                        chunk.clear()
                else:
                    bad += 1
            if chunk:
                dst.executemany(ins, chunk)
            if walker.lost and walker.lost[0][0] == 1 and ok == 0 and bad == 0:
                unreadable.append(table)
            report.salvaged[table] = ok
            report.lost[table] = bad
            if walker.lost:
                report.lost_id_ranges[table] = walker.lost
            top = max([hi if isinstance(hi, int) else 0] + [b for _, b in walker.lost])
            if table in ("readings", "events", "waveforms", "quarantine") and top > 0:
                _raise_sequence(dst, table, top)
        for table in ("meta", "counters"):
            rows = _try(src, f"SELECT * FROM {table}")
            if rows is None:
                unreadable.append(table)
                continue
            good = [r for r in rows if len(r) == 2 and _is_text(r[0])]
            if table == "counters":
                good = [r for r in good if _is_int(r[1])]
            dst.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", good)
            report.salvaged[table] = len(good)
        _reconcile(dst, now_ms)
        counters = {"recovery.runs": 1, **{f"recovery.lost.{t}": n for t, n in report.lost.items() if n}}
        dst.executemany(
            "INSERT INTO counters(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", list(counters.items()))
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    return RecoveryReport(report.damaged_path, found, report.salvaged, report.lost, report.lost_id_ranges,
                          tuple(unreadable))


def _raise_sequence(dst: sqlite3.Connection, table: str, top: int) -> None:
    """Never hand out an AUTOINCREMENT id the damaged file may have used (cursors stay valid)."""
    if dst.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (top, table)).rowcount == 0:
        dst.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", (table, top))


def _reconcile(dst: sqlite3.Connection, now_ms: int) -> None:
    """Make batch links consistent and move the sequence past everything that may have been issued."""
    dst.execute("DELETE FROM batch_groups WHERE id NOT IN (SELECT grp FROM batches)")
    for table in ("readings", "events"):
        dst.execute(f"UPDATE {table} SET state = 0 WHERE state = 1")
    for _gid, r_runs, e_runs in dst.execute("SELECT id, r_runs, e_runs FROM batch_groups").fetchall():
        for table, blob in (("readings", r_runs), ("events", e_runs)):
            dst.executemany(f"UPDATE {table} SET state = 1 WHERE id BETWEEN ? AND ? AND +state = 0",
                            decode_runs(blob))
    dst.execute("INSERT INTO batch_groups(id, r_runs, e_runs) SELECT DISTINCT grp, x'', x'' FROM batches "
                "WHERE grp NOT IN (SELECT id FROM batch_groups)")
    top = dst.execute(
        "SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_seq'), 1), "
        "coalesce((SELECT max(seq) + 1 FROM batches), 1), "
        "coalesce((SELECT max(seq) + 1 FROM dead_letter), 1), ?)",
        (now_ms * 1000,)).fetchone()[0]
    dst.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('next_seq', ?)", (int(top),))


async def salvage(path: Path, found: str, config: BufferConfig, clock: Callable[[], int]) -> RecoveryReport:
    """Run the three steps of the module docstring; return what was salvaged and lost."""
    partial = path.with_name(path.name + ".salvage-partial")
    for p in (partial, _salvage_path(path)):
        if p.exists():
            p.unlink()
    db = await aiosqlite.connect(str(partial), isolation_level=None)
    try:
        await db.execute("PRAGMA journal_mode=DELETE")  # no side file to carry through the renames
        await schema.migrate(db)
    finally:
        await db.close()
    now = clock()
    report = await asyncio.to_thread(_copy, path, partial, found, now)
    os.replace(partial, _salvage_path(path))
    _fsync_dir(path)
    damaged = path.with_name(f"{path.name}.damaged-{now}")
    for suffix in ("", "-wal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, damaged.with_name(damaged.name + suffix))
    shm = path.with_name(path.name + "-shm")
    if shm.exists():
        shm.unlink()
    _fsync_dir(path)
    os.replace(_salvage_path(path), path)
    _fsync_dir(path)
    _LOGGER.error(
        "recovered %s: salvaged %s, lost %s, unreadable id ranges %s; damaged file kept as %s",
        path, report.salvaged, report.lost, report.lost_id_ranges, damaged,
    )
    return RecoveryReport(str(damaged), report.found, report.salvaged, report.lost, report.lost_id_ranges,
                          report.tables_unreadable)

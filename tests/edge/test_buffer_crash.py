"""Restart safety: a writer SIGKILLed at random points leaves a consistent buffer.

A child process commits bursts and cuts/sends batches, printing a line after each step returned; the
parent kills it with SIGKILL mid-stream (several rounds on the same file), then reopens the buffer
and checks every burst reported committed is present exactly once, no burst is partial, and batches
and their rows agree.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.buffer import Buffer
from edge_agent.buffer.runs import decode_runs
from tests.edge.test_buffer_helpers import bursts_present, rows, scalar

CHILD = """
import asyncio, sys
from edge_agent.buffer import Buffer
from tests.edge.test_buffer_helpers import burst

async def main(path, start):
    buf = await Buffer.open(path)
    k = start
    while True:
        await buf.commit_burst(burst(k, 50))
        print(f"C {k}", flush=True)
        if k % 3 == 0:
            p = await buf.take_unbatched(400, 0)
            seq = await buf.next_seq()
            print(f"S {seq}", flush=True)
            await buf.store_batch(seq, p.priority, b"body %d" % seq, p.n_readings, 0, p.r_id)
            print(f"B {seq} {int(k % 2 == 0)}", flush=True)
            if k % 2 == 0:
                await buf.mark_sent(seq)
                print(f"M {seq}", flush=True)
        k += 1

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

PER_BURST = 250  # 50 messages x 5 readings


def run_and_kill(root: Path, script: Path, db: Path, start: int, after: int, rng: random.Random) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(start)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=root, env=env, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        while sum(1 for line in lines if line.startswith("C ")) < after:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"child ended early: {proc.stderr.read() if proc.stderr else ''}")
            lines.append(line.strip())
        time.sleep(rng.uniform(0, 0.03))  # land the kill anywhere in the following work
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines += [x.strip() for x in out.splitlines() if x.strip()]
    assert proc.returncode == -signal.SIGKILL
    return lines


@pytest.mark.slow
async def test_sigkill_at_random_points_leaves_a_consistent_buffer(
    tmp_path: Path, project_root: Path
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(CHILD)
    db = tmp_path / "buffer.db"
    rng = random.Random(20240611)
    committed: set[int] = set()
    issued: set[int] = set()
    kept: set[int] = set()  # stored and never to be sent by the child
    sent: set[int] = set()
    started_max: list[int] = []
    for rnd in range(6):
        start = rnd * 1000
        lines = run_and_kill(project_root, script, db, start, rng.randint(3, 25), rng)
        for line in lines:
            tag, val, *rest = line.split()
            if tag == "B":
                if rest == ["0"]:
                    kept.add(int(val))
                continue
            {"C": committed, "S": issued, "M": sent}[tag].add(int(val))
        started_max.append(max(int(x.split()[1]) for x in lines if x.startswith("C ")) + 1)

    async with await Buffer.open(db) as buf:  # quick_check passes, counts recomputed
        present = bursts_present(db)
        for k in committed:
            assert present.get(k) == PER_BURST, f"burst {k} reported committed but has {present.get(k)} rows"
        for k, n in present.items():
            assert n == PER_BURST, f"burst {k} is partial: {n} rows"
            assert k in committed or k in started_max, f"burst {k} was never started"
        assert scalar(db, "SELECT count(*) FROM (SELECT DISTINCT series, ts_ms FROM readings)") == scalar(
            db, "SELECT count(*) FROM readings")

        in_db = {int(str(r[0])) for r in rows(db, "SELECT seq FROM batches")}
        assert not in_db & sent  # a batch reported sent is gone
        assert kept <= in_db  # a batch reported stored (and never sent) is there
        assert in_db <= issued  # every stored batch has a seq that next_seq() returned
        for seq in in_db:  # a batch is stored together with its rows marked, or not at all
            (grp,) = rows(db, "SELECT grp FROM batches WHERE seq = ?", (seq,))[0]
            (blob,) = rows(db, "SELECT r_runs FROM batch_groups WHERE id = ?", (grp,))[0]
            assert isinstance(blob, bytes)
            for a, b in decode_runs(blob):
                assert scalar(db, "SELECT count(*) FROM readings WHERE id BETWEEN ? AND ? AND state != 1",
                              (a, b)) == 0
        batched = scalar(db, "SELECT count(*) FROM readings WHERE state = 1")
        assert batched == sum(int(str(r[0])) for r in rows(db, "SELECT n_readings FROM batches"))
        nxt = await buf.next_seq()
        assert nxt > max(issued)
        fast = await buf.backlog()
        exact = await buf.backlog(exact=True)
        assert fast.readings_by_state == exact.readings_by_state
        assert exact.unsent_readings + exact.readings_by_state["uploaded"] == PER_BURST * len(present)

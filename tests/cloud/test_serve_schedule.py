"""The service's transform schedule: with ``campus-cloud serve``'s defaults a landed batch reaches DWD within
seconds (issue 8), not at the next whole-DAG run (60 s); DWD and DAG runs never overlap; failures are logged
and retried with a back-off.

The end-to-end tests post over real HTTP on 127.0.0.1 and poll DWD with a bounded loop. The bound (20 s) is
generous for a 2 s DWD cadence, yet well under the 60 s DAG interval, so without the DWD step they fail.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from cloud_ingest.api import ApiSettings, TokenStore, create_app, hash_token
from cloud_ingest.commands import serve
from cloud_ingest.schedule import DWD_TRANSFORMS, TransformSchedule
from cloud_ingest.warehouse import Warehouse, open_warehouse
from cloud_ingest.warehouse.errors import TransformError
from edge_agent.wire import CONTENT_TYPE, encode
from tests.cloud import campus_data as cd
from tests.cloud.api_fixtures import running_api
from tests.support.procs import free_port, wait_port

GATEWAY, TOKEN = "gw-teach", "token-teach-0123456789abcdef"
DWD_BOUND_S = 20.0  # generous for the default 2 s DWD cadence, far below the 60 s DAG interval


def _body(seq: int, n: int = 30) -> bytes:
    ts0 = cd.local_ms(cd.FIRST_DAY, 8) + seq * n * 1000
    rows = [cd.R("aq-t101", "co2", "ppm", "raw", 0, ts0 + i * 1000, 420.0 + i) for i in range(n)]
    return encode(cd.make_batch(GATEWAY, seq, rows))


def _post(url: str, seq: int) -> None:
    resp = httpx.post(f"{url}/v1/batches", content=_body(seq), timeout=30,
                      headers={"Content-Type": CONTENT_TYPE, "Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 201, resp.text


def _poll(count: Callable[[], int], want: int, bound_s: float = DWD_BOUND_S) -> int:
    deadline = time.monotonic() + bound_s
    got = count()
    while got < want and time.monotonic() < deadline:
        time.sleep(0.2)
        got = count()
    return got


# -- in process: the serve defaults, a real uvicorn server, DuckDB --------------------------------------------

@contextlib.contextmanager
def _service(wh: Warehouse, **every: float) -> Iterator[tuple[str, TransformSchedule]]:
    schedule = TransformSchedule(wh, transform_every_s=every.get("dag", serve.DEFAULT_TRANSFORM_EVERY_S),
                                 dwd_every_s=every.get("dwd", serve.DEFAULT_DWD_EVERY_S))
    tokens = TokenStore.from_hashes({GATEWAY: hash_token(TOKEN)}, {})
    app = create_app(ApiSettings(), wh, tokens=tokens, on_landed=schedule.landed)
    schedule.start()
    try:
        with running_api(app) as server:
            yield server.url, schedule
    finally:
        schedule.shutdown()


def _dwd_rows(wh: Warehouse) -> int:
    return int(wh.query("SELECT COUNT(*) FROM dwd_env_reading_di")[1][0][0])


def test_defaults_move_a_landed_batch_to_dwd_within_seconds(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh, _service(wh) as (url, schedule):
        assert _poll(lambda: schedule.dag_runs, 1) == 1  # the DAG ran at start; its next run is 60 s away
        _post(url, 1)
        assert _poll(lambda: _dwd_rows(wh), 30) == 30
        _post(url, 2)
        assert _poll(lambda: _dwd_rows(wh), 60) == 60
        assert schedule.dag_runs == 1
        assert schedule.dwd_runs >= 2
        # nothing landed since: the DWD job stays idle (no run, no run-log rows)
        runs = schedule.dwd_runs
        time.sleep(2.5 * serve.DEFAULT_DWD_EVERY_S)
        assert schedule.dwd_runs == runs


def test_dwd_step_off_leaves_dwd_to_the_dag(tmp_path: Path) -> None:
    """The control: with ``dwd_every_s = 0`` (the old behaviour) the batch waits for the next DAG run."""
    with open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh, _service(wh, dwd=0) as (url, schedule):
        assert _poll(lambda: schedule.dag_runs, 1) == 1
        _post(url, 1)
        assert _poll(lambda: _dwd_rows(wh), 30, bound_s=3 * serve.DEFAULT_DWD_EVERY_S) == 0


# -- the real command on PostgreSQL (DWD can be read while the service runs) -------------------------------

@pytest.mark.postgres
def test_campus_cloud_serve_defaults_reach_dwd_within_seconds(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[gateways]\n"{GATEWAY}" = "{hash_token(TOKEN)}"\n')
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cloud_ingest.cli", "-v", "serve", "--warehouse", pg_url,
                                 "--tokens", str(tokens), "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=60)
        # the DAG's first run (at start) is over: from now on only the DWD step can move a batch within 60 s
        assert _poll(lambda: log_path.read_text().count("scheduled transform run wrote"), 1, 60) == 1, \
            log_path.read_text()[-3000:]
        _post(f"http://127.0.0.1:{port}", 1)

        def dwd_rows() -> int:
            with psycopg.connect(pg_url) as conn:
                row = conn.execute("SELECT COUNT(*) FROM dwd_env_reading_di").fetchone()
                return int(row[0]) if row else 0

        assert _poll(dwd_rows, 30) == 30, log_path.read_text()[-3000:]
        assert log_path.read_text().count("scheduled transform run wrote") == 1  # not the DAG's doing
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


# -- the schedule's rules, on a fake warehouse --------------------------------------------------------------

class FakeWarehouse:
    """Records runs; ``fail`` makes runs raise; ``block`` holds a DAG run until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = False
        self.block: threading.Event | None = None
        self.running = threading.Event()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def run_transforms(self, *, only: Sequence[str] = ()) -> dict[str, int]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append(tuple(only))
            self.running.set()
            if self.block is not None and not only:
                self.block.wait(10)
            if self.fail:
                raise TransformError("dwd_reading", "disk full")
            return {"dwd_env_reading_di": 1}
        finally:
            with self._lock:
                self.active -= 1


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_dwd_runs_only_after_a_landing_and_only_the_dwd_transforms() -> None:
    wh = FakeWarehouse()
    s = TransformSchedule(wh, transform_every_s=60, dwd_every_s=2)
    assert s.run_dwd() is False
    assert wh.calls == []
    s.landed()
    s.landed()
    assert s.run_dwd() is True
    assert wh.calls == [DWD_TRANSFORMS]
    assert s.run_dwd() is False  # nothing new
    s.run_dag()
    assert wh.calls == [DWD_TRANSFORMS, ()]


def test_failed_dwd_run_is_logged_and_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    wh, clock = FakeWarehouse(), Clock()
    s = TransformSchedule(wh, transform_every_s=60, dwd_every_s=2, clock=clock)
    wh.fail = True
    s.landed()
    with caplog.at_level(logging.ERROR, logger="cloud_ingest.schedule"):
        assert s.run_dwd() is True
    assert "scheduled DWD run failed (1 in a row), retrying in 2 s: transform dwd_reading: disk full" in caplog.text
    assert s.run_dwd() is False  # backing off, still pending
    clock.t += 2
    assert s.run_dwd() is True  # second failure: next retry in 4 s
    clock.t += 3
    assert s.run_dwd() is False
    wh.fail = False
    clock.t += 1
    assert s.run_dwd() is True
    assert s.dwd_runs == 1
    assert len(wh.calls) == 3
    assert s.run_dwd() is False  # the pending landing was moved; nothing to do
    for _ in range(12):  # a persistent fault backs off to the cap, not beyond
        wh.fail = True
        s.landed()
        clock.t += 1000
        s.run_dwd()
    assert "retrying in 60 s" in caplog.text


def test_failed_dag_run_is_logged_and_the_schedule_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    wh = FakeWarehouse()
    wh.fail = True
    s = TransformSchedule(wh, transform_every_s=60, dwd_every_s=2)
    with caplog.at_level(logging.ERROR, logger="cloud_ingest.schedule"):
        s.run_dag()
    assert "scheduled transform run failed" in caplog.text
    assert s.dag_runs == 0
    wh.fail = False
    s.run_dag()
    assert s.dag_runs == 1


def test_dwd_tick_during_a_dag_run_is_skipped_and_stays_pending() -> None:
    wh = FakeWarehouse()
    wh.block = threading.Event()
    s = TransformSchedule(wh, transform_every_s=60, dwd_every_s=2)
    dag = threading.Thread(target=s.run_dag)
    dag.start()
    try:
        assert wh.running.wait(10)
        s.landed()
        assert s.run_dwd() is False  # the DAG holds the lock: no second run alongside it
    finally:
        wh.block.set()
        dag.join(10)
    assert s.run_dwd() is True  # still pending after the DAG
    assert wh.max_active == 1
    assert wh.calls == [(), DWD_TRANSFORMS]


def test_background_jobs_never_overlap() -> None:
    """Both jobs on the real apscheduler at short intervals with landings all the time: one run at a time."""
    wh = FakeWarehouse()
    s = TransformSchedule(wh, transform_every_s=0.05, dwd_every_s=0.02).start()
    try:
        deadline = time.monotonic() + 10
        while (s.dag_runs < 5 or s.dwd_runs < 5) and time.monotonic() < deadline:
            s.landed()
            time.sleep(0.005)
    finally:
        s.shutdown()
    assert s.dag_runs >= 5
    assert s.dwd_runs >= 5
    assert wh.max_active == 1


def test_zero_disables_a_job() -> None:
    wh = FakeWarehouse()
    s = TransformSchedule(wh, transform_every_s=0, dwd_every_s=0).start()
    try:
        s.landed()
        time.sleep(0.3)
    finally:
        s.shutdown()
    assert wh.calls == []

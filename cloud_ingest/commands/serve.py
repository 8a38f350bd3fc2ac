"""``campus-cloud serve``: run the ingest API (uvicorn) and the warehouse transforms in one process.

DuckDB allows one writer process, so this process both lands batches and runs the transform schedule
(:mod:`cloud_ingest.schedule`): the DWD step every ``--dwd-every`` seconds after landings, the whole DAG every
``--transform-every`` seconds.
Configuration, strongest first: command-line flags, ``CAMPUS_API_*`` / ``CAMPUS_WAREHOUSE_URL`` environment
keys, the ``--config`` TOML file (``[serve]`` and ``[api]`` tables, see docs/api.md), defaults. Under
systemd (``Type=notify``) it reports READY=1 once listening and pings the watchdog from the event loop, so
a stuck loop gets the service restarted. SIGTERM stops accepting, lets in-flight landings finish (they are
durable before any reply), then closes the warehouse.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uvicorn

from cloud_ingest.api import ApiError, create_app, load_settings
from cloud_ingest.api.auth import TokenStore
from cloud_ingest.commands._warehouse_opts import DEFAULT_URL, ENV_URL, add_warehouse_option
from cloud_ingest.schedule import TransformSchedule
from cloud_ingest.warehouse import WarehouseError, open_warehouse
from gateway.sdnotify import Notifier

_LOGGER = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"  # behind a TLS-terminating proxy; bind wider only on purpose
DEFAULT_PORT = 8080
DEFAULT_TRANSFORM_EVERY_S = 60.0  # the whole DAG (DWS/ADS/quality recompute each touched day)
# the DWD step after landings: with the edge's 1 s batch age, sensor -> DWD p99 stays well under 5 s (issue 8)
DEFAULT_DWD_EVERY_S = 2.0
GRACEFUL_STOP_S = 30  # in-flight landings get this long after SIGTERM (systemd TimeoutStopSec is 60)
_SERVE_KEYS: dict[str, type | tuple[type, ...]] = {"warehouse": str, "tokens": str, "host": str, "port": int,
                                                   "transform_every_s": (int, float), "dwd_every_s": (int, float)}


class ServeConfigError(ApiError):
    """The serve configuration file is invalid (message names file, key and problem)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run the ingest HTTP API and the warehouse transform schedule",
        description="Serve POST /v1/batches, /v1/heartbeats, /v1/fleet, /healthz, /readyz, /metrics and "
                    "OpenAPI docs (/docs). Tokens: a TOML/YAML file of gateway id -> sha256 token hash. "
                    "Limits come from CAMPUS_API_* variables or the [api] table of --config.")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file with [serve] and [api] tables")
    add_warehouse_option(p)
    p.add_argument("--tokens", metavar="FILE", help="tokens file (gateway id -> token hash), TOML or YAML")
    p.add_argument("--host", help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT}; 0 = any free)")
    p.add_argument("--transform-every", type=float, metavar="SECONDS", dest="transform_every_s",
                   help=f"run the whole warehouse transform DAG (DWD, DWS, ADS, quality) this often (default "
                        f"{DEFAULT_TRANSFORM_EVERY_S:g}; 0 = never)")
    p.add_argument("--dwd-every", type=float, metavar="SECONDS", dest="dwd_every_s",
                   help="move newly landed batches on to DWD at most this often, between the DAG runs (default "
                        f"{DEFAULT_DWD_EVERY_S:g}; runs only when a batch was stored; 0 = only with the DAG)")
    p.set_defaults(func=run)


def read_config(path: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``[serve]`` and ``[api]`` tables of the config file (empty without a file)."""
    if path is None:
        return {}, {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ServeConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ServeConfigError(f"{path}: not valid TOML: {exc}") from exc
    for name in raw:
        if name not in ("serve", "api"):
            raise ServeConfigError(f"{path}: {name}: unknown table (allowed: api, serve)")
    serve, api = raw.get("serve", {}), raw.get("api", {})
    for name, table in (("serve", serve), ("api", api)):
        if not isinstance(table, Mapping):
            raise ServeConfigError(f"{path}: {name}: must be a table")
    for key, value in serve.items():
        kind = _SERVE_KEYS.get(key)
        if kind is None:
            raise ServeConfigError(f"{path}: serve.{key}: unknown key (allowed: {', '.join(_SERVE_KEYS)})")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ServeConfigError(f"{path}: serve.{key}: {value!r} has the wrong type")
    return dict(serve), dict(api)


def _seconds(flag: float | None, serve_cfg: Mapping[str, Any], key: str, default: float) -> float:
    """A schedule interval: the flag, else ``[serve] key``, else the default."""
    return float(serve_cfg.get(key, default)) if flag is None else float(flag)


async def _serve(server: uvicorn.Server, notifier: Notifier) -> None:
    """Run uvicorn; tell systemd READY=1 once listening and ping the watchdog from this event loop."""
    async def supervise() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        notifier.ready("serving")
        while notifier.watchdog_interval_s:
            notifier.watchdog()
            await asyncio.sleep(notifier.watchdog_interval_s)

    task = asyncio.create_task(supervise())
    try:
        await server.serve()
    finally:
        notifier.stopping()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        serve_cfg, api_table = read_config(args.config)
        tokens_file = args.tokens or serve_cfg.get("tokens")
        settings = load_settings(env, table=api_table, table_source=str(args.config),
                                 tokens_file=Path(tokens_file) if tokens_file else None)
        if settings.tokens_file is None:
            raise ServeConfigError("--tokens (or serve.tokens, CAMPUS_API_TOKENS_FILE) is required")
        tokens = TokenStore.from_file(settings.tokens_file)
    except ApiError as exc:
        sys.stderr.write(f"campus-cloud serve: {exc}\n")
        return 2
    url = args.warehouse or env.get(ENV_URL) or serve_cfg.get("warehouse") or DEFAULT_URL
    host = args.host or serve_cfg.get("host") or DEFAULT_HOST
    port = args.port if args.port is not None else int(serve_cfg.get("port", DEFAULT_PORT))
    every = _seconds(args.transform_every_s, serve_cfg, "transform_every_s", DEFAULT_TRANSFORM_EVERY_S)
    dwd_every = _seconds(args.dwd_every_s, serve_cfg, "dwd_every_s", DEFAULT_DWD_EVERY_S)
    if every < 0 or dwd_every < 0:
        sys.stderr.write("campus-cloud serve: --transform-every and --dwd-every must be >= 0\n")
        return 2
    try:
        warehouse = open_warehouse(url)
    except WarehouseError as exc:
        sys.stderr.write(f"campus-cloud serve: {exc}\n")
        return 2
    schedule = TransformSchedule(warehouse, transform_every_s=every, dwd_every_s=dwd_every)
    try:
        app = create_app(settings, warehouse, tokens=tokens, on_landed=schedule.landed)
        schedule.start()
        config = uvicorn.Config(app, host=host, port=port, log_config=None, server_header=False,
                                timeout_graceful_shutdown=GRACEFUL_STOP_S, lifespan="on")
        _LOGGER.info("serving on http://%s:%s with %s gateways, warehouse %s; transforms every %gs, DWD every "
                     "%gs after landings", host, port, len(tokens.gateways), warehouse.url, every, dwd_every)
        # uvicorn re-raises the signal that stopped it once it has shut down; with this no-op handler in
        # place that is harmless, so the warehouse below is closed cleanly and SIGTERM exits 0.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            asyncio.run(_serve(uvicorn.Server(config), Notifier(env)))
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        schedule.shutdown()
        warehouse.close()
    return 0

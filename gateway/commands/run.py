"""``campus-edge run --config FILE``: the gateway daemon (systemd ``Type=notify``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from edge_agent.errors import EdgeAgentError
from gateway.config import ConfigError, load_config

_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the edge daemon",
                       description="Run the edge daemon: receive MQTT, decode by profile, buffer, reduce, upload. "
                                   "SIGTERM stops gracefully, SIGHUP reloads profiles.")
    p.add_argument("--config", required=True, help="gateway configuration (TOML; see campus-edge init-config)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    for noisy in ("apscheduler", "httpx"):  # one line per job run / request: only with -vv
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"campus-edge: {exc}\n")
        return 2
    from gateway.daemon import Daemon

    try:
        return asyncio.run(Daemon(config).run())
    except EdgeAgentError as exc:  # a profile, key file or buffer problem found at start-up
        sys.stderr.write(f"campus-edge: cannot start: {exc}\n")
        return 2

"""``campus-edge recover-buffer --config FILE``: salvage a damaged buffer file (daemon stopped)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from edge_agent.buffer import Buffer, BufferConfig
from edge_agent.errors import BufferError_
from gateway.config import ConfigError, load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recover-buffer", help="check the buffer file and salvage a damaged one",
                       description="Open the buffer with recovery: a damaged file is moved aside "
                                   "(<file>.damaged-<ms>), every readable row is copied into a new file, and what "
                                   "was lost is reported. Stop the daemon first.")
    p.add_argument("--config", required=True, help="gateway configuration (TOML)")
    p.set_defaults(func=run)


async def _recover(path: str, budget: int) -> dict[str, object]:
    buf = await Buffer.open(path, BufferConfig(budget_bytes=budget), recover=True)
    try:
        rep = buf.recovery
        if rep is None:
            return {"file": path, "status": "ok: passed the integrity check, nothing to recover"}
        return {"file": path, "status": "recovered", "damaged_file_kept_at": rep.damaged_path, "found": rep.found,
                "salvaged": rep.salvaged, "lost": rep.lost, "lost_id_ranges": rep.lost_id_ranges,
                "tables_unreadable": list(rep.tables_unreadable)}
    finally:
        await buf.close()


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, require_secrets=False)
        report = asyncio.run(_recover(str(cfg.buffer.path), cfg.buffer.disk_budget_bytes))
    except (ConfigError, BufferError_) as exc:
        sys.stderr.write(f"campus-edge: {exc}\n")
        return 2
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if report["status"] != "recovered" or not report["lost"] else 1

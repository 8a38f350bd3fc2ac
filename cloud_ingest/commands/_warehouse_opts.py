"""Shared ``--warehouse`` option and error handling for the warehouse subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping

from cloud_ingest.warehouse import Warehouse, open_warehouse
from cloud_ingest.warehouse.errors import EngineError, WarehouseError

ENV_URL = "CAMPUS_WAREHOUSE_URL"
DEFAULT_URL = "duckdb:///var/lib/campus-cloud/warehouse.duckdb"


def add_warehouse_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", metavar="URL", default=None,
                        help=f"duckdb:///path/file.duckdb or postgresql://user@host:port/db "
                             f"(default: ${ENV_URL}, else {DEFAULT_URL})")


def warehouse_url(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return str(args.warehouse or env.get(ENV_URL) or DEFAULT_URL)


def with_warehouse(args: argparse.Namespace, action: Callable[[Warehouse], int]) -> int:
    """Open the warehouse, run ``action``, close it; print warehouse errors as one line with an exit code."""
    try:
        wh = open_warehouse(warehouse_url(args))
    except WarehouseError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 2
    try:
        return action(wh)
    except EngineError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 1
    except WarehouseError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 1
    finally:
        wh.close()

"""``campus-cloud registry load FILE`` / ``registry check FILE``: the campus registry (DIM tables)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cloud_ingest.commands._warehouse_opts import add_warehouse_option, with_warehouse
from cloud_ingest.warehouse import Warehouse
from cloud_ingest.warehouse.dictionary import load_dictionary
from cloud_ingest.warehouse.errors import RegistryError
from cloud_ingest.warehouse.registry import Registry, load_registry_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("registry", help="validate or load the campus registry (campuses, rooms, devices…)",
                       description="The registry YAML file describes campuses, buildings (with floor area), "
                                   "rooms, gateways, device profiles and devices with their room over time. "
                                   "Format: docs/warehouse.md, section 'Registry file'.")
    rs = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    load = rs.add_parser("load", help="validate FILE and write it to the DIM tables",
                         description="Validate the registry file and load it into the DIM tables in one "
                                     "transaction. Devices that moved get their history kept (SCD2); their "
                                     "already-processed data is re-conformed and the affected days are "
                                     "recomputed by the next transform run.")
    load.add_argument("file", type=Path, help="registry YAML file")
    load.add_argument("--metrics", type=Path, default=None,
                      help="metric dictionary (default: device_profiles/metrics.yaml, else built-in)")
    add_warehouse_option(load)
    load.set_defaults(func=run_load)
    check = rs.add_parser("check", help="validate FILE without touching the warehouse",
                          description="Validate the registry file; print a summary or the first error.")
    check.add_argument("file", type=Path, help="registry YAML file")
    check.add_argument("--metrics", type=Path, default=None, help="metric dictionary (see load)")
    check.set_defaults(func=run_check)


def _read(args: argparse.Namespace) -> Registry:
    dictionary = load_dictionary(args.metrics) if args.metrics else None
    return load_registry_file(args.file, dictionary=dictionary)


def run_check(args: argparse.Namespace) -> int:
    try:
        reg = _read(args)
    except RegistryError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 1
    sys.stdout.write(f"{args.file}: ok: {len(reg.campuses)} campuses, {len(reg.buildings)} buildings, "
                     f"{len(reg.rooms)} rooms, {len(reg.gateways)} gateways, {len(reg.devices)} devices\n")
    return 0


def run_load(args: argparse.Namespace) -> int:
    try:
        reg = _read(args)
    except RegistryError as exc:
        sys.stderr.write(f"campus-cloud: {exc}\n")
        return 1

    def action(wh: Warehouse) -> int:
        rep = wh.load_registry(reg)
        sys.stdout.write(
            f"{args.file}: loaded {rep.campuses} campuses, {rep.buildings} buildings, {rep.rooms} rooms, "
            f"{rep.gateways} gateways, {rep.devices} devices ({rep.device_rows} placement rows); "
            f"{len(rep.moved)} devices new or moved, {len(rep.closed)} closed, {rep.dirty_days} campus days "
            f"to recompute; metrics from {rep.source}\n")
        return 0

    return with_warehouse(args, action)

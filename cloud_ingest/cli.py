"""``campus-cloud``: the command line of the cloud side (warehouse, and the API's ``serve``).

Each subcommand lives in its own module under ``cloud_ingest/commands/`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``; modules are discovered, so adding a command is adding a
file. Exit codes: 0 success, 1 the thing asked for failed (bad registry, failed transform, bad SQL),
2 usage or configuration error (unreachable database, missing option).

The warehouse URL comes from ``--warehouse`` or the ``CAMPUS_WAREHOUSE_URL`` environment variable.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from cloud_ingest import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campus-cloud",
        description="Campus cloud ingest: warehouse transforms, registry, read-only SQL, schema, API server.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

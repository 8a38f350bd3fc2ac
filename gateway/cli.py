"""``campus-edge``: the operator's command line for the edge gateway.

Each subcommand lives in its own module under ``gateway/commands/`` and exposes
``register(subparsers)`` which adds its parser and sets ``func(args) -> int`` as the handler.
Exit codes: 0 success, 1 the thing checked is bad (e.g. invalid profile), 2 usage / configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from gateway import commands


def command_line(prog: str, description: str, package: ModuleType) -> argparse.ArgumentParser:
    """A parser whose subcommands are the modules of ``package`` (each exposing ``register(subparsers)``).

    Shared by ``campus-edge`` and ``campus-cloud``; modules whose name starts with ``_`` are helpers.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}").register(sub)
    return parser


def run_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, configure logging from ``-v``, run the chosen command; Ctrl-C exits 130."""
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    return command_line("campus-edge", "Campus edge gateway: collect, validate, reduce, buffer and upload sensor data.",
                        commands)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command_line(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

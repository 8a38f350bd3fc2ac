"""``campus-cloud``: the command line of the cloud side (warehouse, and the API's ``serve``).

Each subcommand lives in its own module under ``cloud_ingest/commands/`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``; modules are discovered, so adding a command is adding a
file. Exit codes: 0 success, 1 the thing asked for failed (bad registry, failed transform, bad SQL),
2 usage or configuration error (unreachable database, missing option).

The warehouse URL comes from ``--warehouse`` or the ``CAMPUS_WAREHOUSE_URL`` environment variable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloud_ingest import commands
from gateway.cli import command_line, run_command_line


def build_parser() -> argparse.ArgumentParser:
    return command_line(
        "campus-cloud", "Campus cloud ingest: warehouse transforms, registry, read-only SQL, schema, API server.",
        commands)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command_line(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

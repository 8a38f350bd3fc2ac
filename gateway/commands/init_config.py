"""``campus-edge init-config``: print a commented example configuration."""

from __future__ import annotations

import argparse
import sys

from gateway.config import EXAMPLE_PATH


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init-config", help="print a commented example configuration (TOML)",
                       description="Print a commented example gateway configuration to stdout.")
    p.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    sys.stdout.write(EXAMPLE_PATH.read_text(encoding="utf-8"))
    return 0

#!/usr/bin/env bash
# Quick start command 1: set up (bootstrap.sh) and run the end-to-end demo, about two minutes.
# DEMO_DURATION=30 shortens it; scripts/demo.py --help lists the options.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="/usr/sbin:$PATH"
exec .venv/bin/python scripts/demo.py "$@"

#!/usr/bin/env bash
# Quick start command 2: set up (bootstrap.sh) and run the whole test suite.
# Exits non-zero if a test fails or no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="/usr/sbin:/usr/lib/postgresql/15/bin:$PATH"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

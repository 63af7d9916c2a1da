#!/usr/bin/env bash
# The whole test suite: lint, types, then every test, including those against real registries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench scripts
.venv/bin/ruff format --check src tests bench scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"

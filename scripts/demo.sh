#!/usr/bin/env bash
# The seed's quick start, end to end, on a local registry it starts (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py

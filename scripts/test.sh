#!/usr/bin/env bash
# The whole test suite: lint, types, then every test, including those against real registries.
# Arguments go to pytest. With --cov, coverage of hangar is measured in pytest and in every
# `hangar` process the tests start (the CLI tests run it as a subprocess), then reported.
set -euo pipefail
cd "$(dirname "$0")/.."
cov=false
args=()
for arg in "$@"; do
    if [ "$arg" = "--cov" ]; then cov=true; else args+=("$arg"); fi
done
bash scripts/setup.sh
.venv/bin/ruff check src tests bench scripts
.venv/bin/ruff format --check src tests bench scripts
.venv/bin/mypy
if ! $cov; then
    exec .venv/bin/python -m pytest "${args[@]}"
fi
# Data files under build/ (ignored by git), one per process, combined at the end.
data=build/coverage
rm -rf "$data"
mkdir -p "$data"
export COVERAGE_PROCESS_START="$PWD/pyproject.toml" COVERAGE_FILE="$PWD/$data/.coverage"
status=0
.venv/bin/python -m pytest "${args[@]}" || status=$?
.venv/bin/python -m coverage combine -q
.venv/bin/python -m coverage report
exit "$status"

#!/usr/bin/env bash
# Install everything hangar and its tests need on a Debian machine (as root, or with sudo):
# Debian's docker-registry (CNCF distribution 2.8) for the real-registry tests and the demo,
# SoftHSM2 and OpenSC's pkcs11-tool for the PKCS#11 (HSM) key tests, and a virtualenv
# with hangar and its test tools. (The test data, containers/image's fixtures included, is in
# tests/data.)
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
[ -f /usr/lib/softhsm/libsofthsm2.so ] || need_apt+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need_apt+=(opensc)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[setup] installing Debian packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${need_apt[@]}" >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"hangar needs Python 3.11 or newer; this is {sys.version.split()[0]}")
PY

VENV=.venv
stamp="$VENV/.hangar-installed"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
    echo "[setup] installing hangar and its test dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    cp pyproject.toml "$stamp"
fi

# hangar's own modules byte-compiled (only those changed since): an editable install leaves
# that to the first import, which writes nothing where PYTHONDONTWRITEBYTECODE is set (as on
# these CI machines), so each `hangar` would compile its ~120 modules again (0.1-0.2 s).
"$VENV/bin/python" -m compileall -q src/hangar >/dev/null

# `scripts/test.sh --cov` measures the hangar processes the tests start: each Python process
# runs coverage's start-up hook, which does nothing unless COVERAGE_PROCESS_START is set.
# Recent coverage wheels install the hook (a .pth file); add one where it is missing.
site_packages=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if ! grep -qs "process_startup" "$site_packages"/*.pth; then
    echo 'import os; os.environ.get("COVERAGE_PROCESS_START") and __import__("coverage").process_startup()' \
        >"$site_packages/hangar-coverage.pth"
fi

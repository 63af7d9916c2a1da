"""docker-credential-NAME programs: run one with an action (get, store, erase) and its input,
as docker and containers/image do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hangar.errors import HangarError

HELPER_TIMEOUT = 60.0  # seconds; a helper may unlock a keyring
_NOT_FOUND_MESSAGE = "credentials not found in native keychain"


def run_helper(
    helper: str, action: str, stdin: str, host: str, path: Path, where: str | None = None
) -> str | None:
    """Run `docker-credential-<helper> <action>`; its stdout, or None for "not found".
    `where` says which configuration named the helper (default: credHelpers in `path`)."""
    program = f"docker-credential-{helper}"
    executable = shutil.which(program)
    if executable is None:
        named_in = where or f'credHelpers "{host}" in {path}'
        raise HangarError(
            f"credential helper {program} ({named_in}) is not installed or not on PATH",
            hint="install it, or remove it from "
            + ("that credential-helpers list" if where else "that credHelpers entry"),
        )
    try:
        result = subprocess.run(
            [executable, action],
            input=stdin.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise HangarError(
            f"credential helper {program} did not answer within {HELPER_TIMEOUT:.0f}s for {host}"
        ) from None
    except OSError as exc:
        raise HangarError(f"cannot run credential helper {program}: {exc.strerror}") from None
    out = result.stdout.decode("utf-8", errors="replace").strip()
    if result.returncode == 0:
        return out
    if out == _NOT_FOUND_MESSAGE:
        return None
    detail = (out or result.stderr.decode("utf-8", errors="replace").strip()).splitlines()
    message = detail[0][:200] if detail else f"exit status {result.returncode}"
    raise HangarError(f"credential helper {program} failed to {action} for {host}: {message}")

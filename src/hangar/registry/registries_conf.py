"""`credential-helpers` of registries.conf, found and merged as containers/image does:

- the main file: `$CONTAINERS_REGISTRIES_CONF` when set (it must exist); else
  `~/.config/containers/registries.conf` when it exists; else
  `/etc/containers/registries.conf` (a missing one is an empty configuration);
- then the drop-ins `*.conf` of `/etc/containers/registries.conf.d` and of
  `~/.config/containers/registries.conf.d`, each directory in name order; with the user's own
  registries.conf only the user's drop-in directory is read;
- a later file that sets a non-empty `credential-helpers` replaces the earlier value; none at
  all means `["containers-auth.json"]`, the auth.json files.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from hangar.errors import HangarError

AUTH_FILES_HELPER = "containers-auth.json"
SYSTEM_FILE = Path("/etc/containers/registries.conf")
SYSTEM_DROP_INS = Path("/etc/containers/registries.conf.d")


def credential_helpers() -> tuple[list[str], str]:
    """The helpers in order, and the file that named them (for messages)."""
    helpers, source = [AUTH_FILES_HELPER], "the default"
    for path in _config_files():
        value = _helpers_in(path)
        if value:  # an empty list in a drop-in changes nothing, as in containers/image
            helpers, source = value, str(path)
    return helpers, source


def _config_files() -> list[Path]:
    user_dir = Path.home() / ".config" / "containers"
    explicit = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    if explicit:
        main = Path(explicit)
        if not main.is_file():
            raise HangarError(
                f"$CONTAINERS_REGISTRIES_CONF names {main}, which does not exist",
                hint="fix the path, or unset CONTAINERS_REGISTRIES_CONF",
            )
        directories = [SYSTEM_DROP_INS, user_dir / "registries.conf.d"]
    elif (user_dir / "registries.conf").is_file():
        main, directories = user_dir / "registries.conf", [user_dir / "registries.conf.d"]
    else:
        main, directories = SYSTEM_FILE, [SYSTEM_DROP_INS, user_dir / "registries.conf.d"]
    files = [main] if main.is_file() else []
    for directory in directories:
        if directory.is_dir():
            files += sorted(p for p in directory.glob("*.conf") if p.is_file())
    return files


def _helpers_in(path: Path) -> list[str]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, getattr(exc, "strerror", None) or "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise _bad(path, f"not valid TOML ({exc})") from None
    value = document.get("credential-helpers")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise _bad(path, "credential-helpers must be a list of helper names")
    return value


def _bad(path: Path, why: str) -> HangarError:
    return HangarError(
        f"cannot read registries configuration {path}: {why}",
        hint="fix the file (podman and skopeo read it too)",
    )

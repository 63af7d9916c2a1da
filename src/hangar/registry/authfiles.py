"""auth.json files as podman, skopeo and docker write them: where they are, and how hangar
reads and rewrites them.

The chain (containers/image's order): `$REGISTRY_AUTH_FILE` alone when set (or `authfile=`
alone, like `podman --authfile`); otherwise `$XDG_RUNTIME_DIR/containers/auth.json` (when
XDG_RUNTIME_DIR is unset: `/run/containers/<uid>/auth.json`, as c/image), then
`$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`), `$DOCKER_CONFIG/config.json` (or
`~/.docker/config.json`), and `~/.dockercfg` (legacy: the top level is the auths map). Field
names match case-insensitively, as Go's encoding/json does; writes keep unknown fields.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hangar import output
from hangar.errors import HangarError
from hangar.reference import DOCKER_HUB, DOCKER_HUB_ALIASES

_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class AuthFile:
    path: Path
    legacy: bool = False  # ~/.dockercfg: the top level is the auths map


def auth_file_chain(*, authfile: str | None = None) -> list[AuthFile]:
    """The files searched for credentials, in order (they need not exist)."""
    if authfile:
        return [AuthFile(Path(authfile))]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return [AuthFile(Path(os.environ["REGISTRY_AUTH_FILE"]))]
    home = Path.home()
    chain = []
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        if Path(runtime_dir).exists():
            chain.append(AuthFile(Path(runtime_dir) / "containers" / "auth.json"))
        else:  # c/image warns and goes on: the image may be public
            output.debug(
                f"$XDG_RUNTIME_DIR {runtime_dir} does not exist; not reading auth.json there"
            )
    else:
        chain.append(AuthFile(Path(f"/run/containers/{os.getuid()}/auth.json")))
    chain.append(AuthFile(_config_home() / "containers" / "auth.json"))
    docker_config = os.environ.get("DOCKER_CONFIG")
    docker_dir = Path(docker_config) if docker_config else home / ".docker"
    chain.append(AuthFile(docker_dir / "config.json"))
    chain.append(AuthFile(home / ".dockercfg", legacy=True))
    return chain


def default_auth_file() -> Path:
    """Where `hangar login` writes, as `podman login` does (XDG_CONFIG_HOME is honoured so that
    the file written is one the lookup reads)."""
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(os.environ["REGISTRY_AUTH_FILE"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    return _config_home() / "containers" / "auth.json"


# --- file contents --------------------------------------------------------------------------


def read_json(path: Path) -> Any | None:
    """The parsed file; None when it does not exist (or is empty)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise HangarError(f"credentials file {path} is a directory") from None
    except OSError as exc:
        raise HangarError(f"cannot read credentials file {path}: {exc.strerror}") from None
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise malformed(path, f"not valid JSON ({exc})") from None


def load_for_update(path: Path) -> dict[str, Any]:
    document = read_json(path)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise malformed(path, "the top level is not a JSON object")
    return document


def auths_of(document: Any, path: Path, *, create: bool) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise malformed(path, "the top level is not a JSON object")
    name = _field_name(document, "auths")
    value = document.get(name) if name else None
    if value is None:
        value = {}
        if create:
            document[name or "auths"] = value
    if not isinstance(value, dict):
        raise malformed(path, '"auths" is not an object')
    return value


def as_auths_map(document: Any, path: Path) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise malformed(path, "the top level is not a JSON object")
    return document


def cred_helpers_of(document: Any, path: Path) -> dict[str, str]:
    if not isinstance(document, dict):
        raise malformed(path, "the top level is not a JSON object")
    helpers = field_of(document, "credHelpers") or {}
    if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
        raise malformed(path, '"credHelpers" is not an object of strings')
    return helpers


def _field_name(obj: dict[str, Any], name: str) -> str | None:
    """Go's encoding/json matches field names case-insensitively, preferring an exact match."""
    if name in obj:
        return name
    matches = [key for key in obj if key.lower() == name.lower()]
    return matches[-1] if matches else None


def field_of(obj: dict[str, Any], name: str) -> Any:
    key = _field_name(obj, name)
    return obj[key] if key is not None else None


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write to a 0600 temporary file in the same directory, then rename it over the file: a
    reader sees the old file or the new one, never half of one."""
    data = (json.dumps(document, indent="\t") + "\n").encode()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise HangarError(f"cannot write credentials file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise HangarError(f"cannot write credentials file {path}: {exc.strerror}") from None


# --- keys -----------------------------------------------------------------------------------


def normalize_host(registry: str) -> str:
    host = registry
    for scheme in _SCHEMES:
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host


def auth_key(registry: str) -> str:
    """The key `login`/`logout` use: host or host/namespace, Docker Hub spelled docker.io."""
    key = registry.strip()
    for scheme in _SCHEMES:
        if key.startswith(scheme):
            key = key[len(scheme) :]
    key = key.rstrip("/")
    host, slash, rest = key.partition("/")
    if not host or "@" in key or (slash and ":" in rest) or any(c.isspace() for c in key):
        raise HangarError(
            f'"{registry}" is not a registry: use a host[:port], optionally with a namespace',
            hint="for example registry.example.com or 127.0.0.1:5000",
        )
    host = DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host
    return f"{host}/{rest}" if slash else host


def normalize_auth_key(key: str, *, legacy: bool) -> str:
    """c/image normalizeAuthFileKey: URL keys become their host; Docker Hub's names are one."""
    stripped = key
    for scheme in _SCHEMES:
        if stripped.startswith(scheme):
            stripped = stripped[len(scheme) :]
            break
    if legacy or stripped != key:
        stripped = stripped.split("/", 1)[0]
    return "index.docker.io" if stripped.lower() in DOCKER_HUB_ALIASES else stripped


def host_spellings(host: str) -> list[str]:
    if host == DOCKER_HUB:
        return [
            DOCKER_HUB,
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
        ]
    return [host]


def _config_home() -> Path:
    configured = os.environ.get("XDG_CONFIG_HOME")
    return Path(configured) if configured else Path.home() / ".config"


def malformed(path: Path, reason: str) -> HangarError:
    return HangarError(
        f"credentials file {path} is malformed: {reason}",
        hint="fix or remove the file, then run `hangar login` again",
    )

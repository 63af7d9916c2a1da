"""registries.d: whether podman/CRI-O read a registry's sigstore attachments at all
(`use-sigstore-attachments`), looked up as containers/image's docker/registries_d.go does.

Every `*.yaml` file of the one directory in use is merged (a namespace or `default-docker`
defined twice is an error). For an image, the first of: its identity (`host/repo:tag`), its
namespaces from the most specific (`host/repo`, `host/ns`, `host`, `*.domain`), then
`default-docker`, that *sets* use-sigstore-attachments decides; when none does, it is off.
Other keys (lookaside, sigstore, ...) are ignored here, as they do not affect attachments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hangar.policy.config import PolicyError
from hangar.policy.scopes import scope_identity, scope_namespaces
from hangar.sigstore.identity import parse_docker_reference

USE_ATTACHMENTS = "use-sigstore-attachments"


@dataclass
class RegistriesConfig:
    directory: str | None  # None: no directory (every registry is off)
    default_docker: dict[str, Any] | None = None
    docker: dict[str, dict[str, Any]] = field(default_factory=dict)

    def use_sigstore_attachments(self, image: str) -> bool:
        """Whether c/image reads the `.sig` attachments when pulling `image` (`repo:tag` or
        `repo@digest`)."""
        reference = parse_docker_reference(image)
        for scope in (scope_identity(reference), *scope_namespaces(reference)):
            setting = self.docker.get(scope, {}).get(USE_ATTACHMENTS)
            if setting is not None:
                return bool(setting)
        if self.default_docker is not None:
            return bool(self.default_docker.get(USE_ATTACHMENTS, False))
        return False


def load_registries_d(directory: str | Path) -> RegistriesConfig:
    """Merge the directory's `*.yaml` files; a missing directory is an empty configuration (as
    in c/image). PolicyError names the file and the field."""
    path = Path(directory)
    config = RegistriesConfig(str(path))
    if not path.is_dir():
        if path.exists():
            raise PolicyError(
                f"registries.d {path} is not a directory",
                hint="pass the directory that holds the *.yaml files with --registries-d",
            )
        return config
    origins: dict[str, Path] = {}
    for file in sorted(path.iterdir()):
        if file.name.endswith(".yaml"):
            _merge(config, file, _read(file), origins)
    return config


def _read(file: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(file.read_bytes())
    except OSError as exc:
        raise _error(file, f"cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise _error(file, f"is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise _error(file, "is not valid YAML: nested too deeply") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise _error(file, "must be a mapping with default-docker and/or docker")
    return document


def _merge(
    config: RegistriesConfig, file: Path, document: dict[str, Any], origins: dict[str, Path]
) -> None:
    default = document.get("default-docker")
    if default is not None:
        if config.default_docker is not None:
            raise _error(
                file, f'"default-docker" is already defined in {origins["default-docker"]}'
            )
        config.default_docker = _namespace(file, "default-docker", default)
        origins["default-docker"] = file
    docker = document.get("docker") or {}
    if not isinstance(docker, dict):
        raise _error(file, '"docker" must map namespaces to settings')
    for scope, settings in docker.items():
        name = str(scope)
        if name in config.docker:
            raise _error(file, f'"docker" namespace "{name}" is already defined in {origins[name]}')
        config.docker[name] = _namespace(file, f'docker."{name}"', settings)
        origins[name] = file


def _namespace(file: Path, where: str, settings: Any) -> dict[str, Any]:
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise _error(file, f"{where} must be a mapping of settings")
    value = settings.get(USE_ATTACHMENTS)
    if value is not None and not isinstance(value, bool):
        raise _error(file, f"{where}.{USE_ATTACHMENTS} must be true or false, not {value!r}")
    return settings


def _error(file: Path, why: str) -> PolicyError:
    return PolicyError(
        f"invalid registries.d file {file}: {why}",
        hint="podman/CRI-O refuse it too; fix that file",
    )


# --- the usual locations -----------------------------------------------------------------------

SYSTEM_POLICY = Path("/etc/containers/policy.json")
SYSTEM_REGISTRIES_D = Path("/etc/containers/registries.d")


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def default_policy_path() -> Path:
    """c/image's choice: `$HOME/.config/containers/policy.json` if it exists, else
    /etc/containers/policy.json."""
    user = _home() / ".config" / "containers" / "policy.json"
    if user.exists():
        return user
    if SYSTEM_POLICY.exists():
        return SYSTEM_POLICY
    raise PolicyError(
        f"no policy.json file found at any of the following: {user}, {SYSTEM_POLICY}",
        hint="pass the policy podman/CRI-O use with --policy FILE",
    )


def default_registries_d() -> Path:
    """c/image's choice: `$HOME/.config/containers/registries.d` if it exists, else
    /etc/containers/registries.d (one directory, never both)."""
    user = _home() / ".config" / "containers" / "registries.d"
    return user if user.exists() else SYSTEM_REGISTRIES_D

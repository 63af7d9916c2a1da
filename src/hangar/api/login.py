"""`hangar login` and `hangar logout` as functions: credentials checked against the registry
before they are stored in the auth.json podman and skopeo use, so a typo is never written."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hangar import output
from hangar.errors import HangarError
from hangar.reference import normalize_registry

_SCHEMES = ("https://", "http://")


def login_target(text: str) -> tuple[str, str]:
    """(registry host to contact, auth.json key).

    `https://r.example/ns/` -> ("r.example", "r.example/ns"); Docker Hub is spelled docker.io.
    """
    value = text.strip()
    for scheme in _SCHEMES:
        if value.lower().startswith(scheme):
            value = value[len(scheme) :]
            break
    value = value.rstrip("/")
    host, slash, namespace = value.partition("/")
    if not host or any(char.isspace() for char in value):
        raise HangarError(
            f'"{text}" is not a registry',
            hint="use a host[:port], optionally with a namespace: registry.example.com/team",
        )
    host = normalize_registry(host)
    return host, f"{host}/{namespace}" if slash and namespace else host


def log_in(
    registry: str,
    username: str,
    password: str,
    *,
    authfile: str | None = None,
    tls_verify: bool = True,
) -> Path:
    """Check the credentials against the registry, then store them; where they went."""
    from hangar.registry.logins import store_credentials

    host, key = login_target(registry)
    asyncio.run(_check(host, username, password, tls_verify=tls_verify))
    path = store_credentials(key, username, password, authfile=authfile)
    output.debug(f"credentials for {key} stored in {path}")
    return Path(path)


def log_out(registry: str | None, *, authfile: str | None = None) -> str | None:
    """Remove the stored login of `registry` (None: of every registry); the auth.json key
    removed. Not logged in is an error that says how to remove every login."""
    from hangar.registry.logins import remove_all_credentials, remove_credentials

    if registry is None:
        remove_all_credentials(authfile=authfile)
        return None
    _host, key = login_target(registry)
    if not remove_credentials(key, authfile=authfile):
        raise HangarError(
            f"not logged into {key}",
            hint="`hangar logout --all` removes every stored login",
        )
    return key


async def _check(host: str, username: str, password: str, *, tls_verify: bool) -> None:
    from hangar.registry.client import RegistryClient

    async with RegistryClient(tls_verify=tls_verify, max_connections=2, retries=2) as client:
        await client.check_credentials(host, username, password)

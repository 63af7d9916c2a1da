"""Which `transports.docker` scope of a policy.json applies to an image, as containers/image
looks it up: the image's own identity (`host/repo:tag` or `host/repo@digest`), then the
repository and each parent namespace up to the host, then `*.domain` wildcards from the most
specific (a port is dropped first), then the transport's `""` scope, then `default`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from hangar.errors import InvalidReferenceError
from hangar.sigstore.identity import DockerReference, parse_docker_reference

T = TypeVar("T")


def scope_identity(reference: DockerReference) -> str:
    """`name:tag` or `name@digest`; a reference with both, or neither, has no identity."""
    if reference.tag is not None and reference.digest is not None:
        raise InvalidReferenceError(
            f"image reference {reference} has both a tag and a digest",
            hint="name the image by tag or by digest, as podman pulls it",
        )
    if reference.is_name_only:
        raise InvalidReferenceError(
            f"image reference {reference} has neither a tag nor a digest",
            hint="name the image by tag or by digest, as podman pulls it",
        )
    return str(reference)


def scope_namespaces(reference: DockerReference) -> list[str]:
    """The repository, its parent namespaces, the host, then wildcard domains."""
    namespaces: list[str] = []
    name = reference.name
    while True:
        namespaces.append(name)
        if "/" not in name:
            break
        name = name.rsplit("/", 1)[0]
    host = name.split(":", 1)[0]
    while "." in host:
        host = host.split(".", 1)[1]
        namespaces.append(f"*.{host}")
    return namespaces


def lookup_scope(scopes: Mapping[str, T] | None, image: str) -> str | None:
    """The scope of `scopes` (a policy's `transports.docker`) that applies to `image`, as
    written in the policy; `""` for the transport default; None when `default` applies."""
    if scopes is None:
        return None
    reference = parse_docker_reference(image)
    for candidate in (scope_identity(reference), *scope_namespaces(reference)):
        if candidate in scopes:
            return candidate
    return "" if "" in scopes else None

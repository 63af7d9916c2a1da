"""What the bytes a registry sends must be: the digest asked for, and a manifest type named
by the registry's headers or the document itself."""

from __future__ import annotations

import hashlib

from hangar import output
from hangar.manifest import (
    IMAGE_TYPES,
    INDEX_TYPES,
    SCHEMA1_TYPES,
    detect_media_type,
    sha256_digest,
)
from hangar.reference import Reference
from hangar.registry.errors import DigestMismatchError

KNOWN_MANIFEST_TYPES = frozenset(INDEX_TYPES + IMAGE_TYPES + SCHEMA1_TYPES)


def check_manifest_digest(ref: Reference, data: bytes, header: str | None) -> str:
    """The digest of the bytes received; by-digest reads must match what was asked.
    `header`: the response's Docker-Content-Digest."""
    if ref.digest:
        actual = digest_like(ref.digest, data)
        if actual != ref.digest:
            raise DigestMismatchError(
                f"the manifest of {ref} hashes to {actual}: the registry sent other bytes",
                registry=ref.registry,
                hint="retry; if it persists, the registry or a proxy alters manifests",
            )
        same_algorithm = header and header.split(":", 1)[0] == ref.digest.split(":", 1)[0]
        if same_algorithm and header != ref.digest:
            raise DigestMismatchError(
                f"registry {ref.registry} reports digest {header} for {ref}",
                registry=ref.registry,
            )
        return ref.digest if ref.digest.startswith("sha256:") else sha256_digest(data)
    digest = sha256_digest(data)
    if header and header.startswith("sha256:") and header != digest:
        output.debug(f"{ref}: Docker-Content-Digest {header} differs from the bytes' {digest}")
    return digest


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip()


def media_type_of(data: bytes, content_type: str | None) -> str:
    """The registry's Content-Type when it names a manifest type (no parse needed); else the
    document's own mediaType / shape."""
    declared = base_type(content_type)
    if declared in KNOWN_MANIFEST_TYPES:
        return declared
    return detect_media_type(data, content_type)


def digest_like(reference_digest: str, data: bytes) -> str:
    """The digest of `data` with the algorithm `reference_digest` uses."""
    algorithm = reference_digest.split(":", 1)[0]
    if algorithm == "sha256":
        return sha256_digest(data)
    try:
        return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    except ValueError:
        return sha256_digest(data)

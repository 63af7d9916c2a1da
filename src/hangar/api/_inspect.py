"""What `hangar inspect` reads: a manifest as the registry stores it, the image config, or a
summary with the signature state of every platform."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from hangar.errors import UsageProblem
from hangar.operations.inspection import (
    Bundles,
    ImageSummary,
    PlatformRow,
    Signatures,
    config_blob,
    summarize,
)
from hangar.reference import Reference, parse_reference
from hangar.registry.client import Manifest, RegistryClient

# containers/image transports other than docker://: `oci:foo` must not be read as the
# Docker Hub image `oci` with tag `foo`.
OTHER_TRANSPORTS = (
    "oci",
    "oci-archive",
    "docker-archive",
    "docker-daemon",
    "containers-storage",
    "dir",
    "sif",
    "tarball",
    "ostree",
)

T = TypeVar("T")


def image_reference(image: str) -> Reference:
    """`[docker://]IMAGE` as a reference; another transport is a usage error."""
    transport, colon, _ = image.partition(":")
    if colon and transport in OTHER_TRANSPORTS:
        raise UsageProblem(
            f'transport "{transport}:" of {image} is not supported: hangar inspect reads '
            "registries only (docker://[REGISTRY/]NAME[:TAG], or the reference alone)",
            hint=f"copy the image to a registry first, e.g. skopeo copy {image} "
            "docker://REGISTRY/NAME:TAG",
        )
    return parse_reference(image)


def inspect_image(
    image: str,
    *,
    pubkeys: tuple[str, ...] = (),
    authfile: str | None = None,
    tls_verify: bool = True,
) -> tuple[Reference, ImageSummary]:
    """The image's digest, media type and platforms, and per digest the signatures of its
    `.sig` tag and how many verify with each public key in `pubkeys`."""
    from hangar.keys.backends import describe, open_public_key

    ref = image_reference(image)
    keys = [(describe(spec), open_public_key(spec)) for spec in pubkeys]

    async def read(client: RegistryClient, manifest: Manifest) -> ImageSummary:
        return await summarize(client, ref, manifest, keys)

    return ref, _with_manifest(ref, authfile, tls_verify, read)


def manifest_bytes(image: str, *, authfile: str | None = None, tls_verify: bool = True) -> bytes:
    """The manifest exactly as the registry sent it (its sha256 is the image's digest)."""

    async def read(client: RegistryClient, manifest: Manifest) -> bytes:
        return manifest.data

    return _with_manifest(image_reference(image), authfile, tls_verify, read)


def config_bytes(image: str, *, authfile: str | None = None, tls_verify: bool = True) -> bytes:
    """The image config as the registry sent it (of a multi-platform image: the config of
    this host's platform)."""
    ref = image_reference(image)

    async def read(client: RegistryClient, manifest: Manifest) -> bytes:
        return await config_blob(client, ref, manifest)

    return _with_manifest(ref, authfile, tls_verify, read)


def _with_manifest(
    ref: Reference,
    authfile: str | None,
    tls_verify: bool,
    read: Callable[[RegistryClient, Manifest], Awaitable[T]],
) -> T:
    async def run() -> T:
        async with RegistryClient(tls_verify=tls_verify, authfile=authfile, retries=3) as client:
            return await read(client, await client.get_manifest(ref))

    return asyncio.run(run())


def describe_image(
    ref: Reference, summary: ImageSummary
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """What `hangar inspect` shows, as text: (field, value) pairs, and for an index one
    (platform, digest, signed) row per entry."""
    manifest, rows, own = summary.manifest, summary.rows, summary.own
    bundles = summary.own_bundles
    fields = [
        ("Reference", str(ref)),
        ("Digest", manifest.digest),
        ("Media type", manifest.media_type),
        ("Signed", "yes" if own is not None or bundles is not None else "no"),
    ]
    if own is not None:
        fields.append(("Signatures", _signatures_text(own)))
    if bundles is not None:
        fields.append(("Bundles", _bundles_text(bundles) + " (cosign v3; podman reads .sig only)"))
    if not summary.is_index:
        fields.insert(3, ("Platform", rows[0].platform if rows else "(unknown)"))
        fields.insert(4, ("Layers", str(summary.layers)))
        return fields, []
    return fields, [(row.platform, row.digest, _signed_cell(row)) for row in rows]


def _signatures_text(found: Signatures) -> str:
    words = f"{found.layers} signature{'s' if found.layers != 1 else ''}"
    verified = [f"{k.verified} by {k.path} (sha256:{k.fingerprint[:16]})" for k in found.by_key]
    return ", ".join([words, *verified])


def _bundles_text(found: Bundles) -> str:
    words = f"{found.bundles} bundle{'s' if found.bundles != 1 else ''}"
    verified = [f"{k.verified} by {k.path} (sha256:{k.fingerprint[:16]})" for k in found.by_key]
    return ", ".join([words, *verified])


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "-"
    return "yes" if value else "no"


def _signed_cell(row: PlatformRow) -> str:
    if row.note:
        return row.note
    parts = []
    if row.signatures is not None:
        parts.append(_signatures_text(row.signatures))
    if row.bundles is not None:
        parts.append(_bundles_text(row.bundles))
    if parts:
        return "yes: " + "; ".join(parts)
    return _yes_no(row.signed)

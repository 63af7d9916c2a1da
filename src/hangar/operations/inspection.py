"""What `hangar inspect` reports, as data: the config of the host's platform, and per digest
of an image whether its `.sig` tag holds signatures and how many verify with each key given.

The CLI (hangar.cli.inspect) only renders what these return.
"""

from __future__ import annotations

import asyncio
import platform
from dataclasses import dataclass

from hangar import output
from hangar.attachments.blobs import fetch_layer_blobs
from hangar.attachments.bundles import ReferrersApi, discover
from hangar.errors import HangarError
from hangar.manifest import (
    INDEX_TYPES,
    Descriptor,
    Platform,
    config_platform,
    index_entries,
    load_json,
)
from hangar.operations.targets import read_config
from hangar.reference import Reference
from hangar.registry.client import Manifest, RegistryClient
from hangar.registry.errors import NotFoundError
from hangar.sigstore.attachment import SIMPLESIGNING_MEDIA_TYPE, parse_attachment, signature_tag
from hangar.sigstore.bundle import verify_bundle
from hangar.sigstore.keys import PublicKey
from hangar.sigstore.verify import verify_layer

# Python's platform.machine() -> (OCI architecture, variant)
_MACHINE_ARCH = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True)
class KeyCount:
    """How many signature layers verify with one key given with -p."""

    path: str
    fingerprint: str
    verified: int


@dataclass(frozen=True)
class Signatures:
    """What the `.sig` tag of one digest holds: its signature layers, and per key given with
    -p how many of them verify with it (signature and payload digest; identity not judged)."""

    layers: int
    by_key: tuple[KeyCount, ...] = ()


@dataclass(frozen=True)
class Bundles:
    """The Sigstore bundles of one digest (cosign v3's format): how many cosign reads, and per
    key given with -p how many verify with it (cosign v3 verify --key --insecure-ignore-tlog)."""

    bundles: int
    by_key: tuple[KeyCount, ...] = ()
    source: str = ""  # referrers-api or referrers-tag


@dataclass(frozen=True)
class PlatformRow:
    platform: str
    digest: str
    media_type: str
    signed: bool | None  # None: not a signable entry (attestation), or unknown
    note: str = ""
    signatures: Signatures | None = None
    bundles: Bundles | None = None  # None: no bundle


@dataclass(frozen=True)
class ImageSummary:
    """The image itself and its `.sig` (own); for an index one row per entry, for a single
    manifest one row naming its platform."""

    manifest: Manifest
    rows: list[PlatformRow]
    own: Signatures | None  # None: no `.sig` tag for the image's digest
    own_bundles: Bundles | None = None  # None: no bundle for the image's digest

    @property
    def is_index(self) -> bool:
        return self.manifest.media_type in INDEX_TYPES

    @property
    def layers(self) -> int:
        """The image's layers (a single manifest; 0 when it lists none)."""
        layers = load_json(self.manifest.data).get("layers")
        return len(layers) if isinstance(layers, list) else 0


# -- --config ----------------------------------------------------------------------------


async def config_blob(client: RegistryClient, ref: Reference, manifest: Manifest) -> bytes:
    """The image config; for a multi-platform image, the one of this host's platform."""
    if manifest.media_type in INDEX_TYPES:
        entry = host_entry(ref, manifest.data)
        output.info(f"config of platform {entry.platform} ({entry.digest})")
        manifest = await client.get_manifest(ref.with_digest(entry.digest))
    return await read_config(client, ref, manifest)


def host_platform() -> Platform:
    arch, variant = _MACHINE_ARCH.get(platform.machine().lower(), (platform.machine(), ""))
    return Platform("linux", arch, variant)


def host_entry(ref: Reference, data: bytes) -> Descriptor:
    """The index entry for this host's platform (Linux: containers run Linux images)."""
    entries = [e for e in index_entries(data) if not e.is_attestation and e.platform]
    host = host_platform()

    def platform_of(entry: Descriptor) -> Platform:
        assert entry.platform is not None  # filtered above
        return entry.platform

    candidates = [
        e
        for e in entries
        if platform_of(e).os == host.os and platform_of(e).architecture == host.architecture
    ]
    exact = [e for e in candidates if platform_of(e).variant == host.variant]
    unversioned = [e for e in candidates if not platform_of(e).variant]
    for group in (exact, unversioned, candidates):
        if group:
            return group[0]
    listed = ", ".join(f"{e.platform} {e.digest}" for e in entries) or "none"
    raise HangarError(
        f"{ref} is a multi-platform image without a {host} entry (platforms: {listed})",
        hint=f"pick one by digest: hangar inspect --config {ref.name}@sha256:...",
    )


# -- summary -----------------------------------------------------------------------------


async def summarize(
    client: RegistryClient,
    ref: Reference,
    manifest: Manifest,
    keys: list[tuple[str, PublicKey]],
) -> ImageSummary:
    """The image's signature state, per platform for an index. `keys`: (file, key) pairs."""
    if manifest.media_type in INDEX_TYPES:
        entries = index_entries(manifest.data)
        rows = list(await asyncio.gather(*(_entry_row(client, ref, e, keys) for e in entries)))
    else:
        rows = [await _single_row(client, ref, manifest)]
    own = await signatures_of(client, ref, manifest.digest, keys)
    return ImageSummary(manifest, rows, own, await bundles_of(client, ref, manifest.digest, keys))


async def _entry_row(
    client: RegistryClient, ref: Reference, entry: Descriptor, keys: list[tuple[str, PublicKey]]
) -> PlatformRow:
    name = str(entry.platform) if entry.platform else "(no platform)"
    if entry.is_attestation:
        return PlatformRow(name, entry.digest, entry.media_type, None, "attestation")
    found, bundles = await asyncio.gather(
        signatures_of(client, ref, entry.digest, keys), bundles_of(client, ref, entry.digest, keys)
    )
    signed = found is not None or bundles is not None
    return PlatformRow(name, entry.digest, entry.media_type, signed, "", found, bundles)


async def _single_row(client: RegistryClient, ref: Reference, manifest: Manifest) -> PlatformRow:
    name = "(unknown)"
    try:
        platform = config_platform(await read_config(client, ref, manifest))
        # A `.sig` attachment's config (and other artifacts') names no OS or architecture.
        empty = not platform.os and not platform.architecture
        name = "(none: not a runnable image)" if empty else str(platform)
    except HangarError as exc:  # a summary still helps without the platform
        output.debug(f"no platform for {ref}: {exc}")
    return PlatformRow(name, manifest.digest, manifest.media_type, None)


async def signatures_of(
    client: RegistryClient, ref: Reference, digest: str, keys: list[tuple[str, PublicKey]]
) -> Signatures | None:
    """The `.sig` tag of `digest`, summed up; None when there is none."""
    try:
        tag = signature_tag(digest)
    except HangarError:
        return None  # not a sha256 digest: cosign-style attachments cannot name it
    try:
        sig = await client.get_manifest(ref.with_tag(tag))
    except NotFoundError:
        return None
    attachment = parse_attachment(sig.data)
    layers = [layer for layer in attachment.layers if layer.media_type == SIMPLESIGNING_MEDIA_TYPE]
    if not keys or not layers:
        return Signatures(len(layers))
    blobs = await fetch_layer_blobs(client, ref.with_tag(tag), attachment)
    pairs = [(b.layer, b.data) for b in blobs if b.layer.media_type == SIMPLESIGNING_MEDIA_TYPE]
    image = f"{ref.name}@{digest}"

    def verified_by(key: PublicKey) -> int:
        any_identity = _AnyIdentity()
        return sum(
            verify_layer(digest, image, layer, data, [key], any_identity).accepted
            for layer, data in pairs
        )

    by_key = tuple(KeyCount(path, key.fingerprint, verified_by(key)) for path, key in keys)
    return Signatures(len(layers), by_key)


async def bundles_of(
    client: RegistryClient, ref: Reference, digest: str, keys: list[tuple[str, PublicKey]]
) -> Bundles | None:
    """The bundles of `digest` as cosign v3 finds them; None when there is none (or the
    referrers cannot be read: inspect is a summary, the reason goes to the debug log)."""
    try:
        discovery = await discover(client, ref, digest, ReferrersApi())
    except HangarError as exc:
        output.debug(f"{ref.name}@{digest}: bundles not read: {exc}")
        return None
    found = [item.bundle for item in discovery.bundles if item.bundle is not None]
    if not found:
        return None
    by_key = tuple(
        KeyCount(path, key.fingerprint, sum(verify_bundle(b, digest, key).accepted for b in found))
        for path, key in keys
    )
    return Bundles(len(found), by_key, discovery.source)


class _AnyIdentity:
    """inspect reports which key made a signature; whose image it names is validate's job."""

    def __call__(self, image_reference: str, signed_reference: str) -> bool:
        return True

"""`sign --signature-format bundle|both`: the Sigstore bundle of one digest, as cosign v3
`sign --key` writes it with no transparency log (hangar.sigstore.bundle, .referrers), attached
through hangar.attachments.bundles.

Idempotent as the `.sig` path is: a digest that already has a bundle verifying with this key
(predicate cosign sign/v1) gets no second one (cosign itself adds one per run). And it knows
cosign v3's trap: `cosign verify --key K` reads only bundles once any parsable bundle exists,
so the first bundle attached next to other keys' `.sig` signatures breaks their `cosign verify`
(podman/CRI-O read only `.sig` and are not affected): sign warns before writing it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hangar import output
from hangar.attachments.bundles import (
    Attached,
    BundleWriter,
    Equivalence,
    FoundBundle,
    discover,
)
from hangar.attachments.signature import PAYLOAD_FETCHES, may_be_signature
from hangar.manifest import INDEX_TYPES, index_entries
from hangar.reference import Reference
from hangar.registry.client import Manifest, RegistryClient
from hangar.registry.errors import DigestMismatchError, NotFoundError, TooLargeError
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SignatureLayer,
    parse_attachment,
    signature_tag,
)
from hangar.sigstore.bundle import build_bundle, verify_bundle
from hangar.sigstore.keys import PublicKey, SigningKey
from hangar.sigstore.referrers import Subject, build_artifact

SignatureFormat = Literal["legacy", "bundle", "both"]


def subjects_of(manifest: Manifest) -> dict[str, Subject]:
    """The `subject` descriptor of every digest a line may sign: the manifest itself and, for
    an index, each entry as the index describes it (media type and size as listed)."""
    subjects = {manifest.digest: Subject(manifest.media_type, len(manifest.data), manifest.digest)}
    if manifest.media_type in INDEX_TYPES:
        for entry in index_entries(manifest.data):
            subjects.setdefault(entry.digest, Subject(entry.media_type, entry.size, entry.digest))
    return subjects


def created_now() -> str:
    """org.opencontainers.image.created as cosign writes it: UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class BundleSigner:
    client: RegistryClient
    key: SigningKey  # a key file's or a token's: the token call runs in a thread
    bundles: BundleWriter
    force: bool = False

    def __post_init__(self) -> None:
        self.public_key: PublicKey = self.key.public_key()

    async def subject(self, ref: Reference, digest: str) -> Subject:
        manifest = await self.client.get_manifest(ref.with_digest(digest))
        return Subject(manifest.media_type, len(manifest.data), digest)

    async def sign(
        self,
        ref: Reference,
        subject: Subject,
        line: str,
        number: int,
        ours: frozenset[str] = frozenset(),
    ) -> Attached | None:
        """Attach a bundle of `subject` unless one of this key is there (never with force);
        None when there is. `ours`: .sig layers (payload digests) this key just wrote, not
        read again to look for other keys' signatures. HangarError when it cannot be written."""
        digest = subject.digest
        # One writer per digest in this run: a digest listed twice gets one bundle.
        async with self.bundles.writer.locks.hold(f"bundle:{ref.name}@{digest}"):
            discovery = await discover(self.client, ref, digest, self.bundles.api)
            if not self.force and any(
                verify_bundle(found.bundle, digest, self.public_key).is_signature
                for found in discovery.bundles
                if found.bundle is not None
            ):
                return None
            if not discovery.bundles:
                await self._warn_foreign_legacy(ref, digest, number, ours)
            bundle = await asyncio.to_thread(build_bundle, self.key, digest)
            artifact = build_artifact(bundle, subject, created_now())
            equivalence = None
            if not self.force:
                seen = frozenset(found.referrer for found in discovery.found)
                equivalence = Equivalence(self.client, ref, seen, self._is_ours(digest))
            return await self.bundles.attach(ref, digest, bundle, artifact, line, equivalence)

    def _is_ours(self, digest: str) -> Callable[[FoundBundle], bool]:
        def is_ours(found: FoundBundle) -> bool:
            bundle = found.bundle
            return (
                bundle is not None and verify_bundle(bundle, digest, self.public_key).is_signature
            )

        return is_ours

    async def _warn_foreign_legacy(
        self, ref: Reference, digest: str, number: int, ours: frozenset[str]
    ) -> None:
        """Before the first bundle of a digest: does its .sig hold other keys' signatures?
        Their `cosign verify --key` (v3) stops reading .sig once this bundle exists."""
        foreign = await foreign_legacy_signatures(self.client, ref, digest, self.public_key, ours)
        if foreign:
            output.warn(
                f"{ref.name}@{digest}: its .sig holds {foreign} signature(s) by other keys and "
                "no bundle yet; once this bundle is attached, cosign v3 `verify --key` of those "
                "keys reads only bundles and fails (podman/CRI-O still read .sig)",
                image=number,
            )
            output.info(
                "  tell those signers to add a bundle too (hangar sign --signature-format both),"
                " or sign with --signature-format legacy",
                image=number,
            )


async def foreign_legacy_signatures(
    client: RegistryClient,
    ref: Reference,
    digest: str,
    key: PublicKey,
    ours: frozenset[str] = frozenset(),
) -> int:
    """How many `.sig` signature layers of `digest` do not verify with `key` (layers whose
    payload digest is in `ours` are ours without a look)."""
    try:
        manifest = await client.get_manifest(ref.with_tag(signature_tag(digest)))
    except NotFoundError:
        return 0
    attachment = parse_attachment(manifest.data)
    layers = [
        layer for layer in attachment.layers if may_be_signature(layer) and layer.digest not in ours
    ]
    gate = asyncio.Semaphore(PAYLOAD_FETCHES)

    async def foreign(layer: SignatureLayer) -> bool:
        async with gate:
            try:
                payload = await client.get_blob(
                    ref.registry, ref.repository, layer.digest, max_size=MAX_SIGNATURE_BLOB
                )
            except (NotFoundError, DigestMismatchError, TooLargeError):
                return True  # verifies with no key, ours neither
        signature = layer.signature
        return signature is None or not key.verify(signature, payload)

    return sum(await asyncio.gather(*map(foreign, layers)))

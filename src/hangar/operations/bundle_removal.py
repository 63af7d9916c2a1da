"""`sign remove` for Sigstore bundles: the bundles a RemovalRule matches on one digest go,
their entries first (in the fallback index, through the `.sig` protocol as DropReferrers:
every other referrer stays byte for byte), then the artifacts themselves (DELETE by digest).
Referrers that are not bundles (SBOMs, other tools' artifacts) are never touched."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from hangar.attachments.bundles import DropReferrers, FoundBundle, ReferrersApi, discover
from hangar.attachments.writer import AttachmentWriter
from hangar.reference import Reference
from hangar.registry.client import RegistryClient
from hangar.registry.errors import NotFoundError
from hangar.sigstore.bundle import verify_bundle
from hangar.sigstore.referrers import referrers_tag


@dataclass(frozen=True)
class BundleRule:
    """The RemovalRule's choice, for bundles (the same keys and modes)."""

    remove_keys: tuple
    keep_keys: tuple
    unverified: bool
    everything: bool

    def reason(self, found: FoundBundle, digest: str) -> str | None:
        bundle = found.bundle
        if bundle is None:
            return None  # not a bundle: never ours to remove
        if self.everything:
            return "all"
        for key in self.remove_keys:
            if verify_bundle(bundle, digest, key).accepted:
                return f"key sha256:{key.fingerprint}"
        if self.unverified and not any(
            verify_bundle(bundle, digest, key).accepted for key in self.keep_keys
        ):
            return "verifies with none of the kept keys"
        return None


@dataclass(frozen=True)
class BundleMatch:
    artifact: str
    reason: str


async def matching_bundles(
    client: RegistryClient, ref: Reference, digest: str, rule: BundleRule, api: ReferrersApi
) -> tuple[str, list[BundleMatch]]:
    """(where they are listed, the bundles of `digest` that `rule` removes)."""
    discovery = await discover(client, ref, digest, api)
    matches = [
        BundleMatch(found.referrer, reason)
        for found in discovery.bundles
        if (reason := rule.reason(found, digest)) is not None
    ]
    return discovery.source, matches


async def remove_bundles(
    client: RegistryClient,
    writer: AttachmentWriter,
    ref: Reference,
    digest: str,
    matches: list[BundleMatch],
    source: str,
    line: str,
) -> None:
    """Unlist, then delete, the matched artifacts. HangarError when the registry refuses."""
    if not matches:
        return
    digests = {match.artifact for match in matches}
    if source == "referrers-tag":
        await writer.apply(DropReferrers(ref.with_tag(referrers_tag(digest)), digests, line))
    for artifact in sorted(digests):
        with contextlib.suppress(NotFoundError):  # gone already: what was wanted
            await client.delete_manifest(ref, artifact)

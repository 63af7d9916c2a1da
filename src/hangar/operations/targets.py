"""Which digests of an image line to sign or validate: the platform manifests that pass
--os/--arch (attestation entries never do), and the index itself when asked."""

from __future__ import annotations

from dataclasses import dataclass

from hangar import output
from hangar.manifest import (
    INDEX_TYPES,
    Descriptor,
    config_descriptor,
    config_platform,
    index_entries,
    platform_matches,
)
from hangar.reference import Reference
from hangar.registry.client import Manifest, RegistryClient
from hangar.results import ImageResult, Status

# The largest image config read, as containers/image's iolimits.MaxConfigBodySize: podman and
# skopeo refuse a larger one. (Signature payloads have their own cap, MAX_SIGNATURE_BLOB.)
MAX_CONFIG_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """One digest, and what it is: a platform (`linux/amd64`) or `index`."""

    digest: str
    label: str

    @property
    def is_index(self) -> bool:
        return self.label == "index"


def _wanted(entry: Descriptor, oses: list[str], arches: list[str]) -> bool:
    if entry.is_attestation or entry.media_type in INDEX_TYPES:
        return False
    return platform_matches(entry.platform, oses, arches)


@dataclass(frozen=True)
class Selection:
    """The digests to work on, and every platform the image has (to say what it does have
    when none matches)."""

    targets: list[Target]
    platforms: tuple[str, ...]


async def select_targets(
    client: RegistryClient,
    ref: Reference,
    manifest: Manifest,
    oses: list[str],
    arches: list[str],
    *,
    include_index: bool,
) -> Selection:
    """The digests to work on; no targets when no platform matches (the caller skips it)."""
    if manifest.media_type in INDEX_TYPES:
        entries = [e for e in index_entries(manifest.data) if not e.is_attestation]
        chosen = [Target(e.digest, str(e.platform)) for e in entries if _wanted(e, oses, arches)]
        if chosen and include_index:
            chosen.append(Target(manifest.digest, "index"))
        platforms = tuple(str(e.platform) for e in entries if e.platform is not None)
        return Selection(chosen, platforms)
    platform = config_platform(await read_config(client, ref, manifest))
    if platform_matches(platform, oses, arches):
        return Selection([Target(manifest.digest, str(platform))], (str(platform),))
    return Selection([], (str(platform),))


async def read_config(client: RegistryClient, ref: Reference, manifest: Manifest) -> bytes:
    """The config blob of a single (platform) manifest, at most MAX_CONFIG_SIZE bytes."""
    descriptor = config_descriptor(manifest.data)
    return await client.get_blob(
        ref.registry, ref.repository, descriptor.digest, max_size=MAX_CONFIG_SIZE
    )


def skipped_for_platform(ref: Reference, selection: Selection, number: int) -> ImageResult:
    """The result of an image none of whose platforms passes --os/--arch."""
    have = ", ".join(selection.platforms) or "none"
    output.info(f"no matching platform (it has {have}), skipped [{ref}]", image=number)
    return ImageResult(
        Status.SKIPPED, f"no matching platform (it has {have})", platforms=selection.platforms
    )


# --- attestation manifests and every instance (`copy --all`) --------------------------------

ATTESTATION_SUBJECT = "vnd.docker.reference.digest"  # buildx: the platform manifest attested


def _attestation_label(entry: Descriptor, labels: dict[str, str]) -> str:
    subject = (entry.annotations or {}).get(ATTESTATION_SUBJECT, "")
    return f"attestation of {labels.get(subject, subject or 'unknown')}"


def with_attestations(manifest: Manifest, chosen: list[Target]) -> list[Target]:
    """`chosen` plus the buildx attestation manifests of the chosen platforms (an attestation
    naming no subject goes with any choice), before the index entry if there is one."""
    if manifest.media_type not in INDEX_TYPES:
        return chosen
    labels = {target.digest: target.label for target in chosen}
    attestations = [
        Target(entry.digest, _attestation_label(entry, labels))
        for entry in index_entries(manifest.data)
        if entry.is_attestation
        and (entry.annotations or {}).get(ATTESTATION_SUBJECT, "") in (*labels, "")
    ]
    platforms = [target for target in chosen if not target.is_index]
    return platforms + attestations + [target for target in chosen if target.is_index]


def all_instances(manifest: Manifest) -> list[Target] | None:
    """Every instance of an index, as `skopeo copy --all` checks each one against the policy:
    every platform whatever --os/--arch say, and attestation manifests. None for a single
    manifest (its one instance is the image itself). Nested indexes are not instances."""
    if manifest.media_type not in INDEX_TYPES:
        return None
    entries = [e for e in index_entries(manifest.data) if e.media_type not in INDEX_TYPES]
    labels = {
        e.digest: str(e.platform) if e.platform else "no platform"
        for e in entries
        if not e.is_attestation
    }
    return [
        Target(e.digest, _attestation_label(e, labels) if e.is_attestation else labels[e.digest])
        for e in entries
    ]

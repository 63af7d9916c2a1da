"""Evaluate a scope's requirements for one image as containers/image's policy_eval*.go does
when podman/CRI-O pull it: every requirement must accept; the first that refuses gives the
reason. Pure: the caller passes what the registry holds (the `.sig` attachment's layers).

A requirement hangar cannot decide (signedBy, sigstoreSigned with fulcio/pki/Rekor) makes the
verdict "unchecked", never "accepted"; a later requirement that refuses still makes it
"rejected", since podman refuses it whatever the unchecked one would say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hangar.errors import HangarError
from hangar.policy.requirements import (
    InsecureAcceptAnything,
    Reject,
    Requirement,
    SignedBaseLayer,
    SignedBy,
    SigstoreSigned,
)
from hangar.sigstore.attachment import SIMPLESIGNING_MEDIA_TYPE, SignatureLayer
from hangar.sigstore.keys import PublicKey
from hangar.sigstore.verify import LayerVerdict, verify_layers

ACCEPTED = "accepted"
REJECTED = "rejected"
UNCHECKED = "unchecked"

NO_SIGNATURE = "A signature was required, but no signature exists"


@dataclass(frozen=True)
class Signatures:
    """What c/image reads for one manifest digest: the `.sig` attachment's layers with their
    blobs (None for a blob that could not be read), or why it cannot use them."""

    layers: Sequence[tuple[SignatureLayer, bytes | None]] = ()
    unreadable: str | None = None  # a layer could not be fetched: the whole image is refused
    attachments_off_for: str | None = None  # registries.d: the host whose attachments are off


@dataclass
class Verdict:
    status: str  # ACCEPTED, REJECTED or UNCHECKED
    reason: str
    layers: list[LayerVerdict]


KeyLoader = Callable[[SigstoreSigned], list[PublicKey]]


def needs_signatures(requirements: Sequence[Requirement]) -> bool:
    """Whether c/image reads the signatures: a checkable sigstoreSigned comes before any
    reject (evaluation stops at the first requirement that refuses)."""
    for requirement in requirements:
        if isinstance(requirement, Reject | SignedBaseLayer):
            return False
        if isinstance(requirement, SigstoreSigned) and requirement.not_checkable() is None:
            return True
    return False


def evaluate(
    requirements: Sequence[Requirement],
    image_reference: str,
    manifest_digest: str,
    signatures: Signatures | None,
    load_keys: KeyLoader,
) -> Verdict:
    """The verdict of `requirements` for the manifest `manifest_digest` pulled as
    `image_reference` (`host/repo:tag` or `host/repo@digest`). `signatures` may be None only
    when needs_signatures() is false."""
    unchecked: list[str] = []
    layers: list[LayerVerdict] = []
    for requirement in requirements:
        verdict = _one(requirement, image_reference, manifest_digest, signatures, load_keys)
        layers.extend(verdict.layers)
        if verdict.status == REJECTED:
            return verdict
        if verdict.status == UNCHECKED:
            unchecked.append(verdict.reason)
    if unchecked:
        return Verdict(UNCHECKED, "; ".join(unchecked), layers)
    return Verdict(ACCEPTED, "accepted", layers)


def _one(
    requirement: Requirement,
    image_reference: str,
    manifest_digest: str,
    signatures: Signatures | None,
    load_keys: KeyLoader,
) -> Verdict:
    if isinstance(requirement, InsecureAcceptAnything):
        return Verdict(ACCEPTED, "accepted", [])
    if isinstance(requirement, Reject):
        return Verdict(
            REJECTED, f"Running image docker://{image_reference} is rejected by policy.", []
        )
    if isinstance(requirement, SignedBaseLayer):
        return Verdict(REJECTED, "signedBaseLayer not implemented yet!", [])
    if isinstance(requirement, SignedBy):
        return Verdict(
            UNCHECKED,
            f"signedBy ({requirement.key_type}, simple signing) is not supported by hangar",
            [],
        )
    not_checkable = requirement.not_checkable()
    if not_checkable is not None:
        return Verdict(UNCHECKED, not_checkable, [])
    if signatures is None:
        raise ValueError("sigstoreSigned needs the signatures (see needs_signatures)")
    return _sigstore(requirement, image_reference, manifest_digest, signatures, load_keys)


def _sigstore(
    requirement: SigstoreSigned,
    image_reference: str,
    manifest_digest: str,
    signatures: Signatures,
    load_keys: KeyLoader,
) -> Verdict:
    if signatures.attachments_off_for is not None:
        return Verdict(REJECTED, attachments_off_reason(signatures.attachments_off_for), [])
    if signatures.unreadable is not None:  # c/image fails while reading, before any check
        return Verdict(REJECTED, signatures.unreadable, [])
    try:
        keys = load_keys(requirement)
    except HangarError as exc:
        return Verdict(REJECTED, str(exc), [])
    candidates = [
        item for item in signatures.layers if item[0].media_type == SIMPLESIGNING_MEDIA_TYPE
    ]
    others = len(signatures.layers) - len(candidates)
    if not candidates:
        suffix = f" (0 non-sigstore signatures, {others} sigstore non-signature attachments)"
        return Verdict(REJECTED, NO_SIGNATURE + (suffix if others else ""), [])
    verdicts = verify_layers(
        manifest_digest, candidates, keys, requirement.identity, image_reference=image_reference
    )
    if any(verdict.accepted for verdict in verdicts):
        return Verdict(ACCEPTED, "accepted", verdicts)
    reasons = [verdict.reason for verdict in verdicts]
    if len(reasons) == 1:
        return Verdict(REJECTED, reasons[0], verdicts)
    return Verdict(
        REJECTED, "None of the signatures were accepted, reasons: " + "; ".join(reasons), verdicts
    )


def attachments_off_reason(host: str) -> str:
    return (
        f"{NO_SIGNATURE}: podman will not look for these signatures: set "
        f"use-sigstore-attachments: true for {host} in registries.d"
    )

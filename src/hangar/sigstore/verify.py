"""Per-layer verdicts on a `.sig` attachment, with the checks containers/image makes when
podman or CRI-O pull (its sigstoreSigned policy requirement): simple-signing media type, payload
blob matching its digest, signature by a trusted key, strict payload, manifest digest, identity.

Pure: the caller fetches the manifest digest, the attachment and each layer's payload blob; this
module only looks at bytes. One accepted layer is enough for an image, as for c/image and cosign.

On wording: with a public key, a signature made by another key and a signature that was altered
look the same (the math just fails), so a failed check says "signature does not verify with the
key (signed by another key, or altered)" rather than guessing which.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hangar.errors import PayloadError
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    SignatureLayer,
)
from hangar.sigstore.identity import IdentityRule
from hangar.sigstore.keys import Verifier
from hangar.sigstore.payload import parse_payload

_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


class Rule(Protocol):
    """An identity rule (see hangar.sigstore.identity): IdentityRule, or any such callable."""

    def __call__(self, image_reference: str, signed_reference: str) -> bool: ...


@dataclass
class LayerVerdict:
    index: int  # position of the layer in the attachment
    accepted: bool
    reason: str  # "accepted", or why not, in plain words
    key_index: int | None  # which key verified the signature (None: none did, or not reached)
    identity: str | None  # from the payload, once it parsed
    creator: str | None
    timestamp: int | None
    layer_digest: str


class _Rejected(Exception):
    """One check failed; the message is the verdict's reason."""


def verify_layer(
    manifest_digest: str,
    image_reference: str,
    layer: SignatureLayer,
    payload_bytes: bytes | None,
    keys: Sequence[Verifier],
    rule: Rule,
    *,
    index: int = 0,
) -> LayerVerdict:
    """Check one layer, in c/image's order; the first failed check is the reason.

    Media type, payload blob (present, within MAX_SIGNATURE_BLOB, matching the layer digest),
    signature annotation (present, base64), signature (at least one of `keys`), payload (strict
    parse), docker-manifest-digest (== manifest_digest), identity (accepted by `rule` for
    `image_reference`, what the image was pulled as).
    """
    if not keys:
        raise ValueError("verify_layer needs at least one public key")
    verdict = LayerVerdict(index, False, "", None, None, None, None, layer.digest)
    try:
        _check(manifest_digest, image_reference, layer, payload_bytes, keys, rule, verdict)
    except _Rejected as exc:
        verdict.reason = str(exc)
        return verdict
    verdict.accepted = True
    verdict.reason = "accepted"
    return verdict


def verify_layers(
    manifest_digest: str,
    layers_with_payloads: Iterable[tuple[SignatureLayer, bytes | None]],
    keys: Sequence[Verifier],
    rule: Rule,
    *,
    image_reference: str,
) -> list[LayerVerdict]:
    """verify_layer for every (layer, payload bytes or None) pair, indexed in order."""
    return [
        verify_layer(manifest_digest, image_reference, layer, payload, keys, rule, index=index)
        for index, (layer, payload) in enumerate(layers_with_payloads)
    ]


def has_signature(
    layers_with_payloads: Iterable[tuple[SignatureLayer, bytes | None]],
    *,
    digest: str,
    identity: str,
    key: Verifier,
) -> bool:
    """Whether a layer already signs `digest` as `identity` with `key` (cosign's idempotency).

    Give each layer with the payload bytes fetched for it (None when not fetched). A layer
    counts when it passes every check of verify_layer (media type, blob digest, size,
    signature, strict payload) and its payload names exactly this digest and this identity
    (string equality: the identity hangar would write); creator and timestamp do not matter.
    """

    def same_identity(image_reference: str, signed_reference: str) -> bool:
        return signed_reference == identity

    return any(
        verify_layer(digest, identity, layer, payload, [key], same_identity).accepted
        for layer, payload in layers_with_payloads
    )


def _check(
    manifest_digest: str,
    image_reference: str,
    layer: SignatureLayer,
    payload_bytes: bytes | None,
    keys: Sequence[Verifier],
    rule: Rule,
    verdict: LayerVerdict,
) -> None:
    """Run the checks in order, recording what is learnt on `verdict`; _Rejected on failure."""
    if layer.media_type != SIMPLESIGNING_MEDIA_TYPE:
        raise _Rejected(f"not a simple signing layer (media type {layer.media_type!r})")
    payload_bytes = _checked_blob(layer, payload_bytes)
    signature = _signature(layer)
    verdict.key_index = _verifying_key(keys, signature, payload_bytes)
    try:
        payload = parse_payload(payload_bytes)
    except PayloadError as exc:
        raise _Rejected(f"malformed payload: {exc.message}") from None
    verdict.identity = payload.identity
    verdict.creator = payload.creator
    verdict.timestamp = payload.timestamp
    if payload.digest != manifest_digest:  # exact string comparison, as c/image
        raise _Rejected(f"payload names {payload.digest} not {manifest_digest}")
    if not rule(image_reference, payload.identity):
        raise _Rejected(_identity_reason(rule, image_reference, payload.identity))


def _checked_blob(layer: SignatureLayer, payload_bytes: bytes | None) -> bytes:
    # The declared size first: a caller refuses to fetch such a blob and passes None.
    for size in (layer.size, len(payload_bytes) if payload_bytes is not None else 0):
        if size > MAX_SIGNATURE_BLOB:
            raise _Rejected(
                f"payload blob is {size} bytes, over the {MAX_SIGNATURE_BLOB} byte limit"
            )
    if payload_bytes is None:
        raise _Rejected(f"payload blob {layer.digest} is missing")
    algorithm, _, expected = layer.digest.partition(":")
    hash_function = _HASHES.get(algorithm)
    if hash_function is None:
        raise _Rejected(f"layer digest {layer.digest!r} is not a sha256, sha384 or sha512 digest")
    if hash_function(payload_bytes).hexdigest() != expected:
        raise _Rejected(f"blob does not match its digest {layer.digest}")
    return payload_bytes


def _signature(layer: SignatureLayer) -> bytes:
    if SIGNATURE_ANNOTATION not in layer.annotations:
        raise _Rejected("no signature annotation")
    signature = layer.signature
    if signature is None:
        raise _Rejected("signature annotation is not valid base64")
    return signature


RAW_ECDSA_REASON = (
    "ECDSA signature in raw r||s form (IEEE P1363), not ASN.1 DER: podman/CRI-O refuse it "
    '("invalid signature when validating ASN.1 encoded signature"); sign again with a tool '
    "that writes DER (hangar, cosign, skopeo)"
)


def _verifying_key(keys: Sequence[Verifier], signature: bytes, payload: bytes) -> int:
    for key_index, key in enumerate(keys):
        if key.verify(signature, payload):
            return key_index
    if any(_verifies_as_raw_ecdsa(key, signature, payload) for key in keys):
        raise _Rejected(RAW_ECDSA_REASON)
    which = "the key" if len(keys) == 1 else f"any of the {len(keys)} keys"
    raise _Rejected(f"signature does not verify with {which} (signed by another key, or altered)")


def _verifies_as_raw_ecdsa(key: Verifier, signature: bytes, payload: bytes) -> bool:
    check = getattr(key, "verifies_as_raw_ecdsa", None)  # optional in the Verifier protocol
    return bool(check and check(signature, payload))


def _identity_reason(rule: Rule, image_reference: str, signed_reference: str) -> str:
    if isinstance(rule, IdentityRule):
        return rule.explain(image_reference, signed_reference)
    return f"identity {signed_reference} does not match {image_reference}"

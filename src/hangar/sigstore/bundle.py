"""The Sigstore bundle (protobuf-specs dev.sigstore.bundle.v1.Bundle, v0.3) that cosign v3
`sign --key` writes without a transparency log: the DSSE envelope of the statement
(hangar.sigstore.statement), the public key hint, nothing else (bundles.md sections 3-4).

`parse_bundle` reads a bundle as sigstore-go does (protojson's strictness, then
pkg/bundle/bundle.go `validate`); `verify_bundle` is the check of cosign v3
`verify --key KEY --insecure-ignore-tlog` (pkg/cosign/verify.go, sigstore-go
pkg/verify/signature.go, IntotoSubjectClaimVerifier): the key given is used whatever the hint
says, tlog entries and timestamps are not examined.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass

from hangar.sigstore import protojson
from hangar.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, DsseSignature, Envelope, pae, ssh_keyid
from hangar.sigstore.dsse import parse_envelope as _parse_envelope
from hangar.sigstore.keys import PublicKey, SigningKey
from hangar.sigstore.statement import COSIGN_SIGN_PREDICATE, build_statement, parse_statement

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
MAX_BUNDLE_SIZE = 10 * 1024 * 1024  # Kyverno's cap on a bundle layer

# sigstore-go accepts both spellings of versions 0.1 to 0.3 (bundle.go, getBundleVersion).
_MEDIA_TYPE = re.compile(
    r"application/vnd\.dev\.sigstore\.bundle(?:\.v0\.([1-3])\+json|\+json;version=0\.([1-3]))"
)
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def key_hint(key: PublicKey) -> str:
    """cosign's publicKey.hint: standard base64 of the SHA-256 of the key's SPKI DER."""
    return base64.b64encode(hashlib.sha256(key.der()).digest()).decode()


@dataclass(frozen=True)
class Bundle:
    media_type: str
    minor_version: int  # 1, 2, 3 (v0.x)
    public_key_hint: str | None  # set when the verification material is a public key
    material: str  # "publicKey", "x509CertificateChain", "certificate"
    tlog_entries: int
    timestamps: int
    envelope: Envelope | None  # the DSSE envelope, or None for a message signature


def build_bundle(key: SigningKey, digest: str) -> bytes:
    """A new bundle signing `digest` as cosign v3 `sign --key` does with no log: the
    statement, its DSSE signature over the PAE (DER for ECDSA, no keyid), the key's hint."""
    statement = build_statement(digest)
    signature = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement))
    envelope = Envelope(statement, IN_TOTO_PAYLOAD_TYPE, (DsseSignature(signature),))
    document = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": key_hint(key.public_key())}},
        "dsseEnvelope": envelope.to_json(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def parse_bundle(data: bytes) -> Bundle:
    """A bundle as sigstore-go reads it; ProtoJsonError (a HangarError) names the rule."""
    what = "the bundle"
    found = protojson.fields(
        protojson.load(data, what),
        ("mediaType", "verificationMaterial", "messageSignature", "dsseEnvelope"),
        what,
        oneofs=(("messageSignature", "dsseEnvelope"),),
    )
    media_type = protojson.string(found.get("mediaType", ""), f"{what}: mediaType")
    match = _MEDIA_TYPE.fullmatch(media_type)
    if match is None:
        raise protojson.ProtoJsonError(
            f"{what} has media type {media_type!r}; sigstore-go reads v0.1 to v0.3"
        )
    minor = int(match.group(1) or match.group(2))
    if "verificationMaterial" not in found:
        raise protojson.ProtoJsonError(f"{what} has no verificationMaterial")
    material, hint, tlog, stamps = _material(found["verificationMaterial"], minor)
    envelope = None
    if "dsseEnvelope" in found:
        envelope = _parse_envelope(found["dsseEnvelope"], f"{what}: dsseEnvelope")
    elif "messageSignature" in found:
        _message_signature(found["messageSignature"])
    else:
        raise protojson.ProtoJsonError(f"{what} has neither a dsseEnvelope nor a messageSignature")
    return Bundle(media_type, minor, hint, material, tlog, stamps, envelope)


def _material(obj: object, minor: int) -> tuple[str, str | None, int, int]:
    what = "the bundle: verificationMaterial"
    content = ("publicKey", "x509CertificateChain", "certificate")
    found = protojson.fields(
        obj, (*content, "tlogEntries", "timestampVerificationData"), what, oneofs=(content,)
    )
    present = [name for name in content if name in found]
    if not present:
        raise protojson.ProtoJsonError(f"{what} holds no key, certificate or chain")
    material = present[0]
    hint = None
    if material == "publicKey":
        key = protojson.fields(found["publicKey"], ("hint",), f"{what}.publicKey")
        hint = protojson.string(key.get("hint", ""), f"{what}.publicKey.hint")
    elif material == "certificate":
        _certificate(found["certificate"], f"{what}.certificate")
    else:
        if minor >= 3:
            raise protojson.ProtoJsonError(f"{what}: a v0.3 bundle may not hold a chain")
        chain = protojson.fields(found[material], ("certificates",), f"{what}.{material}")
        for number, item in enumerate(protojson.repeated(chain.get("certificates", []), what)):
            _certificate(item, f"{what}.{material}.certificates[{number}]")
    entries = protojson.repeated(found.get("tlogEntries", []), f"{what}.tlogEntries")
    for number, entry in enumerate(entries):
        _tlog_entry(entry, f"{what}.tlogEntries[{number}]", minor)
    stamps = 0
    if "timestampVerificationData" in found:
        where = f"{what}.timestampVerificationData"
        data = protojson.fields(found["timestampVerificationData"], ("rfc3161Timestamps",), where)
        items = protojson.repeated(data.get("rfc3161Timestamps", []), where)
        for number, item in enumerate(items):
            stamp = protojson.fields(item, ("signedTimestamp",), f"{where}[{number}]")
            protojson.decode_bytes(stamp.get("signedTimestamp", ""), f"{where}[{number}]")
        stamps = len(items)
    return material, hint, len(entries), stamps


def _certificate(obj: object, what: str) -> None:
    cert = protojson.fields(obj, ("rawBytes",), what)
    protojson.decode_bytes(cert.get("rawBytes", ""), f"{what}.rawBytes")


def _tlog_entry(obj: object, what: str, minor: int) -> None:
    found = protojson.fields(
        obj,
        (
            "logIndex",
            "logId",
            "kindVersion",
            "integratedTime",
            "inclusionPromise",
            "inclusionProof",
            "canonicalizedBody",
        ),
        what,
    )
    for name in ("logIndex", "integratedTime"):
        if name in found:
            protojson.integer(found[name], f"{what}.{name}")
    if "logId" in found:
        log_id = protojson.fields(found["logId"], ("keyId",), f"{what}.logId")
        protojson.decode_bytes(log_id.get("keyId", ""), f"{what}.logId.keyId")
    if "kindVersion" in found:
        kind = protojson.fields(found["kindVersion"], ("kind", "version"), f"{what}.kindVersion")
        for value in kind.values():
            protojson.string(value, f"{what}.kindVersion")
    if "inclusionPromise" in found:
        where = f"{what}.inclusionPromise"
        promise = protojson.fields(found["inclusionPromise"], ("signedEntryTimestamp",), where)
        protojson.decode_bytes(promise.get("signedEntryTimestamp", ""), where)
    if "canonicalizedBody" in found:
        protojson.decode_bytes(found["canonicalizedBody"], f"{what}.canonicalizedBody")
    if "inclusionProof" in found:
        _inclusion_proof(found["inclusionProof"], f"{what}.inclusionProof")
    elif minor >= 2:
        raise protojson.ProtoJsonError(f"{what} has no inclusionProof (required since v0.2)")


def _inclusion_proof(obj: object, what: str) -> None:
    found = protojson.fields(
        obj, ("logIndex", "rootHash", "treeSize", "hashes", "checkpoint"), what
    )
    for name in ("logIndex", "treeSize"):
        if name in found:
            protojson.integer(found[name], f"{what}.{name}")
    if "rootHash" in found:
        protojson.decode_bytes(found["rootHash"], f"{what}.rootHash")
    for number, item in enumerate(protojson.repeated(found.get("hashes", []), what)):
        protojson.decode_bytes(item, f"{what}.hashes[{number}]")
    if "checkpoint" in found:
        checkpoint = protojson.fields(found["checkpoint"], ("envelope",), f"{what}.checkpoint")
        protojson.string(checkpoint.get("envelope", ""), f"{what}.checkpoint.envelope")


def _message_signature(obj: object) -> None:
    what = "the bundle: messageSignature"
    found = protojson.fields(obj, ("messageDigest", "signature"), what)
    if "messageDigest" in found:
        digest = protojson.fields(found["messageDigest"], ("algorithm", "digest"), what)
        if "digest" in digest:
            protojson.decode_bytes(digest["digest"], f"{what}.messageDigest.digest")
    protojson.decode_bytes(found.get("signature", ""), f"{what}.signature")


@dataclass(frozen=True)
class BundleVerdict:
    """What cosign v3 `verify --key --insecure-ignore-tlog` says of one bundle for one digest:
    `accepted`, else `reason`. `is_signature`: its predicate is cosign's sign/v1 (cosign
    accepts any predicate; hangar counts only these as signatures)."""

    accepted: bool
    reason: str
    predicate_type: str = ""

    @property
    def is_signature(self) -> bool:
        return self.accepted and self.predicate_type == COSIGN_SIGN_PREDICATE


def verify_bundle(bundle: Bundle, digest: str, key: PublicKey) -> BundleVerdict:
    """The checks of cosign v3 `verify --key KEY --insecure-ignore-tlog` on one parsed bundle
    of the image `digest`."""
    if bundle.minor_version < 3:
        return BundleVerdict(False, f"bundle version v0.{bundle.minor_version}: cosign needs v0.3")
    if bundle.material != "publicKey":
        return BundleVerdict(False, f"the bundle holds a {bundle.material}, not a public key")
    envelope = bundle.envelope
    if envelope is None:
        return BundleVerdict(False, "the bundle holds a message signature, not a DSSE envelope")
    if len(envelope.signatures) != 1:
        return BundleVerdict(
            False, f"the DSSE envelope has {len(envelope.signatures)} signatures; cosign needs 1"
        )
    signature = envelope.signatures[0]
    if signature.keyid and signature.keyid != ssh_keyid(key.der()):
        return BundleVerdict(False, f"the DSSE signature names another key id {signature.keyid}")
    signed = pae(envelope.payload_type, envelope.payload)
    if not (key.verify(signature.sig, signed) or key.verifies_as_raw_ecdsa(signature.sig, signed)):
        return BundleVerdict(False, "the DSSE signature does not verify with this key")
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        return BundleVerdict(False, f"payload type {envelope.payload_type!r} is not in-toto")
    try:
        statement = parse_statement(envelope.payload)
    except protojson.ProtoJsonError as exc:
        return BundleVerdict(False, exc.message)
    if not statement.names_digest(digest):
        return BundleVerdict(
            False, f"the statement's subject is not {digest}", statement.predicate_type
        )
    return BundleVerdict(True, "", statement.predicate_type)

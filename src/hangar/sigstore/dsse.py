"""DSSE (Dead Simple Signing Envelope), as cosign v3 signs a bundle's statement: the signature
is over PAE(payloadType, payload), one signature, no keyid (sigstore-go pkg/sign/content.go,
go-securesystemslib dsse). Pure: bytes in, values out."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization

from hangar.sigstore import protojson

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE signature covers: "DSSEv1 <len> <type> <len> <payload>" (lengths
    in bytes, in decimal)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class DsseSignature:
    sig: bytes
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[DsseSignature, ...]

    def to_json(self) -> dict[str, Any]:
        """protojson's shape: fields in declaration order, empty keyid omitted."""
        signatures = []
        for signature in self.signatures:
            entry: dict[str, Any] = {"sig": base64.b64encode(signature.sig).decode()}
            if signature.keyid:
                entry["keyid"] = signature.keyid
            signatures.append(entry)
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": signatures,
        }


def parse_envelope(obj: object, what: str = "dsseEnvelope") -> Envelope:
    """io.intoto.Envelope read strictly (its JSON names are payload, payloadType, signatures;
    protojson also takes payload_type)."""
    found = protojson.fields(obj, ("payload", "payloadType", "signatures"), what)
    payload = protojson.decode_bytes(found.get("payload", ""), f"{what}.payload")
    payload_type = protojson.string(found.get("payloadType", ""), f"{what}.payloadType")
    signatures = []
    for number, item in enumerate(protojson.repeated(found.get("signatures", []), what)):
        where = f"{what}.signatures[{number}]"
        sig_fields = protojson.fields(item, ("sig", "keyid"), where)
        signatures.append(
            DsseSignature(
                protojson.decode_bytes(sig_fields.get("sig", ""), f"{where}.sig"),
                protojson.string(sig_fields.get("keyid", ""), f"{where}.keyid"),
            )
        )
    return Envelope(payload, payload_type, tuple(signatures))


def ssh_keyid(spki_der: bytes) -> str | None:
    """What go-securesystemslib's verifier calls the key's id: SHA-256 (hex) of the key's SSH
    wire encoding. A DSSE signature with a non-empty keyid other than this is skipped by
    cosign v3 (dsse/verify.go, VerifyAndDecode). None for a key SSH cannot encode."""
    try:
        key = serialization.load_der_public_key(spki_der)
        line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except (ValueError, TypeError):
        return None
    wire = base64.b64decode(line.split()[1])
    return hashlib.sha256(wire).hexdigest()

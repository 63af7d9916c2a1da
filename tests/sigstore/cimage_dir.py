"""Test support: read containers/image's `dir:` images and their signature files, and stand-in
keys over `cryptography` (tests must not depend on hangar.sigstore.keys).

A `dir:` image is a folder with `manifest.json` and `signature-1`, `signature-2`... A sigstore
signature file is c/image's `signature.Blob` format: a NUL byte, the format name
`sigstore-json`, a newline, then JSON `{"mimeType", "payload" (base64), "annotations"}`. Any
other signature file (a GPG simple-signing blob) is kept as `other`, as c/image counts them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hangar.manifest import sha256_digest
from hangar.sigstore.attachment import SignatureLayer
from tests.support import paths

CIMAGE_FIXTURES = paths.CIMAGE_FIXTURES
SIGSTORE_FORMAT = b"sigstore-json"


@dataclass(frozen=True)
class DirSignature:
    mime_type: str
    payload: bytes
    annotations: dict[str, str]

    def layer(self) -> SignatureLayer:
        """The descriptor a registry attachment would hold for this signature."""
        raw: dict = {"mediaType": self.mime_type, "digest": sha256_digest(self.payload)}
        raw["size"] = len(self.payload)
        if self.annotations:
            raw["annotations"] = dict(self.annotations)
        return SignatureLayer(
            self.mime_type, raw["digest"], raw["size"], dict(self.annotations), raw
        )


@dataclass(frozen=True)
class DirImage:
    manifest: bytes | None  # None when the folder has no manifest.json
    signatures: list[DirSignature]  # the sigstore-json signature files, in order
    other: int  # signature files in another format (GPG simple signing)

    def layers_with_payloads(self) -> list[tuple[SignatureLayer, bytes | None]]:
        return [(signature.layer(), signature.payload) for signature in self.signatures]


def parse_dir_signature(blob: bytes) -> DirSignature | None:
    """c/image's signature.FromBlob for sigstore-json; None for another format."""
    if not blob.startswith(b"\x00"):
        return None
    name, newline, chunk = blob[1:].partition(b"\n")
    if not newline:
        raise ValueError("invalid signature format, missing newline")
    if name != SIGSTORE_FORMAT:
        return None
    document = json.loads(chunk)
    annotations = document.get("annotations") or {}
    # Go decodes []byte with base64.StdEncoding.
    payload = base64.b64decode(document.get("payload") or "", validate=True)
    return DirSignature(document.get("mimeType", ""), payload, dict(annotations))


def read_dir_image(path: Path) -> DirImage:
    manifest_path = path / "manifest.json"
    manifest = manifest_path.read_bytes() if manifest_path.exists() else None
    signatures: list[DirSignature] = []
    other = 0
    number = 1
    while (path / f"signature-{number}").exists():
        parsed = parse_dir_signature((path / f"signature-{number}").read_bytes())
        if parsed is None:
            other += 1
        else:
            signatures.append(parsed)
        number += 1
    return DirImage(manifest, signatures, other)


# --- stand-in keys (ECDSA with SHA-256, as c/image and cosign verify) ------------------------


class PemPublicKey:
    """Implements hangar.sigstore.keys.Verifier over a PEM (PKIX) ECDSA public key."""

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self._key = key

    @classmethod
    def load(cls, path: Path) -> PemPublicKey:
        key = serialization.load_pem_public_key(path.read_bytes())
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return cls(key)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self._key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


class TestKey:
    """A fresh P-256 key pair for tampering tests."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())
        self.public = PemPublicKey(self._private.public_key())

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data, ec.ECDSA(hashes.SHA256()))

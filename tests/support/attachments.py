"""Signature attachments written by hand, byte by byte, c/image-shaped, signed with the vector
private keys: what hangar must read, valid or tampered, without hangar's own writer."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.support import http
from tests.support.cli import (
    ANNOTATION,
    KEY1,
    KEY1_PASS,
    OCI_CONFIG,
    OCI_MANIFEST,
    SIMPLESIGNING,
    sig_tag,
)
from tests.support.registry import RegistryServer

MAX_SIGNATURE_BLOB = 4 * 1024 * 1024  # c/image's limit, written out independently of hangar


def fingerprint(public_key: Path) -> str:
    """sha256 of the DER SubjectPublicKeyInfo, computed with `cryptography` alone."""
    key = serialization.load_pem_public_key(public_key.read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@functools.cache
def _private_key(path: Path, passphrase_file: Path):
    from hangar.keys.files import load_private_key

    return load_private_key(path, passphrase_file.read_text().splitlines()[0].encode())


def sign_b64(payload: bytes, key: Path = KEY1, passphrase: Path = KEY1_PASS) -> str:
    """The signature annotation value for `payload`, made with a vector private key."""
    return base64.b64encode(_private_key(key, passphrase).sign(payload)).decode("ascii")


def compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def payload(identity: str, digest: str, *, timestamp: int = 1700000000) -> bytes:
    """A simple-signing payload as c/image writes it (key order and all)."""
    return compact(
        {
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": {"creator": "hangar tests", "timestamp": timestamp},
        }
    )


@dataclass
class Layer:
    """One layer of a hand-made attachment. `blob` is uploaded unless `upload` is False; the
    descriptor names `digest`/`size` when given, else the blob's own."""

    blob: bytes
    annotation: str | None  # the signature annotation value; None: no annotation at all
    media_type: str = SIMPLESIGNING
    digest: str | None = None
    size: int | None = None
    upload: bool = True

    def descriptor(self) -> dict:
        descriptor: dict = {
            "mediaType": self.media_type,
            "digest": self.digest or http.sha256_digest(self.blob),
            "size": len(self.blob) if self.size is None else self.size,
        }
        if self.annotation is not None:
            descriptor["annotations"] = {ANNOTATION: self.annotation}
        return descriptor


def signed_layer(blob: bytes, key: Path = KEY1, passphrase: Path = KEY1_PASS) -> Layer:
    return Layer(blob, sign_b64(blob, key, passphrase))


def push_attachment(server: RegistryServer, repo: str, digest: str, layers: list[Layer]) -> str:
    """Write the `.sig` tag of `digest` by hand, c/image-shaped; returns the manifest digest."""
    for layer in layers:
        if layer.upload:
            http.push_blob(server, repo, layer.blob)
    descriptors = [layer.descriptor() for layer in layers]
    config = compact(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
        }
    )
    http.push_blob(server, repo, config)
    manifest = compact(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": http.sha256_digest(config),
                "size": len(config),
            },
            "layers": descriptors,
        }
    )
    return http.put_manifest(server, repo, sig_tag(digest), manifest, OCI_MANIFEST)


def in_toto_statement(size: int = 0) -> bytes:
    """An in-toto statement, as cosign attest stores one in an attachment."""
    return compact({"_type": "https://in-toto.io/Statement/v0.1", "pad": " " * size})

"""Push test images straight through the registry API (no podman/skopeo needed).

Layers are real gzip'd tars of one small random file and each config lists the layer's
diff_id, so podman or skopeo can pull what is pushed here; every push makes new digests.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import secrets
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support import paths
from tests.support.http import push_blob, put_manifest, sha256_digest

if TYPE_CHECKING:
    from tests.support.registry import RegistryServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
IN_TOTO = "application/vnd.in-toto+json"

IMAGE_KINDS = (
    "oci-index",
    "docker-list",
    "oci-manifest",
    "docker-manifest",
    "oci-index-attestations",
)
DEFAULT_MULTI_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64")
ATTESTED_PLATFORMS = ("linux/amd64", "linux/arm64")

VECTOR_ATTACHMENT = paths.VECTORS / "cimage-attachment"


@dataclass
class PushedImage:
    repository: str
    tag: str
    digest: str  # of the top-level manifest (the index for multi-platform kinds)
    media_type: str
    manifest: bytes
    # "linux/amd64" -> platform manifest digest ("os/arch[/variant]" as asked, which may be
    # "unknown/unknown"); for a single manifest, its one platform -> its own digest.
    platforms: dict[str, str]
    # oci-index-attestations only: attested platform -> digest of its attestation manifest
    # (the index entries with platform unknown/unknown).
    attestations: dict[str, str] = field(default_factory=dict)
    # every manifest below the top one: digest -> bytes as pushed
    children: dict[str, bytes] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """`repository:tag` (prefix the registry host for a full reference)."""
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class _Style:
    manifest: str
    config: str
    layer: str
    index: str


_OCI = _Style(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_INDEX)
_DOCKER = _Style(DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST)


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def parse_platform(text: str) -> dict[str, str]:
    """ "linux/arm/v7" -> {"os": "linux", "architecture": "arm", "variant": "v7"}."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {text!r}: expected os/arch or os/arch/variant")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        platform["variant"] = parts[2]
    return platform


def random_layer() -> tuple[bytes, str]:
    """A gzip'd tar with one small random file: (compressed bytes, diff_id)."""
    raw = io.BytesIO()
    content = secrets.token_bytes(64)
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"hangar-test-{secrets.token_hex(4)}.bin")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), sha256_digest(uncompressed)


def _push_platform_manifest(
    server: RegistryServer, repository: str, platform: str, style: _Style
) -> bytes:
    layer, diff_id = random_layer()
    config = _json(
        {
            **parse_platform(platform),
            "created": "2024-01-01T00:00:00Z",
            "config": {"Labels": {"hangar.test.nonce": secrets.token_hex(8)}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    )
    push_blob(server, repository, layer)
    push_blob(server, repository, config)
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": style.manifest,
            "config": _descriptor(style.config, config),
            "layers": [_descriptor(style.layer, layer)],
        }
    )
    put_manifest(server, repository, sha256_digest(manifest), manifest, style.manifest)
    return manifest


def _push_attestation(server: RegistryServer, repository: str, subject: str) -> bytes:
    """A buildx-style attestation manifest: an in-toto statement about `subject`."""
    statement = _json(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "hangar-test", "digest": {"sha256": subject.split(":")[1]}}],
            "predicate": {"builder": {"id": "hangar-tests"}},
        }
    )
    config = _json(
        {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(statement)]},
        }
    )
    push_blob(server, repository, statement)
    push_blob(server, repository, config)
    layer = _descriptor(IN_TOTO, statement)
    layer["annotations"] = {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [layer],
        }
    )
    put_manifest(server, repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
    return manifest


def push_image(
    server: RegistryServer,
    repository: str,
    tag: str,
    kind: str = "oci-index",
    platforms: list[str] | tuple[str, ...] | None = None,
) -> PushedImage:
    """Push a new image of `kind` (see IMAGE_KINDS) under `repository:tag`."""
    if kind in ("oci-manifest", "docker-manifest"):
        return _push_single(server, repository, tag, kind, platforms)
    if kind in ("oci-index", "docker-list"):
        style = _OCI if kind == "oci-index" else _DOCKER
        return _push_index(server, repository, tag, style, platforms or DEFAULT_MULTI_PLATFORMS)
    if kind == "oci-index-attestations":
        return _push_attested(server, repository, tag, platforms or ATTESTED_PLATFORMS)
    raise ValueError(f"unknown image kind {kind!r}: expected one of {IMAGE_KINDS}")


def _push_single(
    server: RegistryServer,
    repository: str,
    tag: str,
    kind: str,
    platforms: list[str] | tuple[str, ...] | None,
) -> PushedImage:
    chosen = list(platforms or ["linux/amd64"])
    if len(chosen) != 1:
        raise ValueError(f"{kind} holds one platform, got {chosen}")
    style = _OCI if kind == "oci-manifest" else _DOCKER
    manifest = _push_platform_manifest(server, repository, chosen[0], style)
    digest = put_manifest(server, repository, tag, manifest, style.manifest)
    return PushedImage(repository, tag, digest, style.manifest, manifest, {chosen[0]: digest})


def _index_entry(media_type: str, manifest: bytes, platform: str) -> dict[str, object]:
    entry = _descriptor(media_type, manifest)
    entry["platform"] = parse_platform(platform)
    return entry


def _push_index(
    server: RegistryServer,
    repository: str,
    tag: str,
    style: _Style,
    platforms: list[str] | tuple[str, ...],
) -> PushedImage:
    entries: list[dict[str, object]] = []
    children: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for platform in platforms:
        manifest = _push_platform_manifest(server, repository, platform, style)
        digests[platform] = sha256_digest(manifest)
        children[digests[platform]] = manifest
        entries.append(_index_entry(style.manifest, manifest, platform))
    index = _json({"schemaVersion": 2, "mediaType": style.index, "manifests": entries})
    digest = put_manifest(server, repository, tag, index, style.index)
    return PushedImage(repository, tag, digest, style.index, index, digests, children=children)


def _push_attested(
    server: RegistryServer,
    repository: str,
    tag: str,
    platforms: list[str] | tuple[str, ...],
) -> PushedImage:
    images: list[dict[str, object]] = []
    attestation_entries: list[dict[str, object]] = []
    children: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    attestations: dict[str, str] = {}
    for platform in platforms:
        manifest = _push_platform_manifest(server, repository, platform, _OCI)
        digests[platform] = sha256_digest(manifest)
        children[digests[platform]] = manifest
        images.append(_index_entry(OCI_MANIFEST, manifest, platform))
        attestation = _push_attestation(server, repository, digests[platform])
        attestations[platform] = sha256_digest(attestation)
        children[attestations[platform]] = attestation
        entry = _index_entry(OCI_MANIFEST, attestation, "unknown/unknown")
        entry["annotations"] = {
            "vnd.docker.reference.digest": digests[platform],
            "vnd.docker.reference.type": "attestation-manifest",
        }
        attestation_entries.append(entry)
    # buildx lists the images first, then their attestations.
    index = _json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": images + attestation_entries}
    )
    digest = put_manifest(server, repository, tag, index, OCI_INDEX)
    return PushedImage(repository, tag, digest, OCI_INDEX, index, digests, attestations, children)


def push_raw_manifest(
    server: RegistryServer, repo: str, ref: str, data: bytes, media_type: str
) -> str:
    """PUT manifest bytes as given (blobs must already be there); returns the digest."""
    return put_manifest(server, repo, ref, data, media_type)


# -- the containers/image-written attachment vector --------------------------------------


@dataclass(frozen=True)
class PushedAttachment:
    repository: str
    tag: str
    digest: str  # of image-manifest.json: the digest the signatures sign
    manifest: bytes
    signature_tag: str  # "sha256-<hex>.sig"
    signature_digest: str
    signature_manifest: bytes


def push_vector_attachment(
    server: RegistryServer,
    repository: str,
    tag: str = "v1",
    vector_dir: Path = VECTOR_ATTACHMENT,
) -> PushedAttachment:
    """Push the cimage-attachment test vector (tests/support/paths.VECTORS) as-is: the image,
    its blobs, and its `.sig`."""
    for blob in sorted((vector_dir / "blobs").iterdir()):
        pushed = push_blob(server, repository, blob.read_bytes())
        assert pushed == blob.name.replace("-", ":", 1), f"vector blob {blob.name} is corrupt"
    manifest = (vector_dir / "image-manifest.json").read_bytes()
    digest = put_manifest(server, repository, tag, manifest, OCI_MANIFEST)
    for name in ("sig-config.json", "payload-1.json", "payload-2.json"):
        push_blob(server, repository, (vector_dir / name).read_bytes())
    signature_manifest = (vector_dir / "sig-manifest.json").read_bytes()
    signature_tag = digest.replace(":", "-", 1) + ".sig"
    signature_digest = put_manifest(
        server, repository, signature_tag, signature_manifest, OCI_MANIFEST
    )
    return PushedAttachment(
        repository, tag, digest, manifest, signature_tag, signature_digest, signature_manifest
    )


# -- schema1 (for tests of hangar refusing it) -------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_schema1(payload: bytes) -> bytes:
    """libtrust's "pretty JWS": the payload with a `signatures` member spliced in at its end.

    The protected header records where the payload was cut (formatLength/formatTail), which is
    how libtrust.ParsePrettySignature gets the signed bytes back; the key rides in `jwk`.
    """
    close = payload.rstrip().rfind(b"}")
    format_length = len(payload[:close].rstrip())
    protected = _b64url(
        _json(
            {
                "formatLength": format_length,
                "formatTail": _b64url(payload[format_length:]),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.sign(f"{protected}.{_b64url(payload)}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    numbers = key.public_key().public_numbers()
    signature = {
        "header": {
            "jwk": {
                "crv": "P-256",
                "kty": "EC",
                "x": _b64url(numbers.x.to_bytes(32, "big")),
                "y": _b64url(numbers.y.to_bytes(32, "big")),
            },
            "alg": "ES256",
        },
        "signature": _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        "protected": protected,
    }
    signatures = json.dumps([signature], indent=3).replace("\n", "\n   ")
    return payload[:format_length] + b',\n   "signatures": ' + signatures.encode() + b"\n}"


@dataclass(frozen=True)
class PushedSchema1:
    repository: str
    tag: str
    digest: str  # what the registry answers: sha256 of the payload without signatures
    manifest: bytes  # as pushed (the registry re-signs it on every GET)


def push_schema1_image(server: RegistryServer, repository: str, tag: str) -> PushedSchema1:
    """Push a signed schema1 manifest (the test registries enable schema1 for this)."""
    layer, _ = random_layer()
    layer_digest = push_blob(server, repository, layer)
    v1 = {"id": secrets.token_hex(32), "created": "2024-01-01T00:00:00Z", "os": "linux"}
    payload = json.dumps(
        {
            "schemaVersion": 1,
            "name": repository,
            "tag": tag,
            "architecture": "amd64",
            "fsLayers": [{"blobSum": layer_digest}],
            "history": [{"v1Compatibility": json.dumps(v1)}],
        },
        indent=3,
    ).encode()
    signed = sign_schema1(payload)
    digest = put_manifest(server, repository, tag, signed, SCHEMA1_SIGNED)
    return PushedSchema1(repository, tag, digest, signed)

"""The OCI artifact that carries a bundle (its `subject` is the signed manifest), and the
referrers index that lists artifacts by subject: what the referrers API answers, and what the
referrers tag schema keeps at tag `sha256-<hex>` where a registry has no such API (bundles.md
sections 5-6; distribution-spec "Listing Referrers", "Referrers Tag Schema").

Rewriting an index keeps everything another writer put there: top-level fields and every
descriptor (same keys, order and values), only ours added or dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hangar.errors import HangarError
from hangar.manifest import OCI_INDEX, OCI_MANIFEST, sha256_digest
from hangar.sigstore.attachment import load_document
from hangar.sigstore.bundle import BUNDLE_MEDIA_PREFIX, BUNDLE_V03
from hangar.sigstore.payload import encode_go_json
from hangar.sigstore.statement import COSIGN_SIGN_PREDICATE

EMPTY_CONFIG = b"{}"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
CREATED_ANNOTATION = "org.opencontainers.image.created"
# The most referrers read for one digest (Kyverno errs beyond 50; an index this long is odd).
MAX_REFERRERS = 1000

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


class ReferrersError(HangarError):
    """A referrers index or artifact that cosign/ggcr would refuse too."""


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for a subject: `sha256-<hex>`."""
    if not _SHA256.fullmatch(digest):
        raise ReferrersError(f"cannot name the referrers tag of {digest!r}: not a sha256 digest")
    return digest.replace(":", "-", 1)


@dataclass(frozen=True)
class Subject:
    media_type: str
    size: int
    digest: str


def build_artifact(bundle: bytes, subject: Subject, created: str) -> bytes:
    """The referrer manifest cosign v3 writes for a bundle (pkg/oci/remote/write.go,
    WriteAttestationNewBundleFormat / WriteReferrer), in Go's field order: the empty config
    (with cosign's artifactType inside it), one bundle layer, the annotations (sorted), the
    subject, artifactType. `created`: RFC 3339 UTC, whole seconds."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "size": len(EMPTY_CONFIG),
            "digest": EMPTY_DIGEST,
            "artifactType": BUNDLE_V03,
        },
        "layers": [{"mediaType": BUNDLE_V03, "size": len(bundle), "digest": sha256_digest(bundle)}],
        "annotations": {
            CONTENT_ANNOTATION: "dsse-envelope",
            PREDICATE_ANNOTATION: COSIGN_SIGN_PREDICATE,
            CREATED_ANNOTATION: created,
        },
        "subject": {
            "mediaType": subject.media_type,
            "size": subject.size,
            "digest": subject.digest,
        },
        "artifactType": BUNDLE_V03,
    }
    return encode_go_json(manifest)


@dataclass(frozen=True)
class Artifact:
    """A referrer manifest as cosign reads it for a bundle: its one bundle layer."""

    layer_digest: str
    layer_size: int
    subject_digest: str | None
    annotations: dict[str, str]


def parse_artifact(data: bytes) -> Artifact:
    """cosign's reading (pkg/oci/remote/signatures.go, Bundle): exactly one layer, of a media
    type starting with application/vnd.dev.sigstore.bundle. ReferrersError otherwise (cosign
    then skips the referrer: an SBOM, another tool's artifact)."""
    document = _json_object(data, "the referrer manifest")
    layers = document.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise ReferrersError("the referrer manifest does not have exactly one layer")
    layer = layers[0]
    media_type = layer.get("mediaType")
    if not isinstance(media_type, str) or not media_type.startswith(BUNDLE_MEDIA_PREFIX):
        raise ReferrersError(f"the referrer's layer is {media_type!r}, not a Sigstore bundle")
    digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise ReferrersError("the referrer's bundle layer has no sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ReferrersError("the referrer's bundle layer has no size")
    subject = document.get("subject")
    subject_digest = subject.get("digest") if isinstance(subject, dict) else None
    annotations = document.get("annotations")
    return Artifact(
        digest,
        size,
        subject_digest if isinstance(subject_digest, str) else None,
        annotations if isinstance(annotations, dict) else {},
    )


@dataclass(frozen=True)
class Referrer:
    """One descriptor of a referrers index; `raw` as found (kept as is when rewriting)."""

    digest: str
    media_type: str
    artifact_type: str
    raw: dict[str, Any]

    @property
    def may_be_bundle(self) -> bool:
        """cosign applies no filter (any referrer may hold a bundle); a manifest is needed."""
        return self.media_type == OCI_MANIFEST


@dataclass(frozen=True)
class ReferrersIndex:
    referrers: tuple[Referrer, ...]
    raw: dict[str, Any]  # the whole index as found


def parse_index(data: bytes, what: str = "the referrers index") -> ReferrersIndex:
    """An index of referrers; refused as ggcr refuses it (schemaVersion 2, the OCI index media
    type), so that hangar never rewrites a tag that holds something else."""
    document = _json_object(data, what)
    if document.get("schemaVersion") != 2 or document.get("mediaType") != OCI_INDEX:
        raise ReferrersError(
            f"{what} is not an OCI image index (schemaVersion 2, mediaType {OCI_INDEX})",
            hint="the tag is not a referrers index: hangar leaves it as it is; move it away "
            "to let bundles be listed there",
        )
    manifests = document.get("manifests", [])
    if not isinstance(manifests, list):
        raise ReferrersError(f"{what}: manifests is not a list")
    referrers = []
    for entry in manifests[:MAX_REFERRERS]:
        if not isinstance(entry, dict):
            raise ReferrersError(f"{what}: an entry of manifests is not an object")
        digest, media_type = entry.get("digest"), entry.get("mediaType")
        kind = entry.get("artifactType")
        referrers.append(
            Referrer(
                digest if isinstance(digest, str) else "",
                media_type if isinstance(media_type, str) else "",
                kind if isinstance(kind, str) else "",
                entry,
            )
        )
    return ReferrersIndex(tuple(referrers), document)


def index_entry(artifact: bytes) -> dict[str, Any]:
    """The descriptor of our artifact in a referrers index: mediaType, size, digest,
    artifactType (Kyverno selects bundles by it), and the manifest's annotations, which the
    distribution spec says must be copied (ggcr does not; sigstore-js does)."""
    document = json.loads(artifact)
    entry: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "size": len(artifact),
        "digest": sha256_digest(artifact),
        "artifactType": document.get("artifactType") or document["config"]["mediaType"],
    }
    if document.get("annotations"):
        entry["annotations"] = document["annotations"]
    return entry


def add_referrer(index: ReferrersIndex | None, entry: dict[str, Any]) -> bytes:
    """The index with `entry` added (kept when listed already), descriptors sorted by digest
    as ggcr writes them."""
    if index is None:
        document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        entries: list[dict[str, Any]] = []
    else:
        document = dict(index.raw)
        entries = [dict(r.raw) for r in index.referrers]
    if all(e.get("digest") != entry["digest"] for e in entries):
        entries.append(entry)
    document["manifests"] = sorted(entries, key=lambda e: str(e.get("digest", "")))
    return encode_go_json(document)


def drop_referrers(index: ReferrersIndex, digests: set[str]) -> bytes:
    """The index without the descriptors of `digests`, everything else as it was."""
    document = dict(index.raw)
    document["manifests"] = [r.raw for r in index.referrers if r.digest not in digests]
    return encode_go_json(document)


def lists(index: ReferrersIndex | None, digest: str) -> bool:
    return index is not None and any(r.digest == digest for r in index.referrers)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """Numbers kept as written, so that a rewrite changes nothing another writer put there."""
    try:
        return load_document(data, what)
    except HangarError as exc:
        raise ReferrersError(exc.message, hint=exc.hint) from None

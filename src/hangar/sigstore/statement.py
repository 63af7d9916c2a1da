"""The in-toto v1 statement cosign v3 signs for `cosign sign` (cmd/cosign/cli/sign/sign.go,
signDigestBundle): one subject with the image digest and the `-a` annotations (an empty object
without them), predicate type https://sigstore.dev/cosign/sign/v1, an empty predicate. Build
it, and read one strictly as sigstore-go does (protojson into in_toto_attestation v1
Statement, then its subject checks)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hangar.sigstore import protojson

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
# sigstore-go's limits on what a statement may list (pkg/verify/signature.go).
MAX_SUBJECTS = 1024
MAX_SUBJECT_DIGESTS = 32

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_DESCRIPTOR_FIELDS = (
    "name",
    "uri",
    "digest",
    "content",
    "downloadLocation",
    "mediaType",
    "annotations",
)


@dataclass(frozen=True)
class Subject:
    digest: dict[str, str]
    annotations: dict[str, Any]
    name: str = ""


@dataclass(frozen=True)
class Statement:
    type: str
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: dict[str, Any]

    def names_digest(self, digest: str) -> bool:
        """Does a subject name `digest` ("sha256:<hex>") as cosign's claim check compares it,
        as a string (so lowercase hex only)?"""
        return any("sha256:" + s.digest.get("sha256", "") == digest for s in self.subjects)


def build_statement(digest: str) -> bytes:
    """What cosign v3 `sign` signs for `digest`, with no annotations. Compact JSON in
    protojson's field order; verifiers use the signed bytes as stored, never re-encode."""
    if not _SHA256.fullmatch(digest):
        raise protojson.ProtoJsonError(f"cannot sign {digest!r}: not a sha256 digest")
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}, "annotations": {}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    }
    return json.dumps(statement, separators=(",", ":")).encode()


def parse_statement(data: bytes) -> Statement:
    """An in-toto v1 statement, read as sigstore-go reads a DSSE payload; ProtoJsonError
    names what it refuses."""
    what = "the in-toto statement"
    document = protojson.load(data, what)
    if "type" in document:  # the proto field name of `_type`, which protojson accepts too
        if "_type" in document:
            raise protojson.ProtoJsonError(f"{what}: field '_type' is given twice")
        document = {("_type" if k == "type" else k): v for k, v in document.items()}
    found = protojson.fields(document, ("_type", "subject", "predicateType", "predicate"), what)
    subjects = tuple(
        _subject(item, f"{what}: subject[{number}]")
        for number, item in enumerate(protojson.repeated(found.get("subject", []), what))
    )
    if len(subjects) > MAX_SUBJECTS:
        raise protojson.ProtoJsonError(f"{what} lists over {MAX_SUBJECTS} subjects")
    return Statement(
        protojson.string(found.get("_type", ""), f"{what}: _type"),
        subjects,
        protojson.string(found.get("predicateType", ""), f"{what}: predicateType"),
        protojson.struct(found.get("predicate", {}), f"{what}: predicate"),
    )


def _subject(obj: object, what: str) -> Subject:
    found = protojson.fields(obj, _DESCRIPTOR_FIELDS, what)
    digest = protojson.string_map(found.get("digest", {}), f"{what}.digest")
    if len(digest) > MAX_SUBJECT_DIGESTS:
        raise protojson.ProtoJsonError(f"{what} lists over {MAX_SUBJECT_DIGESTS} digests")
    for algorithm, value in digest.items():
        if not _HEX.fullmatch(value):
            raise protojson.ProtoJsonError(f"{what}.digest[{algorithm!r}] is not hex")
    for name in ("name", "uri", "downloadLocation", "mediaType"):
        if name in found:
            protojson.string(found[name], f"{what}.{name}")
    if "content" in found:
        protojson.decode_bytes(found["content"], f"{what}.content")
    annotations = protojson.struct(found.get("annotations", {}), f"{what}.annotations")
    return Subject(digest, annotations, found.get("name", ""))

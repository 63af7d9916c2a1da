"""The referrer artifact and the referrers index (hangar.sigstore.referrers), pure."""

from __future__ import annotations

import json

import pytest

from hangar.sigstore.referrers import (
    ReferrersError,
    Subject,
    add_referrer,
    build_artifact,
    drop_referrers,
    index_entry,
    parse_artifact,
    parse_index,
    referrers_tag,
)

DIGEST = "sha256:" + "ab" * 32
SUBJECT = Subject("application/vnd.docker.distribution.manifest.v2+json", 401, DIGEST)
# Another tool's entry, with fields and spellings hangar does not write (kept as they are).
FOREIGN = (
    b'{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1.0e3,'
    b'"digest":"sha256:' + b"cd" * 32 + b'","artifactType":"application/spdx+json",'
    b'"annotations":{"x":"\\u003c\\u0026\\u003e","z":"\xc3\xa9"},"platform":{"os":"linux"}}'
)
INDEX = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'
    b'"manifests":[' + FOREIGN + b'],"annotations":{"by":"oras"}}'
)


def test_the_tag_is_the_digest_with_a_dash() -> None:
    assert referrers_tag(DIGEST) == "sha256-" + "ab" * 32
    with pytest.raises(ReferrersError):
        referrers_tag("sha512:00")


def test_the_artifact_reads_back_as_cosign_reads_it() -> None:
    artifact = build_artifact(b"{}bundle", SUBJECT, "2026-12-03T14:33:14Z")
    read = parse_artifact(artifact)
    assert read.subject_digest == DIGEST
    assert read.layer_size == len(b"{}bundle")
    assert json.loads(artifact)["subject"]["mediaType"] == SUBJECT.media_type


def test_adding_and_dropping_ours_keeps_every_other_byte() -> None:
    ours = index_entry(build_artifact(b"bundle", SUBJECT, "2026-12-03T14:33:14Z"))
    added = add_referrer(parse_index(INDEX), ours)
    assert FOREIGN in added
    assert added.endswith(b'],"annotations":{"by":"oras"}}')
    assert add_referrer(parse_index(added), ours) == added  # listed once
    assert drop_referrers(parse_index(added), {ours["digest"]}) == INDEX


def test_entries_are_sorted_by_digest_as_ggcr_writes_them() -> None:
    first = index_entry(build_artifact(b"one", SUBJECT, "2026-12-03T14:33:14Z"))
    second = index_entry(build_artifact(b"two", SUBJECT, "2026-12-03T14:33:14Z"))
    index = parse_index(add_referrer(parse_index(add_referrer(None, second)), first))
    digests = [r.digest for r in index.referrers]
    assert digests == sorted(digests)


@pytest.mark.parametrize(
    "document",
    [
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"},
        {"schemaVersion": 1, "mediaType": "application/vnd.oci.image.index.v1+json"},
    ],
)
def test_a_tag_holding_something_else_is_refused_as_ggcr_refuses_it(document: dict) -> None:
    with pytest.raises(ReferrersError, match="not an OCI image index"):
        parse_index(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([], "exactly one layer"),
        ([{"mediaType": "application/spdx+json", "size": 1, "digest": DIGEST}], "not a Sigstore"),
        ([{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "size": 1}], "no sha256"),
    ],
)
def test_an_artifact_cosign_would_skip_is_refused(layers: list, message: str) -> None:
    with pytest.raises(ReferrersError, match=message):
        parse_artifact(json.dumps({"layers": layers}).encode())

"""Signatures nobody here made: containers/image's own fixtures, with the verdicts its
`signature/policy_eval_sigstore_test.go` expects, and the skopeo-written attachment vector.

The Go test runs c/image's policy on `dir:` images; here each image's signature files become
attachment layers (the descriptor a registry would hold) and go through verify_layers with the
manifest digest a registry client would compute (sha256 of the manifest bytes).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from hangar.manifest import sha256_digest as sha256
from hangar.sigstore.attachment import SIGNATURE_ANNOTATION, parse_attachment
from hangar.sigstore.identity import (
    IdentityRule,
    exact_reference,
    exact_repository,
    match_exact,
    match_repo_digest_or_exact,
    match_repository,
)
from hangar.sigstore.keys import Verifier
from hangar.sigstore.verify import LayerVerdict, verify_layers
from tests.sigstore.cimage_dir import (
    CIMAGE_FIXTURES,
    DirSignature,
    PemPublicKey,
    parse_dir_signature,
    read_dir_image,
)
from tests.support import paths

COSIGN_KEY = PemPublicKey.load(CIMAGE_FIXTURES / "cosign.pub")
SAMPLE = "192.168.64.2:5000/cosign-signed-single-sample"  # the Go test's image reference
COSIGN_DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
DOES_NOT_VERIFY = "signature does not verify with the key (signed by another key, or altered)"


def verdicts_for(
    folder: str, image_reference: str, rule: IdentityRule, keys: list[Verifier] | None = None
) -> list[LayerVerdict]:
    image = read_dir_image(CIMAGE_FIXTURES / folder)
    assert image.manifest is not None
    return verify_layers(
        sha256(image.manifest),
        image.layers_with_payloads(),
        keys or [COSIGN_KEY],
        rule,
        image_reference=image_reference,
    )


def accepted(verdicts: list[LayerVerdict]) -> bool:
    """The image's verdict: one accepted signature is enough (c/image and cosign alike)."""
    return any(verdict.accepted for verdict in verdicts)


def reasons(verdicts: list[LayerVerdict]) -> list[str]:
    return [verdict.reason for verdict in verdicts]


def test_every_cosign_fixture_is_covered() -> None:
    folders = {path.name for path in CIMAGE_FIXTURES.glob("dir-img-cosign-*")}
    assert folders == {
        "dir-img-cosign-valid",
        "dir-img-cosign-valid-2",
        "dir-img-cosign-valid-with-tag",
        "dir-img-cosign-mixed",
        "dir-img-cosign-modified-manifest",
        "dir-img-cosign-manifest-digest-error",
        "dir-img-cosign-no-manifest",
        "dir-img-cosign-other-attachment",
    }


# --- TestPRrSigstoreSignedIsSignatureAccepted ------------------------------------------------


def test_valid_cosign_signature_under_match_repository() -> None:
    [verdict] = verdicts_for("dir-img-cosign-valid", SAMPLE, match_repository)
    assert verdict.accepted, verdict.reason
    assert verdict.key_index == 0
    assert verdict.identity == SAMPLE  # cosign writes the repository only
    assert (verdict.creator, verdict.timestamp) == (None, None)


def valid_signature() -> DirSignature:
    return read_dir_image(CIMAGE_FIXTURES / "dir-img-cosign-valid").signatures[0]


def verify_one(signature: DirSignature, image_reference: str, rule: IdentityRule) -> LayerVerdict:
    [verdict] = verify_layers(
        COSIGN_DIGEST,
        [(signature.layer(), signature.payload)],
        [COSIGN_KEY],
        rule,
        image_reference=image_reference,
    )
    return verdict


def test_signature_with_no_cryptographic_signature() -> None:
    signature = valid_signature()
    stripped = DirSignature(signature.mime_type, signature.payload, {})
    verdict = verify_one(stripped, SAMPLE, match_repository)
    assert (verdict.accepted, verdict.reason) == (False, "no signature annotation")


def test_signature_which_does_not_verify() -> None:
    signature = valid_signature()
    invalid = base64.b64encode(b"invalid signature").decode()
    altered = DirSignature(signature.mime_type, signature.payload, {SIGNATURE_ANNOTATION: invalid})
    verdict = verify_one(altered, SAMPLE, match_repository)
    assert (verdict.accepted, verdict.reason) == (False, DOES_NOT_VERIFY)


def test_valid_signature_with_an_unknown_key() -> None:
    blob = (CIMAGE_FIXTURES / "unknown-cosign-key.signature").read_bytes()
    signature = parse_dir_signature(blob)
    assert signature is not None
    verdict = verify_one(signature, SAMPLE, match_repository)
    assert (verdict.accepted, verdict.reason) == (False, DOES_NOT_VERIFY)


def test_valid_signature_with_a_rejected_identity() -> None:
    verdict = verify_one(valid_signature(), SAMPLE, exact_reference("this/doesnt:match"))
    assert not verdict.accepted
    assert verdict.reason == (
        f"identity {SAMPLE} does not match this/doesnt:match (exactReference): "
        "the signature names no tag or digest"
    )


def test_image_without_a_manifest() -> None:
    # c/image fails reading the manifest; a registry client has no digest to check against.
    image = read_dir_image(CIMAGE_FIXTURES / "dir-img-cosign-no-manifest")
    assert image.manifest is None
    assert len(image.signatures) == 1


def test_manifest_whose_digest_cannot_be_computed() -> None:
    # A schema1 manifest with broken signatures: whatever digest one gets, it is not the one
    # the cosign signature names.
    [verdict] = verdicts_for("dir-img-cosign-manifest-digest-error", SAMPLE, match_repository)
    manifest = (CIMAGE_FIXTURES / "dir-img-cosign-manifest-digest-error/manifest.json").read_bytes()
    assert not verdict.accepted
    assert verdict.reason == f"payload names {COSIGN_DIGEST} not {sha256(manifest)}"


def test_valid_signature_with_a_modified_manifest() -> None:
    [verdict] = verdicts_for("dir-img-cosign-modified-manifest", SAMPLE, match_repository)
    manifest = (CIMAGE_FIXTURES / "dir-img-cosign-modified-manifest/manifest.json").read_bytes()
    assert not verdict.accepted
    assert verdict.reason == f"payload names {COSIGN_DIGEST} not {sha256(manifest)}"
    assert verdict.key_index == 0  # the signature itself verifies


def test_match_exact_with_the_tag_the_signature_names() -> None:
    [verdict] = verdicts_for(
        "dir-img-cosign-valid-with-tag", "192.168.64.2:5000/skopeo-signed:tag", match_exact
    )
    assert verdict.accepted, verdict.reason
    assert verdict.identity == "192.168.64.2:5000/skopeo-signed:tag"
    assert (verdict.creator, verdict.timestamp) == ("containers/image 5.21.2-dev", 1657296609)


def test_match_exact_with_another_tag() -> None:
    [verdict] = verdicts_for(
        "dir-img-cosign-valid-with-tag", "192.168.64.2:5000/skopeo-signed:othertag", match_exact
    )
    assert not verdict.accepted
    assert verdict.reason == (
        "identity 192.168.64.2:5000/skopeo-signed:tag does not match "
        "192.168.64.2:5000/skopeo-signed:othertag (matchExact)"
    )


def test_match_exact_refuses_cosign_signatures() -> None:
    [verdict] = verdicts_for("dir-img-cosign-valid", SAMPLE, match_exact)
    assert not verdict.accepted
    assert verdict.reason.endswith("(matchExact): the signature names no tag or digest")
    # The same with the tag a docker transport would add.
    [tagged] = verdicts_for("dir-img-cosign-valid", f"{SAMPLE}:latest", match_exact)
    assert not tagged.accepted


# --- TestPRSigstoreSignedIsRunningImageAllowed -----------------------------------------------


def test_single_valid_signature_allows_the_image() -> None:
    assert accepted(verdicts_for("dir-img-cosign-valid", SAMPLE, match_repository))


@pytest.mark.parametrize("folder", ["dir-img-unsigned", "dir-img-valid"])
def test_no_sigstore_signature_at_all(folder: str) -> None:
    # dir-img-valid holds GPG simple-signing signatures only: not attachments, nothing to check.
    image = read_dir_image(CIMAGE_FIXTURES / folder)
    assert image.signatures == []
    assert image.other == (0 if folder == "dir-img-unsigned" else 1)
    assert not accepted(verdicts_for(folder, "testing/manifest:latest", match_repository))


def test_only_a_non_signature_attachment() -> None:
    verdicts = verdicts_for(
        "dir-img-cosign-other-attachment", "testing/manifest:latest", match_repository
    )
    assert not accepted(verdicts)
    assert reasons(verdicts) == ["not a simple signing layer (media type 'text/plain')"]


def test_one_signature_with_a_non_matching_reference() -> None:
    verdicts = verdicts_for("dir-img-cosign-valid", "testing/manifest:notlatest", match_repository)
    assert not accepted(verdicts)
    assert reasons(verdicts) == [
        f"identity {SAMPLE} does not match testing/manifest:notlatest (matchRepository)"
    ]


def test_two_valid_signatures() -> None:
    verdicts = verdicts_for("dir-img-cosign-valid-2", SAMPLE, match_repository)
    assert [verdict.accepted for verdict in verdicts] == [True, True]


def test_one_invalid_then_one_valid_signature() -> None:
    verdicts = verdicts_for("dir-img-cosign-mixed", SAMPLE, match_repository)
    assert accepted(verdicts)
    assert [(verdict.accepted, verdict.reason) for verdict in verdicts] == [
        (False, DOES_NOT_VERIFY),
        (True, "accepted"),
    ]


def test_two_signatures_with_a_non_matching_reference() -> None:
    verdicts = verdicts_for("dir-img-cosign-valid-2", "this/doesnt:match", match_repository)
    assert not accepted(verdicts)
    assert (
        reasons(verdicts)
        == [f"identity {SAMPLE} does not match this/doesnt:match (matchRepository)"] * 2
    )


def test_match_exact_cases_of_the_running_image_test() -> None:
    folder = "dir-img-cosign-valid-with-tag"
    assert accepted(verdicts_for(folder, "192.168.64.2:5000/skopeo-signed:tag", match_exact))
    assert not accepted(
        verdicts_for(folder, "192.168.64.2:5000/skopeo-signed:othertag", match_exact)
    )
    assert not accepted(verdicts_for("dir-img-cosign-valid", SAMPLE, match_exact))


def test_dir_signature_format_errors() -> None:
    with pytest.raises(ValueError, match="missing newline"):
        parse_dir_signature(b"\x00sigstore-json")
    assert parse_dir_signature(b"\x00simple-signing\n...") is None


# --- the skopeo-written attachment (tests/data/vectors/cimage-attachment) ----------------

VECTORS = paths.VECTORS
ATTACHMENT = VECTORS / "cimage-attachment"
KEY1 = PemPublicKey.load(VECTORS / "cimage-keys/key1.pub")
KEY2 = PemPublicKey.load(VECTORS / "cimage-keys/key2.pub")
KEY3 = PemPublicKey.load(VECTORS / "cimage-keys/key3.pub")
VECTOR_DIGEST = sha256((ATTACHMENT / "image-manifest.json").read_bytes())
VECTOR_REPO = "127.0.0.1:5000/vectors/app"
BY_TAG = f"{VECTOR_REPO}:v1"
BY_DIGEST = f"{VECTOR_REPO}@{VECTOR_DIGEST}"


def vector_verdicts(
    keys: list[Verifier], rule: IdentityRule, image_reference: str = BY_TAG
) -> list[LayerVerdict]:
    attachment = parse_attachment((ATTACHMENT / "sig-manifest.json").read_bytes())
    blobs = {sha256(data): data for data in map(Path.read_bytes, ATTACHMENT.glob("payload-*"))}
    pairs = [(layer, blobs.get(layer.digest)) for layer in attachment.layers]
    return verify_layers(VECTOR_DIGEST, pairs, keys, rule, image_reference=image_reference)


def test_vector_payloads_name_what_the_readme_says() -> None:
    verdicts = vector_verdicts([KEY1, KEY2], match_repository)
    assert [verdict.identity for verdict in verdicts] == [BY_DIGEST, BY_TAG]
    assert [verdict.key_index for verdict in verdicts] == [0, 1]
    assert {verdict.creator for verdict in verdicts} == {"containers/image 5.29.3"}
    assert json.loads((ATTACHMENT / "payload-1.json").read_bytes())["critical"]["identity"] == {
        "docker-reference": BY_DIGEST
    }


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([KEY1], [(True, 0), (False, None)]),
        ([KEY2], [(False, None), (True, 0)]),
        ([KEY3], [(False, None), (False, None)]),
        ([KEY3, KEY2, KEY1], [(True, 2), (True, 1)]),
    ],
)
def test_vector_each_layer_verifies_with_its_own_key_only(
    keys: list[Verifier], expected: list[tuple[bool, int | None]]
) -> None:
    verdicts = vector_verdicts(keys, match_repository)
    assert [(verdict.accepted, verdict.key_index) for verdict in verdicts] == expected
    for verdict in verdicts:
        if not verdict.accepted:
            assert verdict.reason.startswith("signature does not verify with ")


TAG_V2 = f"{VECTOR_REPO}:v2"


@pytest.mark.parametrize(
    ("rule", "image_reference", "expected"),
    [
        # Pulled by tag: only the exact tag; pulled by digest: any signature of the repository.
        (match_repo_digest_or_exact, BY_TAG, [False, True]),
        (match_repo_digest_or_exact, BY_DIGEST, [True, True]),
        (match_repo_digest_or_exact, TAG_V2, [False, False]),
        (match_exact, BY_TAG, [False, True]),
        (match_exact, BY_DIGEST, [True, False]),
        (match_repository, BY_TAG, [True, True]),
        (match_repository, "127.0.0.1:5000/vectors/other:v1", [False, False]),
        (exact_reference(BY_TAG), "ignored", [False, True]),
        (exact_reference(BY_DIGEST), "ignored", [True, False]),
        (exact_repository(VECTOR_REPO), "ignored", [True, True]),
        (exact_repository("127.0.0.1:5001/vectors/app"), "ignored", [False, False]),
    ],
)
def test_vector_identity_rules(
    rule: IdentityRule, image_reference: str, expected: list[bool]
) -> None:
    verdicts = vector_verdicts([KEY1, KEY2], rule, image_reference)
    assert [verdict.accepted for verdict in verdicts] == expected
    for verdict in verdicts:
        if not verdict.accepted:
            assert verdict.reason.startswith(f"identity {verdict.identity} does not match ")
            assert verdict.key_index is not None


def test_vector_against_another_manifest_digest() -> None:
    attachment = parse_attachment((ATTACHMENT / "sig-manifest.json").read_bytes())
    payload = (ATTACHMENT / "payload-2.json").read_bytes()
    other = "sha256:" + "0" * 64
    [verdict] = verify_layers(
        other, [(attachment.layers[1], payload)], [KEY2], match_repository, image_reference=BY_TAG
    )
    assert verdict.reason == f"payload names {VECTOR_DIGEST} not {other}"

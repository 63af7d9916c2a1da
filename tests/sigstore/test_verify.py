"""Identity rules (c/image's own tables, ported) and per-layer verdicts, tampering included."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hangar.errors import InvalidReferenceError
from hangar.manifest import sha256_digest as sha256
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIGNATURE_ANNOTATION,
    NewSignature,
    SignatureLayer,
)
from hangar.sigstore.identity import (
    DockerReference,
    IdentityRule,
    exact_reference,
    exact_repository,
    match_exact,
    match_repo_digest_or_exact,
    match_repository,
    parse_docker_reference,
)
from hangar.sigstore.keys import PublicKey, Verifier
from hangar.sigstore.payload import build_payload
from hangar.sigstore.verify import (
    LayerVerdict,
    Rule,
    verify_layer,
    verify_layers,
)
from tests.sigstore.cimage_dir import TestKey

# --- reference parsing -----------------------------------------------------------------------

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "name", "tag", "digest"),
    [
        ("busybox", "docker.io/library/busybox", None, None),
        ("busybox:latest", "docker.io/library/busybox", "latest", None),
        ("library/busybox", "docker.io/library/busybox", None, None),
        ("docker.io/busybox", "docker.io/library/busybox", None, None),
        ("index.docker.io/library/busybox:1", "docker.io/library/busybox", "1", None),
        ("ns/app", "docker.io/ns/app", None, None),
        ("localhost/app", "localhost/app", None, None),
        ("localhost:5000/ns/app:v1", "localhost:5000/ns/app", "v1", None),
        ("127.0.0.1:5000/ns/app@sha256:" + HEX, "127.0.0.1:5000/ns/app", None, "sha256:" + HEX),
        ("example.com/a/b/c:t@sha256:" + HEX, "example.com/a/b/c", "t", "sha256:" + HEX),
        ("Example.com/app", "Example.com/app", None, None),  # a registry may have capitals
        ("localhost:5000", "docker.io/library/localhost", "5000", None),
        ("a__b/c.d-e:T_a.g-", "docker.io/a__b/c.d-e", "T_a.g-", None),
        ("busybox@sha512:" + "a" * 128, "docker.io/library/busybox", None, "sha512:" + "a" * 128),
    ],
)
def test_parse_docker_reference_normalizes_like_cimage(
    text: str, name: str, tag: str | None, digest: str | None
) -> None:
    parsed = parse_docker_reference(text)
    assert parsed == DockerReference(name, tag, digest)
    assert str(parsed) == name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES",
        "Foo/bar",
        "ns/App:v1",
        HEX,  # a bare 64-hex identifier
        "busybox:",
        ":tag",
        "busybox\n",
        "busybox@sha256:abc",
        "busybox@sha256:" + HEX.upper(),
        "busybox@md5:" + "a" * 32,
        "busybox:" + "t" * 129,
        "a" * 250 + "/b" * 3,  # name over 255 characters
        "bad-/name",
        "docker://busybox",
    ],
)
def test_parse_docker_reference_refuses(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_docker_reference(text)


# --- identity rules: c/image's policy_reference_match_test.go tables ------------------------

FULL_RHEL = "registry.access.redhat.com/rhel7/rhel:7.2.3"
UNTAGGED_RHEL = "registry.access.redhat.com/rhel7/rhel"
DIGEST_SUFFIX = "@sha256:" + HEX
DIGEST_SUFFIX_OTHER = "@sha256:" + "a" * 64

EXACT_MATCH_TABLE = [
    ("busybox:latest", "busybox:latest", True),
    (FULL_RHEL, FULL_RHEL, True),
    ("busybox" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX, True),
    ("library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("library/busybox" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX, True),
    ("busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", "notbusybox:latest", False),
    ("busybox:latest", "hostname/library/busybox:notlatest", False),
    ("hostname/library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", FULL_RHEL, False),
    ("busybox" + DIGEST_SUFFIX, "notbusybox" + DIGEST_SUFFIX, False),
    ("busybox:latest", "busybox" + DIGEST_SUFFIX, False),
    ("busybox" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX_OTHER, False),
    ("busybox", "busybox:latest", False),
    ("busybox", "busybox" + DIGEST_SUFFIX, False),
    ("busybox", "busybox", False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest" + DIGEST_SUFFIX, True),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest" + DIGEST_SUFFIX_OTHER, False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:notlatest" + DIGEST_SUFFIX, False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX, False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest", False),
    ("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", "busybox:latest", False),
    ("", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", False),
    ("INVALID", "INVALID", False),
]

REPOSITORY_MATCH_TABLE = [
    ("busybox:latest", "busybox:latest", True),
    (FULL_RHEL, FULL_RHEL, True),
    ("busybox" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX, True),
    ("library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("library/busybox" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX, True),
    ("busybox:latest", "busybox:notlatest", True),
    (FULL_RHEL + "tagsuffix", FULL_RHEL, True),
    ("library/busybox:latest", "busybox:notlatest", True),
    ("busybox:latest", "library/busybox:notlatest", True),
    ("docker.io/library/busybox:notlatest", "busybox:latest", True),
    ("busybox:notlatest", "docker.io/library/busybox:latest", True),
    ("busybox:latest", "busybox" + DIGEST_SUFFIX, True),
    ("busybox" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX_OTHER, True),
    ("busybox", "busybox:notlatest", True),
    (FULL_RHEL, UNTAGGED_RHEL, True),
    ("busybox", "busybox" + DIGEST_SUFFIX, True),
    ("library/busybox", "busybox", True),
    ("docker.io/library/busybox", "busybox", True),
    ("busybox:latest", "notbusybox:latest", False),
    ("hostname/library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", FULL_RHEL, False),
    ("busybox" + DIGEST_SUFFIX, "notbusybox" + DIGEST_SUFFIX, False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest" + DIGEST_SUFFIX, True),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest" + DIGEST_SUFFIX_OTHER, True),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:notlatest" + DIGEST_SUFFIX, True),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX, True),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest", True),
    ("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", "busybox:latest", False),
    ("", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", False),
    ("INVALID", "INVALID", False),
]

REPO_DIGEST_OR_EXACT_TABLE = [  # (image, signature): not symmetric
    ("busybox:latest", "busybox:notlatest", False),
    (FULL_RHEL + "tagsuffix", FULL_RHEL, False),
    ("library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", "library/busybox:notlatest", False),
    ("docker.io/library/busybox:notlatest", "busybox:latest", False),
    ("busybox:notlatest", "docker.io/library/busybox:latest", False),
    ("busybox", "busybox:latest", False),
    ("busybox:latest", "busybox", False),
    ("busybox", "busybox" + DIGEST_SUFFIX, False),
    ("busybox" + DIGEST_SUFFIX, "busybox", False),
    (FULL_RHEL, UNTAGGED_RHEL, False),
    ("busybox", "busybox", False),
    ("busybox:latest", "busybox" + DIGEST_SUFFIX, False),
    ("busybox" + DIGEST_SUFFIX, "busybox:latest", True),
    ("busybox" + DIGEST_SUFFIX, "busybox" + DIGEST_SUFFIX_OTHER, True),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest", False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:notlatest", False),
    ("busybox:latest", "busybox:latest" + DIGEST_SUFFIX, False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:latest" + DIGEST_SUFFIX_OTHER, False),
    ("busybox:latest" + DIGEST_SUFFIX, "busybox:notlatest" + DIGEST_SUFFIX_OTHER, False),
]


def both_ways(table: list[tuple[str, str, bool]]) -> list[tuple[str, str, bool]]:
    return [*table, *((b, a, result) for a, b, result in table)]


def image_rule(rule: IdentityRule, image: str, signed: str, result: bool) -> None:
    """testPossiblyInvalidImageAndSig: an image reference that does not parse is an error."""
    try:
        parse_docker_reference(image)
    except InvalidReferenceError:
        with pytest.raises(InvalidReferenceError):
            rule(image, signed)
        return
    assert rule(image, signed) is result, f"{image} vs. {signed}"


@pytest.mark.parametrize(("image", "signed", "result"), both_ways(EXACT_MATCH_TABLE))
def test_match_exact(image: str, signed: str, result: bool) -> None:
    image_rule(match_exact, image, signed, result)


@pytest.mark.parametrize(("image", "signed", "result"), both_ways(REPOSITORY_MATCH_TABLE))
def test_match_repository(image: str, signed: str, result: bool) -> None:
    image_rule(match_repository, image, signed, result)


@pytest.mark.parametrize(
    ("image", "signed", "result"),
    [
        *(case for case in both_ways(EXACT_MATCH_TABLE) if case[2]),
        *(case for case in both_ways(REPOSITORY_MATCH_TABLE) if not case[2]),
        *REPO_DIGEST_OR_EXACT_TABLE,
    ],
)
def test_match_repo_digest_or_exact(image: str, signed: str, result: bool) -> None:
    image_rule(match_repo_digest_or_exact, image, signed, result)


def fixed_rule(
    factory: Callable[[str], IdentityRule], fixed: str, signed: str, result: bool
) -> None:
    """c/image's NewPRMExact* refuse what its matcher could never accept; so do the factories."""
    try:
        rule = factory(fixed)
    except InvalidReferenceError:
        assert result is False
        return
    assert rule("not even parsed", signed) is result, f"{fixed} vs. {signed}"


@pytest.mark.parametrize(("fixed", "signed", "result"), both_ways(EXACT_MATCH_TABLE))
def test_exact_reference(fixed: str, signed: str, result: bool) -> None:
    fixed_rule(exact_reference, fixed, signed, result)


@pytest.mark.parametrize(("fixed", "signed", "result"), both_ways(REPOSITORY_MATCH_TABLE))
def test_exact_repository(fixed: str, signed: str, result: bool) -> None:
    fixed_rule(exact_repository, fixed, signed, result)


def test_exact_reference_refuses_a_name_only_reference() -> None:
    with pytest.raises(InvalidReferenceError, match="neither a tag nor a digest"):
        exact_reference("busybox")


def test_rule_explanations() -> None:
    assert match_repo_digest_or_exact.explain("busybox:1", "busybox:2") == (
        "identity busybox:2 does not match busybox:1 (matchRepoDigestOrExact)"
    )
    assert match_exact.explain("busybox:1", "busybox").endswith(
        "(matchExact): the signature names no tag or digest"
    )
    assert match_repository.explain("busybox:1", "Bad").endswith(": not a valid docker reference")
    assert exact_reference("busybox:1").explain("x", "busybox:2") == (
        "identity busybox:2 does not match busybox:1 (exactReference)"
    )
    assert exact_repository("ns/app").explain("x", "ns/other") == (
        "identity ns/other does not match ns/app (exactRepository)"
    )


# --- verdicts and tampering ------------------------------------------------------------------

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
MANIFEST_DIGEST = sha256(MANIFEST)
REPO = "127.0.0.1:5000/ns/app"
IMAGE = f"{REPO}:v1"
KEY = TestKey()
OTHER_KEY = TestKey()


def signed(payload: bytes, key: TestKey = KEY) -> tuple[SignatureLayer, bytes]:
    new = NewSignature(payload, key.sign(payload))
    return new.layer(), payload


def good_payload(digest: str = MANIFEST_DIGEST, identity: str = IMAGE) -> bytes:
    return build_payload(identity, digest, creator="hangar test", timestamp=1700000000)


def check(
    layer: SignatureLayer,
    payload: bytes | None,
    keys: list[Verifier] | None = None,
    rule: Rule = match_repo_digest_or_exact,
) -> LayerVerdict:
    return verify_layer(MANIFEST_DIGEST, IMAGE, layer, payload, keys or [KEY.public], rule)


def with_annotation(layer: SignatureLayer, value: str | None) -> SignatureLayer:
    annotations = dict(layer.annotations)
    if value is None:
        del annotations[SIGNATURE_ANNOTATION]
    else:
        annotations[SIGNATURE_ANNOTATION] = value
    return SignatureLayer(layer.media_type, layer.digest, layer.size, annotations, layer.raw)


def redigested(layer: SignatureLayer, payload: bytes) -> SignatureLayer:
    return SignatureLayer(layer.media_type, sha256(payload), len(payload), layer.annotations, {})


def test_a_good_signature_is_accepted_with_its_details() -> None:
    layer, payload = signed(good_payload())
    verdict = check(layer, payload)
    assert verdict.accepted
    assert verdict.reason == "accepted"
    assert verdict.key_index == 0
    assert (verdict.identity, verdict.creator, verdict.timestamp) == (
        IMAGE,
        "hangar test",
        1700000000,
    )
    assert (verdict.index, verdict.layer_digest) == (0, layer.digest)


def test_the_key_that_verifies_is_recorded() -> None:
    layer, payload = signed(good_payload())
    assert check(layer, payload, keys=[OTHER_KEY.public, KEY.public]).key_index == 1


def test_not_a_simple_signing_layer() -> None:
    layer, payload = signed(good_payload())
    layer.media_type = "application/vnd.in-toto+json"
    verdict = check(layer, payload)
    assert not verdict.accepted
    assert (
        verdict.reason == "not a simple signing layer (media type 'application/vnd.in-toto+json')"
    )


def test_payload_not_fetched() -> None:
    layer, _ = signed(good_payload())
    assert check(layer, None).reason == f"payload blob {layer.digest} is missing"


def test_payload_over_the_size_limit() -> None:
    big = b" " * (MAX_SIGNATURE_BLOB + 1)
    layer, _ = signed(good_payload())
    reason = check(redigested(layer, big), big).reason
    assert reason == f"payload blob is {len(big)} bytes, over the {MAX_SIGNATURE_BLOB} byte limit"


def test_declared_size_over_the_limit_even_when_not_fetched() -> None:
    layer, _ = signed(good_payload())
    layer.size = MAX_SIGNATURE_BLOB + 1
    reason = check(layer, None).reason
    assert reason == f"payload blob is {layer.size} bytes, over the {MAX_SIGNATURE_BLOB} byte limit"


def test_blob_whose_bytes_do_not_match_its_digest() -> None:
    layer, payload = signed(good_payload())
    verdict = check(layer, payload.replace(b"v1", b"v2"))
    assert verdict.reason == f"blob does not match its digest {layer.digest}"
    assert verdict.key_index is None and verdict.identity is None


def test_layer_digest_with_an_unknown_algorithm() -> None:
    layer, payload = signed(good_payload())
    layer.digest = "md5:" + hashlib.md5(payload).hexdigest()
    assert "is not a sha256, sha384 or sha512 digest" in check(layer, payload).reason


def test_sha512_layer_digest_is_checked_too() -> None:
    layer, payload = signed(good_payload())
    layer.digest = "sha512:" + hashlib.sha512(payload).hexdigest()
    assert check(layer, payload).accepted


def test_signature_annotation_missing() -> None:
    layer, payload = signed(good_payload())
    assert check(with_annotation(layer, None), payload).reason == "no signature annotation"


@pytest.mark.parametrize("value", ["not base64!", "QUJD=", "QUJ"])
def test_signature_annotation_not_base64(value: str) -> None:
    layer, payload = signed(good_payload())
    reason = check(with_annotation(layer, value), payload).reason
    assert reason == "signature annotation is not valid base64"


def test_signature_from_another_key() -> None:
    layer, payload = signed(good_payload(), OTHER_KEY)
    verdict = check(layer, payload)
    assert (
        verdict.reason
        == "signature does not verify with the key (signed by another key, or altered)"
    )
    assert verdict.key_index is None and verdict.identity is None
    many = check(layer, payload, keys=[KEY.public, TestKey().public])
    assert many.reason == (
        "signature does not verify with any of the 2 keys (signed by another key, or altered)"
    )


def raw_r_s(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_raw_r_s_signature_is_refused_with_containers_image_reason() -> None:
    payload = good_payload()
    layer = NewSignature(payload, raw_r_s(KEY.sign(payload))).layer()
    hangar_key = PublicKey(KEY._private.public_key())  # knows what r||s is, to say so
    verdict = check(layer, payload, keys=[hangar_key])
    assert not verdict.accepted and verdict.key_index is None
    assert verdict.reason == (
        "ECDSA signature in raw r||s form (IEEE P1363), not ASN.1 DER: podman/CRI-O refuse it "
        '("invalid signature when validating ASN.1 encoded signature"); sign again with a tool '
        "that writes DER (hangar, cosign, skopeo)"
    )
    # r||s by another key is just a signature that does not verify.
    other = NewSignature(payload, raw_r_s(OTHER_KEY.sign(payload))).layer()
    assert check(other, payload, keys=[hangar_key]).reason.startswith(
        "signature does not verify with the key"
    )


def test_payload_edited_after_signing() -> None:
    layer, payload = signed(good_payload())
    edited = payload.replace(b"hangar test", b"hangar TEST")
    reason = check(redigested(layer, edited), edited).reason
    assert reason == "signature does not verify with the key (signed by another key, or altered)"


def test_signature_of_other_bytes_does_not_verify() -> None:
    layer, payload = signed(good_payload())
    assert not check(with_annotation(layer, "aW52YWxpZCBzaWduYXR1cmU="), payload).accepted


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        (lambda p: p[:-1] + b',"extra":1}', 'unexpected field "extra" at top level'),
        (
            lambda p: p.replace(b'"type"', b'"extra":"x","type"'),
            'unexpected field "extra" in critical',
        ),
        (
            lambda p: p.replace(b'"timestamp":1700000000', b'"timestamp":1700000000.5'),
            "timestamp is not an integer",
        ),
        (
            lambda p: p.replace(b'{"critical"', b'{"optional":null,"critical"'),
            'duplicate key "optional" at top level',
        ),
        (
            lambda p: p.replace(b'"type"', b'"type":"x","type"'),
            'duplicate key "type" in critical',
        ),
        (lambda p: p + b"{}", "malformed JSON: Extra data"),
    ],
)
def test_signed_but_malformed_payloads_are_refused(
    edit: Callable[[bytes], bytes], rule: str
) -> None:
    layer, payload = signed(edit(good_payload()))
    verdict = check(layer, payload)
    assert not verdict.accepted
    assert verdict.reason.startswith(f"malformed payload: {rule}")
    assert verdict.key_index == 0  # the signature itself was fine


def test_a_valid_signature_for_another_digest() -> None:
    other = "sha256:" + "f" * 64
    layer, payload = signed(good_payload(digest=other))
    verdict = check(layer, payload)
    assert verdict.reason == f"payload names {other} not {MANIFEST_DIGEST}"
    assert verdict.identity == IMAGE


def test_digest_comparison_is_exact() -> None:
    layer, payload = signed(good_payload(digest=MANIFEST_DIGEST.upper()))
    assert check(layer, payload).reason.startswith("payload names SHA256:")


def test_identity_not_accepted() -> None:
    layer, payload = signed(good_payload(identity=f"{REPO}:v2"))
    verdict = check(layer, payload)
    assert verdict.reason == (f"identity {REPO}:v2 does not match {IMAGE} (matchRepoDigestOrExact)")
    assert verdict.identity == f"{REPO}:v2"
    assert check(layer, payload, rule=match_repository).accepted


def test_a_plain_callable_rule() -> None:
    layer, payload = signed(good_payload())

    def never(_image: str, _signed: str) -> bool:
        return False

    assert check(layer, payload, rule=never).reason == f"identity {IMAGE} does not match {IMAGE}"


def test_an_invalid_image_reference_is_an_error() -> None:
    layer, payload = signed(good_payload())
    with pytest.raises(InvalidReferenceError):
        verify_layer(MANIFEST_DIGEST, "Not/Valid", layer, payload, [KEY.public], match_exact)


def test_verify_layers_in_order() -> None:
    good = signed(good_payload())
    bad = signed(good_payload(), OTHER_KEY)
    verdicts = verify_layers(
        MANIFEST_DIGEST,
        [bad, good, (good[0], None)],
        [KEY.public],
        match_exact,
        image_reference=IMAGE,
    )
    assert [(v.index, v.accepted) for v in verdicts] == [(0, False), (1, True), (2, False)]
    assert verdicts[1].accepted
    assert not verdicts[0].accepted


def test_keys_are_required() -> None:
    layer, payload = signed(good_payload())
    with pytest.raises(ValueError, match="at least one public key"):
        verify_layer(MANIFEST_DIGEST, IMAGE, layer, payload, [], match_exact)

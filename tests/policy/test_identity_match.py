"""signedIdentity matching, ported from containers/image's signature/policy_reference_match_test.go
(the Go test name beside each table). The rules live in hangar.sigstore.identity; these are the
tables c/image itself is held to."""

from __future__ import annotations

import pytest

from hangar.errors import InvalidReferenceError
from hangar.sigstore.identity import (
    IdentityRule,
    exact_reference,
    exact_repository,
    match_exact,
    match_repo_digest_or_exact,
    match_repository,
    parse_docker_reference,
    remap_identity,
    remap_prefix_matches,
    remap_reference,
    valid_remap_prefix,
)

FULL_RHEL = "registry.access.redhat.com/rhel7/rhel:7.2.3"
UNTAGGED_RHEL = "registry.access.redhat.com/rhel7/rhel"
D = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
D_OTHER = "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
BAD = "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES"

# prmExactMatchTestTable: symmetric.
EXACT = [
    ("busybox:latest", "busybox:latest", True),
    (FULL_RHEL, FULL_RHEL, True),
    ("busybox" + D, "busybox" + D, True),
    ("library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("library/busybox" + D, "busybox" + D, True),
    ("busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", "notbusybox:latest", False),
    ("busybox:latest", "hostname/library/busybox:notlatest", False),
    ("hostname/library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", FULL_RHEL, False),
    ("busybox" + D, "notbusybox" + D, False),
    ("busybox:latest", "busybox" + D, False),
    ("busybox" + D, "busybox" + D_OTHER, False),
    ("busybox", "busybox:latest", False),
    ("busybox", "busybox" + D, False),
    ("busybox", "busybox", False),
    ("busybox:latest" + D, "busybox:latest" + D, True),
    ("busybox:latest" + D, "busybox:latest" + D_OTHER, False),
    ("busybox:latest" + D, "busybox:notlatest" + D, False),
    ("busybox:latest" + D, "busybox" + D, False),
    ("busybox:latest" + D, "busybox:latest", False),
    (BAD, "busybox:latest", False),
    ("", BAD, False),
    ("INVALID", "INVALID", False),
]

# prmRepositoryMatchTestTable: symmetric.
REPOSITORY = [
    ("busybox:latest", "busybox:latest", True),
    (FULL_RHEL, FULL_RHEL, True),
    ("busybox" + D, "busybox" + D, True),
    ("library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("library/busybox" + D, "busybox" + D, True),
    ("busybox:latest", "busybox:notlatest", True),
    (FULL_RHEL + "tagsuffix", FULL_RHEL, True),
    ("library/busybox:latest", "busybox:notlatest", True),
    ("busybox:latest", "library/busybox:notlatest", True),
    ("docker.io/library/busybox:notlatest", "busybox:latest", True),
    ("busybox:notlatest", "docker.io/library/busybox:latest", True),
    ("busybox:latest", "busybox" + D, True),
    ("busybox" + D, "busybox" + D_OTHER, True),
    ("busybox", "busybox:notlatest", True),
    (FULL_RHEL, UNTAGGED_RHEL, True),
    ("busybox", "busybox" + D, True),
    ("library/busybox", "busybox", True),
    ("docker.io/library/busybox", "busybox", True),
    ("busybox:latest", "notbusybox:latest", False),
    ("hostname/library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", FULL_RHEL, False),
    ("busybox" + D, "notbusybox" + D, False),
    ("busybox:latest" + D, "busybox:latest" + D, True),
    ("busybox:latest" + D, "busybox:latest" + D_OTHER, True),
    ("busybox:latest" + D, "busybox:notlatest" + D, True),
    ("busybox:latest" + D, "busybox" + D, True),
    ("busybox:latest" + D, "busybox:latest", True),
    (BAD, "busybox:latest", False),
    ("", BAD, False),
    ("INVALID", "INVALID", False),
]

# matchRepoDigestOrExactTestTable: (image, signature), not symmetric.
REPO_DIGEST_OR_EXACT = [
    ("busybox:latest", "busybox:notlatest", False),
    (FULL_RHEL + "tagsuffix", FULL_RHEL, False),
    ("library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", "library/busybox:notlatest", False),
    ("docker.io/library/busybox:notlatest", "busybox:latest", False),
    ("busybox:notlatest", "docker.io/library/busybox:latest", False),
    ("busybox", "busybox:latest", False),
    ("busybox:latest", "busybox", False),
    ("busybox", "busybox" + D, False),
    ("busybox" + D, "busybox", False),
    (FULL_RHEL, UNTAGGED_RHEL, False),
    ("busybox", "busybox", False),
    ("busybox:latest", "busybox" + D, False),
    ("busybox" + D, "busybox:latest", True),
    ("busybox" + D, "busybox" + D_OTHER, True),
    ("busybox:latest" + D, "busybox:latest", False),
    ("busybox:latest" + D, "busybox:notlatest", False),
    ("busybox:latest", "busybox:latest" + D, False),
    ("busybox:latest" + D, "busybox:latest" + D_OTHER, False),
    ("busybox:latest" + D, "busybox:notlatest" + D_OTHER, False),
]


def both_ways(table: list[tuple[str, str, bool]], only: bool | None = None):
    """Each symmetric case in both directions (optionally only the accepted/refused ones)."""
    cases = []
    for a, b, result in table:
        if only is None or result == only:
            cases += [(a, b, result), (b, a, result)]
    return cases


def image_parses(image: str) -> bool:
    try:
        parse_docker_reference(image)
    except InvalidReferenceError:
        return False
    return True


def matches(rule: IdentityRule, image: str, signed: str) -> bool | None:
    """None when the image reference itself does not parse (c/image never gets such an image:
    testPossiblyInvalidImageAndSig skips those)."""
    if not image_parses(image):
        return None
    return rule(image, signed)


@pytest.mark.parametrize(("image", "signed", "result"), both_ways(EXACT))
def test_match_exact(image: str, signed: str, result: bool) -> None:
    # Go: TestPRMMatchExactMatchesDockerReference
    assert matches(match_exact, image, signed) in (result, None)


@pytest.mark.parametrize(
    ("image", "signed", "result"),
    both_ways(EXACT, only=True) + both_ways(REPOSITORY, only=False) + REPO_DIGEST_OR_EXACT,
)
def test_match_repo_digest_or_exact(image: str, signed: str, result: bool) -> None:
    # Go: TestPRMMatchRepoDigestOrExactMatchesDockerReference (and
    # TestMatchRepoDigestOrExactReferenceValues)
    assert matches(match_repo_digest_or_exact, image, signed) in (result, None)


@pytest.mark.parametrize(("image", "signed", "result"), REPO_DIGEST_OR_EXACT)
def test_match_repo_digest_or_exact_asymmetric_cases_all_parse(
    image: str, signed: str, result: bool
) -> None:
    # Go: TestPRMMatchRepoDigestOrExactMatchesDockerReference uses testImageAndSig here: the
    # image always parses, so the verdict is always checked.
    assert match_repo_digest_or_exact(image, signed) is result


@pytest.mark.parametrize(("image", "signed", "result"), both_ways(REPOSITORY))
def test_match_repository(image: str, signed: str, result: bool) -> None:
    # Go: TestPRMMatchRepositoryMatchesDockerReference
    assert matches(match_repository, image, signed) in (result, None)


@pytest.mark.parametrize(("configured", "signed", "result"), both_ways(EXACT))
def test_exact_reference(configured: str, signed: str, result: bool) -> None:
    # Go: TestPRMExactReferenceMatchesDockerReference. An unparsable or name-only configured
    # reference is refused when the policy is read (NewPRMExactReference), so it matches nothing.
    try:
        rule = exact_reference(configured)
    except InvalidReferenceError:
        assert result is False
        return
    assert rule("ignored:by-exact-rules", signed) is result


@pytest.mark.parametrize(("configured", "signed", "result"), both_ways(REPOSITORY))
def test_exact_repository(configured: str, signed: str, result: bool) -> None:
    # Go: TestPRMExactRepositoryMatchesDockerReference
    try:
        rule = exact_repository(configured)
    except InvalidReferenceError:
        assert result is False
        return
    assert rule("ignored:by-exact-rules", signed) is result


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        # Go: TestValidateIdentityRemappingPrefix
        ("localhost", True),
        ("example.com", True),
        ("example.com:80", True),
        ("example.com/repo", True),
        ("example.com/ns1/ns2/ns3/repo.with.dots-dashes_underscores", True),
        ("example.com:80/ns1/ns2/ns3/repo.with.dots-dashes_underscores", True),
        ("shortname", True),
        ("ns/shortname", True),
        ("", False),
        ("repo_with_underscores", False),
        ("example.com/", False),
        ("example.com/UPPERCASEISINVALID", False),
        ("example.com/repo/", False),
        ("example.com/repo:tag", False),
        ("example.com/repo" + D, False),
        ("example.com/repo:tag" + D, False),
    ],
)
def test_validate_identity_remapping_prefix(text: str, valid: bool) -> None:
    assert valid_remap_prefix(text) is valid


@pytest.mark.parametrize(
    ("ref", "prefix", "expected"),
    [
        # Go: TestPRMRemapIdentityRefMatchesPrefix
        ("docker.io/image", "docker.io", True),
        ("docker.io/image", "example.com", False),
        ("example.com:5000/image", "example.com:5000", True),
        ("example.com:50000/image", "example.com:5000", False),
        ("example.com:5000/image", "example.com", False),
        ("example.com/foo", "example.com", True),
        ("example.com/foo/bar", "example.com", True),
        ("example.com/foo/bar:baz", "example.com", True),
        ("example.com/foo/bar" + D, "example.com", True),
        ("docker.io/ns/image", "docker.io/library", False),
        ("example.com/library", "docker.io/library", False),
        ("docker.io/libraryy/image", "docker.io/library", False),
        ("docker.io/library/busybox", "docker.io/library", True),
        ("example.com/ns/image", "example.com/ns", True),
        ("example.com/ns2/image", "example.com/ns", False),
        ("example.com/n2/image", "example.com/ns", False),
        ("example.com", "example.com/library/busybox", False),
        ("example.com:5000/ns/image", "example.com/ns", False),
        ("example.com/ns/image", "example.com:5000/ns", False),
        ("docker.io/library/busybox", "docker.io/library/busybox", True),
        ("example.com/library/busybox", "docker.io/library/busybox", False),
        ("docker.io/library/busybox2", "docker.io/library/busybox", False),
        ("example.com/ns/image", "example.com/ns/image", True),
        ("example.com/ns/imag2", "example.com/ns/image", False),
        ("example.com/ns/imagee", "example.com/ns/image", False),
        ("example.com:5000/ns/image", "example.com/ns/image", False),
        ("example.com/ns/image", "example.com:5000/ns/image", False),
        ("example.com/ns/image:tag", "example.com/ns/image", True),
        ("example.com/ns/image" + D, "example.com/ns/image", True),
        ("example.com/ns/image:tag" + D, "example.com/ns/image", True),
    ],
)
def test_remap_ref_matches_prefix(ref: str, prefix: str, expected: bool) -> None:
    assert remap_prefix_matches(parse_docker_reference(ref).name, prefix) is expected


@pytest.mark.parametrize(
    ("prefix", "signed_prefix", "ref", "expected"),
    [
        # Go: TestPRMRemapIdentityRemapReferencePrefix ("" = the rewrite is refused)
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/ns/image:tag",
            "vendor.example/ns/image:tag",
        ),
        (
            "mirror.example",
            "vendor.example",
            "different.com/ns/image:tag",
            "different.com/ns/image:tag",
        ),
        (
            "mirror.example/ns",
            "vendor.example/vendor-ns",
            "mirror.example/different-ns/image:tag",
            "mirror.example/different-ns/image:tag",
        ),
        (
            "docker.io",
            "not-docker-signed.example/ns",
            "busybox",
            "not-docker-signed.example/ns/library/busybox",
        ),
        (
            "example.com/mirror",
            "example.com/vendor",
            "example.com/mirror/image:tag",
            "example.com/vendor/image:tag",
        ),
        (
            "example.com/ns/mirror",
            "example.com/ns/vendor",
            "example.com/ns/mirror:tag",
            "example.com/ns/vendor:tag",
        ),
        (
            "mirror.example",
            "vendor.example",
            "prefixmirror.example/ns/image:tag",
            "prefixmirror.example/ns/image:tag",
        ),
        (
            "docker.io",
            "not-docker-signed.example",
            "busybox",
            "not-docker-signed.example/library/busybox",
        ),
        (
            "docker.io/library",
            "not-docker-signed.example/ns",
            "busybox",
            "not-docker-signed.example/ns/busybox",
        ),
        (
            "docker.io/library/busybox",
            "not-docker-signed.example/ns/notbusybox",
            "busybox",
            "not-docker-signed.example/ns/notbusybox",
        ),
        ("mirror.example", "vendor.example", "mirror.example/image", "vendor.example/image"),
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/image:tag",
            "vendor.example/image:tag",
        ),
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/image" + D,
            "vendor.example/image" + D,
        ),
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/image:tag" + D,
            "vendor.example/image:tag" + D,
        ),
        ("mirror.example/ns/image", "vendor.example:5000", "mirror.example/ns/image:tag", ""),
        ("mirror.example/ns/image", "vendor.example:5000", "mirror.example/ns/image" + D, ""),
        ("mirror.example/ns/image", "notlocalhost", "mirror.example/ns/image:tag", ""),
    ],
)
def test_remap_reference_prefix(prefix: str, signed_prefix: str, ref: str, expected: str) -> None:
    reference = parse_docker_reference(ref)
    if not expected:
        with pytest.raises(InvalidReferenceError):
            remap_reference(reference, prefix, signed_prefix)
        return
    assert str(remap_reference(reference, prefix, signed_prefix)) == expected


@pytest.mark.parametrize(
    ("prefix", "signed_prefix", "image", "signed", "result"),
    [
        # Go: TestPRMRemapIdentityMatchesDockerReference
        (
            "does-not-match.com",
            "does-not-match.rewritten",
            "busybox:latest",
            "busybox:latest",
            True,
        ),
        (
            "does-not-match.com",
            "does-not-match.rewritten",
            "busybox:latest",
            "notbusybox:latest",
            False,
        ),
        ("mirror.example", "public.com", "mirror.example/busybox:1", "public.com/busybox:1", True),
        (
            "mirror.example",
            "public.com",
            "mirror.example/busybox:1",
            "public.com/busybox:not1",
            False,
        ),
        (
            "mirror.example",
            "docker.io/library",
            "mirror.example/busybox:latest",
            "busybox:latest",
            True,
        ),
        (
            "mirror.example",
            "docker.io/library",
            "mirror.example/alpine:latest",
            "busybox:latest",
            False,
        ),
        ("docker.io/library", "original.com", "copied:latest", "original.com/copied:latest", True),
        (
            "docker.io/library",
            "original.com",
            "copied:latest",
            "original.com/ns/copied:latest",
            False,
        ),
        ("busybox", "example.com/busybox", "busybox:latest", "example.com/busybox:latest", False),
        (
            "docker.io/library/busybox",
            "busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
            False,
        ),
        ("UPPERCASE", "example.com", "example.com/foo:latest", "example.com/foo:latest", True),
        ("example.com", "UPPERCASE", "example.com/foo:latest", "UPPERCASE/foo:latest", False),
    ],
)
def test_remap_identity(
    prefix: str, signed_prefix: str, image: str, signed: str, result: bool
) -> None:
    assert remap_identity(prefix, signed_prefix)(image, signed) is result


def _modified(text: str) -> str:
    """modifiedString: the first letter replaced by the next one."""
    first = text[0]
    if "a" <= first <= "y":
        first = chr(ord(first) + 1)
    elif first == "z":
        first = "a"
    return first + text[1:]


@pytest.mark.parametrize(
    ("image", "signed", "result"),
    both_ways(EXACT, only=True) + both_ways(REPOSITORY, only=False) + REPO_DIGEST_OR_EXACT,
)
def test_remap_identity_behaves_as_match_repo_digest_or_exact(
    image: str, signed: str, result: bool
) -> None:
    # Go: TestPRMRemapIdentityMatchesDockerReference via prmRemapIdentityMRDOETestCase
    if not image_parses(image):
        return
    never = remap_identity("never-causes-a-rewrite.example", "never-causes-a-rewrite.example")
    assert never(image, signed) is result
    parsed = parse_docker_reference(image)
    domain = parsed.name.split("/", 1)[0]
    rewritten = str(parse_docker_reference(_modified(str(parsed))))
    assert remap_identity(_modified(domain), domain)(rewritten, signed) is result

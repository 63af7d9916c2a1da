"""Scope lookup, ported from containers/image's Go tests (the Go test name beside each case):
docker/policyconfiguration/naming_test.go and signature/policy_eval_test.go."""

from __future__ import annotations

import pytest

from hangar.errors import InvalidReferenceError
from hangar.policy.scopes import lookup_scope, scope_identity, scope_namespaces
from hangar.sigstore.identity import parse_docker_reference

SHA = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

# TestDockerReference: input name -> expected namespaces (identity = first + suffix).
DOCKER_REFERENCE = {
    "example.com/ns/repo": ["example.com/ns/repo", "example.com/ns", "example.com", "*.com"],
    "example.com/repo": ["example.com/repo", "example.com", "*.com"],
    "localhost/ns/repo": ["localhost/ns/repo", "localhost/ns", "localhost"],
    "localhost/repo": ["localhost/repo", "localhost"],
    "notlocalhost/repo": [
        "docker.io/notlocalhost/repo",
        "docker.io/notlocalhost",
        "docker.io",
        "*.io",
    ],
    "docker.io/ns/repo": ["docker.io/ns/repo", "docker.io/ns", "docker.io", "*.io"],
    "docker.io/library/repo": ["docker.io/library/repo", "docker.io/library", "docker.io", "*.io"],
    "docker.io/repo": ["docker.io/library/repo", "docker.io/library", "docker.io", "*.io"],
    "ns/repo": ["docker.io/ns/repo", "docker.io/ns", "docker.io", "*.io"],
    "library/repo": ["docker.io/library/repo", "docker.io/library", "docker.io", "*.io"],
    "repo": ["docker.io/library/repo", "docker.io/library", "docker.io", "*.io"],
    "yet.another.example.com:8443/ns/repo": [
        "yet.another.example.com:8443/ns/repo",
        "yet.another.example.com:8443/ns",
        "yet.another.example.com:8443",
        "*.another.example.com",
        "*.example.com",
        "*.com",
    ],
}


@pytest.mark.parametrize("suffix", [":tag", SHA])
@pytest.mark.parametrize("name", list(DOCKER_REFERENCE))
def test_docker_reference(name: str, suffix: str) -> None:  # Go: TestDockerReference
    expected = DOCKER_REFERENCE[name]
    reference = parse_docker_reference(name + suffix)
    assert scope_identity(reference) == expected[0] + suffix
    assert scope_namespaces(reference) == expected


@pytest.mark.parametrize("text", ["busybox", f"busybox:notlatest{SHA}"])
def test_docker_reference_identity_failures(text: str) -> None:  # Go: TestDockerReferenceIdentity
    with pytest.raises(InvalidReferenceError):
        scope_identity(parse_docker_reference(text))


# TestPolicyContextRequirementsForImageRef: the docker scopes of its policy.
SCOPES = dict.fromkeys(
    [
        "",
        "unmatched",
        "deep.com",
        "*.very.deep.com",
        "*.deep.com",
        "deep.com/n1",
        "deep.com/n1/n2",
        "deep.com/n1/n2/n3",
        "deep.com/n1/n2/n3/repo",
        "deep.com/n1/n2/n3/repo:tag2",
    ],
    "requirements",
)


@pytest.mark.parametrize(
    ("image", "matched"),
    [
        # Go: TestPolicyContextRequirementsForImageRef, "Full match"
        ("deep.com/n1/n2/n3/repo:tag2", "deep.com/n1/n2/n3/repo:tag2"),
        # "Namespace matches"
        ("deep.com/n1/n2/n3/repo:nottag2", "deep.com/n1/n2/n3/repo"),
        ("deep.com/n1/n2/n3/notrepo:tag2", "deep.com/n1/n2/n3"),
        ("deep.com/n1/n2/notn3/repo:tag2", "deep.com/n1/n2"),
        ("deep.com/n1/notn2/n3/repo:tag2", "deep.com/n1"),
        # "Host name match"
        ("deep.com/notn1/n2/n3/repo:tag2", "deep.com"),
        # "Sub domain match"
        ("very.deep.com/n1/n2/n3/repo:tag2", "*.deep.com"),
        ("not.very.deep.com/n1/n2/n3/repo:tag2", "*.very.deep.com"),
        # "Default"
        ("this.does-not/match:anything", ""),
    ],
)
def test_policy_context_requirements_for_image_ref(image: str, matched: str) -> None:
    assert lookup_scope(SCOPES, image) == matched


def test_no_match_in_a_transport_without_a_default_scope() -> None:
    # Go: TestPolicyContextRequirementsForImageRef, "No match within a matched transport which
    # doesn't have a "" scope", and "No configuration available for this transport at all"
    assert lookup_scope({"unmatched": "requirements"}, "this.does-not/match:anything") is None
    assert lookup_scope(None, "what/ever:latest") is None

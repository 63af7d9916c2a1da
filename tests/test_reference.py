"""Reference grammar, normalization and the --registry/--project overrides."""

from __future__ import annotations

import pytest

from hangar.errors import HangarError, InvalidReferenceError
from hangar.reference import (
    Reference,
    api_host,
    normalize_project_option,
    normalize_registry_option,
    override_location,
    parse_reference,
)

HEX = "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b"
DIGEST = f"sha256:{HEX}"

# Verdicts of containers/image 5.29's own parser (docker/reference ParseNormalizedNamed +
# TagNameOnly, built from Debian's golang-github-containers-image-dev source with Go 1.19), for
# a random sample of generated references; None means it rejects the reference. Known,
# deliberate differences are not in this sample: `a_b.io/x` (Go accepts it by reading `a_b.io`
# as a path component, leaving no registry), `registry-1.docker.io/x` (we spell it docker.io),
# `[::1]:5000/x` (IPv6 hosts, from newer distribution/reference) and digests other than sha256.
C_IMAGE_VERDICTS = [
    ("-a.io/a-:.x", None),
    ("-a.io/a__b/a.:a+b", None),
    ("1", "docker.io/library/1:latest"),
    ("127.0.0.1:5000/1", "127.0.0.1:5000/1:latest"),
    ("127.0.0.1:5000/a.b/a-/a-b", None),
    ("127.0.0.1:5000/a.b/a-/a-b:.x", None),
    ("127.0.0.1:5000/a:1.25", "127.0.0.1:5000/a:1.25"),
    ("127.0.0.1:5000/aB:A_B.c-d", None),
    ("127.0.0.1:5000/a__b:_x", "127.0.0.1:5000/a__b:_x"),
    ("127.0.0.1:5000/a_b:latest", "127.0.0.1:5000/a_b:latest"),
    ("127.0.0.1:5000/é/nginx:a+b", None),
    ("Q.IO/a..b/é:a+b", None),
    ("Q.IO/a./library:-x", None),
    ("UP/a..b/a--b:latest", None),
    ("UP/library/a_b:-x", None),
    ("a--b:é", None),
    ("a-b.c//a__b:latest", None),
    ("a-b.c/a.b/a./a", None),
    ("a-b.c/aB/a__b/A", None),
    ("a-b.c/library:A_B.c-d", "a-b.c/library:A_B.c-d"),
    ("a-b/aB/a.:.x", None),
    ("a-b/a__b", "docker.io/a-b/a__b:latest"),
    ("a-b:A_B.c-d", "docker.io/library/a-b:A_B.c-d"),
    ("a..b/-a/a..b:A_B.c-d", None),
    ("a..b/:é", None),
    ("a..b/a-b:", None),
    ("a..b/a-b:é", None),
    ("a..b/a..b", None),
    ("a..b/library:latest", None),
    ("a..b:-x", None),
    ("a.:A_B.c-d", None),
    ("a.b./a/aB:a+b", None),
    ("a.b./a_b/:a+b", None),
    ("a.b/a.b:1.25", "a.b/a.b:1.25"),
    ("a.b:é", None),
    ("aB/a--b:é", None),
    ("aB:a+b", None),
    ("a__b", "docker.io/library/a__b:latest"),
    ("a__b:_x", "docker.io/library/a__b:_x"),
    ("a_b", "docker.io/library/a_b:latest"),
    ("a_b:1.25", "docker.io/library/a_b:1.25"),
    ("docker.io/1:_x", "docker.io/library/1:_x"),
    ("docker.io/A:", None),
    ("docker.io/a:A_B.c-d", "docker.io/library/a:A_B.c-d"),
    ("docker.io/a__b/library:A_B.c-d", "docker.io/a__b/library:A_B.c-d"),
    ("index.docker.io/1/aB", None),
    ("index.docker.io/a--b", "docker.io/library/a--b:latest"),
    ("index.docker.io/a..b:a+b", None),
    ("index.docker.io/a.:-x", None),
    ("index.docker.io/a.b/library:_x", "docker.io/a.b/library:_x"),
    ("index.docker.io/aB:", None),
    ("index.docker.io/a__b/a-b:latest", "docker.io/a__b/a-b:latest"),
    ("index.docker.io/a__b/a__b/1", "docker.io/a__b/a__b/1:latest"),
    ("index.docker.io/library/a-b:1.25", "docker.io/library/a-b:1.25"),
    ("index.docker.io/library/a-b:A_B.c-d", "docker.io/library/a-b:A_B.c-d"),
    ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
    ("library/a__b/library", "docker.io/library/a__b/library:latest"),
    ("library/a_b", "docker.io/library/a_b:latest"),
    ("localhost/1:1.25", "localhost/1:1.25"),
    ("localhost/_a/a__b/a.:a+b", None),
    ("localhost/a-b/a__b:", None),
    ("localhost/a-b:1.25", "localhost/a-b:1.25"),
    ("localhost/a-b:_x", "localhost/a-b:_x"),
    ("localhost/a.b:1.25", "localhost/a.b:1.25"),
    ("localhost/a/a/library:1.25", "localhost/a/a/library:1.25"),
    ("localhost/a__b", "localhost/a__b:latest"),
    ("localhost/library/a_b/nginx:1.25", "localhost/library/a_b/nginx:1.25"),
    ("localhost/library/library:_x", "localhost/library/library:_x"),
    ("localhost:5000/a-b/a.:-x", None),
    ("localhost:5000/library/nginx", "localhost:5000/library/nginx:latest"),
    ("localhost:5000/nginx", "localhost:5000/nginx:latest"),
    ("localhost:5000/nginx/a__b/library", "localhost:5000/nginx/a__b/library:latest"),
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25"),
    ("nginx:latest", "docker.io/library/nginx:latest"),
    ("quay.io/-a:A_B.c-d", None),
    ("quay.io/a--b/-a:", None),
    ("quay.io/a-/a-:latest", None),
    ("quay.io/a-b:latest", "quay.io/a-b:latest"),
    ("quay.io/a.b/:.x", None),
    ("quay.io/a__b/a--b", "quay.io/a__b/a--b:latest"),
    ("quay.io/a__b/a.b/a.b:_x", "quay.io/a__b/a.b/a.b:_x"),
    ("quay.io/a__b:latest", "quay.io/a__b:latest"),
    ("quay.io/a_b", "quay.io/a_b:latest"),
    ("quay.io/a_b:1.25", "quay.io/a_b:1.25"),
    ("x.io:/a/1:_x", None),
    ("x.io:/aB/A:-x", None),
    ("x.io:/a___b/_a:1.25", None),
    ("x.io:/a_b/a__b", None),
    ("x.io:/library/:-x", None),
]


@pytest.mark.parametrize(("text", "expected"), C_IMAGE_VERDICTS)
def test_agrees_with_containers_image(text, expected):
    if expected is None:
        with pytest.raises(InvalidReferenceError):
            parse_reference(text)
    else:
        assert str(parse_reference(text)) == expected


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("docker://nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("library/nginx", "docker.io", "library/nginx", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("registry-1.docker.io/foo/bar:v1", "docker.io", "foo/bar", "v1", None),
        (
            "hxstarrys/slsa-provenance-test:latest",
            "docker.io",
            "hxstarrys/slsa-provenance-test",
            "latest",
            None,
        ),
        ("cnrancher/hangar:v1.8.0", "docker.io", "cnrancher/hangar", "v1.8.0", None),
        ("quay.io/skopeo/stable", "quay.io", "skopeo/stable", "latest", None),
        ("quay.io/app", "quay.io", "app", "latest", None),
        ("127.0.0.1:5000/ns/app:v1", "127.0.0.1:5000", "ns/app", "v1", None),
        ("127.0.0.1:5000/foo/bar/abc:latest", "127.0.0.1:5000", "foo/bar/abc", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:1", "localhost:5000", "app", "1", None),
        ("my-host:5000/a/b", "my-host:5000", "a/b", "latest", None),
        ("Registry.Example.COM/ns/app", "Registry.Example.COM", "ns/app", "latest", None),
        ("[::1]:5000/ns/app", "[::1]:5000", "ns/app", "latest", None),
        # A first component without '.', ':' or "localhost" is a namespace, not a host.
        ("myregistry/app", "docker.io", "myregistry/app", "latest", None),
        ("localhost", "docker.io", "library/localhost", "latest", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        (f"nginx@{DIGEST}", "docker.io", "library/nginx", None, DIGEST),
        (f"nginx:1.25@{DIGEST}", "docker.io", "library/nginx", "1.25", DIGEST),
        (f"127.0.0.1:5000/ns/app@{DIGEST}", "127.0.0.1:5000", "ns/app", None, DIGEST),
        ("a/b:sha256-" + HEX + ".sig", "docker.io", "a/b", f"sha256-{HEX}.sig", None),
        ("x/a.b_c__d-e--f", "docker.io", "x/a.b_c__d-e--f", "latest", None),
        ("app:_tag", "docker.io", "library/app", "_tag", None),
        ("app:" + "t" * 128, "docker.io", "library/app", "t" * 128, None),
        ("a/b/c/d/e", "docker.io", "a/b/c/d/e", "latest", None),
    ],
)
def test_parse_valid(text, registry, repository, tag, digest):
    ref = parse_reference(text)
    assert ref == Reference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("docker://", "empty"),
        ("Nginx", "repository name must be lowercase"),
        ("MyOrg/app", "repository name must be lowercase"),
        ("quay.io/MyOrg/app", "repository name must be lowercase"),
        ("nginx:", "tag after ':' is empty"),
        ("nginx:-bad", 'invalid tag "-bad"'),
        ("nginx:.bad", 'invalid tag ".bad"'),
        ("nginx:" + "t" * 129, "invalid tag"),
        ("nginx:tag+x", "invalid tag"),
        ("nginx:tög", "invalid tag"),
        (f"nginx@sha512:{HEX}{HEX}", 'unsupported digest algorithm "sha512"'),
        (f"nginx@md5:{HEX[:32]}", 'unsupported digest algorithm "md5"'),
        ("nginx@sha256:abc", "(it has 3 characters)"),
        (f"nginx@sha256:{HEX}0", "(it has 65 characters)"),
        (f"nginx@sha256:{HEX.upper()}", "lowercase hexadecimal"),
        (f"nginx@{HEX}", "invalid digest"),
        ("nginx@", "invalid digest"),
        (HEX, "image ID"),
        ("a b", "white space"),
        ("a\tb", "white space"),
        ("a//b", "empty path component"),
        ("a/b/", "empty path component"),
        ("/a", "empty path component"),
        ("quay.io/", "repository name is missing"),
        (":tag", "repository name is missing"),
        ("-a/b", '"-a" is not a valid repository path component'),
        ("a_/b", '"a_" is not a valid repository path component'),
        ("a___b", '"a___b" is not a valid repository path component'),
        ("a..b", '"a..b" is not a valid repository path component'),
        ("a:b/c", "not a valid registry host"),
        ("bad_host.io:5000/app", "not a valid registry host"),
        ("-host.io/app", "not a valid registry host"),
        ("host.io:port/app", "not a valid registry host"),
        ("x.io/" + "a" * 251, "not be more than 255 characters"),
    ],
)
def test_parse_invalid(text, reason):
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    message = info.value.message
    assert message.startswith(f'invalid image reference "{text}": ')
    assert reason in message
    assert info.value.hint  # says what a reference looks like


def test_name_length_limit_is_inclusive():
    repository = "a" * (255 - len("x.io/"))
    assert parse_reference(f"x.io/{repository}").name == f"x.io/{repository}"


def test_string_forms_and_properties():
    ref = parse_reference(f"quay.io/ns/app:v1@{DIGEST}")
    assert ref.name == "quay.io/ns/app"
    assert str(ref) == f"quay.io/ns/app:v1@{DIGEST}"
    assert ref.api_reference == DIGEST
    tagged = parse_reference("quay.io/ns/app:v1")
    assert str(tagged) == "quay.io/ns/app:v1"
    assert tagged.api_reference == "v1"
    assert str(parse_reference("nginx")) == "docker.io/library/nginx:latest"
    assert str(parse_reference(f"nginx@{DIGEST}")) == f"docker.io/library/nginx@{DIGEST}"


def test_with_digest_drops_tag_and_with_tag_drops_digest():
    ref = parse_reference("quay.io/ns/app:v1")
    by_digest = ref.with_digest(DIGEST)
    assert by_digest == Reference("quay.io", "ns/app", None, DIGEST)
    assert by_digest.api_reference == DIGEST
    assert by_digest.with_tag("v2") == Reference("quay.io", "ns/app", "v2", None)
    assert ref == Reference("quay.io", "ns/app", "v1", None)  # frozen: the original is intact
    with pytest.raises(InvalidReferenceError, match="unsupported digest algorithm"):
        ref.with_digest(f"sha512:{HEX}{HEX}")
    with pytest.raises(InvalidReferenceError, match="invalid tag"):
        ref.with_tag("-x")


def test_reference_is_hashable_and_frozen():
    ref = parse_reference("nginx")
    assert {ref, parse_reference("docker.io/library/nginx:latest")} == {ref}
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "registry", "project", "expected"),
    [
        # The brief's examples.
        (
            "hxstarrys/slsa-provenance-test:latest",
            "127.0.0.1:5000",
            "sign-test",
            "127.0.0.1:5000/sign-test/slsa-provenance-test:latest",
        ),
        ("nginx", "127.0.0.1:5000", None, "127.0.0.1:5000/library/nginx:latest"),
        # --registry replaces the registry and keeps the path.
        ("quay.io/ns/app:v1", "127.0.0.1:5000", None, "127.0.0.1:5000/ns/app:v1"),
        ("quay.io/a/b/c:v1", "reg.io", None, "reg.io/a/b/c:v1"),
        # A single-component repository gains library/ (hangar v1.8's default project).
        ("quay.io/app:v1", "reg.io", None, "reg.io/library/app:v1"),
        ("localhost:5000/app", "reg.io", None, "reg.io/library/app:latest"),
        # --project replaces the first component, or adds one.
        ("nginx", None, "mirror", "docker.io/mirror/nginx:latest"),
        ("cnrancher/hangar:v1", None, "p", "docker.io/p/hangar:v1"),
        ("quay.io/app", None, "p", "quay.io/p/app:latest"),
        ("quay.io/ns/app", None, "p", "quay.io/p/app:latest"),
        ("quay.io/a/b/c", None, "p", "quay.io/p/b/c:latest"),
        ("quay.io/a/b/c", None, "p/q", "quay.io/p/q/b/c:latest"),
        ("localhost:5000/app", "reg.io:443", "p", "reg.io:443/p/app:latest"),
        # Both, digests and tags kept.
        (f"nginx:1@{DIGEST}", "r.io", "p", f"r.io/p/nginx:1@{DIGEST}"),
        (f"nginx@{DIGEST}", "r.io", None, f"r.io/library/nginx@{DIGEST}"),
        # Docker Hub as the new registry.
        ("quay.io/app", "index.docker.io", None, "docker.io/library/app:latest"),
        ("quay.io/ns/app", "docker.io", None, "docker.io/ns/app:latest"),
        # Scheme and trailing slash are dropped by override_location too.
        ("nginx", "https://127.0.0.1:5000/", None, "127.0.0.1:5000/library/nginx:latest"),
        # Nothing to do.
        ("quay.io/app", None, None, "quay.io/app:latest"),
        ("quay.io/app", "", "", "quay.io/app:latest"),
    ],
)
def test_override_location(text, registry, project, expected):
    assert str(override_location(parse_reference(text), registry, project)) == expected


def test_override_result_too_long():
    ref = parse_reference("x.io/p/" + "a" * 200)
    with pytest.raises(InvalidReferenceError, match="longer than 255"):
        override_location(ref, None, "q" * 60)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("reg.io/ns", "without a path"),
        ("https://reg.io/ns", "without a path"),
        ("", "not a registry host"),
        ("https://", "not a registry host"),
        ("bad host", "not a registry host"),
        ("reg.io:port", "not a registry host"),
        ("under_score.io", "not a registry host"),
    ],
)
def test_bad_registry_option(value, message):
    with pytest.raises(HangarError, match=message):
        normalize_registry_option(value)
    with pytest.raises(HangarError, match=message):
        override_location(parse_reference("nginx"), value or "x y", None)


def test_registry_option_scheme_is_stripped_with_one_warning(capsys):
    value = "https://warn-once.example:5000/"
    assert normalize_registry_option(value) == "warn-once.example:5000"
    assert normalize_registry_option(value) == "warn-once.example:5000"
    err = capsys.readouterr().err
    assert err.count("[WARN]") == 1
    assert "URL scheme is ignored" in err and "--tls-verify=false" in err
    assert normalize_registry_option("HTTP://other.example") == "other.example"
    assert capsys.readouterr().err.count("[WARN]") == 1
    assert normalize_registry_option("plain.example:5000") == "plain.example:5000"
    assert capsys.readouterr().err == ""


def test_registry_option_normalizes_docker_hub():
    assert normalize_registry_option("registry-1.docker.io") == "docker.io"
    assert normalize_registry_option("index.docker.io") == "docker.io"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("sign-test", "sign-test"), ("/a/b/", "a/b"), ("a.b_c", "a.b_c")],
)
def test_project_option_valid(value, expected):
    assert normalize_project_option(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("/", "empty"),
        ("Proj", "lowercase"),
        ("a//b", "not a valid"),
        ("-a", "not a valid"),
        ("a b", "not a valid"),
    ],
)
def test_project_option_invalid(value, message):
    with pytest.raises(HangarError, match=message):
        normalize_project_option(value)


@pytest.mark.parametrize(
    ("registry", "host"),
    [
        ("docker.io", "registry-1.docker.io"),
        ("index.docker.io", "registry-1.docker.io"),
        ("registry-1.docker.io", "registry-1.docker.io"),
        ("quay.io", "quay.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_api_host(registry, host):
    assert api_host(registry) == host

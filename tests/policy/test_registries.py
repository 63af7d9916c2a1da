"""registries.d loading and the use-sigstore-attachments lookup, ported from containers/image's
docker/registries_d_test.go (the Go test name beside each case) and its fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hangar.policy.config import PolicyError
from hangar.policy.registries import (
    RegistriesConfig,
    default_policy_path,
    default_registries_d,
    load_registries_d,
)
from tests.support.paths import CIMAGE_SOURCE

FIXTURES = CIMAGE_SOURCE / "docker" / "fixtures" / "registries.d"


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_missing_and_empty_directories(tmp_path: Path) -> None:  # Go: TestLoadAndMergeConfig
    for directory in (tmp_path / "thisdoesnotexist", write(tmp_path / "empty", {})):
        config = load_registries_d(directory)
        assert (config.default_docker, config.docker) == (None, {})
        assert config.use_sigstore_attachments("example.com/repo:tag") is False


@pytest.mark.parametrize(
    ("files", "named"),
    [
        # Go: TestLoadAndMergeConfig: invalid YAML, duplicate default-docker, duplicate namespace
        ({"0.yaml": "}"}, ["0.yaml"]),
        (
            {
                "0.yaml": "default-docker:\n lookaside: file:////tmp/something",
                "1.yaml": "default-docker:\n lookaside: file:////tmp/different",
            },
            ["0.yaml", "1.yaml"],
        ),
        (
            {
                "0.yaml": "docker:\n example.com:\n  lookaside: file:////tmp/something",
                "1.yaml": "docker:\n example.com:\n  lookaside: file:////tmp/different",
            },
            ["0.yaml", "1.yaml"],
        ),
        # not in the Go tests: a value c/image's yaml decoding refuses for its *bool
        ({"0.yaml": "default-docker:\n use-sigstore-attachments: maybe"}, ["0.yaml"]),
    ],
)
def test_invalid_directories(tmp_path: Path, files: dict[str, str], named: list[str]) -> None:
    with pytest.raises(PolicyError) as caught:
        load_registries_d(write(tmp_path / "d", files))
    for name in named:
        assert name in str(caught.value)


def test_fixture_directory() -> None:  # Go: TestLoadAndMergeConfig, the fully worked example
    # (Debian's 5.23.1 fixtures: two path-test namespaces fewer than upstream's today.)
    config = load_registries_d(FIXTURES)
    assert config.default_docker == {
        "lookaside": "file:///mnt/companywide/signatures/for/other/repositories"
    }
    assert set(config.docker) == {
        "example.com",
        "registry.test.example.com",
        "registry.test.example.com:8888",
        "localhost",
        "localhost:8080",
        "localhost/invalid/url/test",
        "docker.io/contoso",
        "docker.io/centos",
        "docker.io/centos/mybetaproduct",
        "docker.io/centos/mybetaproduct:latest",
    }
    # No file sets use-sigstore-attachments: podman reads no attachment anywhere.
    assert config.use_sigstore_attachments("docker.io/centos/mybetaproduct:latest") is False


NAMESPACES = [
    "localhost",
    "localhost:5000",
    "example.com",
    "example.com/ns1",
    "example.com/ns1/ns2",
    "example.com/ns1/ns2/repo",
    "example.com/ns1/ns2/repo:notlatest",
]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        # Go: TestRegistryConfigurationSignatureTopLevel (the same lookup decides
        # use-sigstore-attachments; each namespace turns it on, default-docker off, so which
        # one decided shows in the result)
        ("example.com/ns1/ns2/repo:notlatest", "example.com/ns1/ns2/repo:notlatest"),
        ("example.com/ns1/ns2/repo:unmatched", "example.com/ns1/ns2/repo"),
        ("example.com/ns1/ns2/notrepo:notlatest", "example.com/ns1/ns2"),
        ("example.com/ns1/notns2/repo:notlatest", "example.com/ns1"),
        ("example.com/notns1/ns2/repo:notlatest", "example.com"),
        ("unknown.example.com/busybox:latest", None),
        ("localhost:5000/busybox:latest", "localhost:5000"),
        ("localhost/busybox:latest", "localhost"),
        ("localhost:9999/busybox:latest", None),
    ],
)
def test_lookup_order(image: str, expected: str | None) -> None:
    for decider in NAMESPACES:
        docker = {ns: {"use-sigstore-attachments": ns == decider} for ns in NAMESPACES}
        config = RegistriesConfig("d", {"use-sigstore-attachments": False}, docker)
        assert config.use_sigstore_attachments(image) is (decider == expected), decider


def test_an_entry_without_the_setting_defers_to_the_next() -> None:
    # registries_d.go useSigstoreAttachments: only an entry that sets it decides.
    docker = {
        "example.com/ns/repo": {"lookaside": "https://lookaside.example.com"},
        "example.com": {"use-sigstore-attachments": True},
    }
    config = RegistriesConfig("d", None, docker)
    assert config.use_sigstore_attachments("example.com/ns/repo:v1") is True
    config = RegistriesConfig("d", {"use-sigstore-attachments": True}, {"example.com": {}})
    assert config.use_sigstore_attachments("example.com/ns/repo:v1") is True
    config = RegistriesConfig("d", {"lookaside": "file:///x"}, {})
    assert config.use_sigstore_attachments("example.com/ns/repo:v1") is False


def test_wildcard_domains() -> None:
    config = RegistriesConfig("d", None, {"*.example.com": {"use-sigstore-attachments": True}})
    assert config.use_sigstore_attachments("registry.example.com:5000/app:v1") is True
    assert config.use_sigstore_attachments("example.org/app:v1") is False


def test_usual_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Go: TestDefaultPolicyPath, TestRegistriesDirPath: the user's file when it exists, else
    # the system one (one registries.d directory, never both).
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_registries_d() == Path("/etc/containers/registries.d")
    user = tmp_path / ".config" / "containers"
    (user / "registries.d").mkdir(parents=True)
    (user / "policy.json").write_text("{}")
    assert default_registries_d() == user / "registries.d"
    assert default_policy_path() == user / "policy.json"

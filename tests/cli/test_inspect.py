"""`hangar inspect`, run as the real command against real registries."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hangar.operations.inspection import host_platform
from hangar.sigstore.attachment import signature_tag
from tests.support import http as reg
from tests.support.images import OCI_MANIFEST, push_image, push_raw_manifest
from tests.support.registry import RegistryServer

HANGAR = str(Path(sys.executable).parent / "hangar")


def hangar(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run hangar with the test's HOME (isolated_home set it); output kept as bytes."""
    return subprocess.run(
        [HANGAR, *args],
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
        capture_output=True,
        timeout=60,
    )


def image(server: RegistryServer, repo: str, ref: str = "v1") -> str:
    separator = "@" if ref.startswith("sha256:") else ":"
    return f"docker://{server.host}/{repo}{separator}{ref}"


def push_signature(server: RegistryServer, repo: str, digest: str) -> None:
    """Something under the `.sig` tag of `digest` (its content does not matter here)."""
    config = b"{}"
    reg.push_blob(server, repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": reg.sha256_digest(config),
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    push_raw_manifest(server, repo, signature_tag(digest), manifest, OCI_MANIFEST)


@pytest.mark.parametrize("kind", ["oci-index", "docker-list", "oci-manifest", "docker-manifest"])
def test_raw_is_the_manifest_exactly(
    kind: str, registry_http: RegistryServer, isolated_home: Path
) -> None:
    repo = f"ns/raw-{kind}"
    pushed = push_image(registry_http, repo, "v1", kind)
    result = hangar("inspect", "--tls-verify=false", "--raw", image(registry_http, repo))
    assert result.returncode == 0, result.stderr
    assert result.stdout == pushed.manifest  # no newline added
    assert "sha256:" + hashlib.sha256(result.stdout).hexdigest() == pushed.digest
    _bytes, _type, registry_digest = reg.get_manifest(registry_http, repo, "v1")
    assert registry_digest == pushed.digest


def test_summary_lists_platforms_and_signatures(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    repo = "ns/summary"
    pushed = push_image(registry_http, repo, "v1", "oci-index-attestations")
    amd64 = pushed.platforms["linux/amd64"]
    push_signature(registry_http, repo, amd64)
    push_signature(registry_http, repo, pushed.digest)
    result = hangar("inspect", "--tls-verify=false", image(registry_http, repo))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert f"Reference:  {registry_http.host}/{repo}:v1" in text
    assert f"Digest:     {pushed.digest}" in text
    assert "Media type: application/vnd.oci.image.index.v1+json" in text
    assert "Signed:     yes" in text
    rows = {line.split()[1]: line.split() for line in text.splitlines() if "sha256:" in line[:80]}
    assert rows[amd64] == ["linux/amd64", amd64, "yes:", "0", "signatures"]
    arm64 = pushed.platforms["linux/arm64"]
    assert rows[arm64] == ["linux/arm64", arm64, "no"]
    for attestation in pushed.attestations.values():
        assert rows[attestation] == ["unknown/unknown", attestation, "attestation"]


def test_signatures_per_digest_and_the_keys_they_verify_with(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    from tests.support.cli import KEY1, KEY1_PASS, KEY1_PUB, KEY2, KEY2_PASS, KEY2_PUB, sign_args

    repo = "ns/summary-keys"
    pushed = push_image(registry_http, repo, "v1", "oci-index")
    name = f"{registry_http.host}/{repo}:v1"
    (tmp_path / "list").write_text(name + "\n")
    for key, passphrase in ((KEY1, KEY1_PASS), (KEY2, KEY2_PASS)):
        args = sign_args(
            tmp_path / "list", registry_http, "--arch", "amd64", key=key, passphrase=passphrase
        )
        signed = subprocess.run(
            [HANGAR, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert signed.returncode == 0, signed.stderr
    result = hangar(
        "inspect", "--tls-verify=false", "-p", str(KEY1_PUB), image(registry_http, repo)
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    key1 = _fingerprint(KEY1_PUB)
    both = f"2 signatures, 1 by {KEY1_PUB} (sha256:{key1[:16]})"
    assert f"Signatures: {both}" in text  # the index
    amd64 = pushed.platforms["linux/amd64"]
    row = next(line for line in text.splitlines() if amd64 in line)
    assert row.split(amd64, 1)[1].strip() == f"yes: {both}"
    arm64 = pushed.platforms["linux/arm64"]
    assert next(line for line in text.splitlines() if arm64 in line).split()[-1] == "no"
    # A key that signed nothing here verifies none of them.
    other = hangar(
        "inspect",
        "--tls-verify=false",
        "-p",
        str(KEY2_PUB),
        "-p",
        str(KEY1_PUB),
        image(registry_http, repo),
    ).stdout.decode()
    key2 = _fingerprint(KEY2_PUB)
    assert f"1 by {KEY2_PUB} (sha256:{key2[:16]}), 1 by {KEY1_PUB}" in other


def _fingerprint(public_key: Path) -> str:
    """sha256 of the DER SubjectPublicKeyInfo, computed here independently of hangar."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_key.read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def test_summary_of_a_single_manifest(registry_http: RegistryServer, isolated_home: Path) -> None:
    repo = "ns/summary-single"
    pushed = push_image(registry_http, repo, "v1", "docker-manifest", platforms=["linux/arm64"])
    result = hangar("inspect", "--tls-verify=false", image(registry_http, repo))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert f"Digest:     {pushed.digest}" in text
    assert "Platform:   linux/arm64" in text
    assert "Layers:     1" in text
    assert "Signed:     no" in text


def _config_of(server: RegistryServer, repo: str, manifest: bytes) -> bytes:
    return reg.get_blob(server, repo, json.loads(manifest)["config"]["digest"])


def test_config_of_a_single_manifest(registry_http: RegistryServer, isolated_home: Path) -> None:
    repo = "ns/config-single"
    pushed = push_image(registry_http, repo, "v1", "oci-manifest")
    config = _config_of(registry_http, repo, pushed.manifest)
    pretty = hangar("inspect", "--tls-verify=false", "--config", image(registry_http, repo))
    assert pretty.returncode == 0, pretty.stderr
    assert json.loads(pretty.stdout) == json.loads(config)
    raw = hangar("inspect", "--tls-verify=false", "--config", "--raw", image(registry_http, repo))
    assert raw.stdout == config


def test_config_of_an_index_is_the_host_platform(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    repo = "ns/config-index"
    host = host_platform()
    wanted = f"{host.os}/{host.architecture}" + (f"/{host.variant}" if host.variant else "")
    pushed = push_image(registry_http, repo, "v1", "oci-index", platforms=[wanted, "linux/s390x"])
    child = pushed.children[pushed.platforms[wanted]]
    result = hangar(
        "inspect", "--tls-verify=false", "--config", "--raw", image(registry_http, repo)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _config_of(registry_http, repo, child)
    assert pushed.platforms[wanted].encode() in result.stderr  # says which platform it chose


def test_config_of_an_index_without_the_host_platform(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    repo = "ns/config-other"
    pushed = push_image(registry_http, repo, "v1", "oci-index", platforms=["windows/riscv"])
    result = hangar("inspect", "--tls-verify=false", "--config", image(registry_http, repo))
    assert result.returncode == 1
    error = result.stderr.decode()
    assert "Traceback" not in error
    assert pushed.platforms["windows/riscv"] in error and "hangar inspect --config" in error


def test_unknown_image_is_a_one_line_error(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    result = hangar("inspect", "--tls-verify=false", image(registry_http, "ns/none", "nope"))
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "not found" in lines[0] and "ns/none:nope" in lines[0]
    assert result.stdout == b""


def test_https_with_certs_d_and_default_verification(
    registry_https: RegistryServer, isolated_home: Path
) -> None:
    repo = "ns/tls"
    pushed = push_image(registry_https, repo, "v1", "oci-index")
    failed = hangar("inspect", "--raw", image(registry_https, repo))
    assert failed.returncode == 1 and b"is not trusted" in failed.stderr
    registry_https.install_ca(isolated_home)
    result = hangar("inspect", "--raw", image(registry_https, repo))
    assert result.returncode == 0, result.stderr
    assert result.stdout == pushed.manifest


@pytest.mark.parametrize("given", ["oci:foo", "oci-archive:/tmp/app.tar", "containers-storage:app"])
def test_other_transports_are_named_not_looked_up(given: str, isolated_home: Path) -> None:
    from tests.support.errors_doc import documented

    result = hangar("--debug", "inspect", given)
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert stderr.splitlines() == [stderr.strip()]  # one line, and no request was sent
    transport = given.split(":")[0]
    assert f'transport "{transport}:" of {given} is not supported' in stderr
    assert "docker://" in stderr and "docker.io" not in stderr
    if given == "oci:foo":
        documented("inspect-other-transport", 2, stderr.strip(), {})
